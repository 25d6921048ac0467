"""Resizing by a scale factor or to a size.

Rungs: ``model`` (a spandrel super-resolution model on CUDA, ``batch``
frames a call, tiled when memory is short), ``model-cpu`` (the same on the
CPU, where the ladder names it) and ``lanczos`` (Pillow). A model's native
scale (x2, x4) is resized to the requested size on the device. A unit of
ladder work is ``batch`` frames; a device rung's unit is handed on after the
next one is queued (see batch.stages.frames.OneBehind).

Lanczos resizes the frames as they travel (batch.stages.lanczos): packed RGB
as images, or the source's own planes one by one, chroma planes with their
siting kept, as zimg does. A ladder without a model rung therefore asks for
no RGB; the pixel plan still sends RGB where the planes cannot hold the new
size (odd, subsampled) or carry alpha (resized premultiplied, which needs
RGB). On planes the encoder takes as they are, such a ladder runs in the
transcode's own graph instead (:meth:`Upscale.graph_filter`).

Planning the stage imports neither numpy nor Pillow (nor a model's modules):
they load where frames pass through Python, with the rung that resizes them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from batch.config import SR_MODEL_CPU, UPSCALE_MODEL_RUNGS, UpscaleStage
from batch.errors import RungUnavailable, WeightsError
from batch.media.layout import DEVICE_YUV, FrameLayout
from batch.stages.base import Caps, Stage, StageInput
from batch.stages.ladder import Ladder, unavailable_if_oom

Frame = Any  # numpy RGB (uint8 or uint16, 3 or 4 channels), or a (3, H, W) float tensor between model stages


class UpscaleRung(Protocol):
    def resize_many(self, frames: list[Frame], width: int, height: int) -> list[Frame]: ...


@dataclass(frozen=True)
class InGraph:
    """The rung's stand-in in the manifest when ffmpeg's own graph ran it (Stage.graph_filter)."""

    filter: str

    def describe(self) -> dict[str, str]:
        return {
            "where": "in the transcode's ffmpeg graph (no frames through pipes; timed with the transcode)",
            "filter": self.filter,
        }


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
    caps = Caps(needs_rgb=True, resizes=True)

    @classmethod
    def caps_for(cls, spec: UpscaleStage) -> Caps:
        model = spec.model is not None
        # a model converts yuv420p on its device; lanczos resizes planes as they are (PlanarLanczosRung)
        rungs = spec.ladder or []
        return Caps(
            needs_rgb=any(r in UPSCALE_MODEL_RUNGS for r in rungs),
            resizes=True,
            model_kind="sr" if model else None,
            device_frames=model,
            yuv_on_device=model,
        )

    def __init__(self, spec: UpscaleStage, context: StageInput) -> None:
        super().__init__(spec, context)
        self.size_in = (context.width, context.height)
        self.size_out = target_size(spec, context.width, context.height)
        self.keep_on_device = context.keep_on_device
        assert spec.ladder is not None
        self.yuv = None  # 4:2:0 frames in and out (see Caps.yuv_on_device)
        depth = DEVICE_YUV.get(context.pix_fmt)
        if depth is not None and context.colour is not None:
            from batch.media.yuv_rgb import for_plan
            from batch.models.device_worker import Yuv420Frames

            conv = for_plan(context.colour, depth)
            self.yuv = (Yuv420Frames(conv, *self.size_in), Yuv420Frames(conv, *self.size_out))
        rungs = [
            (name, functools.partial(self._model, name) if name in UPSCALE_MODEL_RUNGS else self._lanczos)
            for name in spec.ladder
        ]
        self.ladder_names = list(spec.ladder)
        self.ladder: Ladder[UpscaleRung] = Ladder(
            "upscale", rungs, total=context.total_frames, deadline=context.deadline
        )
        self.frames = 0
        self.unit = spec.batch if spec.model is not None else 1  # frames per unit of ladder work

    def _lanczos(self) -> UpscaleRung:
        from batch.stages.lanczos import LanczosRung, PlanarLanczosRung

        if FrameLayout(self.context.pix_fmt, 2, 2).packed:
            return LanczosRung(self.dtype)
        # the source's planes (or yuv420p for a model)
        return PlanarLanczosRung(self.context.pix_fmt, self.size_in, self.context.chroma_location)

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
        from batch.stages.frames import OneBehind

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

    def graph_filter(self) -> str | None:
        """zimg's Lanczos (``zscale``), what :class:`PlanarLanczosRung` makes of the same planes within a
        code (tested), for a ladder without a model; the frames' own siting and range ride along."""
        if any(r in UPSCALE_MODEL_RUNGS for r in self.ladder_names):
            return None
        if self.size_out == self.size_in:
            return "null"  # (the rung hands such frames on as they are)
        return f"zscale=w={self.size_out[0]}:h={self.size_out[1]}:filter=lanczos"

    def graph_pace(self, frames: int, seconds: float) -> None:
        self.ladder.paced_outside(frames, seconds)

    def ran_in_graph(self, frames: int) -> None:
        self.frames = frames
        self.ladder.ran_outside(frames, InGraph(self.graph_filter() or ""))

    def _hand_on(self, frames: list[Frame]) -> Iterator[Frame]:
        from batch.stages.frames import as_numpy

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
