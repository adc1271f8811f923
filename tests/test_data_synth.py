"""The synthetic benchmark: deterministic, valid formats, THUMOS-like lengths, a weak RGB stream."""

from __future__ import annotations

import json

import numpy as np
import pytest

from talnet.cli.main import main
from talnet.data.synth import (
    SynthConfig,
    layouts_to_ground_truth,
    make_prototypes,
    make_synthetic,
    render_features,
    sample_layouts,
)
from talnet.errors import TalnetError
from talnet.io.annotations import load_ground_truth
from talnet.io.features import FeatureMeta, list_feature_videos, load_features, read_meta


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    make_synthetic(out, seed=3, videos_train=4, videos_test=2, classes=6, dim=8, progress=False)
    return out


def test_same_seed_same_bytes_other_seed_differs(tmp_path, small):
    again = make_synthetic(tmp_path / "a", seed=3, videos_train=4, videos_test=2, classes=6, dim=8)
    other = make_synthetic(tmp_path / "b", seed=4, videos_train=4, videos_test=2, classes=6, dim=8)
    names = sorted(p.name for p in (small / "features").iterdir())
    assert names == sorted(p.name for p in (again / "features").iterdir())
    for name in names:
        assert (small / "features" / name).read_bytes() == (again / "features" / name).read_bytes()
    first = (small / "annotations.json").read_bytes()
    assert first == (again / "annotations.json").read_bytes()
    assert first != (other / "annotations.json").read_bytes()


def test_shapes_meta_and_io_loaders(small):
    gt = load_ground_truth(small / "annotations.json")
    assert sorted(gt) == [f"synth_test_{i:04d}" for i in range(2)] + [
        f"synth_validation_{i:04d}" for i in range(4)
    ]
    assert {info.subset for info in gt.values()} == {"validation", "test"}
    meta = read_meta(small / "features")
    assert (meta.fps, meta.stride, meta.window, meta.layout) == (30.0, 4, 16, "concat")
    assert meta.streams == ["rgb", "flow"] and meta.dims == [8, 8]
    assert list_feature_videos(small / "features", meta) == sorted(gt)
    for vid, info in gt.items():
        feats = load_features(small / "features", vid, meta)
        rgb, flow = feats["rgb"], feats["flow"]
        assert rgb.shape == flow.shape and rgb.shape[1] == 8 and rgb.dtype == np.float32
        # the last full 16-frame window ends inside the video
        t = rgb.shape[0]
        assert (t - 1) * 4 + 16 <= info.duration * 30 < t * 4 + 16
        assert rgb.std() > 0 and flow.std() > 0 and not np.allclose(rgb, flow[:, :8])
        assert 1 <= len(info.annotations) <= 15
        for ann in info.annotations:
            assert 0 <= ann.start < ann.end <= info.duration
            assert ann.label.startswith("action_")


def _ground_truth(seed: int, videos_train: int, videos_test: int, classes: int = 20):
    """The ground truth make_synthetic would write, without rendering any features."""
    layouts = sample_layouts(seed, videos_train, videos_test, classes, SynthConfig())
    return layouts_to_ground_truth(layouts, classes, SynthConfig().fps)


def test_lengths_span_under_a_second_to_over_a_minute():
    gt = _ground_truth(seed=0, videos_train=150, videos_test=50)
    lengths = np.array([a.end - a.start for v in gt.values() for a in v.annotations])
    durations = np.array([v.duration for v in gt.values()])
    assert lengths.min() < 1.0 and lengths.max() > 60.0
    assert 2.0 < np.median(lengths) < 6.0
    assert 90 <= durations.min() and durations.max() <= 240
    assert len({a.label for v in gt.values() for a in v.annotations}) == 20


def test_annotations_only_path_matches_written_file(small):
    # so the layout-only tests above examine exactly what make_synthetic writes
    written = json.loads((small / "annotations.json").read_text())["database"]
    gt = _ground_truth(seed=3, videos_train=4, videos_test=2, classes=6)
    assert {v: [[a.start, a.end] for a in i.annotations] for v, i in gt.items()} == {
        v: [a["segment"] for a in e["annotations"]] for v, e in written.items()
    }


