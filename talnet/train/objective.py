"""One training step's loss: both stages of TAL-Net on one video, as the supplement says."""

from __future__ import annotations

import torch
from torch import nn

from talnet.config import TrainConfig
from talnet.model.anchors import make_anchors
from talnet.model.coder import SegmentCoder
from talnet.model.losses import stage_loss
from talnet.model.matching import label_anchors, label_proposals
from talnet.model.proposals import generate_proposals
from talnet.model.sampling import sample_labels
from talnet.model.talnet import TalNet, fuse
from talnet.train.runfiles import LOSS_NAMES


class TrainingObjective(nn.Module):
    """Wraps TalNet so that forward() returns the losses (what DistributedDataParallel wraps).

    Each branch (stream) gets its own loss on the same sampled anchors and proposals, as if the
    streams were trained separately; the classifier's proposals come from the fused (detached)
    proposal network, plus the ground truth, labelled at tIoU 0.5 and sampled 64 / 25 %.
    """

    def __init__(self, model: TalNet, cfg: TrainConfig):
        super().__init__()
        self.model, self.cfg, self.coder = model, cfg, SegmentCoder()

    def forward(
        self,
        features: dict[str, torch.Tensor],
        gt: torch.Tensor,
        gt_labels: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> dict[str, torch.Tensor]:
        """features {stream: (T, C)}, gt (G, 2) in steps, gt_labels (G,) in 1..C -> losses."""
        cfg, model = self.cfg, self.model
        inputs = model.branch_inputs(features)
        length = next(iter(inputs.values())).shape[1]  # inputs are (1, T, C)
        spn_out = model.propose(inputs)  # per branch: (1, K, T, 2) twice

        anchors = make_anchors(model.scales, length)
        labels, matched = label_anchors(anchors, gt, cfg.spn_positive_iou, cfg.spn_negative_iou)
        pos, neg = sample_labels(labels, cfg.spn_batch, cfg.spn_positive_fraction, generator)
        idx = torch.cat([pos, neg])
        spn_labels = labels[idx]
        spn_targets = self._targets(anchors[idx], gt, matched[idx])

        with torch.no_grad():
            objectness, offsets = fuse([(o.detach(), d.detach()) for o, d in spn_out])
            proposals, _ = generate_proposals(
                objectness[0],
                offsets[0],
                model.scales,
                self.coder,
                cfg.proposals_pre_nms,
                cfg.proposal_nms,
                cfg.proposals_post_nms,
            )
            if cfg.add_gt_proposals and gt.numel():
                proposals = torch.cat([proposals, gt.to(proposals.dtype)])
            if cfg.gt_jitter and gt.numel():
                proposals = torch.cat([proposals, self._jitter(gt, cfg.gt_jitter, generator)])
            prop_labels, prop_matched = label_proposals(
                proposals, gt, gt_labels, cfg.cls_foreground_iou
            )
            fg, bg = sample_labels(
                prop_labels, cfg.cls_batch, cfg.cls_foreground_fraction, generator
            )
            pidx = torch.cat([fg, bg])
            proposals, prop_labels = proposals[pidx], prop_labels[pidx]
            cls_targets = self._targets(proposals, gt, prop_matched[pidx])

        fmaps = model.feature_maps(inputs)
        cls_out = model.classify(fmaps, proposals)
        losses = {name: torch.zeros((), device=anchors.device) for name in LOSS_NAMES}
        rows = torch.arange(len(pidx), device=anchors.device)
        for (obj, off), (logits, deltas) in zip(spn_out, cls_out, strict=True):
            spn_cls, spn_reg = stage_loss(
                obj.reshape(-1, 2)[idx].float(),
                spn_labels,
                off.reshape(-1, 2)[idx].float(),
                spn_targets,
                cfg.reg_weight,
            )
            cls_cls, cls_reg = stage_loss(
                logits.float(),
                prop_labels,
                deltas[rows, prop_labels].float(),
                cls_targets,
                cfg.reg_weight,
            )
            for name, value in zip(LOSS_NAMES, (spn_cls, spn_reg, cls_cls, cls_reg), strict=True):
                losses[name] = losses[name] + value / len(spn_out)
        losses["loss"] = sum(losses[name] for name in LOSS_NAMES)
        return losses

    def _jitter(self, gt: torch.Tensor, copies: int, generator) -> torch.Tensor:
        """`copies` random variants of each segment: centre +-10 % of l, length x0.8-1.25."""
        reps = gt.repeat(copies, 1)
        noise = torch.rand(reps.shape, generator=generator).to(gt.device)
        center, length = reps.mean(dim=1), reps[:, 1] - reps[:, 0]
        center = center + (noise[:, 0] - 0.5) * 0.2 * length
        length = length * torch.exp((noise[:, 1] - 0.5) * 2 * 0.223)  # log(1.25) = 0.223
        return torch.stack([center - length / 2, center + length / 2], dim=1)

    def _targets(self, reference: torch.Tensor, gt: torch.Tensor, matched: torch.Tensor):
        if gt.numel() == 0:
            return torch.zeros_like(reference)
        return self.coder.encode(reference, gt[matched])
