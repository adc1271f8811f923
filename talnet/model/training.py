"""The training pass of TAL-Net (docs/design.md §3): both stages' losses on a batch of crops of
equal length. The networks run once on the whole batch; each video then gets its own sampled
anchors, proposals and targets, as the supplement's recipe draws them for one video, and every
loss is the mean of the videos' losses, so a batch of k videos means what k single-video steps
mean, averaged (one video: exactly the single-video computation)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F

from talnet.model.anchors import make_anchors
from talnet.model.boundary import (
    BOUNDARY_LOSS,
    boundary_loss,
    boundary_targets,
    proposal_actionness,
)
from talnet.model.losses import LOSS_NAMES, TOTAL_LOSS, stage_loss
from talnet.model.step_head import STEP_LOSS, step_labels, step_loss
from talnet.model.stream import batch_probabilities, fuse
from talnet.model.targets import (
    GroundTruthSteps,
    StageTargets,
    anchor_targets,
    classifier_candidates,
    proposal_targets,
)
from talnet.model.video_head import VIDEO_LOSS, video_loss

if TYPE_CHECKING:
    from talnet.model.talnet import TalNet


def training_losses(
    model: TalNet,
    inputs: dict[str, torch.Tensor],
    gts: list[GroundTruthSteps],
    generator: torch.Generator | None,
) -> tuple[list[torch.Tensor], dict[str, torch.Tensor]]:
    """Branch inputs {branch: (B, T, C)} and each video's ground truth -> each video's sampled
    classifier proposals (N_b, 2) and the losses averaged over the videos. Each branch (stream)
    gets its own loss on the same sampled anchors and proposals, as if the streams were trained
    separately; the classifier's proposals come from the fused (detached) proposal network, plus
    the ground truth, labelled at tIoU 0.5 and sampled. `generator` draws, video after video."""
    cfg, mcfg = model.config.train, model.config.model
    batch, length = next(iter(inputs.values())).shape[:2]
    if len(gts) != batch:
        raise ValueError(f"{batch} videos in the batch but {len(gts)} ground truths")
    if cfg.input_dropout > 0:
        inputs = {k: F.dropout(x, cfg.input_dropout) for k, x in inputs.items()}
    spn_out = model.propose(inputs)  # per branch: (B, K, T, 2) twice
    anchors = make_anchors(model.scales, length)
    boundary_out = model.boundary_logits(inputs) if mcfg.boundary_head else []
    step_out = model.step_logits(inputs) if mcfg.step_classifier else []
    spn_targets, cls_targets, proposals = [], [], []
    with torch.no_grad():
        objectness, offsets = fuse([(o.detach(), d.detach()) for o, d in spn_out])
        boundary = batch_probabilities(boundary_out, torch.sigmoid)
        steps = batch_probabilities(step_out, lambda z: torch.softmax(z, dim=-1))
        for b, gt in enumerate(gts):
            spn_targets.append(anchor_targets(anchors, gt, cfg, model.coder, generator))
            actionness = proposal_actionness(
                model.config.proposals,
                None if boundary is None else boundary[b],
                None if steps is None else steps[b],
            )
            pool = model._proposals(objectness[b], offsets[b], actionness)[0]
            candidates = classifier_candidates(pool, gt, cfg, generator)
            cls = proposal_targets(candidates, gt, cfg, model.coder, generator)
            cls_targets.append(cls)
            proposals.append(candidates[cls.index])
    cls_out = _classify_batch(model, inputs, proposals)
    losses = {name: torch.zeros((), device=anchors.device) for name in model.loss_names}
    for b in range(batch):
        terms = _stage_terms(spn_out, cls_out[b], b, spn_targets[b], cls_targets[b], cfg.reg_weight)
        for name, value in zip(LOSS_NAMES, terms, strict=True):
            losses[name] = losses[name] + value / batch
    if model.video_head is not None:
        logits = model.video_head(torch.cat(list(inputs.values()), dim=-1))  # (B, C)
        terms = [video_loss(logits[b], gt.labels) for b, gt in enumerate(gts)]
        losses[VIDEO_LOSS] = cfg.video_cls_weight * _mean(terms)
    if step_out:
        terms = []
        for b, gt in enumerate(gts):
            labels = step_labels(gt.segments, gt.labels, length)
            terms.append(_mean([step_loss(z[b], labels) for z in step_out]))
        losses[STEP_LOSS] = cfg.step_weight * _mean(terms)
    if boundary_out:
        terms = []
        for b, gt in enumerate(gts):
            targets = boundary_targets(gt.segments, length, cfg.boundary_region)
            terms.append(_mean([boundary_loss(z[b], targets) for z in boundary_out]))
        losses[BOUNDARY_LOSS] = cfg.boundary_weight * _mean(terms)
    losses[TOTAL_LOSS] = sum(losses[name] for name in model.loss_names)
    return proposals, losses


def _mean(terms: list[torch.Tensor]) -> torch.Tensor:
    """The mean of loss terms (one term: itself, bit for bit)."""
    return terms[0] if len(terms) == 1 else sum(terms) / len(terms)


def _stage_terms(
    spn_out: list[tuple[torch.Tensor, torch.Tensor]],
    cls_out: list[tuple[torch.Tensor, torch.Tensor]],
    b: int,
    spn: StageTargets,
    cls: StageTargets,
    reg_weight: float,
) -> list[torch.Tensor]:
    """Video b's four stage losses, each the mean over branches of that branch's loss."""
    totals = [torch.zeros((), device=cls.labels.device)] * len(LOSS_NAMES)
    rows = torch.arange(len(cls.index), device=cls.labels.device)
    for (obj, off), (logits, deltas) in zip(spn_out, cls_out, strict=True):
        terms = stage_loss(
            obj[b].reshape(-1, 2)[spn.index].float(),
            spn.labels,
            off[b].reshape(-1, 2)[spn.index].float(),
            spn.offsets,
            reg_weight,
        ) + stage_loss(
            logits.float(), cls.labels, deltas[rows, cls.labels].float(), cls.offsets, reg_weight
        )
        totals = [t + v / len(spn_out) for t, v in zip(totals, terms, strict=True)]
    return totals


def _classify_batch(
    model: TalNet, inputs: dict[str, torch.Tensor], proposals: list[torch.Tensor]
) -> list[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per video, per branch: logits (N_b, C+1) and offsets (N_b, C+1, 2) of its proposals."""
    return [
        model.classify({k: x[b : b + 1] for k, x in inputs.items()}, boxes)
        for b, boxes in enumerate(proposals)
    ]
