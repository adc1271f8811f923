"""Features of one video -> scored, class-wise NMS-filtered segments in feature steps.

Long-video policy (inference): the classifier always sees the whole video (its 1x1 reduced map
is cheap); the proposal towers run on the whole video up to `window_steps` steps, and beyond
that on windows of `window_steps` overlapping by half, each step's output taken from the window
where it lies farthest from an edge. The overlap (>= 2x the largest anchor, which the config
checks) covers the widest receptive field with context, so the result equals a whole-video pass.
"""

from __future__ import annotations

import torch

from talnet.config import DetectConfig
from talnet.model.coder import SegmentCoder
from talnet.model.nms import batched_nms, soft_nms
from talnet.model.proposals import generate_proposals
from talnet.model.talnet import TalNet, fuse


@torch.inference_mode()
def detect_steps(
    model: TalNet, features: dict[str, torch.Tensor], cfg: DetectConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One video {stream: (T, C)} -> segments (M, 2) in steps, class index (M,) in 0..C-1,
    scores (M,); M <= cfg.max_detections, best first."""
    coder = SegmentCoder()
    inputs = model.branch_inputs(features)
    length = next(iter(inputs.values())).shape[1]  # inputs are (B, T, C)
    objectness, offsets = propose_windowed(model, inputs, cfg.window_steps)
    proposals, _ = generate_proposals(
        objectness,
        offsets,
        model.scales,
        coder,
        cfg.proposals_pre_nms,
        cfg.proposal_nms,
        cfg.max_proposals,
    )
    logits, deltas = fuse(model.classify(model.feature_maps(inputs), proposals))
    probs = torch.softmax(logits.float(), dim=-1)[:, 1:]  # (N, C)
    n, c = probs.shape
    segments = coder.decode(proposals[:, None, :].expand(n, c, 2), deltas[:, 1:].float())
    segments = segments.clamp(-0.5, length - 0.5).transpose(0, 1)  # (C, N, 2)
    scores = probs.T.contiguous()  # (C, N)
    if cfg.soft_nms:
        scores = soft_nms(segments, scores, cfg.soft_nms_sigma, cfg.max_detections)
    else:
        scores = batched_nms(segments, scores, cfg.class_nms)[1]
    flat = scores.flatten()
    flat = torch.where(flat > cfg.score_threshold, flat, torch.zeros_like(flat))
    top = flat.topk(min(cfg.max_detections, flat.numel()))
    keep = top.values > 0
    idx = top.indices[keep]
    return segments.reshape(-1, 2)[idx], idx // n, top.values[keep]


def propose_windowed(
    model: TalNet, inputs: dict[str, torch.Tensor], window: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fused proposal-network outputs (K, T, 2) twice, in overlapping windows if T > window."""
    length = next(iter(inputs.values())).shape[1]  # inputs are (B, T, C)
    if length <= window:
        objectness, offsets = fuse(model.propose(inputs))
        return objectness[0], offsets[0]
    hop = window // 2
    starts = list(range(0, length - window, hop)) + [length - window]
    batched = {
        name: torch.cat([x[:, s : s + window] for s in starts]) for name, x in inputs.items()
    }
    objectness, offsets = fuse(model.propose(batched))  # (W, K, window, 2)
    pieces_obj, pieces_off = [], []
    for w, s in enumerate(starts):
        # own the steps from the midpoint of the overlap with the previous window to the next
        lo = 0 if w == 0 else (s + starts[w - 1] + window) // 2
        hi = length if w == len(starts) - 1 else (starts[w + 1] + s + window) // 2
        pieces_obj.append(objectness[w, :, lo - s : hi - s])
        pieces_off.append(offsets[w, :, lo - s : hi - s])
    return torch.cat(pieces_obj, dim=1), torch.cat(pieces_off, dim=1)
