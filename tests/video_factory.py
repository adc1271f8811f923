"""Small test videos made with PyAV: moving shapes, optional variable frame rate, broken files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.flow import flow_between, pad_last


def shapes_frame(i: int, width: int, height: int) -> np.ndarray:
    """Frame i (H, W, 3) uint8: a textured background with a square and a bar moving over it."""
    yy, xx = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (xx * 4 + yy * 2) % 256
    frame[..., 1] = (yy * 5) % 256
    frame[..., 2] = 96
    side = max(4, height // 4)
    x0 = (2 * i) % max(1, width - side)
    y0 = (i // 2) % max(1, height - side)
    frame[y0 : y0 + side, x0 : x0 + side] = (255, 32, 32)
    bar = (height - 1 - i) % height
    frame[bar : bar + 3, :, :] = (16, 240, 16)
    return frame


def make_video(
    path: str | Path,
    seconds: float = 2.0,
    fps: int = 25,
    size: tuple[int, int] = (64, 48),
    codec: str = "libx264",
    frame_times: list[float] | None = None,
    audio: bool = False,
    index_gray: bool = False,
) -> Path:
    """Encode a moving-shapes video; `frame_times` (seconds) makes a variable-frame-rate one.

    Returns the path. With `frame_times`, frame i is shown from frame_times[i] on (ms precision).
    With `index_gray`, frame i is flat gray of level gray_level(i), so decoded frames can be traced.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    width, height = size
    times = (
        frame_times if frame_times is not None else [i / fps for i in range(round(seconds * fps))]
    )
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        if frame_times is not None:
            stream.time_base = Fraction(1, 1000)
            stream.codec_context.time_base = Fraction(1, 1000)
        audio_stream = container.add_stream("aac", rate=16000) if audio else None
        for i, t in enumerate(times):
            image = (
                np.full((height, width, 3), gray_level(i), np.uint8)
                if index_gray
                else shapes_frame(i, width, height)
            )
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = round(t * 1000) if frame_times is not None else i
            if frame_times is not None:
                frame.time_base = Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if audio_stream is not None:
            _write_tone(container, audio_stream, seconds)
    return path


def gray_level(i: int) -> int:
    """The flat gray of frame i in an `index_gray` video (distinct for i < 12)."""
    return 16 + 20 * i


def frame_index(frame: np.ndarray) -> int:
    """Which `index_gray` source frame a decoded frame shows."""
    return round((float(frame.mean()) - 16) / 20)


def make_audio_only(path: str | Path, seconds: float = 1.0) -> Path:
    """A container holding one audio stream and no video."""
    path = Path(path)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        _write_tone(container, stream, seconds)
    return path


def make_empty_video(path: str | Path) -> Path:
    """An AVI file whose one video stream holds zero frames (AVI keeps the empty stream)."""
    path = Path(path)
    with av.open(str(path), "w", format="avi") as container:
        stream = container.add_stream("mpeg4", rate=25)
        stream.width, stream.height = 64, 48
        stream.pix_fmt = "yuv420p"
        container.start_encoding()
    return path


def truncate(path: str | Path, fraction: float = 0.5) -> Path:
    """Cut a file to `fraction` of its bytes, as an interrupted download would."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    return path


def _write_tone(container: av.container.OutputContainer, stream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    samples = np.sin(np.arange(int(rate * seconds)) * 2 * np.pi * 440 / rate).astype(np.float32)
    step = stream.codec_context.frame_size or 1024
    for start in range(0, len(samples), step):
        chunk = samples[start : start + step][None, :]
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(chunk), format="fltp", layout="mono"
        )
        frame.sample_rate = rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())


def save_random_i3d_weights(folder: str | Path) -> dict[str, Path]:
    """Random I3D weights saved in the public layout, one file per stream (rgb, flow)."""
    import torch

    from talnet.video.i3d import InceptionI3d

    paths = {}
    for stream, channels in (("rgb", 3), ("flow", 2)):
        torch.manual_seed(channels)
        paths[stream] = Path(folder) / f"{stream}_imagenet.pt"
        torch.save(InceptionI3d(num_classes=400, in_channels=channels).state_dict(), paths[stream])
    return paths


def random_state_dict(shapes: dict[str, tuple[int, ...]], conv_suffix: str, seed: int = 0):
    """Random weights for a public state-dict layout `shapes` (key -> shape): He-scaled
    convolutions (keys ending in `conv_suffix`), BatchNorm scales near 1 and plausible running
    variances, so the signal stays alive through a deep network."""
    import math

    import torch

    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in shapes.items():
        if key.endswith("running_var"):
            sd[key] = torch.rand(shape, generator=gen) + 0.5
        elif key.endswith(conv_suffix):
            fan_in = math.prod(shape[1:])
            sd[key] = torch.randn(shape, generator=gen) * (2.0 / fan_in) ** 0.5
        elif key.endswith("bn.weight"):
            sd[key] = 1 + torch.randn(shape, generator=gen) * 0.1
        else:
            sd[key] = torch.randn(shape, generator=gen) * 0.1
    return sd


def read_frames(path: str | Path, options: DecodeOptions | None = None) -> np.ndarray:
    """All frames of a (short) video as one (n, size, size, 3) uint8 array."""
    with VideoReader(path, options) as reader:
        chunks = list(reader.chunks())
    return np.concatenate(chunks)


def flow_sequence(frames: np.ndarray, method: str) -> np.ndarray:
    """Flow aligned with frames, (n, H, W, 3) -> (n, H, W, 2): last flow repeated (zeros if n=1),
    computed in one go, to check the chunked pipeline against."""
    return pad_last(flow_between(frames, method), len(frames), frames.shape[1:3])
