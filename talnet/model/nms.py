"""1D non-maximum suppression in pure PyTorch (nothing to compile), greedy and Soft-NMS.

Greedy NMS is computed exactly but without a loop over boxes: with segments sorted by score
and S[j, i] = "earlier j overlaps later i above the threshold", the kept set is the unique
solution of keep[i] = not any_j(keep[j] and S[j, i]); iterating that map from all-true reaches
it in at most N rounds (round m fixes the first m entries) and in practice in a few.
Many groups (classes) are suppressed at once, each only against itself. When only the first
`max_keep` kept segments are wanted (proposals), the ranking is resolved a block at a time and
stops as soon as enough are kept: no N x N matrix for thousands of candidates.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from talnet.model.matching import pairwise_tiou

NMS_BLOCK = 128  # candidates resolved per step when only the first max_keep are wanted
SMALL_PAIRS = 1 << 18  # per-group NMS with fewer pairs than this is resolved whole at once


def nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_keep: int | None = None,
) -> torch.Tensor:
    """Indices of the segments (N, 2) kept by greedy NMS, in decreasing score order; with
    `max_keep`, the first max_keep of them (the same as cutting the full list)."""
    order = scores.argsort(descending=True)
    ordered = segments[order]
    if max_keep is None or max_keep >= len(order):
        return order[_greedy_sorted(ordered[None], iou_threshold)[0]]
    return order[greedy_prefix(ordered, iou_threshold, max_keep)]


def greedy_prefix(
    segments: torch.Tensor, iou_threshold: float, max_keep: int, block: int = NMS_BLOCK
) -> torch.Tensor:
    """Positions of the first `max_keep` segments kept by greedy NMS, for segments (N, 2)
    sorted by score, resolving `block` candidates at a time: each block's candidates that no
    earlier kept segment suppresses are suppressed among themselves, in order."""
    kept = torch.zeros(0, dtype=torch.long, device=segments.device)
    for start in range(0, len(segments), block):
        candidates = segments[start : start + block]
        if len(kept):
            suppressed = _overlaps(segments[kept][None], candidates[None], iou_threshold)[0]
            alive = torch.nonzero(~suppressed.any(dim=0)).flatten()
            candidates = candidates[alive]
        else:
            alive = torch.arange(len(candidates), device=segments.device)
        survivors = alive[_greedy_sorted(candidates[None], iou_threshold)[0]]
        kept = torch.cat([kept, start + survivors])
        if len(kept) >= max_keep:
            break
    return kept[:max_keep]


def batched_nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    top: int | None = None,
    score_threshold: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group greedy NMS: segments (G, N, 2), scores (G, N) -> keep mask (G, N) and
    scores with suppressed entries set to 0 (groups are e.g. the classes of one video).

    With `top`, only what decides the `top` best kept scores above `score_threshold` is
    resolved (see `_greedy_top`; small cases are resolved whole); every other entry reads as
    suppressed. The `top` best returned scores above the threshold, and their ranking, are
    those of the full answer."""
    order = scores.argsort(dim=1, descending=True)
    sorted_segments = torch.gather(segments, 1, order[..., None].expand(-1, -1, 2))
    if top is None or segments.shape[0] * segments.shape[1] ** 2 <= SMALL_PAIRS:
        keep_sorted = _greedy_sorted(sorted_segments, iou_threshold)
    else:
        sorted_scores = torch.gather(scores, 1, order)
        keep_sorted = _greedy_top(
            sorted_segments, sorted_scores, iou_threshold, top, score_threshold
        )
    keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
    return keep, torch.where(keep, scores, torch.zeros_like(scores))


def _greedy_top(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    top: int,
    score_threshold: float,
) -> torch.Tensor:
    """Keep mask (G, N) of per-group greedy NMS for segments and scores sorted by score in each
    group, resolved only as far as the `top` best kept scores above `score_threshold` need;
    unresolved entries are False. A segment's fate depends only on better ones of its group,
    so the entries above a score bound are a prefix of each group that can be resolved alone:
    bounds that take in 2, 8, 32... times `top` entries are tried until the best `top` kept
    are known and untied, else (or once a prefix is half the width) everything that counts,
    the entries above the threshold (those below come last and cannot suppress them)."""
    g, n, _ = segments.shape
    width = int((scores > score_threshold).sum(dim=1).max())  # every entry that counts
    segments, scores = segments[:, :width], scores[:, :width]
    steps = torch.arange(width, device=segments.device)
    relevant = scores > score_threshold
    ranked = scores[relevant].sort(descending=True).values
    taken = 2 * top
    while taken < len(ranked):
        upto = (scores >= ranked[taken - 1]).sum(dim=1)  # per group: the prefix above the bound
        part = int(upto.max())
        if 2 * part > width:
            break  # about as costly as resolving everything
        prefix = steps[None, :part] < upto[:, None]
        keep = _greedy_sorted(segments[:, :part], iou_threshold, prefix)
        resolved = int(upto.sum())  # ties at the bound may take in everything that counts
        if resolved == len(ranked) or _top_known(
            scores[:, :part], keep, top, float(ranked[resolved])
        ):
            return F.pad(keep, (0, n - part))
        taken *= 4
    return F.pad(_greedy_sorted(segments, iou_threshold, relevant), (0, n - width))