def _instance_means(seed: int, videos: int, classes: int, dim: int):
    """Mean feature inside each instance (rgb, flow) and its class, from rendered videos."""
    cfg, meta = SynthConfig(), FeatureMeta()
    protos = make_prototypes(seed, classes, dim, cfg)
    rgb, flow, labels = [], [], []
    for i, lay in enumerate(sample_layouts(seed, videos, 0, classes, cfg)):
        x = render_features(np.random.default_rng(i), lay, protos, cfg, meta)
        times = meta.step_to_seconds(np.arange(len(x)))
        for act in lay.actions:
            lo, hi = np.searchsorted(times, [act.start, act.end])
            hi = max(hi, lo + 1)
            rgb.append(x[lo:hi, :dim].mean(0))
            flow.append(x[lo:hi, dim:].mean(0))
            labels.append(act.cls)
    return np.array(rgb), np.array(flow), np.array(labels)


def _nearest_mean_accuracy(x: np.ndarray, y: np.ndarray, classes: int) -> float:
    half = len(y) // 2
    means = np.stack([x[:half][y[:half] == c].mean(0) for c in range(classes)])
    pred = np.argmin(((x[half:, None] - means[None]) ** 2).sum(-1), axis=1)
    return float((pred == y[half:]).mean())


def _whiten(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    half = len(y) // 2
    means = np.stack([x[:half][y[:half] == c].mean(0) for c in range(int(y.max()) + 1)])
    return x / (x[:half] - means[y[:half]]).std()


def test_flow_stronger_than_rgb_and_the_streams_complement_each_other():
    rgb, flow, y = _instance_means(seed=1, videos=40, classes=20, dim=64)
    acc_rgb = _nearest_mean_accuracy(rgb, y, 20)
    acc_flow = _nearest_mean_accuracy(flow, y, 20)
    # each stream scaled by its own within-class spread (what a per-stream model learns)
    acc_both = _nearest_mean_accuracy(np.hstack([_whiten(rgb, y), _whiten(flow, y)]), y, 20)
    # weaker but real in RGB (chance is 0.05), stronger in flow; their confusion groups differ,
    # so both streams together tell apart classes that each one alone confuses (the context
    # pairs, identical inside, cap all three near 0.75)
    assert 0.3 < acc_rgb < acc_flow - 0.05
    assert acc_both > acc_flow + 0.04


def test_bad_sizes_are_errors(tmp_path):
    with pytest.raises(TalnetError):
        make_synthetic(tmp_path / "x", classes=1, videos_train=1, videos_test=0)
    assert main(["synth", "--out", str(tmp_path / "y"), "--dim", "0"]) == 2
    assert not (tmp_path / "y" / "annotations.json").exists()


def test_cli_writes_dataset(tmp_path, capsys):
    code = main(
        ["synth", "--out", str(tmp_path / "d"), "--videos-train", "2", "--videos-test", "1"]
        + ["--classes", "4", "--dim", "6", "--seed", "7"]
    )
    assert code == 0 and "wrote 3 videos" in capsys.readouterr().out
    assert np.load(tmp_path / "d" / "features" / "synth_test_0000.npy").shape[1] == 12


def test_venue_shift_is_a_training_only_rgb_shortcut():
    assert make_prototypes(0, 6, 16, SynthConfig()).venue is None  # off by default
    cfg, meta, classes, dim = SynthConfig(rgb_venue=1.0), FeatureMeta(), 6, 32
    protos = make_prototypes(0, classes, dim, cfg)
    agreement = {"validation": [], "test": []}
    for i, lay in enumerate(sample_layouts(0, 6, 6, classes, cfg)):
        x = render_features(np.random.default_rng(i), lay, protos, cfg, meta)
        times = meta.step_to_seconds(np.arange(len(x)))
        for act in lay.actions:
            # just before the action: the venue (and the approach pattern), no action yet
            lo, hi = np.searchsorted(times, [act.start - 0.2 * (act.end - act.start), act.start])
            if hi > lo:
                rgb = x[lo:hi, :dim].mean(0)
                agreement[lay.subset].append(float(rgb @ protos.venue[act.cls]) / dim)
    # the class's venue shows in training videos only (amplitude 1, unit-rms pattern)
    assert np.mean(agreement["validation"]) > 0.6
    assert abs(np.mean(agreement["test"])) < 0.35
