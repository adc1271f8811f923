"""The anet13 preset: anchors relative to the resampled length, a video-level classifier trained
with the model, and detections scored as proposal score x video-level class probability (the
model's own head, or an external file in CUHK's format, video ids with or without "v_")."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch

from talnet.config import Config, load_config, preset_names, resolve_anchors
from talnet.detect.detector import Detector
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta
from talnet.io.video_scores import VideoScores, load_video_scores, save_video_scores
from talnet.model.coder import SegmentCoder
from talnet.model.proposals import ranked_proposals, whole_video_segments
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps
from talnet.model.video_head import VIDEO_LOSS, video_loss


def tiny_anet(classes: int = 3, steps: int = 32) -> Config:
    """anet13 with tiny widths, anchors resolved for `steps` resampled steps."""
    cfg = load_config("anet13")
    m = cfg.model
    m.spn_reduce_dim, m.tower_dim, m.soi_reduce_dim, m.soi_bins, m.fc_dim = 8, 8, 8, 4, 16
    m.video_hidden = 8
    cfg.proposals.pre_nms_train, cfg.proposals.post_nms_train = 100, 30
    return resolve_anchors(cfg, steps)


def test_anet13_preset_registered_and_resolved_against_n():
    assert "anet13" in preset_names()
    cfg = load_config("anet13")
    assert load_config("configs/anet13.yaml").to_dict() == cfg.to_dict()
    assert cfg.model.anchor_unit == "video" and max(cfg.model.anchors) == 1.0
    assert cfg.model.video_classifier and cfg.detect.class_scores == "video"
    assert cfg.detect.video_top_k == 2 and cfg.evaluate.protocol == "activitynet"
    # otherwise the paper's recipe and widths
    paper = Config().to_dict()
    for section in ("train", "proposals"):
        for key, value in paper[section].items():
            assert cfg.to_dict()[section][key] == value, key
    assert cfg.model.fc_dim == 1024 and cfg.model.tower_dim == 256
    for n in (128, 256):
        resolved = resolve_anchors(cfg, n)
        assert resolved.model.anchor_unit == "steps"
        assert resolved.model.anchors[0] == n / 64 and resolved.model.anchors[-1] == n
    assert cfg.model.anchor_unit == "video"  # the preset itself is left as it was
    with pytest.raises(TalnetError, match="needs features resampled"):
        resolve_anchors(cfg, None, "feats")
    with pytest.raises(TalnetError, match="resolve_anchors"):
        TalNet({"rgb": 4}, 3, cfg)
    assert resolve_anchors(load_config("cpu_fast"), 128) == load_config("cpu_fast")


@pytest.mark.parametrize(
    "section, key, value, match",
    [
        ("detect", "class_scores", "clip", "detect.class_scores"),
        ("detect", "proposal_score", "iou", "detect.proposal_score"),
        ("evaluate", "protocol", "coco", "evaluate.protocol"),
        ("model", "video_classifier", False, "needs model.video_classifier"),
        ("model", "anchors", [0.5, 2.0], "fractions in"),
    ],
)
def test_bad_anet_settings_are_refused(section, key, value, match):
    raw = load_config("anet13").to_dict()
    raw[section][key] = value
    with pytest.raises(TalnetError, match=match):
        Config.from_dict(raw, "x.yaml")


def test_video_loss_is_cross_entropy_against_the_videos_classes():
    logits = torch.tensor([2.0, 0.0, -1.0])
    logp = torch.log_softmax(logits, 0)
    assert video_loss(logits, torch.tensor([1, 1])) == pytest.approx(-logp[0].item())
    two = video_loss(logits, torch.tensor([1, 3]))
    assert two == pytest.approx(-(logp[0] + logp[2]).item() / 2)
    assert video_loss(logits, torch.tensor([], dtype=torch.long)) == 0.0


def test_video_head_trains_with_its_own_loss_term():
    torch.manual_seed(0)
    model = TalNet({"rgb": 4, "flow": 4}, 3, tiny_anet())
    assert model.loss_names[-1] == VIDEO_LOSS
    feats = {"rgb": torch.randn(32, 4), "flow": torch.randn(32, 4)}
    gt = GroundTruthSteps(torch.tensor([[3.0, 20.0]]), torch.tensor([2]))
    _, losses = model(feats, gt, torch.Generator().manual_seed(0))
    assert losses[VIDEO_LOSS] > 0
    total = sum(losses[n] for n in model.loss_names)
    assert losses["loss"].item() == pytest.approx(total.item())
    losses["loss"].backward()
    assert model.video_head.net[0].weight.grad.abs().sum() > 0
    probs = model.eval().video_probabilities(feats)
    assert probs.shape == (3,) and probs.sum().item() == pytest.approx(1.0, abs=1e-6)
    # the THUMOS presets have no head and the four loss terms of before
    assert TalNet({"rgb": 4}, 3, load_config("cpu_fast")).loss_names == (
        "spn_cls", "spn_reg", "cls_cls", "cls_reg",
    )  # fmt: skip


def stubbed_model(proposal_score: str = "actionness") -> TalNet:
    """A model whose proposals and classifier outputs are fixed by hand: two proposals in steps
    [2, 10] and [20, 30] of objectness 0.9 and 0.5, background probabilities 0.2 and 0.5 (so
    actionness 0.8 and 0.5), offsets 0 (segments stay the proposals)."""
    cfg = tiny_anet(classes=3)
    cfg.detect.proposal_score = proposal_score
    model = TalNet({"rgb": 4}, 3, cfg).eval()
    proposals = torch.tensor([[2.0, 10.0], [20.0, 30.0]])
    probs = torch.tensor([[0.2, 0.3, 0.3, 0.2], [0.5, 0.1, 0.1, 0.3]])
    model._window_proposals = lambda video, actionness=None: (
        proposals,
        torch.tensor([0.9, 0.5]),
    )
    model._classify_maps = lambda names, fmaps, props: [(probs.log(), torch.zeros(2, 4, 2))]
    return model


@pytest.mark.parametrize(
    "proposal_score, base",
    [("actionness", [0.8, 0.5]), ("objectness", [0.9, 0.5]), ("product", [0.72, 0.25])],
)
def test_scores_are_proposal_score_times_video_class_probability(proposal_score, base):
    model = stubbed_model(proposal_score)
    video = torch.tensor([0.1, 0.6, 0.3])  # top 2: class 1 (0.6), class 2 (0.3)
    found = model({"rgb": torch.zeros(32, 4)}, video_probs=video)
    got = sorted(
        zip(found.classes.tolist(), found.segments.tolist(), found.scores.tolist(), strict=True),
        key=lambda d: -d[2],
    )
    want = sorted(
        [(c, seg, p * b) for c, p in ((1, 0.6), (2, 0.3))
         for seg, b in (([2.0, 10.0], base[0]), ([20.0, 30.0], base[1]))],
        key=lambda d: -d[2],
    )  # fmt: skip
    assert [(c, s) for c, s, _ in got] == [(c, s) for c, s, _ in want]
    np.testing.assert_allclose([p for *_, p in got], [p for *_, p in want], rtol=1e-5)
    # hand-checked: proposal [2, 10] x class 1 = 0.8 x 0.6 = 0.48 (actionness)
    if proposal_score == "actionness":
        assert got[0][0] == 1 and got[0][2] == pytest.approx(0.48, rel=1e-5)
    model.config.detect.video_top_k = 1
    found = model({"rgb": torch.zeros(32, 4)}, video_probs=video)
    assert found.classes.tolist() == [1, 1]


def test_model_uses_its_own_video_head_without_a_score_file():
    model = stubbed_model()
    feats = {"rgb": torch.randn(32, 4)}
    own = model.video_probabilities(feats)
    top = own.topk(2)
    found = model(feats)
    assert set(found.classes.tolist()) == set(top.indices.tolist())
    best = found.scores.max().item()
    assert best == pytest.approx(0.8 * top.values[0].item(), rel=1e-5)


def write_scores(path, results, classes):
    path.write_text(json.dumps({"results": results, "class": classes}))
    return path


def test_video_score_file_in_cuhk_format(tmp_path):
    path = write_scores(
        tmp_path / "cuhk.json", {"abc": [0.1, 0.6, 0.3], "v_def": [0.5, 0.25, 0.25]},
        ["Long jump", "Discus throw", "Washing hands"],
    )  # fmt: skip
    scores = load_video_scores(path)
    np.testing.assert_array_equal(scores.lookup("v_abc"), [0.1, 0.6, 0.3])  # prefix added
    np.testing.assert_array_equal(scores.lookup("def"), [0.5, 0.25, 0.25])  # prefix dropped
    assert scores.lookup("zzz") is None
    ordered = scores.for_classes(["Discus throw", "Long jump", "Washing hands"])
    np.testing.assert_array_equal(ordered.lookup("abc"), [0.6, 0.1, 0.3])
    with pytest.raises(TalnetError, match=r"cuhk.json: video scores lack 1 of the model's"):
        scores.for_classes(["Discus throw", "Surfing"])
    save_video_scores(tmp_path / "again.json", scores)
    assert load_video_scores(tmp_path / "again.json").scores.keys() == scores.scores.keys()


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"results": {}}, "top level: missing key 'class'"),
        ({"results": {"a": [1, 2]}, "class": ["x"]}, "video 'a': 2 scores for 1 classes"),
        ({"results": {"a": ["1"]}, "class": ["x"]}, "video 'a': scores must be numbers"),
        ({"results": [], "class": ["x"]}, "'results': expected a JSON object, got a list"),
        ({"results": {}, "class": ["x", "x"]}, "'class' names a class twice"),
    ],
)
def test_bad_video_score_files_name_the_file(tmp_path, raw, message):
    path = tmp_path / "s.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(TalnetError) as err:
        load_video_scores(path)
    assert str(err.value) == f"{path}: {message}"


def test_detector_fuses_external_scores_by_class_name(tmp_path):
    model = stubbed_model()
    meta = FeatureMeta(streams=["rgb"], dims=[4], resample_steps=32, durations={"abc": 64.0})
    detector = Detector(model, ["Long jump", "Discus throw", "Washing hands"], meta)
    file_scores = VideoScores(["Washing hands", "Discus throw", "Long jump"],
                              {"v_abc": np.array([0.3, 0.6, 0.1])})  # fmt: skip
    ordered = file_scores.for_classes(detector.classes).lookup("abc")
    dets = detector.detect({"rgb": np.zeros((32, 4))}, meta.for_video("abc"), ordered)
    best = dets[0]
    # step 2..10 of 32 over 64 s: (2 + 0.5) * 2 .. (10 + 0.5) * 2 seconds
    assert (best.label, best.start, best.end) == ("Discus throw", 5.0, 21.0)
    assert best.score == pytest.approx(0.8 * 0.6, rel=1e-5)
    assert {d.label for d in dets} == {"Discus throw", "Washing hands"}
    assert math.isclose(dets[-1].score, 0.5 * 0.3, rel_tol=1e-5)


def test_whole_video_segments_trim_each_end_by_every_fraction():
    got = whole_video_segments(10, [0.0, 0.1])
    assert got.tolist() == [[-0.5, 9.5], [-0.5, 8.5], [0.5, 9.5], [0.5, 8.5]]
    assert whole_video_segments(10, []).shape == (0, 2)


def test_whole_video_proposals_survive_nms_and_the_budget():
    scales, coder = torch.tensor([4.0]), SegmentCoder((10.0, 5.0))
    index = torch.tensor([5, 6, 20])  # anchors of length 4 at steps 5, 6, 20
    scores = torch.tensor([0.9, 0.8, 0.3])
    offsets = torch.zeros(3, 2)
    always = whole_video_segments(32, [0.0])
    segs, got = ranked_proposals(index, scores, offsets, 32, scales, coder, 0.5, 1, None, always)
    # the budget keeps one anchor; the whole video joins after it at the best score
    assert segs.tolist() == [[3.0, 7.0], [-0.5, 31.5]]
    assert got.tolist() == pytest.approx([0.9, 0.9])


def test_model_proposals_include_the_whole_video_when_configured():
    torch.manual_seed(0)
    cfg = tiny_anet()
    feats = {"rgb": torch.randn(32, 4)}
    plain = TalNet({"rgb": 4}, 3, cfg).eval()
    cfg = copy.deepcopy(cfg)
    cfg.proposals.whole_video_trims = [0.0, 0.25]
    with_whole = TalNet({"rgb": 4}, 3, cfg).eval()
    with_whole.load_state_dict(plain.state_dict())
    base, _ = plain.proposals(feats)
    got, _ = with_whole.proposals(feats)
    assert torch.equal(got[: len(base)], base)
    assert got[len(base) :].tolist() == [[-0.5, 31.5], [-0.5, 23.5], [7.5, 31.5], [7.5, 23.5]]


def test_whole_video_detections_keep_the_videos_own_edges():
    torch.manual_seed(0)
    cfg = copy.deepcopy(tiny_anet())
    cfg.proposals.whole_video_trims = [0.0]
    cfg.detect.max_detections = 1000
    cfg.detect.class_nms = 1.0  # nothing suppressed: every proposal x class comes out
    model = TalNet({"rgb": 4}, 3, cfg).eval()
    with torch.no_grad():  # offsets that shrink: any refined segment moves inside
        model.branches["rgb"].classifier.reg.bias.fill_(-0.3)
    found = model({"rgb": torch.randn(32, 4)})
    whole = [s for s in found.segments.tolist() if s == [-0.5, 31.5]]
    assert len(whole) == cfg.detect.video_top_k  # once per class of the video, unrefined


def test_step_votes_weigh_on_scores_by_video_class():
    model = stubbed_model()
    model.config.detect.step_score_weight = 0.5
    steps = torch.zeros(32, 4)
    steps[:, 0] = 1.0
    steps[2:11, 0], steps[2:11, 2] = 0.0, 1.0  # class 1 (column 2) over steps 2..10 alone
    model._step_maps = lambda video: (None, steps)
    video = torch.tensor([0.1, 0.6, 0.3])
    found = model({"rgb": torch.zeros(32, 4)}, video_probs=video)
    got = {(c, tuple(s)): p for c, s, p in zip(found.classes.tolist(), found.segments.tolist(),
                                                 found.scores.tolist(), strict=True)}  # fmt: skip
    # [2, 10] x class 1: 0.6 x (0.5 x actionness 0.8 + 0.5 x vote 1); class 2 gets no vote
    assert got[(1, (2.0, 10.0))] == pytest.approx(0.6 * (0.4 + 0.5), rel=1e-5)
    assert got[(2, (2.0, 10.0))] == pytest.approx(0.3 * 0.4, rel=1e-5)
    assert got[(1, (20.0, 30.0))] == pytest.approx(0.6 * 0.25, rel=1e-5)
