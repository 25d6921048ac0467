"""Resizing by a scale factor or to a size.

Rungs: ``model`` (a spandrel super-resolution model on CUDA, ``batch``
frames a call, tiled when memory is short), ``model-cpu`` (the same on the
CPU, where the ladder names it) and ``lanczos`` (Pillow). A model's native
scale (x2, x4) is resized to the requested size on the device. A unit of
ladder work is ``batch`` frames; a device rung's unit is handed on after the
next one is queued (see batch.stages.frames.OneBehind).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from PIL import Image

from batch.config import LANCZOS, SR_MODEL_CPU, UpscaleStage
from batch.errors import RungUnavailable, WeightsError
from batch.media.layout import DEVICE_YUV, FrameLayout
from batch.stages.base import Caps, Stage, StageInput
from batch.stages.frames import OneBehind, as_numpy
from batch.stages.ladder import Ladder, unavailable_if_oom

if TYPE_CHECKING:
    from batch.media.yuv_rgb import YuvRgb

Frame = Any  # numpy RGB (uint8 or uint16, 3 or 4 channels), or a (3, H, W) float tensor between model stages


class UpscaleRung(Protocol):
    def resize_many(self, frames: list[Frame], width: int, height: int) -> list[Frame]: ...


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


class YuvLanczosRung:
    """Lanczos on flat 4:2:0 frames (yuv420p, or yuv420p10le through rgb48le): to RGB and back in this
    process (OpenCV, zscale's rule).

    The model rungs' fallback when frames travel as 4:2:0 planes; the resize is :class:`LanczosRung`'s.
    """

    def __init__(self, conv: YuvRgb, size_in: tuple[int, int]) -> None:
        from batch.media.yuv_rgb import CpuYuvRgb

        self.conv = conv
        self.to_rgb = CpuYuvRgb(*size_in, conv)
        self.dtype = self.to_rgb.dtype
        self.rgb = LanczosRung(self.dtype)
        self._out: dict[tuple[int, int], Any] = {}

    def resize_many(self, frames: list[Frame], width: int, height: int) -> list[Frame]:
        from batch.media.yuv_rgb import CpuYuvRgb

        back = self._out.get((width, height))
        if back is None:
            back = self._out[(width, height)] = CpuYuvRgb(width, height, self.conv)
        return [
            back.to_yuv(self.rgb.resize(self.to_rgb.to_rgb(as_numpy(f, self.dtype)), width, height))
            for f in frames
        ]


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


def target_size(stage: UpscaleStage, width: int, height: int) -> tuple[int, int]:
    """The output size; one missing side keeps the aspect ratio."""
    if stage.scale is not None:
        return max(1, round(width * stage.scale)), max(1, round(height * stage.scale))
    if stage.width and stage.height:
        return stage.width, stage.height
    if stage.width:
        return stage.width, max(1, round(height * stage.width / width))
    assert stage.height
    return max(1, round(width * stage.height / height)), stage.height


class Upscale(Stage[UpscaleStage]):
    name = "upscale"
    caps = Caps(needs_rgb=True)

    @classmethod
    def caps_for(cls, spec: UpscaleStage) -> Caps:
        model = spec.model is not None
        # a model converts yuv420p on its device; lanczos, its fallback, converts with OpenCV
        return Caps(
            needs_rgb=True, model_kind="sr" if model else None, device_frames=model, yuv_on_device=model
        )

    def __init__(self, spec: UpscaleStage, context: StageInput) -> None:
        super().__init__(spec, context)
        self.size_in = (context.width, context.height)
        self.size_out = target_size(spec, context.width, context.height)
        self.keep_on_device = context.keep_on_device
        assert spec.ladder is not None
        self.dtype = FrameLayout(context.pix_fmt, 2, 2).dtype
        self.yuv = None  # 4:2:0 frames in and out (see Caps.yuv_on_device)
        depth = DEVICE_YUV.get(context.pix_fmt)
        if depth is not None and context.colour is not None:
            from batch.media.yuv_rgb import for_plan
            from batch.models.device_worker import Yuv420Frames

            conv = for_plan(context.colour, depth)
            self.yuv = (Yuv420Frames(conv, *self.size_in), Yuv420Frames(conv, *self.size_out))
        lanczos: Any = functools.partial(LanczosRung, self.dtype)
        if self.yuv is not None:
            lanczos = functools.partial(YuvLanczosRung, self.yuv[0].conv, self.size_in)
        rungs = [(n, lanczos if n == LANCZOS else functools.partial(self._model, n)) for n in spec.ladder]
        self.ladder: Ladder[UpscaleRung] = Ladder(
            "upscale", rungs, total=context.total_frames, deadline=context.deadline
        )
        self.frames = 0
        self.unit = spec.batch if spec.model is not None else 1  # frames per unit of ladder work

    def _model(self, name: str) -> UpscaleRung:
        from batch.models.sr_rung import SrRung

        try:
            return SrRung(
                self.config,
                "cpu" if name == SR_MODEL_CPU else "cuda",
                self.size_out,
                self.keep_on_device,
                out_dtype=self.dtype,
                yuv=self.yuv,
            )
        except WeightsError as e:
            raise RungUnavailable(e.message) from None
        except RuntimeError as e:
            raise unavailable_if_oom(e) from None

    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        behind = OneBehind()
        unit: list[Frame] = []
        for frame in frames:
            unit.append(frame)
            if len(unit) >= self.unit:
                yield from self._hand_on(behind.push(self._resize(unit)))
                unit = []
        if unit:
            yield from self._hand_on(behind.push(self._resize(unit)))
        yield from self._hand_on(behind.flush())

    def _resize(self, unit: list[Frame]) -> list[Frame]:
        w, h = self.size_out
        out = self.ladder.run(lambda rung: rung.resize_many(list(unit), w, h), weight=len(unit))
        self.frames += len(out)
        return out

    def _hand_on(self, frames: list[Frame]) -> Iterator[Frame]:
        yield from (frames if self.keep_on_device else (as_numpy(f, self.dtype) for f in frames))

    def report(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "requested": self.config.to_data(exclude={"stage", "ladder"}, drop_none=True),
            "size_in": list(self.size_in),
            "size_out": list(self.size_out),
            "frames_in": self.frames,
            "frames_out": self.frames,
            **self.ladder.report(),
        }
