"""Lanczos resizes of frames in Python: the ``lanczos`` rung of the ``upscale`` stage.

Packed RGB(A) as Pillow images (:class:`LanczosRung`), or the source's own planes one by one
(:class:`PlanarLanczosRung`: no conversion to RGB and back, which cost more than the resize),
chroma planes with their siting kept, as zimg does.

Kept apart from :mod:`batch.stages.upscale` so that planning an upscale imports neither numpy nor
Pillow (~0.1 s of a 2-core VM's start, before ffmpeg could start): a ladder without a model rung
on planes the encoder takes as they are runs in the transcode's own graph (``zscale``), and this
module is loaded only when frames do pass through Python.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

from batch.media.layout import FrameLayout
from batch.media.pixfmt import CHROMA_SITING, pix_facts
from batch.stages.frames import as_numpy

Frame = Any  # numpy RGB (uint8 or uint16, 3 or 4 channels), a flat planar frame, or a device tensor


class LanczosRung:
    """Pillow's Lanczos: 8-bit RGB(A) as images, 16-bit frames one float channel at a time.

    Alpha is resized premultiplied (Pillow does it for RGBA; done by hand at 16 bits), so colour
    under transparent pixels does not bleed into the edges.
    """

    def __init__(self, dtype: Any = np.uint8) -> None:
        self.dtype = dtype  # what a device tensor from a model stage before becomes

    def resize(self, frame: Frame, width: int, height: int) -> Frame:
        arr = as_numpy(frame, self.dtype)
        if arr.dtype == np.uint8:
            if arr.shape[1] == width and arr.shape[0] == height:
                # Pillow returns a copy at the same size: the frame itself, without three 2.7 MB copies
                # a 720p frame (a source already at the asked width, or scale 1)
                return arr
            image = Image.fromarray(arr, mode="RGBA" if arr.shape[2] == 4 else "RGB")
            return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))
        return _resize_float(arr, width, height)

    def resize_many(self, frames: list[Frame], width: int, height: int) -> list[Frame]:
        return [self.resize(f, width, height) for f in frames]


def siting_shift(at: float, scale: float) -> float:
    """Where a resize of subsampled chroma starts reading, in chroma samples, so that its output keeps
    the siting ``at`` (see pixfmt.CHROMA_SITING) at ``scale`` (output size / input size of the luma).

    Pillow maps sample centres (a "center" siting); a co-sited sample lies half a luma sample before
    its centre, so the mapping is shifted by (0.5 - at) / 2 * (1 - 1 / scale) chroma samples.
    """
    return (0.5 - at) / 2 * (1 - 1 / scale)


def resize_plane(
    plane: np.ndarray, width: int, height: int, top: int, dx: float = 0.0, dy: float = 0.0
) -> np.ndarray:
    """One plane resized with Lanczos (a = 3, widened when shrinking), starting ``dx``, ``dy`` samples in.

    As zimg does it, to within a code: edges mirrored with the edge sample repeated (Pillow alone
    shortens the kernel there: up to 9 codes off at the border), one direction at a time in zimg's
    order, clipped to ``top`` after each pass (unclipped, a 10-bit edge's peaks land 30 codes off).
    8-bit planes as Pillow "L" images (its fixed-point kernels); deeper ones as float.
    """
    h, w = plane.shape
    if width % w == 0 and height % h == 0:
        return _whole_factor(plane, width // w, height // h, top, dx, dy)
    # the kernel reaches 3 samples each side, 3 / scale when shrinking; one more for the siting's shift
    px, py = math.ceil(3 * max(1.0, w / width)) + 1, math.ceil(3 * max(1.0, h / height)) + 1
    padded = np.pad(plane, ((py, py), (px, px)), mode="symmetric")
    deep = plane.dtype != np.uint8
    image = Image.fromarray(padded.astype(np.float32) if deep else padded)
    lanczos = Image.Resampling.LANCZOS

    def across(im: Image.Image) -> Image.Image:
        if width == w and not dx:
            return im.crop((px, 0, px + w, im.height))
        return _clipped(im.resize((width, im.height), lanczos, box=(px + dx, 0, px + dx + w, im.height)), top)

    def down(im: Image.Image) -> Image.Image:
        if height == h and not dy:
            return im.crop((0, py, im.width, py + h))
        return _clipped(im.resize((im.width, height), lanczos, box=(0, py + dy, im.width, py + dy + h)), top)

    # either pass keeps the other direction's padding for the pass after it
    out = down(across(image)) if _across_first(width / w, height / h) else across(down(image))
    arr = np.asarray(out)
    if not deep:
        return arr
    resized: np.ndarray = np.clip(arr + 0.5, 0, top).astype(plane.dtype)
    return resized


def _lanczos3(x: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.where(np.abs(x) < 3, np.sinc(x) * np.sinc(x / 3), 0.0)
    return out


def _phases(scale: int, shift: float) -> list[tuple[int, np.ndarray]]:
    """Output sample ``scale * j + r`` of an enlargement by a whole ``scale`` is one fixed 6-tap
    Lanczos sum around input sample ``j``: per phase ``r``, the first tap's offset and the weights
    (normalised to 1, as Pillow and zimg normalise theirs)."""
    out = []
    for r in range(scale):
        centre = shift + (r + 0.5) / scale - 0.5  # where the output sample sits, from input sample j
        first = math.floor(centre) - 2
        weights = _lanczos3(np.arange(first, first + 6) - centre)
        out.append((first, (weights / weights.sum()).astype(np.float32)))
    return out


def _whole_factor(plane: np.ndarray, sx: int, sy: int, top: int, dx: float, dy: float) -> np.ndarray:
    """An enlargement by whole factors (2x, 4x: the common upscales) as a few fixed 1-D filters.

    Each output phase is one OpenCV ``filter2D`` over the plane (SIMD, edges mirrored with the edge
    sample repeated: ``BORDER_REFLECT``, as zimg), rounded, clipped and interleaved: 10.6 ms a 720p
    frame to 1440p against Pillow's 37 (its general resampler computes every output sample's
    weights). Both are held to zscale's answer by the same tests.
    """
    import cv2

    def along(src: np.ndarray, scale: int, shift: float, axis: int) -> np.ndarray:
        if scale == 1 and not shift:
            return src
        shape = list(src.shape)
        shape[axis] *= scale
        out = np.empty(shape, src.dtype)
        for r, (first, weights) in enumerate(_phases(scale, shift)):
            kernel = weights[None, :] if axis == 1 else weights[:, None]
            anchor = (-first, 0) if axis == 1 else (0, -first)
            phase = cv2.filter2D(src, -1, kernel, anchor=anchor, borderType=cv2.BORDER_REFLECT)
            if top < np.iinfo(src.dtype).max:
                np.minimum(phase, top, out=phase)
            if axis == 1:
                out[:, r::scale] = phase
            else:
                out[r::scale] = phase
        return out

    if _across_first(float(sx), float(sy)):
        return along(along(plane, sx, dx, 1), sy, dy, 0)
    return along(along(plane, sy, dy, 0), sx, dx, 1)


def _across_first(xscale: float, yscale: float) -> bool:
    """zimg's order: the horizontal pass first when that costs less (its own estimate; ties: vertical)."""
    across_first = max(xscale, 1.0) * 2.0 + xscale * max(yscale, 1.0)
    down_first = max(yscale, 1.0) + yscale * max(xscale, 1.0) * 2.0
    return across_first < down_first


