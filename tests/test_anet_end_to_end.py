"""ActivityNet end to end on tiny sizes: `talnet synth --profile activitynet` realizes ActivityNet
v1.3's statistics, and the anet13 preset trains, detects and is scored with the ActivityNet
protocol from features resampled to N steps (CLI, as the README runs it)."""

from __future__ import annotations

import json
import warnings

import pytest

from talnet.cli.main import main
from talnet.config import load_config, save_config
from talnet.data.anet_profile import (
    ACTIVITYNET_TARGETS,
    activitynet_statistics,
    activitynet_synthetic_ground_truth,
    describe_activitynet,
)
from talnet.evaluate.detection import ACTIVITYNET_TIOUS
from talnet.io.annotations import load_ground_truth
from talnet.io.features import read_meta
from talnet.io.results import load_detections

# How close 2,000 training and 1,000 validation videos (seed 0) must come to the targets.
MEAN_TOLERANCE = 0.05  # relative: instances per video, video seconds
SHARE_TOLERANCE = 0.05  # absolute: shares of videos, coverage


@pytest.fixture(scope="module")
def anet_gt():
    return activitynet_synthetic_ground_truth(0, 2000, 1000)  # annotations only, ~2 s


@pytest.mark.parametrize("subset", ["training", "validation"])
def test_activitynet_profile_realizes_activitynet_statistics(anet_gt, subset):
    stats = activitynet_statistics(anet_gt, subset)
    assert stats["videos"] == (2000 if subset == "training" else 1000)
    for key, (target, _published) in ACTIVITYNET_TARGETS.items():
        if key == "classes":
            assert stats[key] == target == 200
        elif key.endswith("mean"):
            assert stats[key] == pytest.approx(target, rel=MEAN_TOLERANCE), key
        else:
            assert stats[key] == pytest.approx(target, abs=SHARE_TOLERANCE), key
    # durations of about two minutes with a spread; long actions, one class per video
    assert 40 < stats["video seconds p10"] < 70 < 90 < stats["video seconds p50"] < 130
    assert stats["video seconds p90"] > 170
    for info in anet_gt.values():
        assert len({a.label for a in info.annotations}) == 1
        assert all(0 <= a.start < a.end <= info.duration for a in info.annotations)


def test_activitynet_profile_classes_and_subsets(anet_gt):
    assert {info.subset for info in anet_gt.values()} == {"training", "validation"}
    small = activitynet_synthetic_ground_truth(1, 20, 10, classes=5)
    assert activitynet_statistics(small)["classes"] == 5
    assert small == activitynet_synthetic_ground_truth(1, 20, 10, classes=5)
    assert small != activitynet_synthetic_ground_truth(2, 20, 10, classes=5)


def tiny_anet13(path):
    """anet13 (anchors as fractions of N, video-level classifier) with tiny widths, 1 epoch."""
    cfg = load_config("anet13")
    m = cfg.model
    m.spn_reduce_dim, m.tower_dim, m.soi_reduce_dim, m.soi_bins, m.fc_dim = 8, 8, 8, 4, 16
    m.video_hidden = 8
    cfg.proposals.pre_nms_train, cfg.proposals.post_nms_train = 100, 30
    cfg.train.epochs = 1
    save_config(path, cfg)
    return path


def test_anet13_trains_detects_and_scores_activitynet_on_synth_activitynet(tmp_path, capsys):
    data, feats, run = tmp_path / "anet", tmp_path / "feats32", tmp_path / "run"
    assert main(["synth", "--profile", "activitynet", "--out", str(data), "--classes", "3",
                 "--videos-train", "4", "--videos-test", "2", "--dim", "8", "--seed", "3"]) == 0
    printed = capsys.readouterr().out
    gt_path = data / "annotations.json"
    assert describe_activitynet(load_ground_truth(gt_path)) in printed
    assert "ANet1.3" in printed and "coverage" in printed
    assert main(["resample-features", str(data / "features"), str(feats), "--steps", "32",
                 "--ground-truth", str(gt_path), "--quiet"]) == 0  # fmt: skip
    assert read_meta(feats).resample_steps == 32
    assert main(["check", "--features", str(feats), "--ground-truth", str(gt_path)]) == 0
    checked = capsys.readouterr().out
    assert "32 to 32 steps" in checked and "resampled to 32 steps" in checked
    config = tiny_anet13(tmp_path / "tiny_anet13.yaml")
    assert main(["train", "--ground-truth", str(gt_path), "--features", str(feats),
                 "--out", str(run), "--config", str(config), "--train-subset", "training",
                 "--val-subset", "validation", "--threads", "1", "--quiet"]) == 0  # fmt: skip
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert "video_cls" in log[0] and "val_mAP_avg" in log[0]
    saved = load_config(run / "config.yaml")
    assert saved.model.anchor_unit == "steps" and max(saved.model.anchors) == 32.0

    dets_path = tmp_path / "dets.json"
    assert main(["detect", "--checkpoint", str(run / "checkpoint.pt"), "--features", str(feats),
                 "--ground-truth", str(gt_path), "--subset", "validation", "--out",
                 str(dets_path), "--quiet"]) == 0  # fmt: skip
    dets = load_detections(dets_path)
    val = load_ground_truth(gt_path, "validation")
    assert set(dets) == set(val)
    for vid, found in dets.items():
        assert 0 < len(found) <= 100
        assert len({d.label for d in found}) <= 2  # the video's top-2 classes
        assert all(0.0 <= d.start < d.end <= val[vid].duration + 1e-9 for d in found)
    capsys.readouterr()

    # an external score file naming the videos with the v_ prefix, CUHK's format
    classes = sorted({a.label for info in load_ground_truth(gt_path).values()
                      for a in info.annotations})  # fmt: skip
    scores = {f"v_{vid}": [1.0 if c == info.annotations[0].label else 0.0 for c in classes]
              for vid, info in val.items()}  # fmt: skip
    (tmp_path / "cuhk.json").write_text(json.dumps({"results": scores, "class": classes}))
    oracle = tmp_path / "oracle.json"
    assert main(["detect", "--checkpoint", str(run / "checkpoint.pt"), "--features", str(feats),
                 "--ground-truth", str(gt_path), "--subset", "validation", "--video-scores",
                 str(tmp_path / "cuhk.json"), "--out", str(oracle), "--quiet"]) == 0  # fmt: skip
    for vid, found in load_detections(oracle).items():
        # the other class has probability 0: its detections score 0 and are dropped
        assert found and {d.label for d in found} == {val[vid].annotations[0].label}
    capsys.readouterr()

    assert main(["evaluate", "--ground-truth", str(gt_path), "--predictions", str(dets_path),
                 "--subset", "validation", "--protocol", "activitynet", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["tious"] == [round(t, 12) for t in ACTIVITYNET_TIOUS]
    # the report picks the ActivityNet table from the run's config
    run_view = tmp_path / "view"
    run_view.mkdir()
    for name in ("log.jsonl", "config.yaml"):
        (run_view / name).write_text((run / name).read_text())
    (run_view / "detections.json").write_text(dets_path.read_text())
    (run_view / "annotations.json").write_text(gt_path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["report", "--run", str(run_view), "--out", str(tmp_path / "report")]) == 0
    html = (tmp_path / "report" / "index.html").read_text()
    assert "0.95" in html and "0.75" in html
