"""The segment stage: SAM2 tracking in windows, masks.parquet, the ladder, checkpoint checks.

The model is SAM 2.1 tiny with random weights (sam2's builder with ckpt_path=None),
saved as a published checkpoint is ({"model": state_dict}) and referenced by
{url, sha256}, so the real fetch, checksum, config detection and loading code
runs. It runs at 256 px (BATCH_SAM2_IMAGE_SIZE) to keep CPU time small. Torch
runs on the CPU here: the ``cuda`` rung is recorded as unavailable and the
ladder moves on to ``cpu``; nothing else is mocked. With random weights the
masks are arbitrary, so these tests check structure (rows, windows, seeding,
RLE round trips); the real-weights test checks that a disc is followed.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from batch.config import SegmentStage
from batch.errors import StageError, WeightsChecksumMismatch, WeightsWrongArchitecture
from batch.models import sam2_predictor
from batch.stages import segment_files
from batch.stages.base import StageInput
from batch.stages.segment import Segment
from batch.weights import cache
from batch.weights.registry import from_url, lookup

REPO = Path(__file__).resolve().parents[2]
REAL_TINY = cache.cache_path(lookup("sam2.1-hiera-tiny"))  # WEIGHTS_DIR as set outside the tests
TINY = "configs/sam2.1/sam2.1_hiera_t.yaml"
FPS = Fraction(30000, 1001)
H, W = 72, 96


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def random_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A SAM 2.1 tiny checkpoint with random weights, in the published layout."""
    torch.manual_seed(0)
    from sam2.build_sam import build_sam2_video_predictor

    model = build_sam2_video_predictor(TINY, ckpt_path=None, device="cpu")
    path = tmp_path_factory.mktemp("ckpt") / "sam2_random_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path, _sha(path)


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # one cache for the module: the loaded model is shared between tests, as between inputs in a job
    return tmp_path_factory.mktemp("weights")


