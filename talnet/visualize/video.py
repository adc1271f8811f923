"""Re-encode a video with a timeline panel of ground truth and top-k predictions under it.

Frames stream through (decode one, draw, encode one), so memory does not grow with the video's
length; timestamps are copied from the input, so frame count, frame rate and duration match it.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from tqdm import tqdm

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_path
from talnet.io.types import Annotation, Detection
from talnet.visualize.timeline import PanelLayout, TimelineRenderer, build_lanes, panel_layout

# Audio codecs an MP4/MOV file can carry as they are; anything else is re-encoded to AAC.
MP4_AUDIO_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac", "opus"})
OUTPUT_SUFFIXES = (".mp4", ".mov", ".mkv")


@dataclass(frozen=True)
class RenderResult:
    """What `render_video` wrote."""

    path: Path
    frames: int
    codec: str  # video encoder used: libx264, or mpeg4 when PyAV's FFmpeg lacks libx264
    audio: str | None  # "copied CODEC", "re-encoded CODEC to aac", or None without audio
    width: int
    height: int  # picture height + panel height
    layout: PanelLayout  # where every lane, bar and the cursor are drawn


def pick_encoder(available: frozenset[str] | set[str] | None = None) -> str:
    """H.264 (libx264) when PyAV's FFmpeg has it, else MPEG-4 Part 2, which every build has."""
    available = av.codecs_available if available is None else available
    return "libx264" if "libx264" in available else "mpeg4"


def render_video(
    video: str | Path,
    out: str | Path,
    detections: Sequence[Detection],
    ground_truth: Sequence[Annotation] | None = None,
    top_k: int = 5,
    min_score: float = 0.0,
    crf: int = 18,
    codec: str | None = None,
    progress: bool = True,
    on_frame: Callable[[float, np.ndarray], None] | None = None,
) -> RenderResult:
    """Write `out`: every frame of `video` with the timeline panel under it, audio kept.

    `ground_truth=None` leaves out the ground-truth lane; an empty list draws it empty.
    `on_frame(seconds, rgb)` sees each composed `(H, W, 3)` frame exactly as it goes to the
    encoder (a preview, or a check that does not depend on the codec); copy it to keep it.
    """
    video, out = Path(video), Path(out)
    if top_k < 0:
        raise TalnetError(f"--top-k must be >= 0, got {top_k}")
    if out.suffix.lower() not in OUTPUT_SUFFIXES:
        raise TalnetError(f"output must end in one of {', '.join(OUTPUT_SUFFIXES)}", out)
    if not video.is_file():
        raise TalnetError("video not found", video)
    if out.resolve() == video.resolve():
        raise TalnetError("refusing to overwrite the input video; choose another --out", out)
    codec = codec or pick_encoder()
    try:
        source = av.open(str(video))
    except (av.FFmpegError, OSError) as exc:
        raise TalnetError(f"cannot open video: {exc}", video) from exc
    with source:
        if not source.streams.video:
            raise TalnetError("no video stream in file", video)
        in_video = source.streams.video[0]
        in_video.thread_type = "AUTO"
        in_audio = source.streams.audio[0] if source.streams.audio else None
        width, picture_height = in_video.codec_context.width, in_video.codec_context.height
        if not width or not picture_height:
            raise TalnetError("video stream has no frame size", video)
        fps = in_video.average_rate or in_video.guessed_rate or Fraction(25)
        duration = _duration(source, in_video, video)
        lanes = build_lanes(detections, ground_truth, top_k=top_k, min_score=min_score)
        out_width = width + width % 2  # yuv420p needs even sizes; an odd width gets one column
        layout = panel_layout(out_width, picture_height, duration, lanes)
        renderer = TimelineRenderer(layout, lanes)
        with atomic_path(out, suffix=out.suffix) as tmp:
            options = {"movflags": "+faststart"} if out.suffix.lower() != ".mkv" else {}
            sink = av.open(str(tmp), mode="w", options=options)
            with sink:
                out_video = _add_video_stream(sink, codec, fps, in_video, out_width, layout, crf)
                audio_mode, out_audio = _add_audio_stream(sink, in_audio, out.suffix.lower())
                frames = _stream(
                    source, in_video, in_audio, sink, out_video, out_audio, audio_mode,
                    renderer, fps, video, progress, on_frame,
                )  # fmt: skip
            if frames == 0:
                raise TalnetError("no frames could be decoded", video)
    audio_note = None
    if in_audio is not None:
        name = in_audio.codec_context.name
        audio_note = f"copied {name}" if audio_mode == "copy" else f"re-encoded {name} to aac"
    return RenderResult(
        path=out,
        frames=frames,
        codec=codec,
        audio=audio_note,
        width=out_width,
        height=picture_height + layout.height,
        layout=layout,
    )


