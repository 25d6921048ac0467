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
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import PurePosixPath
from typing import Any, Literal, get_args

from batch.config_loader import load_config_text
from batch.config_rules import (
    BAD,
    Invalid,
    Loc,
    Problems,
    Record,
    Rule,
    boolean,
    choice,
    converted,
    describe_loc,
    field,
    integer,
    list_of,
    number,
    optional,
    tagged,
    text,
    then,
    tuple_of,
)
from batch.contracts import JOB_ID_PATTERN
from batch.encoder_formats import PIX_FMT_CHOICES, PixFmtChoice, unsupported
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


def _ratio_within(top: int) -> Rule:
    """An exact rational in (0, top]."""

    def check(v: Fraction) -> Fraction:
        if not (0 < v <= top):
            raise ValueError(f"must be greater than 0 and at most {top}")
        return v

    return then(converted(_to_fraction), check)


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
    scheme, _, _ = _storage_url(url)
    # a folder as the runner tells one: the whole URL ends in "/" (https://h/v/?id=1 is a file endpoint)
    if scheme in ("http", "https") and url.endswith("/"):
        raise ValueError(
            "an http(s) input cannot be a folder: HTTP has no listing; give each video's URL, or the "
            "folder as s3://, b2:// or a path"
        )
    return url


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


def _dump_model(ref: WeightsRef | None) -> Any:
    """A registry name as given; a URL without its query (a presigned signature) beside its checksum."""
    from batch.storage.urls import redact_url

    if ref is None:
        return None
    return ref.name if not ref.name.startswith("url:") else {"url": redact_url(ref.url), "sha256": ref.sha256}


def _weights(kind: Kind) -> Rule:
    return converted(_model_parser(kind))


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
_PRECISION = choice(*get_args(Precision))
_COMPILE = choice(*get_args(CompileMode))


def _check_flow_scale(value: float) -> float:
    if value not in FLOW_SCALES:
        raise ValueError(f"flow_scale must be one of {', '.join(map(str, FLOW_SCALES))}")
    return float(value)


def _default_ladder(model: WeightsRef | None, rungs: tuple[str, ...]) -> list[str]:
    return [r for r in rungs if (model is not None and r in (RIFE, SR_MODEL)) or r not in _MODEL_RUNGS]


def _ladder(known: tuple[str, ...]) -> Rule:
    def check(rungs: list[str]) -> list[str]:
        if not rungs:
            raise ValueError("a ladder needs at least one rung")
        unknown = [r for r in rungs if r not in known]
        if unknown:
            raise ValueError(f"unknown rung(s) {unknown}; known: {list(known)}")
        if len(set(rungs)) != len(rungs):
            raise ValueError(f"a rung is named twice in {rungs}; name each once")
        return rungs

    return then(list_of(text()), check)


class _WithLadder(Record):
    """A stage whose ladder defaults from its model; a model rung without a model is an error."""

    RUNGS: tuple[str, ...] = ()
    model: WeightsRef | None
    ladder: list[str] | None

    def _fill_ladder(self) -> None:
        if self.ladder is None:
            self._set("ladder", _default_ladder(self.model, self.RUNGS))
        elif self.model is None and any(r in _MODEL_RUNGS for r in self.ladder):
            raise ValueError("the ladder names a model rung but no model is given; add model: <name>")


