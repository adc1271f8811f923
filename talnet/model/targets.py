"""Training targets of both stages (docs/design.md §3): which anchors and proposals a step
learns from, with which label and which offsets. Pure functions of segments; no network."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from talnet.config import TrainConfig
from talnet.model.coder import SegmentCoder
from talnet.model.matching import label_anchors, label_proposals
from talnet.model.sampling import sample_labels


@dataclass
class GroundTruthSteps:
    """One video's (or crop's) ground truth in feature steps."""

    segments: torch.Tensor  # (G, 2) [start, end]
    labels: torch.Tensor  # (G,) long, 1..C (0 is background)


@dataclass
class StageTargets:
    """A sampled mini-batch of one stage: rows of the candidates, labels and offset targets."""

    index: torch.Tensor  # (N,) rows of the candidates sampled, positives first
    labels: torch.Tensor  # (N,) long; 0 = background
    offsets: torch.Tensor  # (N, 2) [t_c, t_l] towards the matched ground truth


def anchor_targets(
    anchors: torch.Tensor,
    gt: GroundTruthSteps,
    cfg: TrainConfig,
    coder: SegmentCoder,
    generator: torch.Generator | None = None,
) -> StageTargets:
    """Proposal stage: anchors (A, 2) labelled 1 above tIoU 0.7 (and each ground truth's best),
    0 below 0.3, then `spn_batch` of them sampled with at most half positive."""
    labels, matched = label_anchors(
        anchors, gt.segments, cfg.spn_positive_iou, cfg.spn_negative_iou
    )
    pos, neg = sample_labels(labels, cfg.spn_batch, cfg.spn_positive_fraction, generator)
    index = torch.cat([pos, neg])
    return StageTargets(index, labels[index], _offsets(coder, anchors[index], gt, matched[index]))


def classifier_candidates(
    proposals: torch.Tensor,
    gt: GroundTruthSteps,
    cfg: TrainConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """The classifier's pool: the proposals (N, 2), plus the ground truth itself and
    `gt_jitter` jittered copies of it when the config asks (more foreground examples early)."""
    if cfg.add_gt_proposals and gt.segments.numel():
        proposals = torch.cat([proposals, gt.segments.to(proposals.dtype)])
    if cfg.gt_jitter and gt.segments.numel():
        proposals = torch.cat([proposals, jitter(gt.segments, cfg.gt_jitter, generator)])
    return proposals


def proposal_targets(
    candidates: torch.Tensor,
    gt: GroundTruthSteps,
    cfg: TrainConfig,
    coder: SegmentCoder,
    generator: torch.Generator | None = None,
) -> StageTargets:
    """Classifier stage: candidates (N, 2) labelled with the class of the most-overlapping
    ground truth above tIoU 0.5, else background; `cls_batch` sampled, a capped share of
    foreground."""
    labels, matched = label_proposals(candidates, gt.segments, gt.labels, cfg.cls_foreground_iou)
    fg, bg = sample_labels(labels, cfg.cls_batch, cfg.cls_foreground_fraction, generator)
    index = torch.cat([fg, bg])
    return StageTargets(
        index, labels[index], _offsets(coder, candidates[index], gt, matched[index])
    )


def jitter(
    segments: torch.Tensor, copies: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """`copies` random variants of each segment (G, 2): centre +-10 % of l, length x0.8-1.25."""
    reps = segments.repeat(copies, 1)
    noise = torch.rand(reps.shape, generator=generator).to(segments.device)
    center, length = reps.mean(dim=1), reps[:, 1] - reps[:, 0]
    center = center + (noise[:, 0] - 0.5) * 0.2 * length
    length = length * torch.exp((noise[:, 1] - 0.5) * 2 * 0.223)  # log(1.25) = 0.223
    return torch.stack([center - length / 2, center + length / 2], dim=1)


def _offsets(
    coder: SegmentCoder, reference: torch.Tensor, gt: GroundTruthSteps, matched: torch.Tensor
) -> torch.Tensor:
    if gt.segments.numel() == 0:
        return torch.zeros_like(reference)
    return coder.encode(reference, gt.segments[matched])
