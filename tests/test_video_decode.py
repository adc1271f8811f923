"""Decoding: timestamp resampling (constant and variable frame rate), resizing, chunking, errors."""

from __future__ import annotations

import av
import numpy as np
import pytest
from video_factory import (
    frame_index,
    make_audio_only,
    make_empty_video,
    make_video,
    read_frames,
    truncate,
)

from talnet.errors import TalnetError
from talnet.video.decode import DecodeOptions, VideoReader


def test_constant_rate_is_resampled_by_time(tmp_path):
    video = make_video(tmp_path / "v.mp4", seconds=2.0, fps=25)
    with VideoReader(video, DecodeOptions(fps=30, chunk=16)) as reader:
        chunks = list(reader.chunks())
        assert reader.info.frames_out == 60
        assert reader.info.declared_seconds == pytest.approx(2.0)
    assert [len(c) for c in chunks] == [16, 16, 16, 12]
    assert all(c.shape[1:] == (224, 224, 3) and c.dtype == np.uint8 for c in chunks)


def test_variable_frame_rate_uses_nearest_previous_frame(tmp_path):
    times = [0.0, 0.04, 0.1, 0.11, 0.3, 0.5, 0.52, 0.9]
    video = make_video(tmp_path / "vfr.mp4", frame_times=times, fps=25, index_gray=True)
    frames = read_frames(video, DecodeOptions(fps=10, size=32, short_side=None))
    # The last frame lasts until the encoder's end (a frame gap), so the end lies past 0.9 s.
    shown = [frame_index(f) for f in frames]
    expected = [max(i for i, t in enumerate(times) if t <= k / 10 + 1e-9) for k in range(10)]
    assert shown[:10] == expected
    assert len(shown) >= 10


def test_shorter_side_then_centre_crop(tmp_path):
    options = DecodeOptions()
    assert options.resized_shape(640, 480) == (341, 256)
    assert options.resized_shape(480, 640) == (256, 341)
    assert DecodeOptions(short_side=None).resized_shape(640, 480) == (224, 224)
    # A wide frame is resized by its shorter side and comes out square.
    video = make_video(tmp_path / "wide.mkv", seconds=0.2, fps=25, size=(96, 32), codec="ffv1")
    frames = read_frames(video, DecodeOptions(fps=25, size=64, short_side=64))
    assert frames.shape == (5, 64, 64, 3)


RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def _banded_video(path, width: int, height: int, frames: int = 3):
    """A lossless RGB (FFV1) video whose frames are green with a red band along the first
    sixth of the long side (left or top) and a blue band along the last sixth (right, bottom)."""
    band = max(width, height) // 6
    image = np.empty((height, width, 3), np.uint8)
    image[:] = GREEN
    if width >= height:
        image[:, :band], image[:, width - band :] = RED, BLUE
    else:
        image[:band], image[height - band :] = RED, BLUE
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "bgr0"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
    return path


def _dominant(pixels: np.ndarray) -> list[str]:
    """Per pixel (..., 3), which of red, green, blue it mostly is ("?" for a blend)."""
    names = np.array(["red", "green", "blue"])
    strongest = pixels.argmax(-1)
    clear = pixels.max(-1).astype(int) - np.sort(pixels, -1)[..., 1] > 128
    return np.where(clear, names[strongest], "?").tolist()


@pytest.mark.parametrize("width, height", [(96, 32), (32, 96)])
def test_squash_resize(tmp_path, width, height):
    """`short_side=None` squashes the whole frame to size x size: both ends of the long side
    survive (a centre crop would keep only the green middle), each band keeping its share."""
    video = _banded_video(tmp_path / "bands.mkv", width, height)
    frames = read_frames(video, DecodeOptions(fps=25, size=36, short_side=None))
    assert frames.shape == (3, 36, 36, 3)
    for frame in frames:
        # The long side runs along the frame's columns for the wide video, its rows for the tall.
        lines = frame if width >= height else frame.transpose(1, 0, 2)
        for line in lines:  # every row (column) across the long side: red, green, blue bands
            colours = _dominant(line)
            assert colours[:5] == ["red"] * 5 and colours[-5:] == ["blue"] * 5
            assert colours[7:29] == ["green"] * 22
            # a sixth of 36 pixels is 6: each band, blends at its edge included, stays 5-7 wide
            assert 5 <= sum(c != "green" for c in colours[:18]) <= 7
            assert 5 <= sum(c != "green" for c in colours[18:]) <= 7


def test_options_are_checked():
    with pytest.raises(TalnetError, match="smaller than the crop"):
        DecodeOptions(size=224, short_side=200)
    with pytest.raises(TalnetError, match="fps"):
        DecodeOptions(fps=0)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda d: make_audio_only(d / "sound.mp4"), "no video stream"),
        (lambda d: make_empty_video(d / "empty.avi"), "zero decodable video frames"),
        (lambda d: truncate(make_video(d / "cut.mp4", seconds=2)), "unreadable"),
        (lambda d: truncate(make_video(d / "cut.mkv", seconds=4, codec="mpeg4")), "truncated"),
        (lambda d: _garbage(d / "junk.mp4"), "unreadable"),
        (lambda d: d / "missing.mp4", "no such video file"),
    ],
)
def test_bad_videos_raise_naming_the_file(tmp_path, make, reason):
    path = make(tmp_path)
    with pytest.raises(TalnetError, match=reason) as info:
        read_frames(path, DecodeOptions(size=32, short_side=None))
    assert str(path) in str(info.value)


def _garbage(path):
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path