def _top_known(scores: torch.Tensor, keep: torch.Tensor, top: int, unresolved: float) -> bool:
    """Whether the `top` best kept scores are all above every unresolved score and pairwise
    distinct, the next one too (so their ranking cannot depend on how ties are broken)."""
    kept = scores[keep]
    if kept.numel() < top:
        return False
    best = kept.topk(min(top + 1, kept.numel())).values
    head = best[:top]
    untied = bool((head[:-1] > head[1:]).all()) and (len(best) == top or best[top] < head[-1])
    return untied and float(head[-1]) > unresolved


def soft_nms(
    segments: torch.Tensor, scores: torch.Tensor, sigma: float = 0.5, max_out: int | None = None
) -> torch.Tensor:
    """Gaussian Soft-NMS per group: segments (G, N, 2), scores (G, N) -> decayed scores (G, N).

    Each round picks every group's best remaining segment and multiplies the others' scores by
    exp(-tIoU^2 / sigma); the picked score is final. `max_out` bounds the rounds.
    """
    g, n, _ = segments.shape
    iou = pairwise_tiou(segments, segments)  # (G, N, N)
    current = scores.clone()
    final = torch.zeros_like(scores)
    remaining = torch.ones_like(scores, dtype=torch.bool)
    rows = torch.arange(g, device=scores.device)
    for _ in range(min(n, max_out or n)):
        masked = torch.where(remaining, current, torch.full_like(current, -1.0))
        best = masked.argmax(dim=1)  # (G,)
        final[rows, best] = current[rows, best]
        remaining[rows, best] = False
        current = current * torch.exp(-(iou[rows, best] ** 2) / sigma)
    return final


def _overlaps_above(segments: torch.Tensor, threshold: float) -> torch.Tensor:
    """tIoU > threshold for every pair, (G, N, 2) -> (G, N, N) bool."""
    return _overlaps(segments, segments, threshold)


def _overlaps(a: torch.Tensor, b: torch.Tensor, threshold: float) -> torch.Tensor:
    """tIoU > threshold between a (G, M, 2) and b (G, N, 2) -> (G, M, N) bool, without a
    division: inter / (la + lb - inter) > t  <=>  inter * (1 + t) > t * (la + lb)."""
    # contiguous starts and ends: broadcasting strided columns is several times slower
    start_a, end_a = a[..., 0].contiguous(), a[..., 1].contiguous()
    start_b, end_b = b[..., 0].contiguous(), b[..., 1].contiguous()
    inter = torch.minimum(end_a[:, :, None], end_b[:, None, :])
    inter.sub_(torch.maximum(start_a[:, :, None], start_b[:, None, :])).clamp_min_(0)
    total = ((end_a - start_a)[:, :, None] + (end_b - start_b)[:, None, :]).mul_(threshold)
    return inter.mul_(1 + threshold) > total


def _greedy_sorted(
    segments: torch.Tensor, iou_threshold: float, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """Keep mask (G, N) of greedy NMS for segments (G, N, 2) already sorted by score; entries
    outside `allowed` (G, N) are neither kept nor suppress others."""
    g, n, _ = segments.shape
    if n == 0:
        return torch.zeros(g, 0, dtype=torch.bool, device=segments.device)
    # (G, j, i) as float, so "any kept j suppresses i" is one batched matrix-vector product
    suppresses = _overlaps_above(segments, iou_threshold).triu(diagonal=1).float()
    keep = torch.ones(g, n, dtype=torch.bool, device=segments.device)
    if allowed is not None:
        keep = allowed.clone()
    for _ in range(n):
        new_keep = torch.matmul(keep.float()[:, None, :], suppresses)[:, 0, :] == 0
        if allowed is not None:
            new_keep &= allowed
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep
