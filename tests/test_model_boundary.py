"""The boundary head: its targets, its balanced loss, edge snapping and actionness proposals."""

import dataclasses

import pytest
import torch
from model_factory import TINY_MODEL

from talnet.config import Config, ModelConfig, ProposalConfig, edit_config, load_config
from talnet.errors import TalnetError
from talnet.model.boundary import (
    ACTIONNESS,
    BOUNDARY_LOSS,
    END,
    START,
    actionness_runs,
    boundary_loss,
    boundary_targets,
    proposal_actionness,
    snap_edges,
)
from talnet.model.losses import TOTAL_LOSS
from talnet.model.matching import pairwise_tiou
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps

TINY = dict(**TINY_MODEL, boundary_head=True, boundary_dim=8, boundary_dilations=[1, 2])


def _planted(length: int, start: int, end: int) -> torch.Tensor:
    """Boundary probabilities (T, 3) with a sharp start at `start`, end at `end`, low elsewhere."""
    probs = torch.full((length, 3), 0.05)
    probs[start, START] = 0.95
    probs[start - 1, START] = probs[start + 1, START] = 0.6
    probs[end, END] = 0.9
    probs[start : end + 1, ACTIONNESS] = 0.8
    return probs


def test_targets_mark_steps_near_each_edge_and_inside():
    gt = torch.tensor([[10.0, 30.0], [50.0, 53.0]])
    y = boundary_targets(gt, 60, region=0.1)
    # 0.1 * 20 = 2 steps around 10 and 30; the short one gets the minimum of 1 step
    assert torch.nonzero(y[:, START])[:, 0].tolist() == [8, 9, 10, 11, 12, 49, 50, 51]
    assert torch.nonzero(y[:, END])[:, 0].tolist() == [28, 29, 30, 31, 32, 52, 53, 54]
    assert torch.nonzero(y[:, ACTIONNESS])[:, 0].tolist() == [*range(10, 31), *range(50, 54)]
    assert boundary_targets(torch.zeros(0, 2), 7, 0.1).eq(0).all()


def test_balanced_loss_weighs_rare_positives_as_much_as_negatives():
    targets = torch.zeros(100, 3)
    targets[:5] = 1.0
    all_zero = torch.full((100, 3), -5.0)  # predicts "never": right on 95 % of the steps
    right = torch.where(targets > 0, 5.0, -5.0)
    # plain BCE would call "never" nearly perfect; the balanced loss does not
    assert boundary_loss(all_zero, targets) > 2.0 > 0.01 > boundary_loss(right, targets)


def test_snap_moves_an_edge_onto_a_planted_boundary_and_keeps_it_without_one():
    probs = _planted(100, start=40, end=70)
    segment = torch.tensor([[36.0, 73.0]])  # both edges a few steps off
    assert snap_edges(segment, probs, reach=0.25, min_prob=0.5).tolist() == [[40.0, 70.0]]
    # out of reach (0.05 * 37 = 1.85 -> 2 steps): both edges stay
    assert snap_edges(segment, probs, reach=0.05, min_prob=0.5).tolist() == [[36.0, 73.0]]
    # nowhere confident enough: stays
    assert snap_edges(segment, probs, reach=0.25, min_prob=0.99).tolist() == [[36.0, 73.0]]
    # batched shapes (C, N, 2) are kept
    many = torch.tensor([[[36.0, 73.0], [38.0, 69.5]]]).expand(3, 2, 2)
    snapped = snap_edges(many, probs, 0.25, 0.5)
    assert snapped.shape == (3, 2, 2) and (snapped == torch.tensor([40.0, 70.0])).all()


def test_centroid_snap_lands_on_the_middle_of_a_plateau_not_its_highest_step():
    probs = torch.full((100, 3), 0.05)
    probs[36:45, START] = 0.8  # the head's plateau around a true start at 40 ...
    probs[44, START] = 0.85  # ... whose highest step is at its edge
    probs[30, START] = 0.7  # another start nearby, apart from it: not part of this run
    probs[70, END] = 0.9
    segment = torch.tensor([[37.0, 71.0]])
    peak = snap_edges(segment, probs, reach=0.25, min_prob=0.5)
    centre = snap_edges(segment, probs, reach=0.25, min_prob=0.5, centroid=True)
    assert peak[0, 0].item() == 44.0  # the single highest step within reach
    assert abs(centre[0, 0].item() - 40.0) < 0.1 and centre[0, 1].item() == 70.0
    # nowhere confident enough: the edge stays in either mode
    kept = snap_edges(segment, probs, reach=0.25, min_prob=0.95, centroid=True)
    assert kept.tolist() == [[37.0, 71.0]]
    with pytest.raises(TalnetError, match="bad config value: detect.snap_to"):
        edit_config(load_config("thumos14_cpu"), {"detect": {"snap_to": "middle"}})


