"""The stage interface: one constructor signature, capabilities as data.

Every stage is built as ``StageClass(spec, context)``: ``spec`` is its
validated config model (``batch.config``), ``context`` a :class:`StageInput`
saying what the stage receives (frame size, rate, frame count, the chunk's
frame range, where its files go, the job's deadline). What a stage can and
cannot do is declared as a :class:`Caps` value, so the pipeline, the chunk
planner and the runner ask the registry (``batch.stages.registry``) instead
of naming stage classes.

This module imports nothing heavy (no torch, no PIL): the registry and the
config check read it.
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar

from batch.config_rules import Record

if TYPE_CHECKING:
    from batch.media.colour import ColourPlan

# numpy uint8 or uint16 (packed RGB (H, W, C) or flat planar YUV; StageInput.pix_fmt says which),
# or a device tensor between model stages
Frame = Any
ModelKind = Literal["rife", "sr", "sam2"]
Spec = TypeVar("Spec", bound=Record)


@dataclass(frozen=True)
class StageFile:
    """A file a stage writes to its artifacts folder; the runner uploads it as ``<output>/<stem>/<name>``."""

    kind: str  # the manifest's output kind ("metrics", "masks", "overlay")
    name: str  # the file name, in the artifacts folder and in the bucket
    content_type: str


@dataclass(frozen=True)
class Caps:
    """What a stage does to the stream, as data (for one spec: see :meth:`Stage.caps_for`)."""

    # makes more or fewer frames than it receives; in a chunk that is not the last it is given the
    # next chunk's first frame as a lookahead and makes only the positions before StageInput.stop
    changes_rate: bool = False
    spans_input: bool = False  # needs the whole input in one pass: it cannot be chunked
    needs_rgb: bool = False  # False: works on the source's planar yuv420p as well as on RGB
    # makes frames of another size (crop's are always even); planes travel only where that size fits the
    # source's chroma and there is no alpha (a resize of alpha is premultiplied, in RGB)
    resizes: bool = False
    model_kind: ModelKind | None = None  # the weights kind it loads, if any
    device_frames: bool = False  # takes and gives device tensors, so a model chain stays on the device
    # with yuv420p / yuv420p10le frames, its model rungs convert to RGB and back on their device (the RGB the
    # model needs costs no CPU); its other rungs work on the planes or convert in-process (lanczos)
    yuv_on_device: bool = False
    files: tuple[StageFile, ...] = ()  # the artifact files it may write (uploaded only if written)


@dataclass(frozen=True)
class StageInput:
    """What one stage receives: the frames' size and rate, and where it runs.

    ``first`` and ``stop`` describe a chunk: ``first`` is the source index of
    its first frame; ``stop`` (None for the last chunk or a single pass) is the
    source index where the chunk ends, whose frame may arrive as a lookahead.
    ``deadline`` is the ``time.monotonic()`` by which the job must be done
    (None: no deadline); ladders refuse rungs estimated to run past it.
    """

    width: int
    height: int
    fps: Fraction
    total_frames: int = 0  # frames the stage will receive in all (0: unknown)
    first: int = 0
    stop: int | None = None
    keep_on_device: bool = False  # the next stage is a model stage on the same device
    artifacts: Path | None = None  # where its files go (None: write none)
    deadline: float | None = None
    pix_fmt: str = "rgb24"  # how frames travel (batch.media.layout): packed RGB or planar YUV, 8/16 bits
    colour: ColourPlan | None = None  # the source's matrix and range, for conversions on a device
    chroma_location: str | None = None  # where the source's subsampled chroma sits (ffprobe's; None: left)
    sar: Fraction | None = None  # the frames' pixel aspect (sample aspect ratio); None: square


class Stage(ABC, Generic[Spec]):
    """One step of the chain. Subclasses declare ``name`` and ``caps`` and keep this constructor."""

    name: ClassVar[str]
    caps: ClassVar[Caps] = Caps()
    # Whether the frames out show the whole picture received, resampled to ``size_out`` (its display
    # shape kept), or a part of it pixel for pixel (a crop: the pixels keep their shape).
    resamples: ClassVar[bool] = True

    def __init__(self, spec: Spec, context: StageInput) -> None:
        """Raises ConfigError when the spec cannot apply to what it receives (e.g. a crop too large)."""
        self.config = spec
        self.context = context
        self.size_out: tuple[int, int] = (context.width, context.height)  # what the next stage receives
        self.fps_out: Fraction = context.fps

    @classmethod
    def caps_for(cls, spec: Spec) -> Caps:
        """This spec's capabilities; a stage whose caps depend on its config overrides it."""
        return cls.caps

    @property
    def needs_rgb(self) -> bool:
        return self.caps_for(self.config).needs_rgb

    @property
    def sar_out(self) -> Fraction | None:
        """The pixel aspect of the frames out; None: square. Anamorphic frames (a DVD's 720x480 shown
        at 16:9) resampled to another shape keep the picture's display shape: the pixels stretch by
        what the sizes do, so 720x480 at 32:27 made 1920x1080 has square pixels."""
        sar = self.context.sar
        if sar is None or not self.resamples:
            return sar
        w_out, h_out = self.size_out
        sar *= Fraction(self.context.width * h_out, self.context.height * w_out)
        return None if sar == 1 else sar

    @functools.cached_property
    def dtype(self) -> Any:
        """The numpy dtype of the frames received (uint8, or uint16 past 8 bits): read where frames
        flow, so that planning a stage that runs in the transcode's graph imports no numpy."""
        from batch.media.layout import FrameLayout

        return FrameLayout(self.context.pix_fmt, 2, 2).dtype

    def expected_frames(self, frames_in: int) -> int:
        """Frames out for ``frames_in`` frames in; a stage that changes the rate overrides it."""
        return frames_in

    @abstractmethod
    def run(self, frames: Iterator[Frame]) -> Iterator[Frame]:
        """The stage's output frames, streamed."""

    def graph_filter(self) -> str | None:
        """An ffmpeg filter that makes this stage's frames from the source's own planes, or None.

        A chain whose every stage has one runs inside the transcode (batch.media.direct): no frames
        through the pipes. Only for stages whose result the filter gives within a code value (tested).
        """
        return None

    def graph_pace(self, frames: int, seconds: float) -> None:
        """The graph has made ``frames`` in ``seconds`` so far: a stage with a run-time estimate checks it
        (raises StageError past the job's deadline, as its ladder would)."""

    def ran_in_graph(self, frames: int) -> None:
        """Record for :meth:`report` that ffmpeg's graph made this stage's ``frames`` (graph_filter)."""
        raise NotImplementedError(f"stage {self.name} has no graph filter")

    @abstractmethod
    def report(self) -> dict[str, Any]:
        """The stage's entry in the manifest."""


def output_count(frames_in: int, ratio: Fraction) -> int:
    """ceil(frames_in * ratio): the output positions j / ratio that lie in [0, frames_in)."""
    return math.ceil(frames_in * ratio)
