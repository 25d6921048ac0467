"""The job config: validated once at the boundary, typed everywhere after.

A config is YAML or JSON, loaded from any storage URL. Unknown keys are
rejected and every problem is reported at once with its field path, e.g.
``stages.0.interpolate.factor: Input should be greater than 0``.

The text is read by :mod:`batch.config_loader` (size, nesting and alias
bounds), then validated here so that a config that passes ``--validate`` can
run: every URL has a scheme a store serves, the output prefix does not
overlap an input prefix, numbers are finite, booleans are booleans and the
timers agree with each other.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from batch.config_loader import load_config_text
from batch.encoder_formats import PixFmtChoice, unsupported
from batch.errors import BatchError, ConfigError
from batch.job_id import default_job_id
from batch.providers.registry import PROVIDERS
from batch.weights.registry import Kind, WeightsRef, from_url, lookup


def _to_fraction(value: Any) -> Fraction:
    """Accept 2, 2.5, "60000/1001", "29.97" as an exact rational."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a ratio like 60000/1001")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number (.inf and .nan are not allowed)")
        return Fraction(str(value))
    if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?(\s*/\s*\d+)?\s*", value):
        try:
            return Fraction(value.replace(" ", ""))
        except ZeroDivisionError as e:
            raise ValueError("the denominator must not be zero") from e
    raise ValueError("expected a number or a ratio like 60000/1001")


Rational = Annotated[
    Fraction,
    BeforeValidator(_to_fraction),
    PlainSerializer(lambda f: str(f), return_type=str),
]


class _Strict(BaseModel):
    # allow_inf_nan=False: ``.inf`` / ``.nan`` in any float field is an error (a
    # stall_s of .inf would mean the watchdog never stops a hung job)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --- URLs ------------------------------------------------------------------------------


def _storage_url(url: str) -> tuple[str, str, str]:
    """``(scheme, bucket, key)`` of a URL a store serves; ValueError (a config error) if none does."""
    from batch.storage.urls import parse_url  # no SDK imports

    try:
        return parse_url(url)
    except BatchError as e:
        raise ValueError(f"{e.message}; {e.hint}" if e.hint else e.message) from None


def _check_input_url(url: str) -> str:
    if not url.strip():
        raise ValueError("an input URL is empty")
    _storage_url(url)
    return url


InputUrl = Annotated[str, AfterValidator(_check_input_url)]


def _location(url: str) -> tuple[str, str, tuple[str, ...]]:
    """Where a prefix URL points, normalised for comparison: scheme, bucket, path segments."""
    scheme, bucket, key = _storage_url(url)
    if scheme == "file":  # relative paths are resolved against the working directory, as the runner does
        return scheme, bucket, PurePosixPath(os.path.abspath(key)).parts
    key = key.rstrip("/")
    return scheme, bucket, tuple(key.split("/")) if key else ()


def _overlap(a: str, b: str) -> bool:
    """Whether one prefix lies under the other (or they are the same)."""
    (sa, ba, ka), (sb, bb, kb) = _location(a), _location(b)
    n = min(len(ka), len(kb))
    return sa == sb and ba == bb and ka[:n] == kb[:n]


# --- stages --------------------------------------------------------------------------


def _model_parser(kind: Kind) -> Callable[[Any], WeightsRef]:
    """Parse a ``model:`` field: a registry name, or ``{url: ..., sha256: ...}``."""

    def parse(value: Any) -> WeightsRef:
        if isinstance(value, WeightsRef):
            return value
        if isinstance(value, str):
            return lookup(value, kind)
        if isinstance(value, dict):
            unknown = set(value) - {"url", "sha256"}
            if unknown or not isinstance(value.get("url"), str) or not isinstance(value.get("sha256"), str):
                raise ValueError("give a registry name, or a mapping with exactly url and sha256")
            _storage_url(value["url"])
            return from_url(value["url"], value["sha256"], kind)
        raise ValueError("give a registry name (e.g. rife-4.25) or {url: ..., sha256: ...}")

    return parse


def _dump_model(ref: WeightsRef) -> Any:
    """A registry name as given; a URL without its query (a presigned signature) beside its checksum."""
    from batch.storage.urls import redact_url

    return ref.name if not ref.name.startswith("url:") else {"url": redact_url(ref.url), "sha256": ref.sha256}


