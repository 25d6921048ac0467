"""One error root for the whole runner.

Every failure the runner can name is a subclass of :class:`BatchError`. Each
class carries its exit code, a stable ``code`` string for the manifest, and
whether retrying the same call may help. Exit codes are mapped here and only
here (see :func:`exit_code_for`).

Messages never contain secrets: callers pass URLs and names, never keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

EXIT_OK = 0
EXIT_INPUT_FAILED = 1
EXIT_CONFIG = 2
EXIT_STORAGE = 3
EXIT_INTERNAL = 4


class BatchError(Exception):
    """Root of every error the runner raises on purpose.

    ``hint`` tells the user how to fix the problem; ``fields`` are structured
    details (URL, HTTP status, ffmpeg command ...) copied into the manifest.
    """

    code = "internal"
    exit_code = EXIT_INTERNAL
    retryable = False

    def __init__(self, message: str, *, hint: str | None = None, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.fields = fields

    def __str__(self) -> str:
        return f"{self.message} (fix: {self.hint})" if self.hint else self.message

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.code, "message": self.message}
        if self.hint:
            out["hint"] = self.hint
        out.update({k: v for k, v in self.fields.items() if v is not None})
        return out


class InternalError(BatchError):
    """A bug or an unexpected exception; wraps it for the manifest."""


# --- configuration -----------------------------------------------------------


class ConfigError(BatchError):
    """The job config is missing, unparsable or invalid."""

    code = "config_invalid"
    exit_code = EXIT_CONFIG

    def __init__(self, message: str, *, problems: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint, problems=problems or None)
        self.problems = problems or []

    def __str__(self) -> str:
        text = self.message
        if self.problems:
            text += "\n" + "\n".join(f"  - {p}" for p in self.problems)
        if self.hint:
            text += f"\n(fix: {self.hint})"
        return text


class StageDoesNotFit(ConfigError):
    """A valid stage setting that one input cannot take (a crop window larger than its frames).

    The fix is in the config, hence the code, but the other inputs ran: the job
    is partial and exits 1, as for any failed input, not 2 (a config that cannot run).
    """

    exit_code = EXIT_INPUT_FAILED


# --- storage -------------------------------------------------------------------


class StorageError(BatchError):
    """Root of object-storage failures."""

    code = "storage_error"
    exit_code = EXIT_STORAGE


class StorageUnreachable(StorageError):
    """The endpoint did not answer (DNS, refused connection, timeout, 5xx)."""

    code = "storage_unreachable"
    retryable = True


class CredentialsRefused(StorageError):
    """The store answered but refused the credentials (401/403, bad key)."""

    code = "credentials_refused"


class ObjectNotFound(StorageError):
    """The URL names an object or prefix that does not exist."""

    code = "object_not_found"
    exit_code = EXIT_INPUT_FAILED


class UploadVerificationFailed(StorageError):
    """An uploaded object's size or checksum did not match the local file."""

    code = "upload_verification_failed"
    retryable = True


class UnsupportedOperation(StorageError):
    """The store cannot do this (writing to an http:// URL, for example)."""

    code = "unsupported_operation"
    exit_code = EXIT_CONFIG


# --- media -------------------------------------------------------------------------


class MediaError(BatchError):
    """An input is not a usable video (empty, not a video, truncated, ...)."""

    code = "media_invalid"
    exit_code = EXIT_INPUT_FAILED


class EmptyInput(MediaError):
    code = "input_empty"


class NotAVideo(MediaError):
    code = "not_a_video"


class TruncatedVideo(MediaError):
    code = "video_truncated"


class InputChanged(MediaError):
    """A local input was written to while the job read it: its hash and its output could disagree."""

    code = "input_changed"


class InputUnreadable(MediaError):
    """A local input could not be read to its end (an I/O error, a permission taken away)."""

    code = "input_unreadable"


class FFmpegFailed(MediaError):
    """ffmpeg or ffprobe exited non-zero; carries the command and stderr tail."""

    code = "ffmpeg_failed"


class FrameCountMismatch(MediaError):
    """The output does not hold the frames the stage ratios promise."""

    code = "frame_count_mismatch"


class DurationMismatch(MediaError):
    """The output's duration differs from the input's by more than a frame."""

    code = "duration_mismatch"


class StreamsMismatch(MediaError):
    """The output lacks a stream (subtitles, attachments, chapters, timecode) the plan kept."""

    code = "streams_mismatch"


class DiskFull(BatchError):
    """The local disk cannot hold what the next step writes."""

    code = "disk_full"
    exit_code = EXIT_INPUT_FAILED


