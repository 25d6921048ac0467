"""vast.ai: find an offer and rent it with the job image, through the REST API.

Two requests, as vast-ai/vast-cli sends them (``vastai/api/offers.py``,
``vastai/api/instances.py``) and the docs describe them
(docs.vast.ai "Creating Instances with the API"):

* search: ``POST {base}/api/v0/bundles/`` with the query as the JSON body:
  ``{field: {op: value}}`` filters (ops eq, neq, gt, gte, lt, lte, in, notin)
  plus ``order`` ([[field, "asc"|"desc"]]), ``type`` ("on-demand" or "bid"),
  ``limit`` and ``allocated_storage`` (GB priced into ``dph_total``). Units as
  the CLI sends them: ``gpu_ram`` in MB (GB x 1000), ``disk_space`` in GB,
  ``dph_total`` in $/h, ``cuda_max_good`` a version number. The answer is
  ``{"offers": [...]}``.
* create: ``PUT {base}/api/v0/asks/{offer_id}/`` with ``client_id: "me"``,
  ``image``, ``disk``, ``env`` (a JSON object), ``label``, ``runtype: "args"``
  (the image's own ENTRYPOINT runs; no SSH or Jupyter is set up, so no onstart
  is needed) and, for an interruptible instance, ``price`` (the bid, $/h). The
  answer is ``{"success": true, "new_contract": <instance id>}``.

Both sent by :class:`batch.providers.vast.api.VastApi` (the key in the
``Authorization`` header, never in a URL or a message). Offers are checked
here again against every filter before one is chosen.

Raises (from :meth:`VastLauncher.search` / :meth:`VastLauncher.create`), the
errors of :mod:`batch.providers.vast.api`: ControlPlaneRefused (401/403),
ControlPlaneUnavailable (no answer, 408/429/5xx, an answer that is not
JSON), ControlPlaneError (any other failing answer); NoOfferMatches (from
:func:`choose`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from batch.errors import ControlPlaneError, ControlPlaneUnavailable, NoOfferMatches
from batch.providers.launch import MASK, masked_env
from batch.providers.vast.api import DEFAULT_URL, Hints, VastApi, base_url
from batch.retry import RetryPolicy, retrying

TIMEOUT = (10.0, 60.0)  # connect, read (seconds)
SEARCH_LIMIT = 64
Order = Literal["price", "score"]
_ORDER = {"price": [["dph_total", "asc"]], "score": [["score", "desc"]]}
#: what the launcher's errors tell the user
HINTS = Hints(
    unreachable="vast.ai is busy or unreachable: check your network and VAST_URL (default "
    f"{DEFAULT_URL}) and try again in a minute",
    refused="check VAST_API_KEY (console.vast.ai > Account > API keys) and its permissions",
    failed="look at console.vast.ai before trying again",
)


@dataclass(frozen=True)
class OfferFilters:
    """What an offer must have. ``bid`` set: interruptible at that $/h, else on-demand."""

    gpu: str | None = None
    num_gpus: int = 1
    min_vram_gb: float | None = None
    max_price: float | None = None
    disk_gb: float = 50.0
    min_reliability: float | None = None
    min_cuda: float | None = None
    bid: float | None = None

    @property
    def gpu_name(self) -> str | None:
        """vast's spelling: ``RTX_4090`` -> ``RTX 4090`` (the CLI does the same)."""
        return self.gpu.replace("_", " ").strip() if self.gpu else None

    def query(self, order: Order = "price") -> dict[str, Any]:
        q: dict[str, Any] = {
            "verified": {"eq": True},
            "external": {"eq": False},
            "rentable": {"eq": True},
            "rented": {"eq": False},
            "num_gpus": {"eq": self.num_gpus},
            "disk_space": {"gte": self.disk_gb},
        }
        if self.gpu_name:
            q["gpu_name"] = {"eq": self.gpu_name}
        if self.min_vram_gb is not None:
            q["gpu_ram"] = {"gte": self.min_vram_gb * 1000}
        if self.max_price is not None:
            q["dph_total"] = {"lte": self.max_price}
        if self.min_reliability is not None:
            q["reliability"] = {"gte": self.min_reliability}
        if self.min_cuda is not None:
            q["cuda_max_good"] = {"gte": self.min_cuda}
        if self.bid is not None:
            q["min_bid"] = {"lte": self.bid}
        q.update(order=_ORDER[order], type="bid" if self.bid is not None else "on-demand")
        q.update(limit=SEARCH_LIMIT, allocated_storage=self.disk_gb)
        return q

    def describe(self) -> str:
        parts = [f"gpu={self.gpu_name or 'any'} x{self.num_gpus}", f"disk>={self.disk_gb:g} GB"]
        if self.min_vram_gb is not None:
            parts.append(f"vram>={self.min_vram_gb:g} GB")
        if self.max_price is not None:
            parts.append(f"price<=${self.max_price:g}/h")
        if self.min_reliability is not None:
            parts.append(f"reliability>={self.min_reliability:g}")
        if self.min_cuda is not None:
            parts.append(f"cuda>={self.min_cuda:g}")
        parts.append(f"interruptible, bid ${self.bid:g}/h" if self.bid is not None else "on-demand")
        return ", ".join(parts)

    def rejects(self, o: Offer) -> str | None:
        """Why ``o`` breaks a filter, or None when it meets them all."""
        checks = [
            (self.gpu_name is None or o.gpu_name.lower() == self.gpu_name.lower(), "gpu"),
            (o.num_gpus == self.num_gpus, "gpu count"),
            (o.disk_gb is None or o.disk_gb >= self.disk_gb, "disk"),
            (self.min_vram_gb is None or o.vram_gb >= self.min_vram_gb, "vram"),
            (self.max_price is None or o.price <= self.max_price, "price"),
            (self.min_reliability is None or o.reliability >= self.min_reliability, "reliability"),
            (self.min_cuda is None or (o.cuda or 0) >= self.min_cuda, "cuda"),
            (self.bid is None or o.min_bid is None or o.min_bid <= self.bid, "min bid"),
            (o.rentable, "not rentable"),
        ]
        return next((why for ok, why in checks if not ok), None)


@dataclass(frozen=True)
class Offer:
    id: int
    gpu_name: str
    num_gpus: int
    vram_gb: float  # per GPU
    price: float  # dph_total, $/h with the allocated disk
    reliability: float
    location: str
    cuda: float | None
    disk_gb: float | None
    min_bid: float | None
    rentable: bool

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Offer:
        def num(key: str, default: float | None = None) -> float | None:
            v = d.get(key)
            return float(v) if isinstance(v, int | float | str) and str(v).strip() else default

        return cls(
            id=int(d["id"]),
            gpu_name=str(d.get("gpu_name") or "?"),
            num_gpus=int(d.get("num_gpus") or 0),
            vram_gb=(num("gpu_ram") or 0.0) / 1000,
            price=num("dph_total", float("inf")) or 0.0,
            reliability=num("reliability", num("reliability2", 0.0)) or 0.0,
            location=str(d.get("geolocation") or "?"),
            cuda=num("cuda_max_good"),
            disk_gb=num("disk_space"),
            min_bid=num("min_bid"),
            rentable=d.get("rentable") is not False and d.get("rented") is not True,
        )

    def line(self) -> str:
        cuda = f"  cuda {self.cuda:g}" if self.cuda else ""
        return (
            f"offer {self.id}: {self.num_gpus}x {self.gpu_name}, {self.vram_gb:.1f} GB VRAM each, "
            f"${self.price:.3f}/h, reliability {self.reliability:.3f}, {self.location}{cuda}"
        )


def choose(offers: list[Offer], filters: OfferFilters, order: Order = "price") -> Offer:
    """The cheapest offer meeting every filter (``price``), or the first in vast's score order.

    Raises NoOfferMatches.
    """
    ok = [o for o in offers if filters.rejects(o) is None]
    if not ok:
        seen = f" ({len(offers)} returned, none passed the filters)" if offers else ""
        raise NoOfferMatches(
            f"no vast.ai offer matches: {filters.describe()}{seen}",
            hint="relax a filter (--max-price, --min-reliability, --min-vram, --gpu) or try again later",
        )
    return min(ok, key=lambda o: o.price) if order == "price" else ok[0]