RifeModel = Annotated[WeightsRef, PlainValidator(_model_parser("rife")), PlainSerializer(_dump_model)]
SrModel = Annotated[WeightsRef, PlainValidator(_model_parser("sr")), PlainSerializer(_dump_model)]
Sam2Model = Annotated[WeightsRef, PlainValidator(_model_parser("sam2")), PlainSerializer(_dump_model)]

# Rungs, best first. "-cpu" rungs run the model on the CPU: hours for a long
# video, so they are only tried where the config's ladder names them.
# The stages match rung names against these constants, never against literals.
RIFE, RIFE_CPU, BLEND, DUPLICATE = "rife", "rife-cpu", "blend", "duplicate"
INTERPOLATE_RUNGS = (RIFE, RIFE_CPU, BLEND, DUPLICATE)
INTERPOLATE_MODEL_RUNGS = (RIFE, RIFE_CPU)
SR_MODEL, SR_MODEL_CPU, LANCZOS = "model", "model-cpu", "lanczos"
UPSCALE_RUNGS = (SR_MODEL, SR_MODEL_CPU, LANCZOS)
UPSCALE_MODEL_RUNGS = (SR_MODEL, SR_MODEL_CPU)
_MODEL_RUNGS = INTERPOLATE_MODEL_RUNGS + UPSCALE_MODEL_RUNGS
Precision = Literal["auto", "fp16", "bf16", "fp32"]
CompileMode = Literal["none", "default", "reduce-overhead", "max-autotune"]  # torch.compile modes
FLOW_SCALES = (0.25, 0.5, 1.0, 2.0, 4.0)


def _check_flow_scale(value: float) -> float:
    # Literal cannot hold floats for a type checker; the same rule as a validator
    if value not in FLOW_SCALES:
        raise ValueError(f"flow_scale must be one of {', '.join(map(str, FLOW_SCALES))}")
    return float(value)


FlowScale = Annotated[float, AfterValidator(_check_flow_scale)]


def _default_ladder(model: WeightsRef | None, rungs: tuple[str, ...]) -> list[str]:
    return [r for r in rungs if (model is not None and r in (RIFE, SR_MODEL)) or r not in _MODEL_RUNGS]


