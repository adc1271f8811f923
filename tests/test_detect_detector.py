import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from model_factory import tiny_config, tiny_data

from talnet.config import edit_config
from talnet.detect import detect_features
from talnet.detect.detector import PROPOSAL_LABEL, Detector
from talnet.errors import TalnetError
from talnet.evaluate.detection import evaluate_detection
from talnet.io.annotations import load_ground_truth
from talnet.io.features import load_features, read_meta
from talnet.io.results import load_detections
from talnet.model.stream import fuse
from talnet.model.talnet import TalNet
from talnet.train.loop import FitOptions, train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("det")
    data = tiny_data(folder / "data")
    result = train(
        data / "annotations.json", data / "features", folder / "run", tiny_config(1),
        options=FitOptions(progress=False, log_fn=lambda _m: None),
    )  # fmt: skip
    return data, result.checkpoint


def _evaluate(data, predictions, *flags: str) -> subprocess.CompletedProcess:
    """`talnet evaluate` of a results file against the tiny data's ground truth."""
    cmd = [sys.executable, "-m", "talnet.cli.main", "evaluate", "--ground-truth"]
    cmd += [str(data / "annotations.json"), "--predictions", str(predictions), *flags]
    return subprocess.run(cmd, capture_output=True, text=True, check=False)


def test_detector_returns_sorted_segments_in_seconds(trained):
    data, ckpt = trained
    detector = Detector.from_checkpoint(ckpt)
    detector.config.detect.max_detections = 30
    meta = read_meta(data / "features")
    feats = load_features(data / "features", "synth_test_0000", meta)
    dets = detector.detect(feats)
    assert 0 < len(dets) <= 30
    scores = [d.score for d in dets]
    assert scores == sorted(scores, reverse=True)
    length_s = (len(feats["rgb"]) - 1) * meta.stride / meta.fps + meta.window / meta.fps
    assert all(0 <= d.start < d.end <= length_s + 1e-6 for d in dets)
    assert {d.label for d in dets} <= {"action_00", "action_01", "action_02"}


def test_detector_rejects_wrong_features(trained):
    detector = Detector.from_checkpoint(trained[1])
    with pytest.raises(TalnetError, match="lack stream"):
        detector.detect({"rgb": np.zeros((50, 8), np.float32)})
    with pytest.raises(TalnetError, match="expected"):
        detector.detect({"rgb": np.zeros((50, 9), np.float32), "flow": np.zeros((50, 8))})


def test_bad_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "c.pt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(TalnetError, match="c.pt"):
        Detector.from_checkpoint(path)
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(TalnetError, match="not a talnet checkpoint"):
        Detector.from_checkpoint(path)


def test_windowed_proposals_equal_a_whole_video_pass():
    torch.manual_seed(0)
    config = tiny_config()
    cfg = config.model
    config.detect.window_steps = 4 * max(cfg.anchors)
    net = TalNet({"rgb": 8, "flow": 8}, 3, config).eval()
    feats = {"rgb": torch.randn(700, 8), "flow": torch.randn(700, 8)}
    inputs = net.branch_inputs(feats)
    with torch.no_grad():
        whole_obj, whole_off = fuse(net.propose(inputs))
        win_obj, win_off = net.propose_windowed(inputs)
    assert win_obj.shape == whole_obj[0].shape == (len(cfg.anchors), 700, 2)
    assert torch.allclose(win_obj, whole_obj[0], atol=1e-5)
    assert torch.allclose(win_off, whole_off[0], atol=1e-5)