class InterpolateStage(_WithLadder):
    """Raise the frame rate by ``factor`` or to ``fps``."""

    RUNGS = INTERPOLATE_RUNGS
    stage: Literal["interpolate"] = field(choice("interpolate"), "interpolate")
    factor: Fraction | None = field(optional(_ratio_within(32)), None)
    fps: Fraction | None = field(optional(_ratio_within(1000)), None)
    model: WeightsRef | None = field(optional(_weights("rife")), None, dump=_dump_model)
    # default: [rife, blend, duplicate] with a model, else [blend, duplicate]
    ladder: list[str] | None = field(optional(_ladder(INTERPOLATE_RUNGS)), None)
    batch: int = field(integer(ge=1, le=256), 8)  # frame pairs per model call; halved on out-of-memory
    precision: Precision = field(_PRECISION, "auto")  # auto: fp16 on CUDA, fp32 on the CPU
    # torch.compile the model (reduce-overhead: CUDA graphs); eager if it fails
    compile: CompileMode = field(_COMPILE, "none")
    flow_scale: float = field(then(number(), _check_flow_scale), 1.0)  # 0.5 for 4K: flow at half resolution
    # cut score above: duplicate, not morph
    scene_threshold: float | None = field(optional(number(gt=0, le=1)), 0.3)
    dedupe: bool = field(boolean(), False)  # drop held (repeated) frames before interpolating: for animation
    dedupe_threshold: float = field(number(ge=0), 0.5)  # mean abs luma difference at most: a held frame

    def validate(self) -> None:
        if (self.factor is None) == (self.fps is None):
            raise ValueError("give exactly one of factor (e.g. 2) or fps (e.g. 60)")
        self._fill_ladder()


_WHOLE = integer()


def _tile(value: Any, loc: Loc, problems: Problems) -> Any:
    """``auto``, or a side of 32 to 4096 pixels (one message for both ways of getting it wrong)."""
    if isinstance(value, str) and value == "auto":
        return value
    n = _WHOLE(value, loc, Problems())  # its own complaint gives way to the one below
    if n is BAD or not 32 <= n <= 4096:
        return problems.add(loc, "must be auto or between 32 and 4096")
    return n


MAX_SIDE = 16384  # the largest frame side a stage may make (x264's own limit; 805 MB a frame as RGB)


class UpscaleStage(_WithLadder):
    """Resize by ``scale`` or to ``width``/``height`` (one given keeps the aspect)."""

    RUNGS = UPSCALE_RUNGS
    stage: Literal["upscale"] = field(choice("upscale"), "upscale")
    scale: Fraction | None = field(optional(_ratio_within(16)), None)
    width: int | None = field(optional(integer(gt=0, le=MAX_SIDE)), None)
    height: int | None = field(optional(integer(gt=0, le=MAX_SIDE)), None)
    model: WeightsRef | None = field(optional(_weights("sr")), None, dump=_dump_model)
    # default: [model, lanczos] with a model, else [lanczos]
    ladder: list[str] | None = field(optional(_ladder(UPSCALE_RUNGS)), None)
    # auto: fp16 (or bf16) on CUDA where the model supports it
    precision: Precision = field(_PRECISION, "auto")
    compile: CompileMode = field(_COMPILE, "none")  # torch.compile the model; eager if it fails
    batch: int = field(integer(ge=1, le=64), 4)  # frames per model call; halved on out-of-memory, then tiles
    # tile side in input pixels; auto: the whole frame, halved on out-of-memory
    tile: int | Literal["auto"] = field(_tile, "auto")
    tile_overlap: int = field(integer(ge=0, le=128), 16)  # context pixels around each tile

    def validate(self) -> None:
        by_size = self.width is not None or self.height is not None
        if (self.scale is None) == (not by_size):
            raise ValueError("give either scale (e.g. 2) or width and/or height, not both")
        self._fill_ladder()


class AnalyzeStage(Record):
    """Frame quality metrics to metrics.parquet; frames pass on unchanged."""

    stage: Literal["analyze"] = field(choice("analyze"), "analyze")
    blur_threshold: float = field(number(ge=0), 0.01)  # relative sharpness below: blurry
    dark_threshold: float = field(number(ge=0, le=255), 40.0)  # mean luma below: underexposed
    duplicate_distance: int = field(integer(ge=0, le=64), 2)  # pHash Hamming distance for duplicates
    duplicate_motion: float = field(number(ge=0), 1.0)  # ...and at most this much motion
    idle_motion: float = field(number(ge=0), 0.5)  # mean abs luma difference below: still
    idle_s: float = field(number(gt=0), 1.0)  # still for at least this long: idle
    cut_threshold: float = field(number(gt=0, le=1), 0.5)  # histogram distance above: scene cut


SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER, SAM2_CPU = "cuda", "cuda-offload", "smaller", "cpu"
SEGMENT_RUNGS = (SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER, SAM2_CPU)
INT32_MAX = 2**31 - 1


class SegmentObject(Record):
    """One object to track: points with labels and/or a box, on a given frame."""

    # both are int32 columns in masks.parquet: a larger one would fail after the GPU work
    id: int = field(integer(ge=0, le=INT32_MAX))
    frame: int = field(integer(ge=0, le=INT32_MAX), 0)  # source frame index the prompt is on
    points: list[tuple[float, float]] = field(list_of(tuple_of(number(), 2)), factory=list)  # pixels (x, y)
    labels: list[Literal[0, 1]] = field(list_of(choice(0, 1)), factory=list)  # 1 foreground, 0 background
    # pixels x0, y0, x1, y1
    box: tuple[float, float, float, float] | None = field(optional(tuple_of(number(), 4)), None)

    def validate(self) -> None:
        if not self.points and self.box is None:
            raise ValueError("give points (with labels) and/or a box")
        if len(self.points) != len(self.labels):
            raise ValueError(
                f"{len(self.points)} point(s) but {len(self.labels)} label(s); give one label each"
            )
        if self.box is not None and not (self.box[0] < self.box[2] and self.box[1] < self.box[3]):
            raise ValueError("box must be [x0, y0, x1, y1] with x0 < x1 and y0 < y1")


def _unique_ids(objects: list[SegmentObject]) -> list[SegmentObject]:
    ids = [o.id for o in objects]
    if len(set(ids)) != len(ids):
        raise ValueError("object ids must be unique")
    return objects


class SegmentStage(Record):
    """SAM2 video segmentation to masks.parquet; frames pass on unchanged."""

    stage: Literal["segment"] = field(choice("segment"), "segment")
    model: WeightsRef = field(_weights("sam2"), "sam2.1-hiera-tiny", parse_default=True, dump=_dump_model)
    # the "smaller" rung's model
    smaller_model: WeightsRef | None = field(optional(_weights("sam2")), None, dump=_dump_model)
    objects: list[SegmentObject] = field(then(list_of(SegmentObject.rule, min_length=1), _unique_ids))
    window: int = field(integer(ge=2, le=4096), 64)  # frames SAM2 holds at once
    overlay: bool = field(boolean(), False)  # also write overlay.mp4 with the masks drawn
    ladder: list[str] = field(_ladder(SEGMENT_RUNGS), factory=lambda: [SAM2_CUDA, SAM2_OFFLOAD, SAM2_SMALLER])

    def validate(self) -> None:
        if SAM2_SMALLER in self.ladder and self.smaller_model is None:
            self._set("ladder", [r for r in self.ladder if r != SAM2_SMALLER])
            if not self.ladder:
                raise ValueError("the ladder's only rung is smaller but no smaller_model is given")


def _even(v: int) -> int:
    if v % 2:
        raise ValueError(
            f"must be even for 4:2:0 video (colour is stored at half resolution), got {v}; "
            f"use {v - 1} or {v + 1}"
        )
    return v


def _crop_size(v: int) -> int:
    if v < 2:
        raise ValueError(f"must be at least 2 pixels, got {v}; give the size of the window to keep")
    return _even(v)


def _crop_offset(v: int) -> int:
    if v < 0:
        raise ValueError(f"must be 0 or more, got {v}; it is the window's offset from the top left")
    return _even(v)


