import dataclasses
import math

import pytest
import torch
from model_factory import TINY_MODEL

from talnet.config import (
    Config,
    ModelConfig,
    ProposalBudget,
    ProposalConfig,
    budget,
    load_config,
)
from talnet.errors import TalnetError
from talnet.model.anchors import make_anchors
from talnet.model.coder import SegmentCoder
from talnet.model.losses import LOSS_NAMES, TOTAL_LOSS
from talnet.model.matching import pairwise_tiou
from talnet.model.nms import nms
from talnet.model.proposals import demote_duplicates, fill_proposals, ranked_proposals
from talnet.model.stream import fuse
from talnet.model.talnet import StepDetections, TalNet
from talnet.model.targets import GroundTruthSteps

TINY = TINY_MODEL


def _config(**model) -> Config:
    return Config(model=ModelConfig(**{**TINY, **model}))


def _features(t: int = 40) -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    return {"rgb": torch.randn(t, 6), "flow": torch.randn(t, 5)}


def test_late_fusion_is_the_mean_of_the_two_streams_logits():
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 3, _config()).eval()
    feats = _features()
    inputs = net.branch_inputs(feats)
    obj, off = fuse(net.propose(inputs))
    alone_rgb = net.branches["rgb"].spn(feats["rgb"][None])
    alone_flow = net.branches["flow"].spn(feats["flow"][None])
    assert torch.allclose(obj, (alone_rgb[0] + alone_flow[0]) / 2)
    assert torch.allclose(off, (alone_rgb[1] + alone_flow[1]) / 2)
    proposals = torch.tensor([[3.0, 9.0], [10.0, 30.0]])
    logits, offsets = fuse(net.classify(inputs, proposals))
    rgb = net.branches["rgb"].classifier
    flow = net.branches["flow"].classifier
    rgb_logits = rgb(rgb.feature_map(feats["rgb"][None])[0], proposals)[0]
    flow_logits = flow(flow.feature_map(feats["flow"][None])[0], proposals)[0]
    assert logits.shape == (2, 4) and offsets.shape == (2, 4, 2)
    assert torch.allclose(logits, (rgb_logits + flow_logits) / 2)


def test_early_fusion_is_one_network_on_concatenated_features():
    net = TalNet({"rgb": 6, "flow": 5}, 3, _config(fusion="early"))
    assert list(net.branches) == ["rgb+flow"]
    assert net.branches["rgb+flow"].spn.reduce.in_features == 11
    inputs = net.branch_inputs(_features())
    assert inputs["rgb+flow"].shape == (1, 40, 11)


def test_single_stream_and_missing_stream():
    net = TalNet({"rgb": 6, "flow": 5}, 3, _config(streams=["flow"]))
    assert list(net.branches) == ["flow"]
    with pytest.raises(TalnetError, match="stream"):
        TalNet({"rgb": 6}, 3, _config(streams=["flow"]))


def test_offset_weights_come_from_the_config():
    net = TalNet({"rgb": 6}, 3, _config(offset_weights=[4.0, 2.0]))
    assert net.coder.weights == (4.0, 2.0)


def test_silent_network_detects_its_anchors_with_uniform_class_scores():
    # With every final layer zeroed, objectness is a tie, offsets are 0 and the classifier's
    # softmax is uniform over background + 3 classes: each detection is an anchor (clipped to
    # the video) scored exactly 1/4, for every class alike.
    torch.manual_seed(0)
    net = TalNet({"rgb": 6, "flow": 5}, 3, _config()).eval()
    for name, param in net.named_parameters():
        if ".towers." in name or ".cls." in name or ".reg." in name:
            torch.nn.init.zeros_(param)
    with torch.inference_mode():
        found = net(_features(40))
    assert isinstance(found, StepDetections)
    assert len(found.scores) > 0
    assert torch.allclose(found.scores, torch.full_like(found.scores, 0.25))
    anchors = make_anchors(net.scales, 40).clamp(-0.5, 39.5)
    tiou = pairwise_tiou(found.segments, anchors).max(dim=1).values
    assert torch.allclose(tiou, torch.ones_like(tiou), atol=1e-5)
    assert set(found.classes.tolist()) == {0, 1, 2}


