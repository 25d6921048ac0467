"""On a GPU: the torch yuv420p <-> RGB back end there against the CPU back end, and its time a 720p frame.

.venv/bin/python scripts/gpu_yuv_rgb_check.py   (prints the largest difference in code values and ms)
"""

from __future__ import annotations

import time

import numpy as np
import torch

from batch.media import yuv_rgb
from batch.models import yuv_rgb_torch as tyr


def main() -> None:
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    w, h, n = 1280, 720, 8
    conv = yuv_rgb.coefficients("bt709", "tv")
    rng = np.random.default_rng(0)
    frames = [rng.integers(16, 236, yuv_rgb.yuv420p_bytes(w, h), dtype=np.uint8) for _ in range(n)]
    y, u, v = (p.to(dev) for p in tyr.split(frames, w, h))
    rgb = tyr.to_rgb(y, u, v, conv)
    got = rgb.mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    cpu = yuv_rgb.CpuYuvRgb(w, h, conv)
    worst = max(int(np.abs(got[k].astype(int) - cpu.to_rgb(frames[k])).max()) for k in range(n))
    back = tyr.join(*tyr.to_yuv(rgb, conv))
    worst_yuv = max(int(np.abs(back[k].astype(int) - cpu.to_yuv(got[k])).max()) for k in range(n))
    print(f"device {dev}: to_rgb max diff {worst}, to_yuv max diff {worst_yuv} (code values)")
    for name, fn in [
        ("to_rgb", lambda: tyr.to_rgb(y, u, v, conv)),
        ("to_yuv", lambda: tyr.to_yuv(rgb, conv)),
    ]:
        fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(10):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        print(f"{name}: {(time.perf_counter() - t) / 10 / n * 1000:.3f} ms a 720p frame (batches of {n})")


if __name__ == "__main__":
    main()
