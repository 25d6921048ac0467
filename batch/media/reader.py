"""ffmpeg -> raw RGB frames -> numpy, on a thread, through a bounded queue.

Frames never touch the disk. The queue bounds memory: the reader stays at
most ``queue_frames`` frames ahead of whoever consumes them.
"""

from __future__ import annotations

import io
import queue
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, cast

from batch.errors import FFmpegFailed, FrameCountMismatch, MediaError, TruncatedVideo
from batch.media.colour import ColourPlan, planar_format, rgb_conversion
from batch.media.decode_check import LastFrameCheck
from batch.media.frame_buffers import FrameBuffers
from batch.media.interlace import deinterlace_filter
from batch.media.layout import RGB, FrameLayout, packed_rgb
from batch.media.pipes import widen
from batch.media.pixfmt import CHROMA_BLOCK, partial_chroma, pix_facts_or_guess
from batch.media.probe import MediaInfo
from batch.media.seek import seek_args, trim
from batch.media.steady import head_filters, input_options

if TYPE_CHECKING:  # numpy is imported where frames are made: the direct transcode needs none
    import numpy as np


_END = object()


def stderr_tail(path: Path, limit: int = 1500) -> str:
    try:
        return path.read_text(errors="replace").strip()[-limit:]
    except OSError:
        return ""


def decode_filters(source_pix_fmt: str, colour: ColourPlan, layout: FrameLayout) -> list[str]:
    """The filters that turn decoded frames into ``layout``'s format.

    To packed RGB (8 or 16 bits): converted with the source's matrix and range
    (colour.rgb_conversion); alpha the layout does not carry is flattened against
    black (premultiplied in RGB, where premultiplying is exact) rather than dropped.
    """
    if not layout.packed:  # (a full-range source keeps its codes: colour.planar_format)
        return [planar_format(colour, layout.pix_fmt)]
    if pix_facts_or_guess(source_pix_fmt).alpha and not layout.alpha:
        with_alpha = packed_rgb(layout.bits > 8, True)
        return [
            rgb_conversion(colour, to_rgb=True, rgb_pix_fmt=with_alpha),
            "premultiply=inplace=1",
            f"format={layout.pix_fmt}",
        ]
    return [rgb_conversion(colour, to_rgb=True, rgb_pix_fmt=layout.pix_fmt)]


