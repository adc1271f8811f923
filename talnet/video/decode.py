"""Decode a video into fixed-rate, fixed-size RGB frames, streamed in chunks.

Frames are resampled to `fps` by their timestamps (pts × time_base), so variable-frame-rate
videos keep their timing: output frame k shows the source frame on screen at time k / fps
(the latest source frame whose timestamp is ≤ k / fps, counted from the first frame). Each
output frame is resized so its shorter side is `short_side` (256 by default, as I3D was trained)
and centre-cropped to `size`×`size` (224), or, with `short_side=None`, resized straight to
`size`×`size`. Chunks of `chunk` frames are yielded so a long video never sits in memory whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from talnet.errors import TalnetError

# Extensions scanned in a directory; a file named explicitly is always tried.
VIDEO_EXTENSIONS = frozenset(
    ".mp4 .m4v .mov .mkv .webm .avi .mpg .mpeg .ts .mts .m2ts .flv .wmv .3gp .ogv .vob".split()
)


@dataclass(frozen=True)
class DecodeOptions:
    """How raw video becomes model input frames."""

    fps: float = 30.0
    size: int = 224  # output frames are size × size
    short_side: int | None = 256  # resize the shorter side to this, then centre crop; None: squash
    chunk: int = 32  # frames per yielded chunk

    def __post_init__(self) -> None:
        if not self.fps > 0:
            raise TalnetError(f"fps must be positive, got {self.fps}")
        if self.size < 1 or self.chunk < 1:
            raise TalnetError(f"size and chunk must be positive, got {self.size}, {self.chunk}")
        if self.short_side is not None and self.short_side < self.size:
            raise TalnetError(
                f"shorter-side resize {self.short_side} is smaller than the crop {self.size}"
            )

    def resized_shape(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) a source frame is resized to before the centre crop."""
        if self.short_side is None:
            return self.size, self.size
        scale = self.short_side / min(width, height)
        # max() keeps the long side from rounding below the crop for extreme aspect ratios.
        return max(self.size, round(width * scale)), max(self.size, round(height * scale))


@dataclass
class VideoInfo:
    """What the container declares, and (after decoding) how many frames came out."""

    path: Path
    width: int
    height: int
    declared_seconds: float | None  # the video stream's declared duration, if any
    source_fps: float | None
    frames_out: int = 0  # output frames at the requested fps, known once decoding ends
    decoded_seconds: float = 0.0  # span covered by the decoded source frames

    def expected_frames(self, fps: float) -> int | None:
        """Output frame count the declared duration promises (for progress bars)."""
        return None if self.declared_seconds is None else round(self.declared_seconds * fps)


