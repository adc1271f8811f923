"""Annotated-video speed at 720p: what the timeline adds to a plain decode + H.264 re-encode.

Also times drawing the panel per frame from the once-drawn static panel against redrawing the
whole panel for every frame, the choice `TimelineRenderer` makes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from talnet.bench.probe import best_time
from talnet.io.types import Annotation, Detection
from talnet.visualize.timeline import TimelineRenderer, build_lanes, panel_layout
from talnet.visualize.video import pick_encoder, render_video

WIDTH, HEIGHT, FPS = 1280, 720, 25
GT = [Annotation("CliffDiving", 1.2, 3.4), Annotation("Diving", 6.0, 8.1)]
DETS = [
    Detection("CliffDiving", 1.0, 3.6, 0.91),
    Detection("Diving", 5.8, 8.4, 0.84),
    Detection("Diving", 2.2, 4.0, 0.55),
    Detection("CliffDiving", 6.8, 7.9, 0.47),
    Detection("Shotput", 0.5, 1.1, 0.12),
]


def make_clip(path: Path, seconds: float) -> Path:
    """A 720p gradient with a moving circle, encoded with libx264 (or mpeg4)."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([40 + 60 * xx / WIDTH, 70 + 50 * yy / HEIGHT, 110 + 0 * xx], -1)
    background = background.astype(np.uint8)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(pick_encoder(), rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(round(FPS * seconds)):
            image = background.copy()
            cv2.circle(image, (100 + 20 * i % (WIDTH - 200), 360), 60, (240, 190, 40), -1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    return path


def plain_transcode(source: Path, out: Path, panel_rows: int) -> int:
    """Decode to RGB and re-encode the same frame size with a blank panel (the baseline)."""
    buffer = np.zeros((HEIGHT + panel_rows, WIDTH, 3), np.uint8)
    with av.open(str(source)) as inp, av.open(str(out), "w") as sink:
        in_video = inp.streams.video[0]
        in_video.thread_type = "AUTO"  # as render_video decodes
        stream = sink.add_stream(pick_encoder(), rate=in_video.average_rate)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT + panel_rows, "yuv420p"
        stream.codec_context.time_base = in_video.time_base
        if stream.codec_context.name == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        count = 0
        for frame in inp.decode(in_video):
            buffer[:HEIGHT] = frame.to_ndarray(format="rgb24")
            out_frame = av.VideoFrame.from_ndarray(buffer, format="rgb24")
            out_frame.pts, out_frame.time_base = frame.pts, frame.time_base
            sink.mux(stream.encode(out_frame))
            count += 1
        sink.mux(stream.encode(None))
    return count


def run(quick: bool = False) -> None:
    """Print ms per frame for a plain transcode, the annotated render, and panel drawing."""
    seconds = 2.0 if quick else 8.0
    repeats = 1 if quick else 3
    frames = round(FPS * seconds)
    lanes = build_lanes(DETS, GT)
    layout = panel_layout(WIDTH, HEIGHT, seconds, lanes)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clip = make_clip(tmp / "clip.mp4", seconds)
        plain, annotated = [], []
        for _ in range(repeats):  # interleaved, so drift on this shared machine hits both alike
            plain.append(
                best_time(lambda: plain_transcode(clip, tmp / "p.mp4", layout.height), 1, 0)
            )
            annotated.append(
                best_time(lambda: render_video(clip, tmp / "a.mp4", DETS, GT, progress=False), 1, 0)
            )
        plain, annotated = min(plain), min(annotated)
    renderer = TimelineRenderer(layout, lanes)
    panel = np.empty_like(renderer.static)
    picture = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    times = np.linspace(0, seconds, 50)

    def per_frame() -> None:
        for t in times:
            renderer.draw_panel(panel, float(t))
            renderer.draw_labels(picture, float(t))

    def redraw_all() -> None:
        for t in times:
            TimelineRenderer(layout, lanes).draw_panel(panel, float(t))
            renderer.draw_labels(picture, float(t))

    incremental = best_time(per_frame, repeats=3) / len(times)
    full = best_time(redraw_all, repeats=3) / len(times)
    encoder = pick_encoder()
    print(f"{frames} frames of {WIDTH}x{HEIGHT} at {FPS} fps, {encoder}, best of {repeats}")
    print(f"{'what':<44}{'ms/frame':>10}{'frames/s':>10}")
    for name, total in (
        ("decode + re-encode, blank panel (baseline)", plain / frames),
        ("talnet visualize render (panel + labels)", annotated / frames),
        ("panel from static + labels (per frame)", incremental),
        ("panel redrawn from scratch + labels", full),
    ):
        print(f"{name:<44}{total * 1e3:>10.2f}{1 / total:>10.1f}")
    print(
        f"render / baseline: {annotated / plain:.2f}x; static panel saves {full / incremental:.1f}x"
    )