def test_training_pass_returns_sampled_proposals_and_the_four_losses():
    torch.manual_seed(0)
    cfg = _config()
    net = TalNet({"rgb": 6, "flow": 5}, 3, cfg).train()
    gt = GroundTruthSteps(torch.tensor([[5.0, 12.0], [20.0, 28.0]]), torch.tensor([1, 3]))
    proposals, losses = net(_features(40), gt, torch.Generator().manual_seed(0))
    assert set(losses) == {*LOSS_NAMES, TOTAL_LOSS}
    assert proposals.shape[1] == 2 and 0 < len(proposals) <= cfg.train.cls_batch
    assert torch.isclose(losses[TOTAL_LOSS], sum(losses[n] for n in LOSS_NAMES))
    # the classifier starts near the uniform prior: cross-entropy ~ log(C + 1)
    assert abs(losses["cls_cls"].item() - math.log(4)) < 0.05
    losses[TOTAL_LOSS].backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_training_finds_planted_actions():
    # Two actions carry a class-specific signal; a tiny model trained on this one video must
    # then detect each at tIoU > 0.5 with the right class as that class's best detection.
    gen = torch.Generator().manual_seed(0)
    t, segs = 160, [(30, 54, 1), (100, 112, 2)]
    feats = {"rgb": 0.3 * torch.randn(t, 6, generator=gen)}
    for start, end, label in segs:
        feats["rgb"][start:end, label] += 2.0
    gt = GroundTruthSteps(
        torch.tensor([[s - 0.5, e - 0.5] for s, e, _ in segs]), torch.tensor([c for *_, c in segs])
    )
    cfg = _config(anchors=[4, 8, 16, 32], streams=["rgb"])
    cfg.train.cls_foreground_fraction = 0.5
    torch.manual_seed(0)
    net = TalNet({"rgb": 6}, 2, cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(150):
        _, losses = net(feats, gt, gen)
        optimizer.zero_grad()
        losses[TOTAL_LOSS].backward()
        optimizer.step()
    with torch.inference_mode():
        found = net.eval()(feats)
    for (*_, label), truth in zip(segs, gt.segments, strict=True):
        mine = found.classes == label - 1
        best = found.segments[mine][0]
        assert pairwise_tiou(best[None], truth[None]).item() > 0.5, (label, best, truth)


def test_half_precision_training_step_and_detection_stay_finite():
    # `--amp` runs the model under float16 autocast; a padding constant of -1e30 once overflowed
    # half precision there. CPU autocast applies the same float16 casts, so this runs anywhere.
    cfg = load_config("cpu_fast")  # the paper widths share every module; fp16 on CPU is slow
    torch.manual_seed(0)
    model = TalNet({"rgb": 16, "flow": 8}, 3, cfg)
    feats = {"rgb": torch.randn(300, 16), "flow": torch.randn(300, 8)}
    gt = GroundTruthSteps(torch.tensor([[10.0, 40.0], [100.0, 230.0]]), torch.tensor([1, 3]))
    with torch.autocast("cpu", dtype=torch.float16):
        _, losses = model(feats, gt, torch.Generator())
    losses[TOTAL_LOSS].backward()
    assert torch.isfinite(losses[TOTAL_LOSS]) and losses[TOTAL_LOSS] > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.float16):
        found = model(feats)
    assert len(found.scores) > 0
    assert torch.isfinite(found.segments).all() and torch.isfinite(found.scores).all()


def test_budget_grows_with_the_video_above_its_floor():
    assert budget(100, 0.0, 5000) == 100
    assert budget(100, 0.25, 200) == 100
    assert budget(100, 0.25, 1000) == 250
    lengths = range(1, 5000, 97)
    counts = [budget(50, 0.1, t) for t in lengths]
    assert counts == sorted(counts) and min(counts) == 50


def test_proposal_settings_by_phase_are_typed_and_scale_together():
    p = ProposalConfig(
        pre_nms_train=400, post_nms_train=40, post_nms_per_step_train=0.0, nms_train=0.6,
        pre_nms_test=300, post_nms_test=30, post_nms_per_step_test=0.1, nms_test=0.5,
    )  # fmt: skip
    assert p.for_phase(True) == ProposalBudget(400, 40, 0.0, 0.6)
    assert p.for_phase(False) == ProposalBudget(300, 30, 0.1, 0.5)
    assert p.for_phase(True).counts(5000) == (400, 40)  # fixed count
    assert p.for_phase(False).counts(100) == (300, 30)  # the floor
    assert p.for_phase(False).counts(1000) == (1000, 100)  # 0.1 per step, pre-NMS grown alike
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.for_phase(False).post_nms = 5  # type: ignore[misc]


