"""Small generated videos for the visualize tests: a moving square, optionally with a tone."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

BACKGROUND = (40, 60, 90)


def make_video(
    path: Path,
    width: int = 160,
    height: int = 120,
    fps: int = 10,
    seconds: float = 3.0,
    audio: str | None = None,
) -> Path:
    """Encode a square moving left to right; `audio` ("aac" or "pcm_s16le") adds a tone."""
    frames = round(fps * seconds)
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if audio:
            sound = container.add_stream(audio, rate=16000)
            sound.layout = "mono"
        for i in range(frames):
            image = np.empty((height, width, 3), np.uint8)
            image[:] = BACKGROUND
            x = i * (width - 20) // max(frames - 1, 1)
            image[height // 3 : height // 3 + 20, x : x + 20] = (250, 200, 30)
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(video.encode(None))
        if audio:
            rate = 16000
            t = np.arange(round(rate * seconds)) / rate
            tone = 0.2 * np.sin(2 * np.pi * 440 * t)
            fmt, samples = (
                ("fltp", tone.astype(np.float32))
                if audio == "aac"
                else ("s16", (tone * 32767).astype(np.int16))
            )
            for start in range(0, len(samples), 1024):
                frame = av.AudioFrame.from_ndarray(
                    samples[None, start : start + 1024], format=fmt, layout="mono"
                )
                frame.sample_rate, frame.pts = rate, start
                container.mux(sound.encode(frame))
            container.mux(sound.encode(None))
    return path


def decode_frames(path: Path) -> tuple[list[np.ndarray], list[float]]:
    """Every frame of the first video stream as RGB, with its time in seconds from the first."""
    images, times = [], []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            images.append(frame.to_ndarray(format="rgb24"))
            times.append(float(frame.time))
    return images, [t - times[0] for t in times]
