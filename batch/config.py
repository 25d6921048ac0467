"""The job config: validated once at the boundary, typed everywhere after.

A config is YAML or JSON, loaded from any storage URL. Unknown keys are
rejected and every problem is reported at once with its field path, e.g.
``stages.0.interpolate.factor: Input should be greater than 0``.
"""

from __future__ import annotations

import hashlib
import json
import re
from fractions import Fraction
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    field_validator,
    model_validator,
)

from batch.errors import ConfigError


def _to_fraction(value: Any) -> Fraction:
    """Accept 2, 2.5, "60000/1001", "29.97" as an exact rational."""
    if isinstance(value, bool):
        raise ValueError("expected a number or a ratio like 60000/1001")
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
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
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- stages --------------------------------------------------------------------------

INTERPOLATE_RUNGS = ("blend", "duplicate")
UPSCALE_RUNGS = ("lanczos",)


class InterpolateStage(_Strict):
    """Raise the frame rate by ``factor`` or to ``fps``."""

    stage: Literal["interpolate"] = "interpolate"
    factor: Rational | None = None
    fps: Rational | None = None
    ladder: list[str] = Field(default_factory=lambda: list(INTERPOLATE_RUNGS))

    @model_validator(mode="after")
    def _one_target(self) -> InterpolateStage:
        if (self.factor is None) == (self.fps is None):
            raise ValueError("give exactly one of factor (e.g. 2) or fps (e.g. 60)")
        return self

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
    def _known_rungs(cls, v: list[str]) -> list[str]:
        return _check_ladder(v, INTERPOLATE_RUNGS)


class UpscaleStage(_Strict):
    """Resize by ``scale`` or to ``width``/``height`` (one given keeps the aspect)."""

    stage: Literal["upscale"] = "upscale"
    scale: Rational | None = None
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    ladder: list[str] = Field(default_factory=lambda: list(UPSCALE_RUNGS))

    @model_validator(mode="after")
    def _one_target(self) -> UpscaleStage:
        by_size = self.width is not None or self.height is not None
        if (self.scale is None) == (not by_size):
            raise ValueError("give either scale (e.g. 2) or width and/or height, not both")
        return self

    @field_validator("scale")
    @classmethod
    def _scale_range(cls, v: Fraction | None) -> Fraction | None:
        if v is not None and not (0 < v <= 16):
            raise ValueError("must be greater than 0 and at most 16")
        return v

    @field_validator("ladder")
    @classmethod
    def _known_rungs(cls, v: list[str]) -> list[str]:
        return _check_ladder(v, UPSCALE_RUNGS)


def _check_ladder(rungs: list[str], known: tuple[str, ...]) -> list[str]:
    if not rungs:
        raise ValueError("a ladder needs at least one rung")
    unknown = [r for r in rungs if r not in known]
    if unknown:
        raise ValueError(f"unknown rung(s) {unknown}; known: {list(known)}")
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


Stage = Annotated[InterpolateStage | UpscaleStage | AnalyzeStage, Field(discriminator="stage")]
STAGE_NAMES = ("interpolate", "upscale", "analyze")


# --- the rest ----------------------------------------------------------------------

CODECS = ("auto", "libx264", "libx265", "h264_nvenc", "hevc_nvenc", "ffv1")
PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")


class EncodeConfig(_Strict):
    codec: Literal[CODECS] = "auto"  # type: ignore[valid-type]
    crf: int = Field(default=18, ge=0, le=51)
    preset: Literal[PRESETS] = "medium"  # type: ignore[valid-type]
    container: Literal["mp4", "mkv", "mov"] = "mp4"

    @model_validator(mode="after")
    def _container_fits(self) -> EncodeConfig:
        if self.codec == "ffv1" and self.container != "mkv":
            raise ValueError("codec ffv1 needs container: mkv")
        return self


class InstanceConfig(_Strict):
    provider: Literal["auto", "vast", "runpod", "command", "local", "skypilot"] = "auto"
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


class WatchdogConfig(_Strict):
    """How the watchdog confirms the upload before it shuts the instance down."""

    confirm: int = Field(default=3, ge=1, le=100)
    interval_s: float = Field(default=5, gt=0, le=3600)
    upload_timeout_s: float = Field(default=120, gt=0)


class StorageConfig(_Strict):
    """Non-secret store settings; keys always come from the environment."""

    endpoint_url: str | None = None
    region: str | None = None


class JobConfig(_Strict):
    job_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    inputs: list[str] = Field(min_length=1)
    stages: list[Stage] = Field(default_factory=list)
    encode: EncodeConfig = Field(default_factory=EncodeConfig)
    output: str
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    limits: Limits = Field(default_factory=Limits)
    watchdog: WatchdogConfig = Field(default_factory=WatchdogConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)

    keep_parts: bool = False  # set as output: {url: ..., keep_parts: true}

    @model_validator(mode="before")
    @classmethod
    def _output_mapping(cls, data: Any) -> Any:
        """``output`` may be a URL or ``{url: ..., keep_parts: bool}``."""
        if isinstance(data, dict) and isinstance(data.get("output"), dict):
            out = dict(data["output"])
            unknown = set(out) - {"url", "keep_parts"}
            if unknown:
                raise ValueError(f"output: unknown key(s) {sorted(unknown)}; known: url, keep_parts")
            data = {**data, "output": out.get("url", ""), "keep_parts": bool(out.get("keep_parts", False))}
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

    @field_validator("inputs")
    @classmethod
    def _inputs_not_blank(cls, v: list[str]) -> list[str]:
        if any(not s.strip() for s in v):
            raise ValueError("an input URL is empty")
        return v

    @field_validator("output")
    @classmethod
    def _output_is_prefix(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("output must be a storage prefix such as s3://bucket/out/")
        if v.startswith(("http://", "https://")):
            raise ValueError("output cannot be an http(s) URL: HTTP is read-only; use s3://, b2:// or a path")
        return v if v.endswith("/") else v + "/"


def parse_config(text: str, *, source: str = "<config>") -> JobConfig:
    """Parse YAML or JSON text into a JobConfig. Raises ConfigError listing every problem."""
    try:
        data = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(
            f"config {source} is not valid YAML or JSON{where}: {getattr(e, 'problem', e)}",
            hint="fix the syntax; `--validate` checks a config without running it",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source} must be a mapping with at least 'inputs' and 'output'",
            hint="see configs/demo.yaml for the shape",
        )
    try:
        cfg = JobConfig.model_validate(data)
    except ValidationError as e:
        problems = [_describe(err) for err in e.errors()]
        raise ConfigError(
            f"config {source} has {len(problems)} problem(s):",
            problems=problems,
            hint="correct the fields listed; docs/config.md describes each",
        ) from None
    if cfg.job_id is None:
        digest = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
        cfg = cfg.model_copy(update={"job_id": f"job-{digest[:12]}"})
    return cfg


def _describe(err: dict[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key (not allowed here; check the spelling)"
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