def test_the_test_fill_adds_proposals_and_draws_on_more_anchors():
    p = ProposalConfig(
        pre_nms_test=300, post_nms_test=30, post_nms_per_step_test=0.1,
        fill_per_step_test=0.3, fill_nms_test=0.85,
    )  # fmt: skip
    test = p.for_phase(False)
    assert (test.fill(1000), test.fill_nms) == (300, 0.85)
    assert test.counts(1000) == (4000, 100)  # 100 + 300 proposals: 4 x the anchors
    assert p.for_phase(True).fill(1000) == 0  # training proposals are never filled
    with pytest.raises(TalnetError):
        Config(proposals=ProposalConfig(fill_nms_test=0.0)).validate()


def test_fill_ranks_near_duplicates_after_every_kept_proposal():
    # b overlaps a at tIoU 0.85: NMS at 0.7 drops it, NMS at 0.9 keeps it; c is apart.
    segments = torch.tensor([[0.0, 10.0], [0.0, 8.5], [20.0, 30.0], [0.0, 9.9]])
    scores = torch.tensor([0.9, 0.8, 0.5, 0.7])
    keep = nms(segments, scores, 0.7, max_keep=1)
    assert keep.tolist() == [0]
    index, filled = fill_proposals(segments, scores, keep, 3, 0.9)
    assert index.tolist() == [0, 1, 2]  # d (tIoU 0.99 with a) stays out; at most 3 in all
    assert filled[0] == 0.9 and (filled[1:] < filled[0]).all()
    assert torch.allclose(filled[1:], torch.tensor([0.8, 0.5]) * 0.9)
    coder = SegmentCoder()
    scales = torch.tensor([4.0])
    index_all = torch.tensor([0, 1, 2])
    offsets = torch.zeros(3, 2)
    plain = ranked_proposals(index_all, scores[:3], offsets, 16, scales, coder, 0.7, 3)
    filled = ranked_proposals(
        index_all, scores[:3], offsets, 16, scales, coder, 0.7, 3, fill=(1, 0.9)
    )
    assert len(plain[0]) == 2  # anchors at steps 0 and 1 overlap at tIoU 0.71
    assert torch.equal(filled[0][:2], plain[0]) and torch.equal(filled[1][:2], plain[1])
    assert len(filled[0]) == 3 and filled[1][2] < plain[1].min()


def test_demoted_duplicates_rank_after_every_other_proposal():
    # b overlaps a at tIoU 0.85 and d overlaps c at 0.9: both go last, in their order
    segments = torch.tensor([[0.0, 10.0], [0.0, 8.5], [20.0, 30.0], [20.0, 29.0], [40.0, 45.0]])
    scores = torch.tensor([0.9, 0.8, 0.6, 0.5, 0.4])
    moved, ranked = demote_duplicates(segments, scores, 0.8)
    assert moved.tolist() == segments[[0, 2, 4, 1, 3]].tolist()
    assert torch.allclose(ranked, torch.tensor([0.9, 0.6, 0.4, 0.8 * 0.4, 0.5 * 0.4]))
    assert torch.equal(ranked, ranked.sort(descending=True).values)
    same, kept = demote_duplicates(segments, scores, 0.95)  # none overlaps that much
    assert torch.equal(same, segments) and torch.equal(kept, scores)


def test_long_videos_get_proposals_and_detections_per_step():
    torch.manual_seed(0)
    config = _config()
    config.detect.max_detections = 10
    net = TalNet({"rgb": 6, "flow": 5}, 3, config).eval()
    feats = _features(400)
    with torch.inference_mode():
        fixed_props = net.proposals(feats)[0]
        fixed = net(feats)
        config.proposals.post_nms_per_step_test = 0.5  # 200 proposals for 400 steps
        config.detect.detections_per_step = 0.1  # 40 detections
        scaled_props = net.proposals(feats)[0]
        scaled = net(feats)
    assert len(fixed_props) == config.proposals.post_nms_test < len(scaled_props) <= 200
    assert len(fixed.scores) == 10 and len(scaled.scores) == 40
    # more proposals can only add candidates: the best score does not drop
    assert scaled.scores[0] >= fixed.scores[0]
    assert torch.equal(scaled.scores, scaled.scores.sort(descending=True).values)