@dataclass(frozen=True)
class Request:
    method: str
    url: str
    body: dict[str, Any]

    def show(self) -> str:
        """Method, URL, headers and body as sent, with the key and the env values masked."""
        body = dict(self.body)
        if isinstance(body.get("env"), dict):
            body["env"] = masked_env(body["env"])
        head = f"{self.method} {self.url}\nAuthorization: Bearer {MASK}\nContent-Type: application/json"
        return f"{head}\n{json.dumps(body, indent=2)}"


def _answered_unavailable(exc: BaseException) -> bool:
    """A 408/429/5xx answer: vast is there and asks to come back; no answer at all is not retried."""
    return isinstance(exc, ControlPlaneUnavailable) and exc.fields.get("status") is not None


class VastLauncher:
    """Searches offers and creates one instance with a key (``VAST_API_KEY``)."""

    def __init__(
        self, api_key: str | None, base_url: str = DEFAULT_URL, *, timeout: tuple[float, float] = TIMEOUT
    ) -> None:
        self.api_key = (api_key or "").strip()
        self._api = VastApi(self.api_key, base_url, timeout=timeout)
        self.base_url = self._api.base_url
        self.timeout = timeout

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VastLauncher:
        env = os.environ if env is None else env
        return cls(env.get("VAST_API_KEY"), base_url(env))

    def __repr__(self) -> str:  # the key stays out of logs
        return f"VastLauncher(base_url={self.base_url!r})"

    def search_request(self, filters: OfferFilters, order: Order = "price") -> Request:
        return Request("POST", f"{self.base_url}/api/v0/bundles/", filters.query(order))

    def create_request(
        self, offer_id: int | str, *, image: str, disk_gb: float, env: dict[str, str], label: str,
        bid: float | None = None,
    ) -> Request:  # fmt: skip
        body: dict[str, Any] = {
            "client_id": "me", "image": image, "disk": disk_gb, "env": env, "label": label,
            "runtype": "args", "cancel_unavail": True,
        }  # fmt: skip
        if bid is not None:
            body["price"] = bid
        return Request("PUT", f"{self.base_url}/api/v0/asks/{offer_id}/", body)

    def search(self, filters: OfferFilters, order: Order = "price", *, attempts: int = 3) -> list[Offer]:
        """Offers as vast returns them; a 408/429/5xx answer is tried ``attempts`` times."""
        req = self.search_request(filters, order)
        policy = RetryPolicy(attempts=attempts, base_wait_s=2.0, max_wait_s=5.0, jitter=False)
        # a search is safe to repeat, but only an answer (408/429/5xx) says vast is there to ask again
        for attempt in retrying(policy, retry_on=_answered_unavailable):
            with attempt:
                body = self._send(req, "offer search")
        raw = body.get("offers")
        if not isinstance(raw, list):
            raise ControlPlaneError(
                "vast.ai offer search: answer without an offers list", hint="check VAST_URL"
            )
        return [Offer.from_json(d) for d in raw if isinstance(d, dict) and "id" in d]

    def create(self, req: Request) -> int:
        """Send a create request once (never retried: a retry could rent twice); the new instance id."""
        body = self._send(req, "create instance")
        new = body.get("new_contract")
        if body.get("success") is False or not isinstance(new, int | str) or not str(new).isdigit():
            said = self._api.scrub(str(body.get("msg") or body.get("error") or ""))
            raise ControlPlaneError(
                f"vast.ai create instance: no new instance in the answer ({said})",
                hint="look at console.vast.ai > Instances before trying again",
            )
        return int(new)

    def _send(self, req: Request, what: str) -> dict[str, Any]:
        path = req.url[len(self.base_url) :]
        answer = self._api.send(req.method, path, what, HINTS, body=req.body)
        return self._api.check(answer, what, HINTS)