def test_detect_cli_output_loads_and_evaluates(trained, tmp_path):
    data, ckpt = trained
    out = tmp_path / "dets.json"
    cmd = [
        sys.executable, "-m", "talnet.cli.main", "detect", "--checkpoint", str(ckpt),
        "--features", str(data / "features"), "--ground-truth", str(data / "annotations.json"),
        "--subset", "test", "--out", str(out), "--max-detections", "20", "--quiet",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    dets = load_detections(out)
    gt = load_ground_truth(data / "annotations.json", "test")
    assert set(dets) == set(gt) and all(len(v) <= 20 for v in dets.values())
    assert sum(len(v) for v in dets.values()) > 0
    raw = json.loads(out.read_text())["results"]["synth_test_0000"]
    assert [d["score"] for d in raw] == sorted((d["score"] for d in raw), reverse=True)
    report = evaluate_detection(gt, dets)
    assert 0.0 <= report.average <= 1.0
    evaluate = _evaluate(data, out, "--subset", "test")
    assert evaluate.returncode == 0, evaluate.stderr


def test_detect_cli_refuses_missing_videos(trained, tmp_path):
    data, ckpt = trained
    cmd = [
        sys.executable, "-m", "talnet.cli.main", "detect", "--checkpoint", str(ckpt),
        "--features", str(data / "features"), "--video-ids", "nope", "--out", str(tmp_path / "d"),
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 2 and "talnet: error:" in run.stderr
    assert not (tmp_path / "d").exists()


def test_proposals_are_the_first_stage_ranked_and_budgeted(trained, tmp_path):
    data, ckpt = trained
    loaded = Detector.from_checkpoint(ckpt)
    budget = {"post_nms_test": 7, "post_nms_per_step_test": 0.0}
    detector = loaded.with_config(edit_config(loaded.config, {"proposals": budget}))
    assert loaded.config.proposals.post_nms_test != 7  # the loaded detector is left as it was
    feats = load_features(data / "features", "synth_test_0000", read_meta(data / "features"))
    props = detector.propose(feats)
    assert 0 < len(props) <= 7 and {p.label for p in props} == {PROPOSAL_LABEL}
    scores = [p.score for p in props]
    assert scores == sorted(scores, reverse=True) and all(0 < s < 1 for s in scores)
    # the same proposals the classifier sees: the model's own first stage, in seconds
    tensors = {k: torch.from_numpy(v) for k, v in feats.items()}
    with torch.inference_mode():
        segments, objectness = detector.model.proposals(tensors)
    assert np.allclose(scores, objectness.numpy()[: len(scores)])
    out = tmp_path / "props.json"
    cmd = [
        sys.executable, "-m", "talnet.cli.main", "detect", "--checkpoint", str(ckpt),
        "--features", str(data / "features"), "--proposals", "--out", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 0 and "proposals in 6 videos" in run.stdout, run.stderr
    evaluate = _evaluate(data, out, "--proposals", "--json")
    assert evaluate.returncode == 0, evaluate.stderr
    assert 0.0 < json.loads(evaluate.stdout)["ar100"] <= 1.0


def test_detect_features_api(trained):
    """detect_features over a folder: one entry per video of the folder, each holding exactly
    what Detector.detect gives for that video: known classes, segments inside the video, scores
    in (0, 1] best first."""
    data, ckpt = trained
    detector = Detector.from_checkpoint(ckpt)
    feats = data / "features"
    dets = detect_features(detector, feats, progress=False)
    gt = load_ground_truth(data / "annotations.json")
    assert sorted(dets) == sorted(gt) and len(dets) == 6  # 4 training and 2 test videos
    meta = read_meta(feats)
    for video_id, found in dets.items():
        assert found, video_id
        assert {d.label for d in found} <= {"action_00", "action_01", "action_02"}
        duration = gt[video_id].duration
        assert all(0 <= d.start < d.end <= duration for d in found), video_id
        scores = [d.score for d in found]
        assert scores == sorted(scores, reverse=True) and all(0 < s <= 1 for s in scores)
        assert found == detector.detect(load_features(feats, video_id, meta), meta), video_id


def _regridded(data, folder, **changes):
    """A copy of the tiny features whose meta.json declares another grid or other streams."""
    import shutil

    from talnet.io.features import write_meta

    shutil.copytree(data / "features", folder)
    meta = read_meta(folder)
    for key, value in changes.items():
        setattr(meta, key, value)
    write_meta(folder, meta)
    return folder


GRID_CHANGES = [
    ({"stride": 16}, "stride 4 in training, 16 here"),
    ({"fps": 25.0}, "fps 30 in training, 25 here"),
    ({"window": 8}, "window 16 in training, 8 here"),
    ({"streams": ["rgb", "depth"]}, "stream(s) ['flow'] missing"),
]


@pytest.mark.parametrize(("changes", "named"), GRID_CHANGES)
def test_detector_refuses_features_on_another_grid(trained, tmp_path, changes, named):
    data, ckpt = trained
    feats = _regridded(data, tmp_path / "f", **changes)
    detector = Detector.from_checkpoint(ckpt)
    with pytest.raises(TalnetError, match="do not fit the checkpoint") as err:
        detect_features(detector, feats, progress=False)
    assert named in str(err.value)
    meta = read_meta(feats)
    arrays = {s: np.zeros((40, 8), np.float32) for s in meta.streams}
    with pytest.raises(TalnetError, match=re.escape(named)):
        detector.detect(arrays, meta)


@pytest.mark.parametrize(("changes", "named"), GRID_CHANGES[:2])
def test_detect_cli_refuses_features_on_another_grid(trained, tmp_path, changes, named):
    data, ckpt = trained
    feats = _regridded(data, tmp_path / "f", **changes)
    out = tmp_path / "dets.json"
    cmd = [
        sys.executable, "-m", "talnet.cli.main", "detect", "--checkpoint", str(ckpt),
        "--features", str(feats), "--out", str(out), "--quiet",
    ]  # fmt: skip
    run = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert run.returncode == 2 and named in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1 and not out.exists()


def test_proposals_ranked_by_the_second_stage(trained):
    """detect.proposal_rank: the same proposals, re-scored by the classifier's actionness
    (times the objectness for "product") and re-ordered best first."""
    data, ckpt = trained
    loaded = Detector.from_checkpoint(ckpt)
    feats = load_features(data / "features", "synth_test_0000", read_meta(data / "features"))
    tensors = {k: torch.from_numpy(v) for k, v in feats.items()}
    model = loaded.model
    with torch.inference_mode():
        segments, objectness = model.proposals(tensors)
        logits, _ = fuse(model.classify(model.branch_inputs(tensors), segments))
        actionness = 1.0 - torch.softmax(logits, dim=-1)[:, 0]
    by_objectness = {tuple(s): float(o) for s, o in zip(segments.tolist(), objectness, strict=True)}
    assert loaded.config.detect.step_score_weight == 0  # the classifier's actionness alone
    for rank, expected in (("actionness", actionness), ("product", actionness * objectness)):
        ranked = loaded.with_config(edit_config(loaded.config, {"detect": {"proposal_rank": rank}}))
        with torch.inference_mode():
            got, scores = ranked.model.proposals(tensors)
        assert sorted(map(tuple, got.tolist())) == sorted(by_objectness)  # the same set
        assert torch.equal(scores, scores.sort(descending=True).values)
        assert torch.allclose(scores.sort().values, expected.float().sort().values, atol=1e-6)
    assert not torch.equal(got, segments)  # re-ordered
    with pytest.raises(TalnetError, match="detect.proposal_rank"):
        edit_config(loaded.config, {"detect": {"proposal_rank": "tiou"}})


def test_boundary_voting_moves_edges_and_keeps_scores(trained):
    """detect.boundary_vote: the same detections (labels, scores, order), some of them with
    edges moved to their suppressed cluster's weighted mean; 0 leaves them as they were."""
    data, ckpt = trained
    plain = Detector.from_checkpoint(ckpt)
    feats = load_features(data / "features", "synth_test_0000", read_meta(data / "features"))
    before = plain.detect(feats)
    voting = plain.with_config(edit_config(plain.config, {"detect": {"boundary_vote": 0.5}}))
    after = voting.detect(feats)
    assert [(d.label, d.score) for d in after] == [(d.label, d.score) for d in before]
    pairs = zip(after, before, strict=True)
    moved = [abs(a.start - b.start) + abs(a.end - b.end) for a, b in pairs]
    assert max(moved) > 0 and all(a.start < a.end for a in after)
    with pytest.raises(TalnetError, match="detect.boundary_vote"):
        edit_config(plain.config, {"detect": {"boundary_vote": 1.5}})