class OddPlanes:
    """For a 4:2:0 source whose width or height is odd, going to RGB: the in-process conversion that
    stands in for zscale, which refuses such frames ("image dimensions must be divisible by
    subsampling factor": every job on such a file failed as if it were damaged).

    ffmpeg hands over the source's own planes (``pix_fmt``; odd sizes round the chroma up) and
    :class:`batch.media.yuv_rgb.CpuYuvRgb` converts them with zimg's rule: the pixels of zscale's
    conversion of the frame one pixel larger, cropped (tests/integration/test_odd_sources.py). A
    10-bit source going to rgb24 (an 8-bit output) is converted at 16 bits and rounded to 8, as
    zscale would write rgb24 from it.
    """

    def __init__(self, info: MediaInfo, colour: ColourPlan, layout: FrameLayout, depth: int) -> None:
        from batch.media.yuv_rgb import CpuYuvRgb, coefficients

        self.cpu = CpuYuvRgb(info.width, info.height, coefficients(colour.matrix, colour.range, depth))
        self.pix_fmt = self.cpu.conv.yuv_pix_fmt
        self.narrow = depth > 8 and layout.bits == 8

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        import numpy as np

        rgb = self.cpu.to_rgb(frame)
        if not self.narrow:
            return rgb
        return ((rgb.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # rounded to nearest


def odd_planes(info: MediaInfo, colour: ColourPlan, layout: FrameLayout) -> OddPlanes | None:
    """The in-process conversion for a source zscale cannot convert (:class:`OddPlanes`), or None.

    Raises MediaError, with the fix, for the ones it does not convert either: other subsampling
    (4:2:2 of odd width, 4:1:1 whose width is no multiple of 4...), alpha, full range (yuvj), chroma
    not sited left, more than 10 bits.
    """
    facts = pix_facts_or_guess(info.pix_fmt)
    if not layout.packed or not partial_chroma(facts, info.width, info.height):
        return None
    sited = info.chroma_location in (None, "left")
    if (
        facts.chroma != "420"
        or facts.depth not in (8, 10)
        or facts.alpha
        or facts.full_range
        or not sited
        or layout.alpha
    ):
        bw, bh = CHROMA_BLOCK.get(facts.chroma, (1, 1))
        raise MediaError(
            f"{Path(info.path).name} is {info.width}x{info.height} {info.pix_fmt}"
            f"{'' if sited else f' with chroma sited {info.chroma_location}'}: ffmpeg's zscale cannot "
            f"convert it (its chroma blocks are {bw}x{bh} pixels), and this runner converts such sizes "
            "itself only for 4:2:0 of 8 or 10 bits, limited range, without alpha, chroma sited left",
            hint=f"re-encode the input at a width that is a multiple of {bw} and a height that is a multiple "
            f"of {bh}, e.g. ffmpeg -i in.mp4 -vf 'crop=trunc(iw/{bw})*{bw}:trunc(ih/{bh})*{bh}' out.mp4",
        )
    return OddPlanes(info, colour, layout, facts.depth)


class FrameReader:
    """Iterate the decoded frames of ``info`` as arrays (uint8, or uint16 above 8 bits: see FrameLayout).

    Raises TruncatedVideo when fewer frames decode than the source holds and
    FFmpegFailed when ffmpeg exits non-zero. Frames are read-only views.
    """

    def __init__(
        self,
        info: MediaInfo,
        colour: ColourPlan,
        *,
        pix_fmt: str = RGB,
        queue_frames: int = 8,
        start: int = 0,
        count: int | None = None,
    ) -> None:
        """``start``/``count``: decode only source frames [start, start + count) (one chunk)."""
        self.info = info
        self.expected = count if count is not None else info.delivered_frames - start
        self.layout = FrameLayout(pix_fmt, info.width, info.height)
        self.frames_read = 0
        self._to_rgb = odd_planes(info, colour, self.layout)  # else ffmpeg converts (zscale)
        piped = self.layout
        if self._to_rgb is not None:
            piped = FrameLayout(self._to_rgb.pix_fmt, info.width, info.height)
        self._piped = piped
        self._frame_bytes = piped.frame_bytes
        # the queue's frames, the stages' and the writer's: enough that a buffer is free by its turn
        self.buffers = FrameBuffers(piped.frame_bytes, keep=2 * queue_frames + 16)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=queue_frames)
        self._stop = threading.Event()
        self._stderr = tempfile.NamedTemporaryFile(prefix="reader-", suffix=".log", delete=False)
        deinterlace = deinterlace_filter(info)  # before anything that mixes lines or frames
        filters = [deinterlace] if deinterlace else []
        self._check_dir: Path | None = None
        self.check: LastFrameCheck | None = None
        # A variable-rate source whose frames' timestamps are known (each its own): the source frames
        # the resampled frames [start, start + count) are made of, decoded as they are and put in their
        # slots here, as ffmpeg's ``fps`` filter would (batch.media.frame_times.Timeline). The filter
        # itself decides the last slot by where the decoder says the stream ends, which drops the last
        # frame of an MP4 whose samples carry no duration; the timestamps give every input one rule,
        # in one pass and in chunks alike.
        self.picks: list[int] | None = None
        self._counted = not info.vfr  # the frames out are checked against ``expected``
        if info.vfr and info.timeline is not None and info.timeline.distinct():
            self.picks = info.timeline.picks(start, self.expected)
        elif info.vfr and not (start == 0 and count is None):
            raise ValueError(
                f"{Path(info.path).name}: a variable-rate chunk needs its frames' own timestamps"
            )
        elif info.vfr:
            # Resampled to a constant rate by ffmpeg (the manifest records it); the rate filter would
            # hide a frame that failed, so a split keeps the last one to check
            self._check_dir = Path(tempfile.mkdtemp(prefix="reader-check-"))
            self.check = LastFrameCheck(self._check_dir, info.frame_count, Path(info.path).name)
            if info.timeline is not None:
                # The rate filter ends where the decoder says the stream ends, before a last frame held
                # for seconds (Matroska stores no duration for it): held on, then cut at the count
                # the timestamps give, which a source that decodes fully then always fills
                filters.append("tpad=stop_mode=clone:stop=-1")
                self._counted = True
            filters.append(f"fps={info.fps.numerator}/{info.fps.denominator}")
            if self._counted:  # (the graph ends there: a check still waiting for its frame ends too)
                filters.append(f"trim=end_frame={self.expected}")
        filters += decode_filters(info.pix_fmt, colour, piped)
        seek: list[str] = []
        limit = ["-frames:v", str(self.expected)] if count is not None or self._counted else []
        cut: str | None = None  # a trim after any deinterlacer (which so reads the fields either side)
        self._window: tuple[int, int] | None = None  # picks: the source frames decoded, by index
        if self.picks is not None and info.timeline is not None:
            # Cut halfway between two frames far enough apart, at both ends: exactly the window's
            # frames come, and one that does not decode (a damaged source) is missed, not filled by
            # the frame after the window.
            timeline, last = info.timeline, len(info.timeline.pts) - 1
            a, b = timeline.window(self.picks[0], self.picks[-1])
            self._window = (a, b)
            first_s = timeline.cut_s(a) if a > 0 else None
            clock = Fraction(0)
            if first_s is not None:  # (a deinterlacer also reads the frame before: decoded from before it)
                seek_from = timeline.cut_s(a - 1) if deinterlace and a > 1 else first_s
                seek, clock = seek_args(seek_from, info.reorder_s)
            cut = trim(first_s, timeline.cut_s(b + 1) if b < last else None, clock)
            limit = []
        elif start > 0:
            # Frames from half a frame before ``start``: the first frame out is exactly frame
            # ``start`` of a constant-rate source.
            first_s = Fraction(info.start_s) + (start - Fraction(1, 2)) / info.fps
            seek, clock = seek_args(first_s - (1 / info.fps if deinterlace else 0), info.reorder_s)
            cut = trim(first_s, None, clock)
        if cut is not None:
            filters.insert(1 if deinterlace else 0, cut)
        steady = head_filters(info)  # one size and format whatever the stream does (batch.media.steady)
        if self.check is None:
            video = ["-map", "0:v:0", "-an", "-sn", "-dn", *limit, "-vf", ",".join([*steady, *filters])]
            checked: list[str] = []
        else:  # the same chain after a split whose other branch keeps the source's last frame
            pre = [deinterlace] if deinterlace else []
            graph = [f"[0:v:0]{','.join([*steady, *pre, 'split=2[vfr][chk]'])}",
                     self.check.branch("chk", "lastf"),
                     f"[vfr]{','.join(filters[len(pre):])}[v]"]  # fmt: skip
            video = ["-filter_complex", ";".join(graph), "-map", "[v]", *limit]
            checked = self.check.output_args("lastf")
        self.command = [
            "ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", *seek, *input_options(info),
            "-i", info.path, *video,
            # passthrough: the rate filter's frames as they are, from the first frame's slot (``cfr``
            # would fill from the file's start with copies of the first: a late video, resampled,
            # would start with them, and the writer places frame 0 at the video's start)
            "-fps_mode", "passthrough",
            "-f", "rawvideo", "-pix_fmt", piped.pix_fmt, "pipe:1", *checked,
        ]  # fmt: skip
        self._proc: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> FrameReader:
        self._proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=self._stderr, bufsize=0)
        assert self._proc.stdout is not None
        widen(self._proc.stdout.fileno())  # a frame in a few fills, not dozens (batch.media.pipes)
        self._thread = threading.Thread(target=self._pump, name="frame-reader", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        assert self._proc and self._proc.stdout
        stream = cast(io.FileIO, self._proc.stdout)  # bufsize=0: a raw FileIO, which has readinto
        n = self._frame_bytes
        try:
            while not self._stop.is_set():
                buf = self.buffers.take()
                got = 0
                with buf.data as view:  # released before the frame leaves: the pool counts references
                    while got < n:
                        k = stream.readinto(view[got:])
                        if not k:
                            break
                        got += k
                if got == 0:
                    break
                if got < n:
                    self._finish()  # a crashed decoder is reported as such, not as a bad input
                    raise TruncatedVideo(
                        f"{Path(self.info.path).name}: the last frame was cut off ({got} of {n} bytes)",
                        hint="re-upload a complete copy of the input",
                    )
                frame = buf.view(self._piped.dtype).reshape(self._piped.shape)
                del buf  # the frame (and whatever keeps it) now holds the buffer
                if self._to_rgb is not None:
                    frame = self._to_rgb(frame)  # OpenCV releases the GIL meanwhile
                if not self._put(frame):
                    return
            self._finish()
            self._put(_END)
        except BaseException as e:  # handed to the consumer, raised there
            self._put(e)

    def _finish(self) -> None:
        assert self._proc
        code = self._proc.wait()
        if self._stop.is_set():
            return
        tail = stderr_tail(Path(self._stderr.name))
        if code != 0:
            raise FFmpegFailed(
                f"decoding {Path(self.info.path).name} failed (ffmpeg exit {code})",
                hint="the input may be damaged; re-upload it or re-encode it",
                command=" ".join(self.command),
                stderr_tail=tail,
            )

    def _decoded(self) -> Iterator[np.ndarray]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]

    def _in_slots(self, decoded: Iterator[np.ndarray], picks: list[int]) -> Iterator[np.ndarray]:
        """Each source frame in the resampled frames ``picks`` gives it (held, or passed over); the
        window's frames must all decode, no fewer and no more."""
        assert self._window is not None
        a, b = self._window
        at = [a - 1]  # the index of the last frame decoded
        frame: np.ndarray | None = None
        for want in picks:
            read = self._decoded_upto(decoded, want, at)
            frame = frame if read is None else read  # None: held, read before
            yield frame  # type: ignore[misc]
        self._decoded_upto(decoded, b, at)  # the rest of the window: context, frames up to the cut
        if next(decoded, None) is not None:
            raise FrameCountMismatch(
                f"{Path(self.info.path).name}: more frames decoded than its timestamps hold between "
                f"source frames {a} and {b}",
                hint="this is a bug; please report it with the manifest",
            )

    def _decoded_upto(self, decoded: Iterator[np.ndarray], want: int, at: list[int]) -> np.ndarray | None:
        """Reads frames until source frame ``want``; returns it (None when it was read before)."""
        frame = None
        while at[0] < want:
            frame = next(decoded, None)
            if frame is None:
                assert self._window is not None
                a, b = self._window
                raise TruncatedVideo(
                    f"{Path(self.info.path).name} is truncated or damaged: fewer than its "
                    f"{self.info.frame_count} frames decoded ({at[0] - a + 1} of source frames {a} to {b})",
                    hint="re-upload a complete copy of the input",
                    declared_frames=self.info.frame_count,
                    stderr_tail=stderr_tail(Path(self._stderr.name)) or None,
                )
            at[0] += 1
        return frame

    def __iter__(self) -> Iterator[np.ndarray]:
        frames = self._decoded()
        if self.picks is not None:
            frames = self._in_slots(frames, self.picks)
        for frame in frames:
            self.frames_read += 1
            yield frame
        expected = self.expected
        if self.check is not None:
            self.check.verify()
        if (self._counted or self.picks is not None) and self.frames_read < expected:
            raise TruncatedVideo(
                f"{Path(self.info.path).name} is truncated or damaged: "
                f"{self.frames_read} of {expected} frames decoded",
                hint="re-upload a complete copy of the input",
                declared_frames=expected,
                decoded_frames=self.frames_read,
                stderr_tail=stderr_tail(Path(self._stderr.name)) or None,
            )

    def close(self) -> None:
        self._stop.set()
        if self._proc and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._thread:
            self._thread.join(timeout=5)
        self._stderr.close()
        Path(self._stderr.name).unlink(missing_ok=True)
        if self._check_dir is not None:
            shutil.rmtree(self._check_dir, ignore_errors=True)
