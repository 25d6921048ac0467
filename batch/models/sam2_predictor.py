"""SAM2's video predictor: checked checkpoints, device placement, frames fed from memory.

Only this module (and what it imports) touches torch and sam2; ``batch.stages.segment``
imports it inside the rung factories, so importing the stages never imports torch.

- :func:`read_checkpoint` opens a weight file the way SAM2 publishes them
  (``{"model": state_dict}``) and refuses anything else with
  ``WeightsWrongArchitecture``; :func:`detect_config` names the SAM2 hydra config
  for a state dict from its shapes (Hiera embed_dim and block count; SAM 2.1 has
  ``no_obj_embed_spatial``, SAM 2.0 has not), for config-given ``{url, sha256}``
  weights whose :class:`WeightsRef` carries no config name.
- :func:`load` builds the model with ``sam2.build_sam.build_sam2_video_predictor``
  and loads the state dict strictly itself, so a mismatch is a typed error naming
  the keys, not sam2's bare ``RuntimeError()``. Models are shared per process
  (``batch.models.loaded``).
- :class:`Sam2Tracker` runs one window of frames: it prepares the image tensors
  exactly as ``sam2.utils.misc.load_video_frames`` does for a JPEG folder
  (PIL-equivalent bicubic resize to ``image_size`` square, /255, ImageNet
  mean/std), hands them to ``init_state`` without a JPEG round trip, seeds
  objects with masks or prompts, propagates forward and reports each frame's
  masks. bf16 autocast on CUDA where the GPU supports it (as SAM2's README
  does); offload of the video and the state to CPU memory on request. Out of
  memory becomes ``RungUnavailable`` so the ladder re-runs the window on the
  next rung.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from batch.errors import RungUnavailable, WeightsError, WeightsWrongArchitecture
from batch.models import loaded
from batch.models.device import free_cache, inject_oom, is_oom, pick_device
from batch.weights.cache import ensure
from batch.weights.registry import WeightsRef

# Test and tuning hook: the square resolution SAM2 runs at (the configs say 1024,
# the size it was trained at). Lower is faster and coarser; the tests use 256 so a
# random-weight model runs in seconds on a CPU. Documented in docs/segment.md.
IMAGE_SIZE_ENV = "BATCH_SAM2_IMAGE_SIZE"

IMG_MEAN = (0.485, 0.456, 0.406)  # sam2.utils.misc.load_video_frames' defaults
IMG_STD = (0.229, 0.224, 0.225)

TRUNK_KEY = "image_encoder.trunk.patch_embed.proj.weight"
_BLOCK_PREFIX = "image_encoder.trunk.blocks."
_SAM21_KEY = "no_obj_embed_spatial"  # present in SAM 2.1 checkpoints only

# (version, hiera embed_dim, hiera blocks) -> hydra config; from sam2's configs/**.yaml
CONFIGS: dict[tuple[str, int, int], str] = {
    ("2.1", 96, 12): "configs/sam2.1/sam2.1_hiera_t.yaml",
    ("2.1", 96, 16): "configs/sam2.1/sam2.1_hiera_s.yaml",
    ("2.1", 112, 24): "configs/sam2.1/sam2.1_hiera_b+.yaml",
    ("2.1", 144, 48): "configs/sam2.1/sam2.1_hiera_l.yaml",
    ("2.0", 96, 12): "configs/sam2/sam2_hiera_t.yaml",
    ("2.0", 96, 16): "configs/sam2/sam2_hiera_s.yaml",
    ("2.0", 112, 24): "configs/sam2/sam2_hiera_b+.yaml",
    ("2.0", 144, 48): "configs/sam2/sam2_hiera_l.yaml",
}
_SIZES = "tiny 96/12, small 96/16, base+ 112/24, large 144/48"


def _wrong(name: str, path: Path, why: str) -> WeightsWrongArchitecture:
    return WeightsWrongArchitecture(
        f"weights {name} at {path} are not a SAM2 checkpoint: {why}",
        hint="give a SAM2 checkpoint as published (sam2.1_hiera_*.pt, a dict {'model': state_dict}), "
        "or a registry name such as sam2.1-hiera-tiny",
        weights=name,
    )


def read_checkpoint(path: Path, name: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a SAM2 checkpoint; WeightsWrongArchitecture for any other file."""
    name = name or path.name
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # not a torch file, or a pickle holding more than tensors
        first = (str(e).strip().splitlines() or [""])[0][:200]
        raise _wrong(name, path, f"torch.load failed ({type(e).__name__}: {first})") from None
    sd = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict):
        keys = sorted(map(str, ckpt))[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise _wrong(name, path, f"no 'model' state dict (found {keys})")
    if not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise _wrong(name, path, "its 'model' entry is not a state dict of tensors")
    if TRUNK_KEY not in sd:
        raise _wrong(name, path, f"no Hiera image encoder ({TRUNK_KEY} missing)")
    return sd


def detect_config(sd: dict[str, Any], name: str = "weights") -> str:
    """The SAM2 hydra config whose model has this state dict's shapes."""
    if TRUNK_KEY not in sd:
        raise WeightsWrongArchitecture(f"{name}: not a SAM2 state dict ({TRUNK_KEY} missing)", weights=name)
    embed = int(sd[TRUNK_KEY].shape[0])
    blocks = {int(k[len(_BLOCK_PREFIX) :].split(".", 1)[0]) for k in sd if k.startswith(_BLOCK_PREFIX)}
    depth = max(blocks) + 1 if blocks else 0
    version = "2.1" if _SAM21_KEY in sd else "2.0"
    config = CONFIGS.get((version, embed, depth))
    if config is None:
        raise WeightsWrongArchitecture(
            f"{name}: a SAM {version} checkpoint with Hiera embed_dim {embed} and {depth} blocks "
            f"matches no known SAM2 size (embed_dim/blocks: {_SIZES})",
            hint="use one of the published SAM2 checkpoints, or a registry name such as sam2.1-hiera-tiny",
            weights=name,
        )
    return config


def image_size_override() -> int | None:
    value = os.environ.get(IMAGE_SIZE_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) % 64 or not 256 <= int(value) <= 2048:
        raise RungUnavailable(f"{IMAGE_SIZE_ENV}={value!r}: must be a multiple of 64 from 256 to 2048")
    return int(value)


def build(config: str, sd: dict[str, torch.Tensor] | None, name: str, image_size: int | None = None) -> Any:
    """A SAM2VideoPredictor on the CPU, in eval mode, holding ``sd`` (random weights when None)."""
    from sam2.build_sam import build_sam2_video_predictor

    overrides = [f"++model.image_size={image_size}"] if image_size else []
    # ckpt_path=None: we load the state dict ourselves below, strictly, with a typed error.
    model = build_sam2_video_predictor(config, ckpt_path=None, device="cpu", hydra_overrides_extra=overrides)
    if sd is not None:
        try:
            missing, unexpected = model.load_state_dict(sd, strict=False)
        except RuntimeError as e:  # shape mismatches
            first = (str(e).strip().splitlines() or [""])[-1].strip()[:300]
            raise WeightsWrongArchitecture(
                f"weights {name} do not fit SAM2 config {config}: {first}",
                hint="the config's model (registry name) and the file's size differ; "
                "give the matching registry name or {url, sha256} to detect it",
                weights=name,
            ) from None
        if missing or unexpected:
            raise WeightsWrongArchitecture(
                f"weights {name} do not fit SAM2 config {config}: "
                f"{len(missing)} missing key(s) {missing[:3]}, {len(unexpected)} unexpected {unexpected[:3]}",
                hint="the file is not the SAM2 version/size the config names",
                weights=name,
            )
    return model.eval()


def load(
    ref: WeightsRef,
    device: torch.device,
    image_size: int | None = None,
    models: loaded.ModelCache | None = None,
) -> tuple[Any, str]:
    """(model on ``device``, config name) for ``ref``; shared in ``models`` (the process's by default).

    Raises WeightsError subclasses.
    """
    models = loaded.MODELS if models is None else models
    path = ensure(ref)

    def make() -> tuple[Any, str]:
        sd = read_checkpoint(path, ref.name)
        config = ref.extra.get("config") or detect_config(sd, ref.name)
        return build(config, sd, ref.name, image_size), config

    cpu_model, config = models.cached(("sam2", str(path), image_size), make)
    return models.on_device(("sam2", str(path), image_size), cpu_model, device), config


# --- frames from memory ----------------------------------------------------------------


@dataclass(frozen=True)
class PreparedFrames:
    """What ``load_video_frames`` returns, made from numpy frames; passed as init_state's video_path."""

    images: torch.Tensor  # (N, 3, S, S) float32, normalised
    height: int
    width: int


_HOOK_LOCK = threading.Lock()


def _install_frame_hook() -> None:
    """Let ``init_state`` take a :class:`PreparedFrames` where it takes a JPEG folder or an mp4.

    Also turns off the progress bars of sam2's video predictor module.

    sam2 1.1.0's ``init_state`` calls its module's ``load_video_frames(video_path=...)``
    and keeps what it returns. The wrapper answers for PreparedFrames only and passes
    every other argument to the original, so the rest of the inference state is
    built by sam2's own code. Installed once, thread-safe.
    """
    import sam2.sam2_video_predictor as svp

    with _HOOK_LOCK:
        original = svp.load_video_frames
        if getattr(original, "_batch_prepared_frames", False):
            return

        def load_video_frames(video_path: Any, *args: Any, **kwargs: Any) -> Any:
            if isinstance(video_path, PreparedFrames):
                return video_path.images, video_path.height, video_path.width
            return original(video_path, *args, **kwargs)

        load_video_frames._batch_prepared_frames = True  # type: ignore[attr-defined]
        svp.load_video_frames = load_video_frames
        # sam2 draws a tqdm bar per window ("propagate in video"): thousands in a long job's log.
        # Silence its bars only (the module's own name); the runner reports progress itself.
        if hasattr(svp, "tqdm"):
            svp.tqdm = functools.partial(svp.tqdm, disable=True)


def prepare_frames(
    frames: Sequence[np.ndarray], image_size: int, device: torch.device, offload_to_cpu: bool
) -> PreparedFrames:
    """uint8 RGB (H, W, 3) frames to SAM2's input tensors, like its JPEG-folder loader.

    That loader resizes with PIL (``Image.resize((S, S))``: bicubic, antialiased,
    the horizontal pass then the vertical, each rounded to uint8). Two separable
    antialiased bicubic passes in torch, each rounded and clamped, match it to
    within one level of 255 (checked in the tests against sam2's own loader) and
    run on the GPU. Stored on the CPU when ``offload_to_cpu`` (offload_video_to_cpu).
    """
    h, w = frames[0].shape[:2]
    store = torch.device("cpu") if offload_to_cpu else device
    images = torch.empty((len(frames), 3, image_size, image_size), dtype=torch.float32, device=store)
    for i, frame in enumerate(frames):
        t = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)[None].float()
        if w != image_size:
            t = F.interpolate(t, size=(h, image_size), mode="bicubic", antialias=True, align_corners=False)
            t = t.round_().clamp_(0, 255)
        if h != image_size:
            t = F.interpolate(
                t, size=(image_size, image_size), mode="bicubic", antialias=True, align_corners=False
            )
            t = t.round_().clamp_(0, 255)
        images[i] = t[0].div_(255.0).to(store)
    mean = torch.tensor(IMG_MEAN, dtype=torch.float32, device=store)[:, None, None]
    std = torch.tensor(IMG_STD, dtype=torch.float32, device=store)[:, None, None]
    images.sub_(mean).div_(std)
    return PreparedFrames(images, h, w)


