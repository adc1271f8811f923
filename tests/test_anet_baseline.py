"""benchmarks/anet_baseline.py: the whole-video x mean-feature logistic-regression baseline."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from talnet.data.anet_profile import make_activitynet
from talnet.data.synth_types import SynthConfig
from talnet.io.annotations import load_ground_truth
from talnet.io.features import load_features, read_meta
from talnet.io.types import Annotation, VideoInfo

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "anet_baseline.py"
# Classes told apart in every stream: no shared appearance, no scene offsets or drift, a strong
# signal (on the profile's defaults 3 classes share one confusion group)
SEPARABLE = SynthConfig(
    rgb_shared=0.0, flow_shared=0.0, rgb_scene=0.0, flow_scene=0.0, rgb_drift=0.0,
    flow_drift=0.0, rgb_signal=1.0, flow_signal=1.0,
)  # fmt: skip


@pytest.fixture(scope="module")
def ab():
    spec = importlib.util.spec_from_file_location("benchmarks_anet_baseline", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def anet(tmp_path_factory):
    """18 training and 12 validation ActivityNet-shaped videos of 3 separable classes, 8-d."""
    return make_activitynet(
        tmp_path_factory.mktemp("anet"), videos_train=18, videos_test=12, classes=3, dim=8,
        config=SEPARABLE, progress=False,
    )  # fmt: skip


def _gt(folder: Path, subset: str):
    return load_ground_truth(folder / "annotations.json", subset)


def test_mean_feature_baseline_labels_whole_videos_with_their_top_two_classes(ab, anet):
    gt_train, gt_test = _gt(anet, "training"), _gt(anet, "validation")
    feats = anet / "features"
    meta = read_meta(feats)
    dets = ab.mean_feature_baseline(gt_train, gt_test, feats, meta)
    assert sorted(dets) == sorted(gt_test)
    classes = {ab.video_class(info) for info in gt_train.values()}
    for vid, found in dets.items():
        assert len(found) == 2 and len({d.label for d in found}) == 2
        assert {d.label for d in found} <= classes
        assert found[0].score >= found[1].score and found[0].score + found[1].score <= 1 + 1e-9
        length = next(iter(load_features(feats, vid, meta).values())).shape[0]
        duration = meta.for_video(vid, feats).duration(length)
        assert all(d.start == 0.0 and d.end == duration for d in found)  # the whole video
        assert abs(duration - gt_test[vid].duration) < meta.stride / meta.fps  # one step
    assert ab.video_accuracy(gt_test, dets) >= 0.9  # chance: 1/3
    again = ab.mean_feature_baseline(gt_train, gt_test, feats, meta)
    assert again == dets  # zeros, L-BFGS, float64: the same numbers every time


def test_video_class_is_the_majority_of_its_instances(ab):
    def video(*labels: str) -> VideoInfo:
        anns = [Annotation(label, float(i), i + 1.0) for i, label in enumerate(labels)]
        return VideoInfo("v", "training", 10.0, None, anns)

    assert ab.video_class(video("b", "a", "b")) == "b"
    assert ab.video_class(video("b", "a")) == "a"  # a tie: the first name
    assert ab.video_class(video("Ambiguous", "c")) == "c"
    assert ab.video_class(video()) is None  # left out of the fit


def test_script_without_a_run_prints_the_rows_that_need_no_model(anet, tmp_path):
    out = tmp_path / "rows.json"
    cmd = [sys.executable, str(SCRIPT), str(anet / "annotations.json"), str(anet / "features"),
           "--out", str(out), "--threads", "1"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "whole video x mean-feature logistic regression (top-2)" in done.stdout
    assert "its video-level top-1 accuracy" in done.stdout and "TAL-Net" not in done.stdout
    saved = json.loads(out.read_text())
    assert set(saved["rows"]) == {
        "whole video x mean-feature logistic regression (top-2)",
        "whole video x oracle video classes",
    }
    assert saved["mean_feature_top1"] >= 90 and saved["videos"] == 12