# --- stages ------------------------------------------------------------------------


class StageError(BatchError):
    """A stage could not produce its frames on any rung of its ladder."""

    code = "stage_failed"
    exit_code = EXIT_INPUT_FAILED


class RungUnavailable(StageError):
    """This rung cannot run here (no CUDA, no weights, no NVENC ...).

    The ladder catches it and moves to the next rung; nothing else does.
    """

    code = "rung_unavailable"


# --- model weights -------------------------------------------------------------------


class WeightsError(BatchError):
    """Model weights could not be had or are not what the config says."""

    code = "weights_error"
    exit_code = EXIT_CONFIG


class WeightsNotFound(WeightsError):
    """Not in the cache and not fetchable (no network, wrong URL)."""

    code = "weights_missing"


class WeightsChecksumMismatch(WeightsError):
    """The file's sha256 differs from the registry's or the config's."""

    code = "weights_checksum_mismatch"


class WeightsWrongArchitecture(WeightsError):
    """The file loads but is not the architecture the stage needs."""

    code = "weights_wrong_architecture"


# --- instance control: launching, stopping and destroying a rented machine ---------------


class ControlPlaneError(BatchError):
    """A provider's control plane failed: a launch, a stop or a destroy.

    Used as is for a failing answer that is none of the below (a 4xx other
    than 401/403, an answer without the new instance's id, a redirect).
    """

    code = "control_plane_error"


class ControlPlaneUnavailable(ControlPlaneError):
    """No answer, 408, 429, 5xx or an answer that is not the API's: worth another try."""

    code = "control_plane_unavailable"
    retryable = True


class ControlPlaneRefused(ControlPlaneError):
    """401/403 or a missing key: retrying will not help."""

    code = "control_plane_refused"


class NoOfferMatches(ControlPlaneError):
    """A launch's search found no offer that meets every filter; the message lists them."""

    code = "no_offer_matches"


class MissingSetting(ConfigError):
    """A launch lacks a setting: no API key in the environment, no CONFIG_URL, or a
    value that cannot be sent. Raised before any request."""

    code = "launch_setting_missing"


class UnknownProvider(ConfigError, ValueError):
    """An ``instance.provider`` / ``--provider`` name that is not in the provider registry.

    Also a ValueError, which callers of ``provider_for`` have always caught.
    """

    code = "unknown_provider"


class Cancelled(BatchError):
    """The runner was asked to stop (SIGTERM) before the job finished."""

    code = "cancelled"
    exit_code = EXIT_INPUT_FAILED


def says_out_of_memory(error: BaseException) -> bool:
    """CUDA's, cuDNN's and cuBLAS's out-of-memory errors, by their message (no torch import).

    torch raises ``torch.cuda.OutOfMemoryError`` (a RuntimeError) for the caching allocator,
    but cuDNN and cuBLAS report theirs as plain RuntimeErrors ("CUDNN_STATUS_ALLOC_FAILED",
    "CUBLAS_STATUS_ALLOC_FAILED"), so the message is the one thing they share.
    """
    text = str(error).lower()
    return isinstance(error, RuntimeError) and ("out of memory" in text or "status_alloc_failed" in text)


def exit_code_for(errors: Iterable[BatchError]) -> int:
    """The process exit code for a set of failures (0 when there are none).

    Precedence: internal (4) > config (2) > storage (3) > input (1), so a
    storage outage is reported as such even when it surfaced on one input.
    """
    codes = {e.exit_code for e in errors}
    for code in (EXIT_INTERNAL, EXIT_CONFIG, EXIT_STORAGE, EXIT_INPUT_FAILED):
        if code in codes:
            return code
    return EXIT_OK


# --- the launch scripts' exit codes (scripts/launch_*.py) -----------------------------

EXIT_LAUNCH_USAGE = 2  # also argparse's own
EXIT_LAUNCH_NO_OFFER = 3
EXIT_LAUNCH_REFUSED = 4
EXIT_LAUNCH_CONTROL_PLANE = 5


def launch_exit_code(error: BatchError) -> int:
    """What a launch script returns for ``error``.

    2 a setting or the config (MissingSetting, any ConfigError), 3 no offer
    matches, 4 key refused, 5 anything else (the control plane unreachable or
    failing). The launchers raise only these classes.
    """
    if isinstance(error, ConfigError):
        return EXIT_LAUNCH_USAGE
    if isinstance(error, NoOfferMatches):
        return EXIT_LAUNCH_NO_OFFER
    if isinstance(error, ControlPlaneRefused):
        return EXIT_LAUNCH_REFUSED
    return EXIT_LAUNCH_CONTROL_PLANE