class CropStage(Record):
    """Keep the ``width`` x ``height`` window at (``x``, ``y``) of each frame.

    Every number is even: 4:2:0 video stores colour at half resolution, so an
    odd size or offset cannot be cut exactly. Whether the window fits is
    checked when the frame size it receives is known (see batch.stages.crop).
    """

    stage: Literal["crop"] = field(choice("crop"), "crop")
    width: int = field(then(integer(strict=True), _crop_size))
    height: int = field(then(integer(strict=True), _crop_size))
    x: int = field(then(integer(strict=True), _crop_offset), 0)
    y: int = field(then(integer(strict=True), _crop_offset), 0)


Stage = InterpolateStage | UpscaleStage | AnalyzeStage | SegmentStage | CropStage
STAGE_TYPES: tuple[type[Record], ...] = get_args(Stage)  # one list: adding a stage to the union is enough
STAGE_NAMES = tuple(str(t.field_named("stage").default) for t in STAGE_TYPES)
_UNKNOWN_STAGE = (
    "each stage is a one-key mapping such as '- interpolate: {factor: 2}'; "
    f"known stages: {list(STAGE_NAMES)}"
)


def _one_key_mappings(raw: Any) -> Any:
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


_STAGE = tagged("stage", dict(zip(STAGE_NAMES, STAGE_TYPES, strict=True)), unknown=_UNKNOWN_STAGE)
_STAGES = list_of(_STAGE)


def _stages(value: Any, loc: Loc, problems: Problems) -> Any:
    return _STAGES(_one_key_mappings(value), loc, problems)


# --- the rest ----------------------------------------------------------------------

Codec = Literal["auto", "libx264", "libx265", "h264_nvenc", "hevc_nvenc", "ffv1", "prores_ks", "libvpx-vp9"]
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"
]
CODECS: tuple[str, ...] = get_args(Codec)
PRESETS: tuple[str, ...] = get_args(Preset)
_ACTIONS = ("stop", "destroy", "keep")


class EncodeConfig(Record):
    codec: Codec = field(choice(*CODECS), "auto")
    crf: int = field(integer(ge=0, le=51), 18)
    preset: Preset = field(choice(*PRESETS), "medium")
    container: Literal["mp4", "mkv", "mov"] = field(choice("mp4", "mkv", "mov"), "mp4")
    # source: the source's bit depth, chroma and alpha where the codec holds them (steps down recorded)
    pix_fmt: PixFmtChoice = field(choice(*PIX_FMT_CHOICES), "source")
    # Without NVENC, when the first chunks show the encoder holding the stages back
    # (batch.job.encode_pace): more chunk encoders in parallel (the output's bits do not change) ...
    auto_workers: bool = field(boolean(strict=False), True)
    # ... and, when the cores cannot keep up even so, a faster preset. None: only when the config
    # does not set encode.preset (a preset the user wrote is never changed unless this is true).
    auto_preset: bool | None = field(optional(boolean(strict=False)), None)
    # A model stage (rife, sr) given yuv420p or yuv420p10le converts it to RGB on its device and back, so the
    # pipes carry half the bytes and the CPU converts nothing (batch.media.pixel_plan). None: when
    # this machine has a GPU; true: also on the CPU (torch); false: never (RGB through the pipes).
    colour_on_device: bool | None = field(optional(boolean(strict=False)), None)

    @property
    def preset_may_change(self) -> bool:
        if self.auto_preset is None:
            return "preset" not in self.given
        return self.auto_preset

    def validate(self) -> None:
        if self.codec == "ffv1" and self.container != "mkv":
            raise ValueError("codec ffv1 needs container: mkv")
        if self.codec == "prores_ks" and self.container == "mp4":
            raise ValueError("codec prores_ks needs container: mov (or mkv)")
        if self.codec == "libvpx-vp9" and self.container == "mov":
            raise ValueError("codec libvpx-vp9 needs container: mkv (or mp4, which drops alpha)")
        problem = unsupported(self.codec, self.pix_fmt)
        if problem:
            raise ValueError(problem)


