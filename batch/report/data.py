"""The report's sidecar, ``report-data.json``: what the page shows that the manifest does not hold.

Written by the job beside its manifest (``report-data.shard-I-of-N.json`` for a
shard) so the watchdog, which must not import matplotlib or the media code, can
render the page again with its verdict. It holds the inlined images per input
(base64), notes on what could not be made, and the watchdog's verdict.

Read as untrusted input: anything malformed is dropped with a note, never raised
past :func:`ReportData.from_json` (which raises ValueError only when the whole
file is not a report sidecar).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from typing import Any

SCHEMA = "batch-report-data/1"
MIMES = ("image/png", "image/jpeg")
MAX_IMAGE_BYTES = 4 << 20  # one image inlined at most (a preview is ~100-300 KB)
MAX_INLINE_BYTES = 24 << 20  # every image of a page together; past it images are linked, not inlined
VERDICT_KEYS = ("provider", "action", "reason", "detail", "at", "shard")


@dataclass(frozen=True)
class Image:
    caption: str
    mime: str  # one of MIMES
    data: bytes

    def data_uri(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"

    def to_dict(self) -> dict[str, str]:
        return {"caption": self.caption, "mime": self.mime, "base64": base64.b64encode(self.data).decode()}


def sniff_mime(data: bytes) -> str | None:
    """The image type from its first bytes (never from a name or a claim in a file)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return None


@dataclass
class ReportData:
    images: dict[int, list[Image]] = field(default_factory=dict)  # input index -> images
    notes: list[str] = field(default_factory=list)
    verdict: dict[str, str] | None = None  # the watchdog's (see VERDICT_KEYS), or None
    missing: bool = False  # read for a sidecar that is not there (not written)

    @property
    def inlined_bytes(self) -> int:
        return sum(len(i.data) for images in self.images.values() for i in images)

    def add(self, index: int, image: Image) -> bool:
        """Keep ``image`` for input ``index`` if the budget allows; False (and a note) when not."""
        if sniff_mime(image.data) != image.mime:
            self.notes.append(f"input {index}: {image.caption}: not a PNG or JPEG image; left out")
            return False
        if len(image.data) > MAX_IMAGE_BYTES or self.inlined_bytes + len(image.data) > MAX_INLINE_BYTES:
            self.notes.append(
                f"input {index}: {image.caption} left out of the page: the page keeps at most "
                f"{MAX_INLINE_BYTES >> 20} MiB of images ({MAX_IMAGE_BYTES >> 20} MiB each)"
            )
            return False
        self.images.setdefault(index, []).append(image)
        return True

    def merge(self, other: ReportData) -> None:
        for index, images in sorted(other.images.items()):
            for image in images:
                self.add(index, image)
        self.notes.extend(other.notes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "images": {str(k): [i.to_dict() for i in v] for k, v in sorted(self.images.items())},
            "notes": self.notes,
            "verdict": self.verdict,
        }

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict()).encode()

    @classmethod
    def from_json(cls, raw: bytes, name: str = "report-data.json") -> ReportData:
        """Parse a sidecar; entries that are malformed are dropped with a note.

        Raises ValueError when ``raw`` is not a sidecar at all (not JSON, not an object, another schema).
        """
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as e:
            raise ValueError(f"{name} is not JSON ({e})") from None
        if not isinstance(body, dict) or body.get("schema") != SCHEMA:
            raise ValueError(f"{name} is not a {SCHEMA} file")
        out = cls(verdict=_verdict(body.get("verdict")))
        notes = body.get("notes")
        if isinstance(notes, list):
            out.notes.extend(n for n in notes if isinstance(n, str))
        images = body.get("images")
        for key, entries in images.items() if isinstance(images, dict) else ():
            index = int(key) if isinstance(key, str) and key.isdigit() else None
            for entry in entries if isinstance(entries, list) else [None]:
                image = _image(entry)
                if image is None or index is None:
                    out.notes.append(f"{name}: an image entry for input {key!r} is malformed; left out")
                else:
                    out.add(index, image)
        return out


def _image(entry: object) -> Image | None:
    if not isinstance(entry, dict):
        return None
    caption, mime, b64 = entry.get("caption"), entry.get("mime"), entry.get("base64")
    if not (isinstance(caption, str) and mime in MIMES and isinstance(b64, str)):
        return None
    try:
        data = base64.b64decode(b64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return Image(caption, str(mime), data) if sniff_mime(data) == mime else None


def _verdict(raw: object) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    return {k: str(raw[k]) for k in VERDICT_KEYS if raw.get(k) is not None}