def _clipped(image: Image.Image, top: int) -> Image.Image:
    """Float passes clipped to the format's codes, as zimg's integer passes are (8-bit images clip)."""
    if image.mode != "F":
        return image
    return Image.fromarray(np.clip(np.asarray(image), 0, top).astype(np.float32))


class PlanarLanczosRung:
    """Lanczos on flat planar YUV frames (4:2:0, 4:2:2, 4:4:4; 8 to 16 bits), each plane on its own.

    No RGB: the conversion there and back would cost more than the resize and clip colours RGB
    cannot hold. Luma as it is; subsampled chroma with its siting kept (``chroma_location``, unset:
    left), as zimg keeps it (tested against ffmpeg's ``zscale=filter=lanczos``: within two codes,
    mostly one, where zimg's fixed-point kernels round otherwise). Frames without
    alpha only: colour under transparent pixels would bleed into the edges (the pixel plan sends
    frames with alpha as RGB, which :class:`LanczosRung` resizes premultiplied).
    """

    def __init__(self, pix_fmt: str, size_in: tuple[int, int], chroma_location: str | None = None) -> None:
        facts = pix_facts(pix_fmt)
        if facts.alpha:
            raise ValueError(f"{pix_fmt}: planes with alpha are resized as RGB (premultiplied)")
        self.pix_fmt = pix_fmt
        self.layout = FrameLayout(pix_fmt, *size_in)
        self.dtype = self.layout.dtype
        self.top = self.layout.max_value
        self.siting = CHROMA_SITING.get(chroma_location or "left", CHROMA_SITING["left"])

    def resize(self, frame: Frame, width: int, height: int) -> np.ndarray:
        arr = as_numpy(frame, self.dtype)
        if (width, height) == (self.layout.width, self.layout.height):
            return arr
        out = self.layout.resized(width, height)
        planes = []
        for k, (plane, (h, w)) in enumerate(zip(self.layout.split(arr), out.planes, strict=True)):
            dx = dy = 0.0
            if k in (1, 2):  # chroma
                if w < width:
                    dx = siting_shift(self.siting[0], width / self.layout.width)
                if h < height:
                    dy = siting_shift(self.siting[1], height / self.layout.height)
            planes.append(resize_plane(plane, w, h, self.top, dx, dy).ravel())
        return np.concatenate(planes)

    def resize_many(self, frames: list[Frame], width: int, height: int) -> list[Frame]:
        return [self.resize(f, width, height) for f in frames]


def _resize_float(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    top = float(np.iinfo(arr.dtype).max)
    planes = arr.astype(np.float32)
    alpha = planes[..., 3:] / top if arr.shape[2] == 4 else None
    if alpha is not None:
        planes[..., :3] *= alpha

    def one(plane: np.ndarray) -> np.ndarray:
        image = Image.fromarray(np.ascontiguousarray(plane), mode="F")
        return np.asarray(image.resize((width, height), Image.Resampling.LANCZOS))

    out = np.stack([one(planes[..., c]) for c in range(arr.shape[2])], axis=-1)
    if alpha is not None:
        a = np.clip(out[..., 3:] / top, 0, 1)
        out[..., :3] = np.where(a > 0, out[..., :3] / np.maximum(a, 1e-6), 0)
    resized: np.ndarray = np.clip(out + 0.5, 0, top).astype(arr.dtype)
    return resized