class InstanceConfig(Record):
    provider: str = field(choice(*PROVIDERS), "auto")  # the providers registry's names
    on_exit: Literal["stop", "destroy", "keep"] | None = field(optional(choice(*_ACTIONS)), None)
    on_success: Literal["stop", "destroy", "keep"] = field(choice(*_ACTIONS), "destroy")
    on_failure: Literal["stop", "destroy", "keep"] = field(choice(*_ACTIONS), "stop")
    command: str | None = field(optional(text()), None)

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``on_exit`` is shorthand for the same action on success and failure."""
        if data.get("on_exit"):
            data = {"on_success": data["on_exit"], "on_failure": data["on_exit"], **data}
        return data


def _beats_within_stall(beat: float, before: Mapping[str, Any]) -> float:
    """The watchdog calls a job hung after ``stall_s`` without a beat.

    A beat is written, then uploaded, in one thread: one slow upload makes
    the next beat late by up to a period. So two periods must fit in
    ``stall_s``, or a healthy job is killed (and billed for nothing).
    """
    stall = before.get("stall_s")
    if stall is not None and 2 * beat > stall:
        raise ValueError(
            f"heartbeat_s ({beat:g}) must be at most half of stall_s ({stall:g}), or the watchdog "
            "takes a late beat for a hung job; lower heartbeat_s or raise stall_s"
        )
    return beat


class Limits(Record):
    # bounded: the watchdog's deadlines are what ends the billing (30 days; a stall of a day)
    max_runtime_s: float = field(number(gt=0, le=30 * 86400), 21600.0)
    stall_s: float = field(number(gt=0, le=86400), 900.0)
    chunk_s: float = field(number(gt=0), 30.0)
    heartbeat_s: float = field(number(gt=0), 5.0, check=_beats_within_stall)


class WatchdogConfig(Record):
    """How the watchdog confirms the upload before it shuts the instance down."""

    confirm: int = field(integer(ge=1, le=100), 3)
    interval_s: float = field(number(gt=0, le=3600), 5.0)
    # both bounded so the watchdog always ends well inside PID 1's hour (WATCHDOG_FINISH_S)
    upload_timeout_s: float = field(number(gt=0, le=900), 120.0)
    # how long to keep retrying the stop/destroy
    shutdown_budget_s: float = field(number(gt=0, le=1800), 900.0)


def _http_url(v: str) -> str:
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


class StorageConfig(Record):
    """Non-secret store settings; keys always come from the environment."""

    endpoint_url: str | None = field(optional(then(text(), _http_url)), None)
    region: str | None = field(optional(text()), None)


def _output_is_prefix(v: str, before: Mapping[str, Any]) -> str:
    if not v.strip():
        raise ValueError("output must be a storage prefix such as s3://bucket/out/")
    if v.lower().startswith(("http://", "https://")):
        raise ValueError("output cannot be an http(s) URL: HTTP is read-only; use s3://, b2:// or a path")
    _storage_url(v)
    v = v if v.endswith("/") else v + "/"
    from batch.storage.urls import redact_url  # an input's presigned query stays out of the message

    # inputs is declared before output, so it is here when it was valid
    encode = before.get("encode")
    container = encode.container if isinstance(encode, EncodeConfig) else "mp4"
    for i, url in enumerate(before.get("inputs") or []):
        shown = redact_url(url)
        if url.endswith("/") and _overlap(url, v):
            raise ValueError(
                f"output {v} overlaps the input prefix inputs.{i} ({shown}): a rerun would read its "
                "own outputs as inputs; write outputs to a prefix outside every input prefix"
            )
        if not url.endswith("/") and _overlap(url, v) and len(_location(v)[2]) >= len(_location(url)[2]):
            raise ValueError(
                f"output {v} is the input file inputs.{i} ({shown}) or lies under it: write outputs to a "
                "folder"
            )
        if not url.endswith("/") and _location(url) == _location(_video_output(v, url, container)):
            raise ValueError(
                f"inputs.{i} ({shown}) is where its own output would be written "
                f"({v}<name>/<name>.{container}): the run would replace the source; write outputs to another "
                "prefix"
            )
    return v


def _video_output(output: str, url: str, container: str) -> str:
    """Where the runner writes ``url``'s video (the runner's stem, without its -2 suffixes)."""
    from batch.storage.urls import join_url, url_stem

    stem = url_stem(url)
    return join_url(output, stem, f"{stem}.{container}")


class JobConfig(Record):
    job_id: str | None = field(optional(text(pattern=JOB_ID_PATTERN.pattern)), None)  # PID 1's rule too
    inputs: list[str] = field(list_of(then(text(), _check_input_url), min_length=1))
    stages: list[Stage] = field(_stages, factory=list)
    encode: EncodeConfig = field(EncodeConfig.rule, factory=EncodeConfig)
    output: str = field(text(), check=_output_is_prefix)
    instance: InstanceConfig = field(InstanceConfig.rule, factory=InstanceConfig)
    limits: Limits = field(Limits.rule, factory=Limits)
    watchdog: WatchdogConfig = field(WatchdogConfig.rule, factory=WatchdogConfig)
    storage: StorageConfig = field(StorageConfig.rule, factory=StorageConfig)

    keep_parts: bool = field(boolean(), False)  # set as output: {url: ..., keep_parts: true}

    @classmethod
    def prepare(cls, data: dict[str, Any]) -> dict[str, Any]:
        """``output`` may be a URL or ``{url: ..., keep_parts: bool}``."""
        if isinstance(data.get("output"), dict):
            out = dict(data["output"])
            unknown = set(out) - {"url", "keep_parts"}
            if unknown:
                raise ValueError(f"output: unknown key(s) {sorted(unknown)}; known: url, keep_parts")
            data = {**data, "output": out.get("url", ""), "keep_parts": out.get("keep_parts", False)}
        return data


def parse_config(text: str, *, source: str = "<config>") -> JobConfig:
    """Parse YAML or JSON text into a JobConfig. Raises ConfigError listing every problem."""
    data = load_config_text(text, source=source)  # YAML is a superset of JSON; bounded
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source} must be a mapping with at least 'inputs' and 'output'",
            hint="see configs/demo.yaml for the shape",
        )
    try:
        cfg = JobConfig.parse(data)
    except Invalid as e:
        output_mapping = isinstance(data.get("output"), dict)
        problems = [_describe(loc, msg, output_mapping=output_mapping) for loc, msg in e.problems]
        raise ConfigError(
            f"config {source} has {len(problems)} problem(s):",
            problems=problems,
            hint="correct the fields listed; docs/config.md describes each",
        ) from None
    if cfg.job_id is None:
        cfg = cfg.replace(job_id=default_job_id(data))
    return cfg


def _describe(loc: Loc, msg: str, *, output_mapping: bool = False) -> str:
    if output_mapping and loc[:1] == ("keep_parts",):
        loc = ("output", *loc)  # written as output: {url: ..., keep_parts: ...}
    return f"{describe_loc(loc)}: {msg}"


def resolved(cfg: JobConfig) -> dict[str, Any]:
    """The config with every default filled in, as plain JSON data.

    URLs are redacted (user info and query strings such as presigned
    signatures removed): this copy goes into manifests and logs.
    """
    from batch.storage.urls import redact_url

    data = cfg.to_data()
    data["inputs"] = [redact_url(u) for u in data["inputs"]]
    data["output"] = redact_url(data["output"])
    if data["storage"]["endpoint_url"]:
        data["storage"]["endpoint_url"] = redact_url(data["storage"]["endpoint_url"])
    if data["instance"]["command"]:  # may carry a token; say only that it is set
        data["instance"]["command"] = f"<set, {len(data['instance']['command'])} characters>"
    return data