@pytest.fixture(autouse=True)
def _env(weights_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv(sam2_predictor.IMAGE_SIZE_ENV, "256")


def _stage(model: Any, **kw: Any) -> SegmentStage:
    return SegmentStage.parse({"model": model, "ladder": ["cuda", "cpu"], **kw})


def _model(ckpt: tuple[Path, str]) -> dict[str, str]:
    return {"url": str(ckpt[0]), "sha256": ckpt[1]}


def _noise_frames(n: int, h: int = H, w: int = W) -> list[np.ndarray]:
    return [np.random.default_rng(i).integers(0, 256, (h, w, 3), dtype=np.uint8) for i in range(n)]


def _disc_frames(n: int, h: int, w: int, r: int, step: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A bright disc moving right on a dark textured background; frames and true masks."""
    yy, xx = np.mgrid[0:h, 0:w]
    frames, masks = [], []
    for i in range(n):
        cx, cy = w // 4 + i * step, h // 2
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
        frame = np.random.default_rng(100 + i).integers(10, 50, (h, w, 3), dtype=np.uint8)
        frame[disc] = (240, 230, 60)
        frames.append(frame)
        masks.append(disc)
    return frames, masks


def _run(stage: SegmentStage, frames: list[np.ndarray], artifacts: Path | None) -> tuple[Segment, list[Any]]:
    h, w = frames[0].shape[:2]
    seg = Segment(stage, StageInput(w, h, FPS, artifacts=artifacts))
    return seg, list(seg.run(iter(frames)))


# --- the stage ---------------------------------------------------------------------------


def test_windows_seed_each_other_and_masks_parquet_holds_every_frame_and_object(
    random_tiny: tuple[Path, str], tmp_path: Path
) -> None:
    objects = [
        {"id": 1, "points": [[40, 30]], "labels": [1]},  # frame 0, first window
        {"id": 2, "frame": 4, "box": [10, 10, 50, 40]},  # joins in the third window
        {"id": 7, "frame": 99, "points": [[5, 5]], "labels": [1]},  # beyond the input's end
    ]
    frames = _noise_frames(6)
    copies = [f.copy() for f in frames]
    seg, out = _run(_stage(_model(random_tiny), objects=objects, window=3), frames, tmp_path)

    # frames pass through: the same arrays, unchanged, in order
    assert len(out) == 6 and all(a is b for a, b in zip(out, frames, strict=True))
    assert all(np.array_equal(a, b) for a, b in zip(frames, copies, strict=True))

    rep = seg.report()
    assert rep["name"] == "segment" and rep["frames_in"] == rep["frames_out"] == 6
    # windows of 3: new frames [0, 1, 2], then [3, 4] and [5], each after the first led by its seed frame
    assert (rep["windows"], rep["seeded_windows"], rep["max_frames_held"]) == (3, 2, 3)
    tracked = {o["id"]: o["frames_tracked"] for o in rep["objects"]}
    assert tracked == {1: 6, 2: 2, 7: 0}  # object 1 on frames 3-5: only the seed masks carry it there
    assert rep["model"] == f"url:{random_tiny[1][:12]}"
    assert rep["used"] == "cpu" and rep["ladder"] == ["cuda", "cpu"]
    assert rep["steps"][0]["rung"] == "cuda" and rep["steps"][0]["status"] == "unavailable"
    assert "CUDA" in rep["steps"][0]["reason"]
    cpu = rep["steps"][1]
    assert (cpu["rung"], cpu["status"], cpu["units"], cpu["frames"]) == ("cpu", "used", 3, 6)
    assert cpu["backend"]["config"] == TINY  # detected from the shapes: a {url, sha256} ref names none
    assert cpu["backend"]["image_size"] == 256
    assert any("object 7" in n and "beyond" in n for n in rep["notes"])
    assert rep["artifacts"] == ["masks.parquet"] and rep["rows"] == 18
    json.dumps(rep)  # the manifest takes it as is

    path = tmp_path / "masks.parquet"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["masks.parquet"]  # no partial file left
    table = pq.read_table(path)
    lists = {f.name: f.type.value_type for f in table.schema if pa.types.is_list(f.type)}
    assert lists == {"rle_size": pa.int32(), "bbox": pa.float32()}
    assert [(f.name, f.type) for f in table.schema if f.name not in lists] == [
        ("frame", pa.int32()),
        ("time_s", pa.float64()),
        ("object_id", pa.int32()),
        ("rle_counts", pa.string()),
        ("area", pa.int64()),
        ("score", pa.float32()),
    ]
    assert table.schema.names == [
        "frame",
        "time_s",
        "object_id",
        "rle_counts",
        "rle_size",
        "bbox",
        "area",
        "score",
    ]
    meta = json.loads(table.schema.metadata[b"batch.segment"])
    assert (meta["fps"], meta["width"], meta["height"]) == ("30000/1001", W, H)
    md = pq.ParquetFile(path).metadata
    assert md.num_rows == 6 * 3 and md.row_group(0).column(0).compression == "ZSTD"

    rows = table.to_pylist()
    assert [(r["frame"], r["object_id"]) for r in rows] == [(f, o) for f in range(6) for o in (1, 2, 7)]
    for r in rows:
        assert r["time_s"] == pytest.approx(r["frame"] * 1001 / 30000)
        assert r["rle_size"] == [H, W]
        mask = mask_utils.decode({"size": r["rle_size"], "counts": r["rle_counts"].encode()})
        assert mask.shape == (H, W) and int(mask.sum()) == r["area"]
        ys, xs = np.nonzero(mask)
        box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1] if r["area"] else [0] * 4
        assert r["bbox"] == pytest.approx(box)
        again = mask_utils.encode(np.asfortranarray(mask))["counts"].decode()
        assert again == r["rle_counts"]  # decode -> encode gives the stored RLE back
        tracked_here = r["object_id"] == 1 or (r["object_id"] == 2 and r["frame"] >= 4)
        if tracked_here:
            assert r["score"] is not None and 0 <= r["score"] <= 1
            assert (r["score"] > 0.5) == (r["area"] > 0)  # mean sigmoid over pixels with logit > 0
        else:
            assert r["score"] is None and r["area"] == 0


def test_a_window_without_objects_skips_sam2_and_a_mid_window_prompt_joins_there(
    random_tiny: tuple[Path, str],
) -> None:
    # window 2: [0, 1] has nothing to track; [2, 3] has the prompt on 3; [3 seed, 4]
    objects = [{"id": 0, "frame": 3, "points": [[48, 36]], "labels": [1]}]
    seg, out = _run(_stage(_model(random_tiny), objects=objects, window=2), _noise_frames(5), None)
    rep = seg.report()
    assert len(out) == 5 and rep["frames_out"] == 5
    assert (rep["windows"], rep["seeded_windows"], rep["max_frames_held"]) == (2, 1, 2)
    assert rep["objects"][0]["frames_tracked"] == 2  # frames 3 and 4
    assert rep["artifacts"] == [] and rep["rows"] == 5 and rep["notes"] == []


def test_frames_given_from_memory_match_sam2s_own_loader(
    random_tiny: tuple[Path, str], tmp_path: Path
) -> None:
    """prepare_frames + init_state against init_state on a folder (PNG data named .jpg: lossless)."""
    ref = from_url(str(random_tiny[0]), random_tiny[1], "sam2")
    model, config = sam2_predictor.load(ref, torch.device("cpu"), 256)
    assert config == TINY
    sam2_predictor._install_frame_hook()
    for h, w in ((300, 500), (50, 70)):  # down- and upscaled to 256 x 256
        frames = _noise_frames(2, h, w)
        folder = tmp_path / f"{h}x{w}"
        folder.mkdir()
        for i, f in enumerate(frames):
            Image.fromarray(f).save(folder / f"{i}.jpg", format="PNG")
        theirs = model.init_state(str(folder))
        ours = model.init_state(sam2_predictor.prepare_frames(frames, 256, torch.device("cpu"), False))
        assert set(ours) == set(theirs)
        assert (ours["video_height"], ours["video_width"], ours["num_frames"]) == (h, w, 2)
        std = torch.tensor(sam2_predictor.IMG_STD)[:, None, None]
        diff = ((ours["images"] - theirs["images"]) * std).abs()  # back in [0, 1] units
        assert float(diff.max()) <= 1 / 255 + 1e-5 and float(diff.mean()) < 0.01 / 255


@pytest.mark.integration
def test_overlay_mp4_has_every_frame_at_the_input_rate(random_tiny: tuple[Path, str], tmp_path: Path) -> None:
    from batch.media.probe import probe

    frames, _ = _disc_frames(3, 71, 95, 12, 4)  # odd size: padded for 4:2:0
    objects = [{"id": 3, "points": [[23, 35]], "labels": [1]}]
    seg, _ = _run(_stage(_model(random_tiny), objects=objects, window=3, overlay=True), frames, tmp_path)
    assert seg.report()["artifacts"] == ["masks.parquet", "overlay.mp4"]
    info = probe(tmp_path / "overlay.mp4")
    assert info.frame_count == 3 and info.fps == FPS and (info.width, info.height) == (96, 72)


# --- weights and the ladder ---------------------------------------------------------------


def test_a_wrong_sha256_is_a_typed_error_and_the_ladders_reason(
    random_tiny: tuple[Path, str], tmp_path: Path
) -> None:
    ref = from_url(str(random_tiny[0]), "0" * 64, "sam2")
    with pytest.raises(WeightsChecksumMismatch, match="expected 0000"):
        sam2_predictor.load(ref, torch.device("cpu"))
    stage = _stage({"url": str(random_tiny[0]), "sha256": "0" * 64}, objects=[{"id": 1, "box": [1, 1, 9, 9]}])
    with pytest.raises(StageError) as e:
        _run(stage, _noise_frames(2), tmp_path)
    assert "cuda: no CUDA device" in e.value.message
    assert "cpu: weights_checksum_mismatch" in e.value.message
    steps = e.value.fields["steps"]
    assert [(s["rung"], s["status"]) for s in steps] == [("cuda", "unavailable"), ("cpu", "unavailable")]
    assert list(tmp_path.iterdir()) == []  # the partial masks file is removed


def test_out_of_memory_fails_the_rung_with_its_reason(
    random_tiny: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_TEST_OOM", "segment:3")  # a simulated CUDA OOM for windows of 3+ frames
    stage = _stage(_model(random_tiny), objects=[{"id": 1, "box": [1, 1, 9, 9]}], window=3)
    with pytest.raises(StageError, match="cpu: out of memory on cpu holding 3 frames") as e:
        _run(stage, _noise_frames(4), None)
    assert [(s["rung"], s["status"]) for s in e.value.fields["steps"]] == [
        ("cuda", "unavailable"),
        ("cpu", "failed"),
    ]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"not a checkpoint at all\n", "torch.load failed"),
        ({"flownet.weight": torch.zeros(2)}, "no 'model' state dict"),  # a plain state dict (RIFE-like)
        ({"model": {"encoder.weight": torch.zeros(2)}}, "no Hiera image encoder"),
    ],
)
def test_a_file_that_is_not_sam2_is_refused_with_a_clear_typed_error(
    tmp_path: Path, content: Any, why: str
) -> None:
    path = tmp_path / "weights.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(WeightsWrongArchitecture, match="not a SAM2 checkpoint") as e:
        sam2_predictor.read_checkpoint(path)
    assert why in e.value.message
    stage = _stage({"url": str(path), "sha256": _sha(path)}, objects=[{"id": 1, "box": [1, 1, 9, 9]}])
    with pytest.raises(StageError, match=f"cpu: weights_wrong_architecture: .*{why}"):
        _run(stage, _noise_frames(2), None)


def test_the_sam2_config_is_detected_from_the_checkpoint_shapes() -> None:
    def sd(embed: int, depth: int, v21: bool = True) -> dict[str, torch.Tensor]:
        out = {sam2_predictor.TRUNK_KEY: torch.empty(embed, 3, 7, 7)}
        out.update({f"image_encoder.trunk.blocks.{i}.norm1.weight": torch.empty(1) for i in range(depth)})
        if v21:
            out["no_obj_embed_spatial"] = torch.empty(1, 64)
        return out

    for (version, embed, depth), config in sam2_predictor.CONFIGS.items():
        assert sam2_predictor.detect_config(sd(embed, depth, version == "2.1")) == config
    assert sam2_predictor.detect_config(sd(144, 48)) == "configs/sam2.1/sam2.1_hiera_l.yaml"
    with pytest.raises(
        WeightsWrongArchitecture, match="embed_dim 128 and 20 blocks matches no known SAM2 size"
    ):
        sam2_predictor.detect_config(sd(128, 20))


def test_registry_sam2_refs_name_a_config_that_sam2_ships() -> None:
    import sam2

    root = Path(sam2.__file__).parent
    for name in ("sam2.1-hiera-tiny", "sam2.1-hiera-small", "sam2.1-hiera-base-plus", "sam2.1-hiera-large"):
        assert (root / lookup(name).extra["config"]).is_file()
    assert set(sam2_predictor.CONFIGS.values()) <= {
        str(p.relative_to(root)) for p in root.glob("configs/sam2*/*.yaml")
    }


def test_importing_the_stage_does_not_import_torch() -> None:
    code = "import sys, batch.stages.segment; sys.exit('torch' in sys.modules or 'sam2' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
    assert segment_files.ROW_GROUP_ROWS == 10_000 and segment_files.DATA_PAGE_BYTES == 1 << 20


# --- the real weights ---------------------------------------------------------------------------


@pytest.mark.skipif(
    not REAL_TINY.is_file(),
    reason=f"real sam2.1-hiera-tiny weights not at {REAL_TINY} "
    "(fetch them with `python -m batch.models fetch sam2.1-hiera-tiny`, or set WEIGHTS_DIR)",
)
def test_real_sam2_tiny_follows_a_moving_disc_across_windows(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("WEIGHTS_DIR", str(REAL_TINY.parents[1]))
    monkeypatch.delenv(sam2_predictor.IMAGE_SIZE_ENV)  # the size the weights were trained at (1024)
    frames, truth = _disc_frames(4, 96, 128, 14, 6)
    objects = [{"id": 5, "points": [[32, 48]], "labels": [1]}]
    stage = SegmentStage.parse({"objects": objects, "window": 3, "ladder": ["cuda", "cpu"]})
    seg, out = _run(stage, frames, tmp_path)
    assert len(out) == 4
    assert seg.report()["seeded_windows"] == 1 and seg.report()["model"] == "sam2.1-hiera-tiny"
    rows = pq.read_table(tmp_path / "masks.parquet").to_pylist()
    masks = [mask_utils.decode({"size": r["rle_size"], "counts": r["rle_counts"].encode()}) > 0 for r in rows]
    for got, want in zip(masks, truth, strict=True):
        iou = (got & want).sum() / max(1, (got | want).sum())
        assert iou > 0.7, f"IoU {iou:.2f}"