class VideoReader:
    """Open a video file and stream its frames as (n, size, size, 3) uint8 RGB chunks.

    Problems (unreadable file, no video stream, zero frames, truncation, decode error) raise
    TalnetError naming the file; `info.frames_out` is final only after `chunks()` is exhausted.
    """

    def __init__(self, path: str | Path, options: DecodeOptions | None = None) -> None:
        self.path = Path(path)
        self.options = options or DecodeOptions()
        if not self.path.is_file():
            raise TalnetError("no such video file", self.path)
        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError) as exc:
            raise TalnetError(
                f"unreadable (not a video, or damaged): {_reason(exc)}", path
            ) from exc
        if not self._container.streams.video:
            kinds = sorted({s.type for s in self._container.streams}) or ["none"]
            self._container.close()
            raise TalnetError(f"no video stream (streams: {', '.join(kinds)})", self.path)
        self._stream = self._container.streams.video[0]
        self._stream.thread_type = "AUTO"  # let FFmpeg decode with its own threads
        ctx = self._stream.codec_context
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.info = VideoInfo(
            path=self.path,
            width=ctx.width,
            height=ctx.height,
            declared_seconds=_declared_seconds(self._container, self._stream),
            source_fps=float(rate) if rate else None,
        )

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def chunks(self) -> Iterator[np.ndarray]:
        """Yield (n, size, size, 3) uint8 RGB chunks at `options.fps`, resampled by timestamp."""
        opts = self.options
        time_base = float(self._stream.time_base or 0) or None
        buffer: list[np.ndarray] = []
        k = 0  # index of the next output frame, shown at time k / fps
        first = prev_time = None
        prev_frame: av.VideoFrame | None = None
        prev_array: np.ndarray | None = None
        prev_duration = None
        eps = 1e-6  # float slack so a frame exactly on an output time counts as "at or before"

        def show_previous_until(limit: float) -> Iterator[np.ndarray]:
            """Repeat the previous source frame for every output time before `limit`."""
            nonlocal k, buffer, prev_array
            while k / opts.fps < limit - eps:
                if prev_array is None:
                    prev_array = self._to_array(prev_frame)
                buffer.append(prev_array)
                k += 1
                if len(buffer) == opts.chunk:
                    yield np.stack(buffer)
                    buffer = []

        try:
            for frame in self._container.decode(self._stream):
                time = _frame_time(frame, time_base, prev_time, self.info.source_fps)
                if first is None:
                    first = time
                time -= first
                if prev_time is not None and time <= prev_time:
                    continue  # duplicate or out-of-order timestamp: keep the earlier frame
                if prev_frame is not None:
                    prev_duration = time - prev_time
                    yield from show_previous_until(time)
                prev_frame, prev_time, prev_array = frame, time, None
                last_duration = _frame_duration(frame, time_base)
        except av.FFmpegError as exc:
            raise TalnetError(
                f"decoding failed after {prev_time or 0.0:.2f} s: {_reason(exc)}", self.path
            ) from exc
        if prev_frame is None:
            raise TalnetError("zero decodable video frames", self.path)
        # The last frame stays on screen for its own duration (or the previous frame gap).
        duration = last_duration or prev_duration or 1.0 / (self.info.source_fps or opts.fps)
        end = prev_time + duration
        self.info.decoded_seconds = end
        self._check_truncated(end)
        yield from show_previous_until(end)
        if k == 0:  # a lone frame shorter than one output period still gives one frame
            buffer.append(self._to_array(prev_frame))
            k = 1
        if buffer:
            yield np.stack(buffer)
        self.info.frames_out = k

    def _check_truncated(self, decoded_end: float) -> None:
        declared = self.info.declared_seconds
        # Tolerate rounding, edit lists and trailing-frame quirks; flag only real loss.
        if declared and declared - decoded_end > max(1.0, 0.02 * declared):
            raise TalnetError(
                f"truncated: decoded {decoded_end:.2f} s of the declared {declared:.2f} s",
                self.path,
            )

    def _to_array(self, frame: av.VideoFrame) -> np.ndarray:
        """Resize with FFmpeg's scaler (one pass with the RGB conversion), then centre crop."""
        opts = self.options
        width, height = opts.resized_shape(frame.width, frame.height)
        image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
        array = image.to_ndarray()
        top, left = (height - opts.size) // 2, (width - opts.size) // 2
        return np.ascontiguousarray(array[top : top + opts.size, left : left + opts.size])


def _frame_time(
    frame: av.VideoFrame, time_base: float | None, prev_time: float | None, fps: float | None
) -> float:
    """Presentation time in seconds; frames without a timestamp follow the previous one."""
    pts = frame.pts if frame.pts is not None else frame.dts
    if pts is not None and time_base:
        return pts * time_base
    if frame.time is not None:
        return float(frame.time)
    return 0.0 if prev_time is None else prev_time + 1.0 / (fps or 30.0)


def _frame_duration(frame: av.VideoFrame, time_base: float | None) -> float | None:
    duration = getattr(frame, "duration", None)
    return duration * time_base if duration and time_base else None


_HMS = re.compile(r"^(\d+):(\d+):(\d+(?:\.\d*)?)$")


def _declared_seconds(
    container: av.container.InputContainer, stream: av.VideoStream
) -> float | None:
    """The video stream's declared duration: stream header, Matroska DURATION tag, or container."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    match = _HMS.match(str(stream.metadata.get("DURATION", "")))
    if match:
        hours, minutes, seconds = match.groups()
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    # The container's duration may be an audio track's, so trust it only for a lone stream.
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None


def _reason(exc: BaseException) -> str:
    """FFmpeg's message without the file name PyAV appends (our errors name the file)."""
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(": '")[0]


def decode_worker(jobs, options: DecodeOptions, queue) -> None:
    """The decoder process of the extraction pipeline (`talnet.video.pipeline`), here so that the
    spawned process imports PyAV and numpy, not torch (seconds on 2 cores). Wait for a list of
    paths on `jobs`, then decode each video in order, sending ("start"|"chunk"|"end"|"error", i,
    x) on `queue`, and finally ("done", n, None)."""
    paths = jobs.get()
    for i, path in enumerate(paths):
        try:
            with VideoReader(path, options) as reader:
                queue.put(("start", i, reader.info.expected_frames(options.fps)))
                for chunk in reader.chunks():
                    queue.put(("chunk", i, chunk))
                queue.put(("end", i, reader.info.frames_out))
        except TalnetError as exc:
            queue.put(("error", i, str(exc)))
        except Exception as exc:  # a decoder bug must fail this video, not the whole run
            queue.put(("error", i, f"{path}: {type(exc).__name__}: {exc}"))
    queue.put(("done", len(paths), None))