def annotate_video(
    video: str | Path,
    predictions: str | Path,
    out: str | Path,
    ground_truth: str | Path | None = None,
    video_id: str | None = None,
    top_k: int = 5,
    min_score: float = 0.0,
    progress: bool = True,
) -> RenderResult:
    """Load a detections file (and optionally ground truth) and render `video` with them.

    The video id defaults to the file's stem; if that is absent but the predictions hold a single
    video, that one is used. An id given explicitly and absent from the predictions is an error.
    """
    from talnet.io.annotations import load_ground_truth
    from talnet.io.results import load_detections

    video = Path(video)
    if not video.is_file():
        raise TalnetError("video not found", video)
    dets = load_detections(predictions)
    vid = video_id or video.stem
    if vid not in dets:
        if video_id is None and len(dets) == 1:
            vid = next(iter(dets))
            warnings.warn(
                f"{predictions}: no video {video.stem!r}; using its only video {vid!r}",
                stacklevel=2,
            )
        else:
            sample = ", ".join(sorted(dets)[:5]) or "none"
            hint = "" if video_id else "; pass --video-id"
            raise TalnetError(
                f"video id {vid!r} not in predictions (ids include: {sample}){hint}", predictions
            )
    gt_segments = None
    if ground_truth is not None:
        gt = load_ground_truth(ground_truth)
        if vid in gt:
            gt_segments = gt[vid].annotations
        else:
            warnings.warn(
                f"{ground_truth}: no video {vid!r}; ground-truth lane left empty", stacklevel=2
            )
            gt_segments = []
    return render_video(
        video, out, dets[vid], gt_segments, top_k=top_k, min_score=min_score, progress=progress
    )


def _duration(source: av.container.InputContainer, stream: av.VideoStream, path: Path) -> float:
    """Seconds spanned by the video stream, from the headers or, failing that, its packets."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if source.duration:
        return source.duration / av.time_base
    # No duration in the headers (some raw or streamed files): scan the packets, then rewind.
    first = last = None
    for packet in source.demux(stream):
        if packet.pts is None:
            continue
        end = packet.pts + (packet.duration or 0)
        first = packet.pts if first is None else min(first, packet.pts)
        last = end if last is None else max(last, end)
    source.seek(0)
    if first is None or last is None or last <= first:
        raise TalnetError("cannot tell the video's duration", path)
    return float((last - first) * stream.time_base)


def _add_video_stream(sink, codec, fps, in_video, width, layout, crf):
    stream = sink.add_stream(codec, rate=fps)
    stream.width = width
    stream.height = layout.picture_height + layout.height
    stream.pix_fmt = "yuv420p"  # what browsers and players decode
    # Keep the input's clock so each frame keeps its own timestamp (variable frame rate included).
    stream.codec_context.time_base = in_video.time_base or Fraction(1, 1) / fps
    if codec == "libx264":
        stream.options = {"crf": str(crf), "preset": "veryfast"}
    else:
        stream.bit_rate = int(width * stream.height * float(fps) * 0.5)
    return stream


def _add_audio_stream(sink, in_audio, suffix):
    """Copy the audio packets if the container can hold them as they are, else re-encode to AAC."""
    if in_audio is None:
        return None, None
    name = in_audio.codec_context.name
    if suffix == ".mkv" or name in MP4_AUDIO_CODECS:
        return "copy", sink.add_stream_from_template(in_audio)
    stream = sink.add_stream("aac", rate=in_audio.codec_context.sample_rate or 48000)
    # By channel count: AAC refuses layouts without a channel order (e.g. PCM from Matroska).
    channels = min(max(in_audio.codec_context.layout.nb_channels, 1), 8)
    stream.layout = av.AudioLayout(f"{channels}c")
    return "encode", stream


def _stream(
    source, in_video, in_audio, sink, out_video, out_audio, audio_mode, renderer, fps, path,
    progress, on_frame,
) -> int:  # fmt: skip
    """Decode, draw and encode every frame; copy or re-encode the audio alongside."""
    layout = renderer.layout
    height = layout.picture_height
    buffer = np.empty((height + layout.height, layout.width, 3), np.uint8)
    buffer[:height, -1] = 0  # the padding column of an odd-width input stays black
    tb = in_video.time_base
    origin = None
    last_pts = None
    count = 0
    total = in_video.frames or round(layout.duration * float(fps)) or None
    streams = [in_video] + ([in_audio] if in_audio is not None else [])
    bar = tqdm(total=total, unit="frame", desc="rendering", disable=not progress, file=sys.stderr)
    try:
        for packet in source.demux(streams):
            if packet.stream is in_audio:
                _audio_packet(packet, sink, out_audio, audio_mode)
                continue
            for frame in packet.decode():
                pts = frame.pts
                if pts is None or (last_pts is not None and pts <= last_pts):
                    # Missing or repeated timestamps: continue the clock at the stream's rate.
                    base = last_pts if last_pts is not None else 0
                    pts = base + max(1, round(1 / (float(fps) * float(tb))))
                if origin is None:
                    origin = pts
                last_pts = pts
                seconds = float((pts - origin) * tb)
                picture = frame.to_ndarray(format="rgb24")
                buffer[:height, : picture.shape[1]] = picture
                renderer.draw_labels(buffer[:height], seconds)
                renderer.draw_panel(buffer[height:], seconds)
                if on_frame is not None:
                    on_frame(seconds, buffer)
                out_frame = av.VideoFrame.from_ndarray(buffer, format="rgb24")
                out_frame.pts = pts
                out_frame.time_base = tb
                sink.mux(out_video.encode(out_frame))
                count += 1
                bar.update(1)
        sink.mux(out_video.encode(None))
        if audio_mode == "encode":
            sink.mux(out_audio.encode(None))
    except av.FFmpegError as exc:
        raise TalnetError(f"cannot decode or encode video: {exc}", path) from exc
    finally:
        bar.close()
    return count


def _audio_packet(packet, sink, out_audio, audio_mode) -> None:
    if packet.dts is None:  # the demuxer's flush packet
        if audio_mode == "encode":
            for frame in packet.decode():
                sink.mux(out_audio.encode(frame))
        return
    if audio_mode == "copy":
        packet.stream = out_audio
        sink.mux(packet)
    else:
        for frame in packet.decode():
            frame.pts = None  # let the encoder's resampler lay out AAC frames
            sink.mux(out_audio.encode(frame))