# --- one window ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Prompt:
    """Points (pixels, with labels 1 fg / 0 bg) and/or a box (x0, y0, x1, y1) on a window frame."""

    frame: int  # index within the window
    obj_id: int
    points: tuple[tuple[float, float], ...] = ()
    labels: tuple[int, ...] = ()
    box: tuple[float, float, float, float] | None = None


# emit(window frame, object ids, masks (N, H, W) bool, scores (N,) float32)
Emit = Callable[[int, list[int], np.ndarray, np.ndarray], None]


class Sam2Tracker:
    """One SAM2 model on one device with its memory options: the unit of a segment ladder rung."""

    def __init__(
        self, ref: WeightsRef, device_kind: str, *, offload_video: bool = False, offload_state: bool = False
    ) -> None:
        self.device = pick_device(device_kind)  # RungUnavailable without CUDA
        image_size = image_size_override()
        self.model, self.config = load(ref, self.device, image_size)  # WeightsError: the stage's rung reason
        self.weights = ref.name
        self.offload_video = offload_video
        self.offload_state = offload_state
        bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float32
        self.events: list[str] = []
        _install_frame_hook()

    @property
    def image_size(self) -> int:
        return int(self.model.image_size)

    def describe(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "config": self.config,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "image_size": self.image_size,
            "offload_video_to_cpu": self.offload_video,
            "offload_state_to_cpu": self.offload_state,
        }

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.dtype == torch.bfloat16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def track(
        self,
        frames: Sequence[np.ndarray],
        seeds: dict[int, np.ndarray],
        prompts: Sequence[Prompt],
        emit: Emit,
    ) -> None:
        """Track through ``frames``: ``seeds`` are masks on frame 0, ``prompts`` on their frames.

        Tracking runs forward only. An object joins on its seed or prompt frame; the
        frames of a stretch between two such frames are propagated for the objects
        that have joined so far. Raises RungUnavailable when the device runs out of memory.
        """
        try:
            inject_oom("segment", len(frames))  # BATCH_TEST_OOM=segment:N, see batch.models.device
            with torch.inference_mode():
                # fp32, outside autocast: the resize is rounded like PIL's, as SAM2's own loader does
                prepared = prepare_frames(frames, self.image_size, self.device, self.offload_video)
                with self._autocast():
                    self._track(prepared, seeds, prompts, emit)
        except Exception as e:
            if not is_oom(e):
                raise
            free_cache(self.device)
            self.events.append(f"out of memory on a window of {len(frames)} frames")
            raise RungUnavailable(
                f"out of memory on {self.device} holding {len(frames)} frames "
                f"(offload_video_to_cpu={self.offload_video}, offload_state_to_cpu={self.offload_state})"
            ) from None
        finally:
            free_cache(self.device)

    def _track(
        self, prepared: PreparedFrames, seeds: dict[int, np.ndarray], prompts: Sequence[Prompt], emit: Emit
    ) -> None:
        model = self.model
        state = model.init_state(
            prepared, offload_video_to_cpu=self.offload_video, offload_state_to_cpu=self.offload_state
        )
        joins: dict[int, list[Callable[[], Any]]] = {}
        for obj_id, mask in seeds.items():
            joins.setdefault(0, []).append(functools.partial(_add_mask, model, state, obj_id, mask))
        for p in prompts:
            joins.setdefault(p.frame, []).append(functools.partial(_add_prompt, model, state, p))
        order = sorted(joins)
        last_frame = int(prepared.images.shape[0]) - 1
        for k, start in enumerate(order):
            for join in joins[start]:
                join()
            end = order[k + 1] - 1 if k + 1 < len(order) else last_frame
            for idx, obj_ids, logits in model.propagate_in_video(
                state, start_frame_idx=start, max_frame_num_to_track=end - start
            ):
                logits = logits[:, 0].float()
                masks = logits > 0
                counts = masks.sum(dim=(1, 2))
                inside = (logits.sigmoid() * masks).sum(dim=(1, 2))
                scores = torch.where(counts > 0, inside / counts.clamp(min=1), torch.zeros_like(inside))
                emit(idx, list(obj_ids), masks.cpu().numpy(), scores.cpu().numpy().astype(np.float32))


def _add_mask(model: Any, state: Any, obj_id: int, mask: np.ndarray) -> None:
    model.add_new_mask(state, 0, obj_id, torch.from_numpy(mask))


def _add_prompt(model: Any, state: Any, p: Prompt) -> None:
    points = np.asarray(p.points, dtype=np.float32).reshape(-1, 2) if p.points else None
    labels = np.asarray(p.labels, dtype=np.int32) if p.points else None
    box = np.asarray(p.box, dtype=np.float32) if p.box is not None else None
    model.add_new_points_or_box(state, p.frame, p.obj_id, points=points, labels=labels, box=box)


def make_tracker(ref: WeightsRef, device_kind: str, *, offload: bool = False) -> Sam2Tracker:
    """A rung for the segment ladder: WeightsError becomes RungUnavailable naming the error type."""
    try:
        return Sam2Tracker(ref, device_kind, offload_video=offload, offload_state=offload)
    except WeightsError as e:
        raise RungUnavailable(f"{e.code}: {e}") from None