class InterpolateStage(_Strict):
    """Raise the frame rate by ``factor`` or to ``fps``."""

    stage: Literal["interpolate"] = "interpolate"
    factor: Rational | None = None
    fps: Rational | None = None
    model: RifeModel | None = None
    ladder: list[str] | None = None  # default: [rife, blend, duplicate] with a model, else [blend, duplicate]
    batch: int = Field(default=8, ge=1, le=256)  # frame pairs per model call; halved on out-of-memory
    precision: Precision = "auto"  # auto: fp16 on CUDA, fp32 on the CPU
    compile: CompileMode = "none"  # torch.compile the model (reduce-overhead: CUDA graphs); eager if it fails
    flow_scale: FlowScale = 1.0  # 0.5 for 4K: flow estimated at half resolution
    scene_threshold: float | None = Field(default=0.3, gt=0, le=1)  # cut score above: duplicate, not morph
    dedupe: StrictBool = False  # drop held (repeated) frames before interpolating: for animation
    dedupe_threshold: float = Field(default=0.5, ge=0)  # mean abs luma difference at most: a held frame

    @model_validator(mode="after")
    def _one_target(self) -> InterpolateStage:
        if (self.factor is None) == (self.fps is None):
            raise ValueError("give exactly one of factor (e.g. 2) or fps (e.g. 60)")
        return _fill_ladder(self, INTERPOLATE_RUNGS)

    @field_validator("factor")
    @classmethod
    def _factor_range(cls, v: Fraction | None) -> Fraction | None:
        if v is not None and not (0 < v <= 32):
            raise ValueError("must be greater than 0 and at most 32")
        return v

    @field_validator("fps")
    @classmethod
    def _fps_range(cls, v: Fraction | None) -> Fraction | None:
        if v is not None and not (0 < v <= 1000):
            raise ValueError("must be greater than 0 and at most 1000")
        return v

    @field_validator("ladder")
    @classmethod
    def _known_rungs(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_ladder(v, INTERPOLATE_RUNGS)


class UpscaleStage(_Strict):
    """Resize by ``scale`` or to ``width``/``height`` (one given keeps the aspect)."""

    stage: Literal["upscale"] = "upscale"
    scale: Rational | None = None
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    model: SrModel | None = None
    ladder: list[str] | None = None  # default: [model, lanczos] with a model, else [lanczos]
    precision: Precision = "auto"  # auto: fp16 (or bf16) on CUDA where the model supports it
    compile: CompileMode = "none"  # torch.compile the model (reduce-overhead: CUDA graphs); eager if it fails
    batch: int = Field(default=4, ge=1, le=64)  # frames per model call; halved on out-of-memory, then tiles
    tile: int | Literal["auto"] = "auto"  # tile side in input pixels; auto: whole frame, halved on OOM
    tile_overlap: int = Field(default=16, ge=0, le=128)  # context pixels around each tile

    @model_validator(mode="after")
    def _one_target(self) -> UpscaleStage:
        by_size = self.width is not None or self.height is not None
        if (self.scale is None) == (not by_size):
            raise ValueError("give either scale (e.g. 2) or width and/or height, not both")
        return _fill_ladder(self, UPSCALE_RUNGS)

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: Fraction | None) -> Fraction | None:
        if v is not None and not (0 < v <= 16):
            raise ValueError("must be greater than 0 and at most 16")
        return v

    @field_validator("tile")
    @classmethod
    def _tile_range(cls, v: int | str) -> int | str:
        if isinstance(v, int) and not 32 <= v <= 4096:
            raise ValueError("must be auto or between 32 and 4096")
        return v

    @field_validator("ladder")
    @classmethod
    def _known_rungs(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else _check_ladder(v, UPSCALE_RUNGS)


_WithLadder = TypeVar("_WithLadder", "InterpolateStage", "UpscaleStage")


def _fill_ladder(stage: _WithLadder, rungs: tuple[str, ...]) -> _WithLadder:
    """Default the ladder from the model; a model rung without a model is an error."""
    if stage.ladder is None:
        object.__setattr__(stage, "ladder", _default_ladder(stage.model, rungs))
    elif stage.model is None and any(r in _MODEL_RUNGS for r in stage.ladder):
        raise ValueError("the ladder names a model rung but no model is given; add model: <name>")
    return stage


def _check_ladder(rungs: list[str], known: tuple[str, ...]) -> list[str]:
    if not rungs:
        raise ValueError("a ladder needs at least one rung")
    unknown = [r for r in rungs if r not in known]
    if unknown:
        raise ValueError(f"unknown rung(s) {unknown}; known: {list(known)}")
    if len(set(rungs)) != len(rungs):
        raise ValueError(f"a rung is named twice in {rungs}; name each once")
    return rungs


class AnalyzeStage(_Strict):
    """Frame quality metrics to metrics.parquet; frames pass on unchanged."""

    stage: Literal["analyze"] = "analyze"
    blur_threshold: float = Field(default=0.01, ge=0)  # relative sharpness below: blurry
    dark_threshold: float = Field(default=40.0, ge=0, le=255)  # mean luma below: underexposed
    duplicate_distance: int = Field(default=2, ge=0, le=64)  # pHash Hamming distance for duplicates
    duplicate_motion: float = Field(default=1.0, ge=0)  # ...and at most this much motion
    idle_motion: float = Field(default=0.5, ge=0)  # mean abs luma difference below: still
    idle_s: float = Field(default=1.0, gt=0)  # still for at least this long: idle
    cut_threshold: float = Field(default=0.5, gt=0, le=1)  # histogram distance above: scene cut


SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER, SAM2_CPU = "cuda", "cuda-offload", "smaller", "cpu"
SEGMENT_RUNGS = (SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER, SAM2_CPU)
INT32_MAX = 2**31 - 1


class SegmentObject(_Strict):
    """One object to track: points with labels and/or a box, on a given frame."""

    # both are int32 columns in masks.parquet: a larger one would fail after the GPU work
    id: int = Field(ge=0, le=INT32_MAX)
    frame: int = Field(default=0, ge=0, le=INT32_MAX)  # source frame index the prompt is on
    points: list[tuple[float, float]] = Field(default_factory=list)  # pixels (x, y)
    labels: list[Literal[0, 1]] = Field(default_factory=list)  # 1 foreground, 0 background
    box: tuple[float, float, float, float] | None = None  # pixels x0, y0, x1, y1

    @model_validator(mode="after")
    def _prompt_given(self) -> SegmentObject:
        if not self.points and self.box is None:
            raise ValueError("give points (with labels) and/or a box")
        if len(self.points) != len(self.labels):
            raise ValueError(
                f"{len(self.points)} point(s) but {len(self.labels)} label(s); give one label each"
            )
        if self.box is not None and not (self.box[0] < self.box[2] and self.box[1] < self.box[3]):
            raise ValueError("box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")
        return self


class SegmentStage(_Strict):
    """SAM2 video segmentation to masks.parquet; frames pass on unchanged."""

    stage: Literal["segment"] = "segment"
    model: Sam2Model = Field(default="sam2.1-hiera-tiny", validate_default=True)
    smaller_model: Sam2Model | None = None  # the "smaller" rung's model
    objects: list[SegmentObject] = Field(min_length=1)
    window: int = Field(default=64, ge=2, le=4096)  # frames SAM2 holds at once
    overlay: StrictBool = False  # also write overlay.mp4 with the masks drawn
    ladder: list[str] = Field(default_factory=lambda: [SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER])

    @field_validator("ladder")
    @classmethod
    def _known_rungs(cls, v: list[str]) -> list[str]:
        return _check_ladder(v, SEGMENT_RUNGS)

    @field_validator("objects")
    @classmethod
    def _unique_ids(cls, v: list[SegmentObject]) -> list[SegmentObject]:
        ids = [o.id for o in v]
        if len(set(ids)) != len(ids):
            raise ValueError("object ids must be unique")
        return v

    @model_validator(mode="after")
    def _smaller_given(self) -> SegmentStage:
        if SAM2_SMALLER in self.ladder and self.smaller_model is None:
            object.__setattr__(self, "ladder", [r for r in self.ladder if r != SAM2_SMALLER])
            if not self.ladder:
                raise ValueError("the ladder's only rung is smaller but no smaller_model is given")
        return self


class CropStage(_Strict):
    """Keep the ``width`` x ``height`` window at (``x``, ``y``) of each frame.

    Every number is even: 4:2:0 video stores colour at half resolution, so an
    odd size or offset cannot be cut exactly. Whether the window fits is
    checked when the frame size it receives is known (see batch.stages.crop).
    """

    stage: Literal["crop"] = "crop"
    width: StrictInt
    height: StrictInt
    x: StrictInt = 0
    y: StrictInt = 0

    @field_validator("width", "height")
    @classmethod
    def _size(cls, v: int) -> int:
        if v < 2:
            raise ValueError(f"must be at least 2 pixels, got {v}; give the size of the window to keep")
        return _even(v)

    @field_validator("x", "y")
    @classmethod
    def _offset(cls, v: int) -> int:
        if v < 0:
            raise ValueError(f"must be 0 or more, got {v}; it is the window's offset from the top left")
        return _even(v)


def _even(v: int) -> int:
    if v % 2:
        raise ValueError(
            f"must be even for 4:2:0 video (colour is stored at half resolution), got {v}; "
            f"use {v - 1} or {v + 1}"
        )
    return v


Stage = Annotated[
    InterpolateStage | UpscaleStage | AnalyzeStage | SegmentStage | CropStage, Field(discriminator="stage")
]
STAGE_NAMES = tuple(m.model_fields["stage"].default for m in get_args(get_args(Stage)[0]))


# --- the rest ----------------------------------------------------------------------

Codec = Literal["auto", "libx264", "libx265", "h264_nvenc", "hevc_nvenc", "ffv1", "prores_ks", "libvpx-vp9"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
CODECS: tuple[str, ...] = get_args(Codec)
PRESETS: tuple[str, ...] = get_args(Preset)


class EncodeConfig(_Strict):
    codec: Codec = "auto"
    crf: int = Field(default=18, ge=0, le=51)
    preset: Preset = "medium"
    container: Literal["mp4", "mkv", "mov"] = "mp4"
    # source: the source's bit depth, chroma and alpha where the codec holds them (steps down recorded)
    pix_fmt: PixFmtChoice = "source"
    # Without NVENC, when the first chunks show the encoder holding the stages back
    # (batch.job.encode_pace): more chunk encoders in parallel (the output's bits do not change) ...
    auto_workers: bool = True
    # ... and, when the cores cannot keep up even so, a faster preset. None: only when the config
    # does not set encode.preset (a preset the user wrote is never changed unless this is true).
    auto_preset: bool | None = None
    # A model stage (rife) given 8-bit yuv420p converts it to RGB on its device and back, so the
    # pipes carry half the bytes and the CPU converts nothing (batch.media.pixel_plan). None: when
    # this machine has a GPU; true: also on the CPU (torch); false: never (RGB through the pipes).
    colour_on_device: bool | None = None

    @property
    def preset_may_change(self) -> bool:
        if self.auto_preset is None:
            return "preset" not in self.model_fields_set
        return self.auto_preset

    @model_validator(mode="after")
    def _container_fits(self) -> EncodeConfig:
        if self.codec == "ffv1" and self.container != "mkv":
            raise ValueError("codec ffv1 needs container: mkv")
        if self.codec == "prores_ks" and self.container == "mp4":
            raise ValueError("codec prores_ks needs container: mov (or mkv)")
        if self.codec == "libvpx-vp9" and self.container == "mov":
            raise ValueError("codec libvpx-vp9 needs container: mkv (or mp4, which drops alpha)")
        problem = unsupported(self.codec, self.pix_fmt)
        if problem:
            raise ValueError(problem)
        return self


class InstanceConfig(_Strict):
    provider: Literal[PROVIDERS] = "auto"  # type: ignore[valid-type]  # the registry's names
    on_exit: Literal["stop", "destroy", "keep"] | None = None
    on_success: Literal["stop", "destroy", "keep"] = "destroy"
    on_failure: Literal["stop", "destroy", "keep"] = "stop"
    command: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _on_exit_sets_both(cls, data: Any) -> Any:
        """``on_exit`` is shorthand for the same action on success and failure."""
        if isinstance(data, dict) and data.get("on_exit"):
            data = {"on_success": data["on_exit"], "on_failure": data["on_exit"], **data}
        return data


class Limits(_Strict):
    max_runtime_s: float = Field(default=21600, gt=0)
    stall_s: float = Field(default=900, gt=0)
    chunk_s: float = Field(default=30, gt=0)
    heartbeat_s: float = Field(default=5, gt=0)

    @field_validator("heartbeat_s")
    @classmethod
    def _beats_within_stall(cls, v: float, info: ValidationInfo) -> float:
        """The watchdog calls a job hung after ``stall_s`` without a beat.

        A beat is written, then uploaded, in one thread: one slow upload makes
        the next beat late by up to a period. So two periods must fit in
        ``stall_s``, or a healthy job is killed (and billed for nothing).
        """
        stall = info.data.get("stall_s")
        if stall is not None and 2 * v > stall:
            raise ValueError(
                f"heartbeat_s ({v:g}) must be at most half of stall_s ({stall:g}), or the watchdog "
                "takes a late beat for a hung job; lower heartbeat_s or raise stall_s"
            )
        return v


class WatchdogConfig(_Strict):
    """How the watchdog confirms the upload before it shuts the instance down."""

    confirm: int = Field(default=3, ge=1, le=100)
    interval_s: float = Field(default=5, gt=0, le=3600)
    # both bounded so the watchdog always ends well inside PID 1's hour (WATCHDOG_FINISH_S)
    upload_timeout_s: float = Field(default=120, gt=0, le=900)
    shutdown_budget_s: float = Field(default=900, gt=0, le=1800)  # how long to keep retrying the stop/destroy


class StorageConfig(_Strict):
    """Non-secret store settings; keys always come from the environment."""

    endpoint_url: str | None = None
    region: str | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _http_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        from urllib.parse import urlsplit

        hint = "give an http(s) URL with a host, e.g. https://s3.us-west-004.backblazeb2.com"
        try:
            parts = urlsplit(v)
            parts.port  # noqa: B018  (raises ValueError for a port that is not a number)
        except ValueError:
            raise ValueError(f"not a URL: {v!r}; {hint}") from None
        if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in v):
            raise ValueError(f"not an http(s) URL with a host: {v!r}; {hint}")
        return v


class JobConfig(_Strict):
    job_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    inputs: list[InputUrl] = Field(min_length=1)
    stages: list[Stage] = Field(default_factory=list)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    output: str
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    limits: Limits = Field(default_factory=Limits)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    keep_parts: StrictBool = False  # set as output: {url: ..., keep_parts: true}

    @model_validator(mode="before")
    @classmethod
    def _output_mapping(cls, data: Any) -> Any:
        """``output`` may be a URL or ``{url: ..., keep_parts: bool}``."""
        if isinstance(data, dict) and isinstance(data.get("output"), dict):
            out = dict(data["output"])
            unknown = set(out) - {"url", "keep_parts"}
            if unknown:
                raise ValueError(f"output: unknown key(s) {sorted(unknown)}; known: url, keep_parts")
            data = {**data, "output": out.get("url", ""), "keep_parts": out.get("keep_parts", False)}
        return data

    @field_validator("stages", mode="before")
    @classmethod
    def _one_key_mappings(cls, raw: Any) -> Any:
        """``- interpolate: {factor: 2}`` becomes ``{"stage": "interpolate", "factor": 2}``."""
        if not isinstance(raw, list):
            return raw
        out: list[Any] = []
        for item in raw:
            if isinstance(item, dict) and len(item) == 1 and "stage" not in item:
                ((name, params),) = item.items()
                params = {} if params is None else params
                if isinstance(params, dict):
                    item = {"stage": name, **params}
            out.append(item)
        return out

    @field_validator("output")
    @classmethod
    def _output_is_prefix(cls, v: str, info: ValidationInfo) -> str:
        if not v.strip():
            raise ValueError("output must be a storage prefix such as s3://bucket/out/")
        if v.lower().startswith(("http://", "https://")):
            raise ValueError("output cannot be an http(s) URL: HTTP is read-only; use s3://, b2:// or a path")
        _storage_url(v)
        v = v if v.endswith("/") else v + "/"
        # inputs is declared before output, so it is here when it was valid
        for i, url in enumerate(info.data.get("inputs") or []):
            if url.endswith("/") and _overlap(url, v):
                raise ValueError(
                    f"output {v} overlaps the input prefix inputs.{i} ({url}): a rerun would read its "
                    "own outputs as inputs; write outputs to a prefix outside every input prefix"
                )
        return v


def parse_config(text: str, *, source: str = "<config>") -> JobConfig:
    """Parse YAML or JSON text into a JobConfig. Raises ConfigError listing every problem."""
    data = load_config_text(text, source=source)  # YAML is a superset of JSON; bounded
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source} must be a mapping with at least 'inputs' and 'output'",
            hint="see configs/demo.yaml for the shape",
        )
    try:
        cfg = JobConfig.model_validate(data)
    except ValidationError as e:
        output_mapping = isinstance(data.get("output"), dict)
        problems = [_describe(err, output_mapping=output_mapping) for err in e.errors()]
        raise ConfigError(
            f"config {source} has {len(problems)} problem(s):",
            problems=problems,
            hint="correct the fields listed; docs/config.md describes each",
        ) from None
    if cfg.job_id is None:
        cfg = cfg.model_copy(update={"job_id": default_job_id(data)})
    return cfg


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _describe(err: Any, *, output_mapping: bool = False) -> str:
    parts = [str(p) for p in err["loc"]]
    if output_mapping and parts[:1] == ["keep_parts"]:
        parts = ["output", *parts]  # written as output: {url: ..., keep_parts: ...}
    loc = ".".join(parts) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not allowed here; check the spelling)"
    elif err["type"] in ("bool_type", "bool_parsing"):
        msg = f"must be true or false (a YAML boolean, without quotes), not {_short(err.get('input'))}"
    elif err["type"] == "finite_number":
        msg = "must be a finite number (.inf and .nan are not allowed)"
    elif err["type"] in ("union_tag_invalid", "union_tag_not_found"):
        msg = (
            "each stage is a one-key mapping such as '- interpolate: {factor: 2}'; "
            f"known stages: {list(STAGE_NAMES)}"
        )
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return f"{loc}: {msg}"


def resolved(cfg: JobConfig) -> dict[str, Any]:
    """The config with every default filled in, as plain JSON data.

    URLs are redacted (user info and query strings such as presigned
    signatures removed): this copy goes into manifests and logs.
    """
    from batch.storage.urls import redact_url

    data = cfg.model_dump(mode="json")
    data["inputs"] = [redact_url(u) for u in data["inputs"]]
    data["output"] = redact_url(data["output"])
    if data["storage"]["endpoint_url"]:
        data["storage"]["endpoint_url"] = redact_url(data["storage"]["endpoint_url"])
    if data["instance"]["command"]:  # may carry a token; say only that it is set
        data["instance"]["command"] = f"<set, {len(data['instance']['command'])} characters>"
    return data
