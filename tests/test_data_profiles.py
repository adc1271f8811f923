"""Synthetic-benchmark profiles: thumos14 realizes THUMOS'14's statistics; demo is unchanged."""

from __future__ import annotations

import hashlib
import math
import warnings

import numpy as np
import pytest

from talnet.cli.main import main
from talnet.data.profiles import (
    THUMOS14_ALSO_LABELLED,
    THUMOS14_CLASS_INSTANCES,
    THUMOS14_INSTANCES,
    class_counts,
    describe_profile,
    profile_statistics,
    thumos14_targets,
)
from talnet.data.synth import SynthConfig, make_prototypes, make_synthetic
from talnet.data.thumos_profile import CLASSES, DIVING_SHARE, thumos14_ground_truth
from talnet.data.thumos_profile import thumos_prototypes as thumos_protos
from talnet.io.annotations import load_ground_truth
from talnet.io.features import read_meta
from talnet.io.types import Annotation, VideoInfo

# make_synthetic(seed=3, videos_train=4, videos_test=2, classes=6, dim=8) as written before the
# profiles existed: file hashes, and per video (shape, sum, sum of squares) of the features, which
# are compared with a tolerance since a CPU's vectorised exp / tanh may differ in the last bit.
DEMO_ANNOTATIONS_SHA256 = "5c57cfa177a4f0c4ab1359c5d2e46fa0d5ee680ffb7923a75c4d60398a626b12"
DEMO_META_SHA256 = "d0fd9260b9db599a5018c6bc294ca2083b0664f359d7febb45055e76c51b2ae2"
DEMO_FEATURES = {
    "synth_test_0000": ((1508, 16), 898.9548, 19147.5005),
    "synth_test_0001": ((1405, 16), -607.6459, 17827.5769),
    "synth_validation_0000": ((956, 16), -945.8456, 13840.4919),
    "synth_validation_0001": ((895, 16), -459.1195, 11903.2463),
    "synth_validation_0002": ((1203, 16), 2464.4751, 16649.6984),
    "synth_validation_0003": ((900, 16), -389.4228, 10027.676),
}

# How close the default sizes (200 training, 213 test videos, seed 0) must come to THUMOS'14.
QUANTILE_TOLERANCE = 0.15  # relative, every published quantile but the maximum
MAX_FACTOR = 1.5  # the maximum, within this factor either way
COVERAGE_TOLERANCE = 0.05  # absolute
CLASS_TOLERANCE = 0.15  # relative, each class's share of the instances


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_demo_profile_writes_what_it_wrote_before_the_profiles(tmp_path):
    out = make_synthetic(tmp_path, seed=3, videos_train=4, videos_test=2, classes=6, dim=8)
    assert _sha256(out / "annotations.json") == DEMO_ANNOTATIONS_SHA256
    assert _sha256(out / "features" / "meta.json") == DEMO_META_SHA256
    written = sorted(p.stem for p in (out / "features").glob("*.npy"))
    assert written == sorted(DEMO_FEATURES)
    for vid, (shape, total, squares) in DEMO_FEATURES.items():
        x = np.load(out / "features" / f"{vid}.npy").astype(np.float64)
        assert x.shape == shape
        assert x.sum() == pytest.approx(total, abs=0.01)
        assert (x**2).sum() == pytest.approx(squares, rel=1e-6)


@pytest.fixture(scope="module")
def thumos_gt():
    return thumos14_ground_truth(seed=0)  # the default sizes, annotations only (about a second)


@pytest.mark.parametrize("subset", ["test", "validation"])
def test_thumos14_profile_realizes_thumos14_statistics(thumos_gt, subset):
    stats, targets = profile_statistics(thumos_gt, subset), thumos14_targets()
    assert stats["videos"] == (213 if subset == "test" else 200)
    for key, target in targets.items():
        value = stats[key]
        if key.endswith(" max"):
            assert target / MAX_FACTOR <= value <= target * MAX_FACTOR, key
        elif key.split()[-1].startswith("p") or key.endswith("mean"):
            assert value == pytest.approx(target, rel=QUANTILE_TOLERANCE), key
    assert stats["coverage"] == pytest.approx(targets["coverage"], abs=COVERAGE_TOLERANCE)
    assert stats["videos without instances"] <= 2  # THUMOS'14's test set has one
    assert stats["instances"] / stats["videos"] == pytest.approx(THUMOS14_INSTANCES / 213, rel=0.05)


