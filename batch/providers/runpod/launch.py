"""RunPod: pick a GPU type and create a pod with the job image, through the ``runpod`` SDK.

Calls, all from runpod-python 1.12.0 (``runpod/api/ctl_commands.py``), each a
GraphQL POST to ``$RUNPOD_API_BASE_URL/graphql`` (default
https://api.runpod.io) with ``Authorization: Bearer <key>``, made through
:func:`batch.providers.runpod.api.call` (the SDK imported there, lazily):

* ``runpod.get_gpus()`` -> ``gpuTypes { id displayName memoryInGb }``;
* ``runpod.get_gpu(id, gpu_count)`` -> one type with ``securePrice``,
  ``communityPrice``, ``secureCloud``, ``communityCloud``, ``maxGpuCount`` and
  ``lowestPrice(input: {gpuCount}) { uninterruptablePrice minimumBidPrice }``;
  the prices are taken as $/h per GPU;
* ``runpod.create_pod(...)`` -> ``podFindAndDeployOnDemand`` (it first calls
  ``get_gpu`` to check the id). ``start_ssh=False``, no ports, empty
  ``docker_args``: the image's own ENTRYPOINT/CMD runs.

Interruptible (spot) pods are not offered: the SDK has no create call for
them (only ``podFindAndDeployOnDemand``; spot is the separate
``podRentInterruptable`` mutation).

The SDK writes names, the image and env values into the GraphQL text without
escaping, so a value with a double quote, a backslash or a control character
is refused here before anything is sent (MissingSetting, naming the variable,
never its value).

Raises: MissingSetting, NoOfferMatches (from :meth:`RunPodLauncher.choose_gpu`)
and the errors of :mod:`batch.providers.runpod.api`: ControlPlaneRefused (the
SDK's AuthenticationError: 401), ControlPlaneUnavailable (no answer, an answer
that is not JSON or has no data, a GraphQL error such as no machine free for
that GPU type), ControlPlaneError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from batch.errors import ControlPlaneError, MissingSetting, NoOfferMatches
from batch.providers.runpod import api

DEFAULT_URL = api.DEFAULT_URL
#: what the launcher's errors tell the user
HINTS = api.Hints(
    unreachable=f"check your network and RUNPOD_API_BASE_URL (default {api.DEFAULT_URL})",
    refused="check RUNPOD_API_KEY and that it has read/write access",
    query="another GPU type, count or --cloud may have free machines",
)
#: values RunPod accepts in allowedCudaVersions (the REST API's CudaVersion enum)
CUDA_VERSIONS = (
    "11.8",
    "12.0",
    "12.1",
    "12.2",
    "12.3",
    "12.4",
    "12.5",
    "12.6",
    "12.7",
    "12.8",
    "12.9",
    "13.0",
)
CloudType = Literal["ALL", "SECURE", "COMMUNITY"]
_UNSAFE = re.compile(r'["\\\x00-\x1f\x7f]')
T = TypeVar("T")


@dataclass(frozen=True)
class GpuFilters:
    gpu: str | None = None  # part of the id or display name, e.g. "RTX 4090", "A100"
    gpu_type_id: str | None = None  # an exact id; then ``gpu`` is not used
    gpu_count: int = 1
    min_vram_gb: float | None = None
    max_price: float | None = None  # $/h for all the GPUs
    cloud_type: CloudType = "ALL"

    def wants(self, t: Mapping[str, Any]) -> bool:
        """Does a ``get_gpus()`` entry pass the model and VRAM filters?"""
        if self.gpu_type_id:
            return t.get("id") == self.gpu_type_id
        if self.gpu:
            needle = self.gpu.replace("_", " ").lower()
            if needle not in f"{t.get('id', '')} | {t.get('displayName', '')}".lower():
                return False
        return self.min_vram_gb is None or float(t.get("memoryInGb") or 0) >= self.min_vram_gb

    def describe(self) -> str:
        parts = [f"gpu={self.gpu_type_id or self.gpu or 'any'} x{self.gpu_count}", f"cloud={self.cloud_type}"]
        if self.min_vram_gb is not None:
            parts.append(f"vram>={self.min_vram_gb:g} GB")
        if self.max_price is not None:
            parts.append(f"price<=${self.max_price:g}/h")
        return ", ".join(parts)


@dataclass(frozen=True)
class GpuChoice:
    id: str
    display_name: str
    memory_gb: float
    gpu_count: int
    price_per_gpu: float

    @property
    def price(self) -> float:
        return self.price_per_gpu * self.gpu_count

    def line(self) -> str:
        return (
            f"{self.gpu_count}x {self.id} ({self.display_name}), {self.memory_gb:g} GB VRAM each, "
            f"${self.price_per_gpu:.3f}/h per GPU"
        )


def price_per_gpu(detail: Mapping[str, Any], cloud: CloudType) -> float | None:
    """On-demand $/h per GPU in that cloud, or None where it is not offered."""

    def pos(v: Any) -> float | None:
        return float(v) if isinstance(v, int | float) and v > 0 else None

    secure = pos(detail.get("securePrice")) if detail.get("secureCloud") else None
    community = pos(detail.get("communityPrice")) if detail.get("communityCloud") else None
    if cloud == "SECURE":
        return secure
    if cloud == "COMMUNITY":
        return community
    found = [p for p in (secure, community) if p is not None]
    lowest = detail.get("lowestPrice") or {}
    return (
        min(found) if found else pos(lowest.get("uninterruptablePrice") if isinstance(lowest, dict) else None)
    )


def allowed_cuda(min_cuda: str | None) -> list[str] | None:
    """The allowedCudaVersions list for "at least ``min_cuda``"; raises MissingSetting for an unknown one."""
    if not min_cuda:
        return None
    want = tuple(int(x) for x in min_cuda.split(".")[:2]) if re.fullmatch(r"\d+\.\d+", min_cuda) else None
    versions = [v for v in CUDA_VERSIONS if want and tuple(int(x) for x in v.split(".")) >= want]
    if not versions:
        raise MissingSetting(f"--min-cuda {min_cuda}: RunPod knows CUDA {', '.join(CUDA_VERSIONS)}")
    return versions


def check_sendable(**values: Any) -> None:
    """Refuse what the SDK would paste unescaped into GraphQL (names the field, not the value)."""
    for field, value in values.items():
        items = value.items() if isinstance(value, Mapping) else [(field, value)]
        for name, v in items:
            if isinstance(v, str) and (_UNSAFE.search(v) or _UNSAFE.search(str(name))):
                raise MissingSetting(
                    f"{name}: contains a double quote, backslash or control character, which the runpod "
                    "SDK would write unescaped into its GraphQL request",
                    hint="use a value without those characters",
                )


class RunPodLauncher:
    """Chooses a GPU type and creates one pod with a key (``RUNPOD_API_KEY``)."""

    def __init__(self, api_key: str | None) -> None:
        self.api_key = (api_key or "").strip()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RunPodLauncher:
        env = os.environ if env is None else env
        return cls(env.get("RUNPOD_API_KEY"))

    def __repr__(self) -> str:  # the key stays out of logs
        return "RunPodLauncher()"

    @property
    def url(self) -> str:
        return api.graphql_url()

    def choose_gpu(self, filters: GpuFilters) -> tuple[GpuChoice, int]:
        """The cheapest GPU type meeting every filter, and how many types were priced.

        Raises NoOfferMatches and what :meth:`_call` raises.
        """
        types: list[Any] = self._call(lambda sdk: sdk.get_gpus(), "get_gpus")
        wanted = [t for t in types if isinstance(t, dict) and filters.wants(t)]
        choices = []
        for t in wanted:
            gpu_id = t["id"]

            def get_gpu(sdk: Any, gpu_id: Any = gpu_id) -> dict[str, Any]:
                return dict(sdk.get_gpu(gpu_id, filters.gpu_count))

            detail = self._call(get_gpu, f"get_gpu {gpu_id}")
            per_gpu = price_per_gpu(detail, filters.cloud_type)
            if per_gpu is None or int(detail.get("maxGpuCount") or filters.gpu_count) < filters.gpu_count:
                continue
            name = str(detail.get("displayName") or t.get("displayName") or t["id"])
            memory = float(detail.get("memoryInGb") or t.get("memoryInGb") or 0)
            choice = GpuChoice(str(t["id"]), name, memory, filters.gpu_count, per_gpu)
            if filters.max_price is None or choice.price <= filters.max_price:
                choices.append(choice)
        if not choices:
            seen = (
                f" ({len(wanted)} GPU types matched the model and VRAM, none at that price)" if wanted else ""
            )
            raise NoOfferMatches(
                f"no RunPod GPU type matches: {filters.describe()}{seen}",
                hint="relax a filter (--max-price, --min-vram, --gpu, --cloud ALL); get_gpus() lists the ids",
            )
        return min(choices, key=lambda c: c.price), len(wanted)

    def create_kwargs(
        self, *, name: str, image: str, gpu_type_id: str, gpu_count: int, cloud_type: CloudType,
        disk_gb: int, volume_gb: int, env: dict[str, str], min_cuda: str | None = None,
    ) -> dict[str, Any]:  # fmt: skip
        """The ``runpod.create_pod`` keyword arguments; raises MissingSetting for what cannot be sent."""
        check_sendable(name=name, image=image, gpu_type_id=gpu_type_id, env=env)
        kwargs: dict[str, Any] = {
            "name": name, "image_name": image, "gpu_type_id": gpu_type_id, "cloud_type": cloud_type,
            "gpu_count": gpu_count, "container_disk_in_gb": disk_gb, "volume_in_gb": volume_gb,
            "start_ssh": False, "support_public_ip": False, "ports": None, "docker_args": "", "env": env,
        }  # fmt: skip
        cuda = allowed_cuda(min_cuda)
        if cuda:
            kwargs["allowed_cuda_versions"] = cuda
        return kwargs

    def create(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """Create the pod once (never retried: a retry could rent twice); ``{id, machineId}``."""
        pod = self._call(lambda sdk: sdk.create_pod(**kwargs), "create_pod")
        if not isinstance(pod, dict) or not pod.get("id"):
            raise ControlPlaneError(
                "RunPod create_pod: no pod in the answer", hint="look at runpod.io > Pods before trying again"
            )
        return {"id": str(pod["id"]), "machineId": pod.get("machineId")}

    def _call(self, fn: Callable[[Any], T], what: str) -> T:
        """``fn(runpod)`` with this key; MissingSetting without one, else :func:`api.call`'s errors."""
        if not self.api_key:
            raise MissingSetting(
                "no RunPod API key: set RUNPOD_API_KEY", hint="runpod.io > Settings > API Keys"
            )
        return api.call(fn, what, self.api_key, HINTS)
