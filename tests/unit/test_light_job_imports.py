"""A job with no stages starts fast: the runner and the direct transcode import no numpy.

numpy alone costs ~0.13 s of a whole-process run (python -X importtime); it is
imported where frames pass through Python (reader, writer, stages, thumbnails).
"""

from __future__ import annotations

import subprocess
import sys


def test_the_runner_and_the_direct_path_import_no_numpy() -> None:
    code = (
        "import sys\n"
        "import batch.job.runner, batch.media.direct, batch.media.writer, batch.media.reader\n"
        "heavy = sorted(m for m in ('numpy', 'torch', 'cv2') if m in sys.modules)\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