def test_every_cliff_diving_instance_is_also_a_diving_instance(thumos_gt):
    cliffs = 0
    for info in thumos_gt.values():
        diving = {(a.start, a.end) for a in info.annotations if a.label == "Diving"}
        for a in info.annotations:
            if a.label == "CliffDiving":
                cliffs += 1
                assert (a.start, a.end) in diving, info.video_id
    assert cliffs > 50
    assert THUMOS14_ALSO_LABELLED == {"CliffDiving": "Diving"}


def test_class_counts_are_thumos14s_skewed_counts(thumos_gt):
    assert sum(THUMOS14_CLASS_INSTANCES.values()) == THUMOS14_INSTANCES
    published = {"BasketballDunk": 488, "PoleVault": 399, "Diving": 388}
    published |= {"BaseballPitch": 41, "GolfSwing": 36}
    assert published.items() <= THUMOS14_CLASS_INSTANCES.items()
    assert sorted(CLASSES) == sorted(THUMOS14_CLASS_INSTANCES)
    counts = class_counts(thumos_gt, "test")
    assert set(counts) == set(CLASSES)
    total = sum(counts.values())
    for name, target in THUMOS14_CLASS_INSTANCES.items():
        share = counts[name] / total
        assert share == pytest.approx(target / THUMOS14_INSTANCES, rel=CLASS_TOLERANCE), name
    ranked = sorted(counts, key=counts.get)
    assert ranked[-1] == "BasketballDunk" and set(ranked[:2]) == {"GolfSwing", "BaseballPitch"}
    assert counts["BasketballDunk"] > 10 * counts["GolfSwing"]


def test_cliff_diving_looks_mostly_like_diving_in_both_streams():
    cfg = SynthConfig()
    plain, protos = make_prototypes(0, 20, 64, cfg), thumos_protos(0, 20, 64, cfg)
    cliff, diving = CLASSES.index("CliffDiving"), CLASSES.index("Diving")
    for stream in ("rgb", "flow"):
        a, b = protos.phases[stream][cliff], protos.phases[stream][diving]
        cosine = (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
        assert np.all(cosine > DIVING_SHARE - 0.15), stream
        others = [c for c in range(20) if c != cliff]
        np.testing.assert_array_equal(protos.phases[stream][others], plain.phases[stream][others])


def test_profile_statistics_count_a_doubly_labelled_instance_once_in_coverage():
    anns = [
        Annotation("CliffDiving", 1.0, 3.0),
        Annotation("Diving", 1.0, 3.0),
        Annotation("Ambiguous", 5.0, 9.0),
        Annotation("PoleVault", 2.0, 4.0),
    ]
    gt = {"v": VideoInfo("v", "test", 10.0, 30.0, anns), "w": VideoInfo("w", "test", 10.0, 30.0)}
    stats = profile_statistics(gt, "test")
    assert stats["instances"] == 3 and stats["videos without instances"] == 1
    assert stats["coverage"] == pytest.approx(3.0 / 20.0)
    assert stats["action seconds p50"] == pytest.approx(2.0)
    assert class_counts(gt) == {"CliffDiving": 1, "Diving": 1, "PoleVault": 1}


def test_cli_thumos14_prints_the_statistics_of_what_it_wrote(tmp_path, capsys):
    out = tmp_path / "t"
    code = main(
        ["synth", "--profile", "thumos14", "--out", str(out), "--videos-train", "3"]
        + ["--videos-test", "3", "--dim", "4", "--seed", "1"]
    )
    printed = capsys.readouterr().out
    assert code == 0 and "wrote 6 videos" in printed
    for row in ("instances per video p50", "video seconds p10", "action seconds p99", "coverage"):
        assert row in printed
    assert "BasketballDunk" in printed and "GolfSwing" in printed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CliffDiving + Diving on one segment, as in THUMOS'14
        written = load_ground_truth(out / "annotations.json")
    assert describe_profile(written) in printed
    assert written == thumos14_ground_truth(1, 3, 3)
    meta = read_meta(out / "features")
    assert meta.dims == [4, 4] and meta.extra["synthetic"]["profile"] == "thumos14"


def test_cli_thumos14_refuses_another_class_count(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["synth", "--profile", "thumos14", "--out", str(out), "--classes", "5"]) == 2
    assert "20 classes" in capsys.readouterr().err and not out.exists()


def test_thumos14_layouts_are_deterministic_and_scale_down():
    first = thumos14_ground_truth(5, 2, 4)
    assert first == thumos14_ground_truth(5, 2, 4)
    assert first != thumos14_ground_truth(6, 2, 4)
    assert len(first) == 6 and not math.isnan(profile_statistics(first)["coverage"])