def test_snap_never_empties_a_segment():
    probs = torch.full((50, 3), 0.05)
    probs[30, START] = probs[20, END] = 0.9  # start after end: the snapped segment would invert
    segment = torch.tensor([[24.0, 27.0]])
    assert snap_edges(segment, probs, 3.0, 0.5).tolist() == [[24.0, 27.0]]


def test_actionness_runs_become_segments_at_each_threshold():
    a = torch.zeros(30)
    a[5:15] = 0.6
    a[8:12] = 0.95
    segments, scores = actionness_runs(a, [0.5, 0.9])
    assert segments.tolist() == [[4.5, 14.5], [7.5, 11.5]]
    assert torch.allclose(scores, torch.tensor([(6 * 0.6 + 4 * 0.95) / 10, 0.95]))
    assert actionness_runs(torch.zeros(10), [0.5])[0].shape == (0, 2)
    # columns (e.g. classes) each give their own runs
    two = torch.zeros(30, 2)
    two[5:15, 0] = 0.6
    two[20:30, 1] = 0.8  # a run reaching the video's end
    segments, scores = actionness_runs(two, [0.5])
    assert segments.tolist() == [[4.5, 14.5], [19.5, 29.5]]
    assert torch.allclose(scores, torch.tensor([0.6, 0.8]))


def test_smoothed_actionness_keeps_a_faint_run_whole():
    # an action over steps 10..29 whose actionness (0.6) dips to 0.2 on every fifth step: the
    # raw runs above 0.5 are fragments; those of the 5-step mean cover the action
    steps = torch.zeros(40, 3)
    steps[:, 0] = 1.0
    steps[10:30, 0] = 0.4
    steps[12:30:5, 0] = 0.8
    steps[:, 1] = 1.0 - steps[:, 0]
    action = torch.tensor([[9.5, 29.5]])
    raw = ProposalConfig(actionness_thresholds=[0.5])
    smooth = dataclasses.replace(raw, actionness_smooth=[1, 5])
    fragments, _ = actionness_runs(proposal_actionness(raw, None, steps), [0.5])
    assert len(fragments) == 5 and pairwise_tiou(fragments, action).max() <= 0.2
    joined = proposal_actionness(smooth, None, steps)
    assert joined.shape == (40, 2)  # the map as it is, and its 5-step mean
    segments, _ = actionness_runs(joined, [0.5])
    assert segments[:5].tolist() == fragments.tolist()  # width 1: as it was
    assert pairwise_tiou(segments[5:], action).max() >= 0.8
    with pytest.raises(TalnetError, match="proposals.actionness_smooth"):
        edit_config(load_config("thumos14_cpu"), {"proposals": {"actionness_smooth": [0]}})


def _net(**proposals) -> TalNet:
    torch.manual_seed(0)
    config = Config(model=ModelConfig(**TINY), proposals=ProposalConfig(**proposals))
    return TalNet({"rgb": 6, "flow": 5}, 3, config)


def test_model_with_a_boundary_head_trains_it_and_snaps_detections():
    net = _net(actionness_thresholds=[0.5]).train()
    feats = {"rgb": torch.randn(60, 6), "flow": torch.randn(60, 5)}
    gt = GroundTruthSteps(torch.tensor([[10.0, 30.0]]), torch.tensor([2]))
    _, losses = net(feats, gt, torch.Generator().manual_seed(0))
    assert BOUNDARY_LOSS in losses and losses[BOUNDARY_LOSS] > 0
    losses[TOTAL_LOSS].backward()
    head = net.branches["rgb"].boundary
    assert head is not None and head.out.weight.grad.abs().sum() > 0
    net.eval()
    with torch.inference_mode():
        probs = net.boundary_probabilities(net.branch_inputs(feats))
        snapped = net(feats)
        net.config.detect.boundary_snap = False
        raw = net(feats)
    assert probs.shape == (60, 3) and ((probs > 0) & (probs < 1)).all()
    assert len(snapped.scores) > 0 and len(raw.scores) > 0


def test_shipped_presets_keep_the_paper_recipe_without_the_head():
    paper = load_config("thumos14_i3d")
    assert not paper.model.boundary_head and not paper.proposals.actionness_thresholds
    off = edit_config(paper, {"detect": {"boundary_snap": False}})
    assert dataclasses.replace(off.detect, boundary_snap=True) == paper.detect
