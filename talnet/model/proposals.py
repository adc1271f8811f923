"""From per-anchor objectness and offsets to a ranked, NMS-filtered list of proposals."""

from __future__ import annotations

import torch

from talnet.model.anchors import anchors_at
from talnet.model.coder import SegmentCoder
from talnet.model.nms import nms


def generate_proposals(
    objectness: torch.Tensor,
    offsets: torch.Tensor,
    scales: torch.Tensor,
    coder: SegmentCoder,
    pre_nms: int,
    nms_threshold: float,
    post_nms: int,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    always: torch.Tensor | None = None,
    fill: tuple[int, float] = (0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """One video's proposals: objectness logits (K, T, 2), offsets (K, T, 2) ->
    segments (N, 2) in steps, clipped to the video, and their scores (N,), best first.
    `extra` segments (E, 2) and scores (E,) from elsewhere join the anchors' before NMS;
    `always` segments (S, 2) join after it, and `fill` ones after NMS (see `ranked_proposals`)."""
    k, t, _ = objectness.shape
    scores = torch.softmax(objectness.reshape(-1, 2).float(), dim=-1)[:, 1]  # (K*T,)
    top = scores.topk(min(pre_nms, scores.numel())).indices
    return ranked_proposals(
        top, scores[top], offsets.reshape(-1, 2)[top], t, scales, coder, nms_threshold,
        post_nms, extra, always, fill,
    )  # fmt: skip


def ranked_proposals(
    index: torch.Tensor,
    scores: torch.Tensor,
    offsets: torch.Tensor,
    length: int,
    scales: torch.Tensor,
    coder: SegmentCoder,
    nms_threshold: float,
    post_nms: int,
    extra: tuple[torch.Tensor, torch.Tensor] | None = None,
    always: torch.Tensor | None = None,
    fill: tuple[int, float] = (0, 1.0),
) -> tuple[torch.Tensor, torch.Tensor]:
    """The best anchors before NMS, ranked (flat positions k * T + t (N,), objectness (N,),
    offsets (N, 2)) -> proposals as `generate_proposals` gives them: decoded, clipped, NMS'd.
    Windowed inference (talnet.model.windows) ranks a long video's anchors without its (K, T).
    `always` segments (S, 2) (e.g. `whole_video_segments`) are kept whatever NMS and the budget
    say, after the others, each scored as the best proposal: the first stage cannot drop them.
    `fill` (count F, tIoU u) adds, after those NMS kept, more that NMS at the looser u keeps, up
    to post_nms + F in all, their scores scaled below the lowest kept one (`fill_proposals`)."""
    t = length
    segments = coder.decode(anchors_at(scales, t, index), offsets.float())
    segments = segments.clamp(-0.5, t - 0.5)
    valid = (segments[:, 1] - segments[:, 0]) > 0.1  # a tenth of a step
    segments, scores = segments[valid], scores[valid]
    if extra is not None and extra[0].numel():
        segments = torch.cat([segments, extra[0].to(segments).clamp(-0.5, t - 0.5)])
        scores = torch.cat([scores, extra[1].to(scores)])
    keep = nms(segments, scores, nms_threshold, max_keep=post_nms)
    if fill[0] > 0:
        keep, scores = fill_proposals(segments, scores, keep, post_nms + fill[0], fill[1])
    else:
        scores = scores[keep]
    segments = segments[keep]
    if always is not None and always.numel():
        best = scores[:1].max() if scores.numel() else scores.new_ones(())
        segments = torch.cat([segments, always.to(segments)])
        scores = torch.cat([scores, best.expand(len(always))])
    return segments, scores


def fill_proposals(
    segments: torch.Tensor, scores: torch.Tensor, keep: torch.Tensor, total: int, loose: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices `keep` that NMS kept, then those that NMS at the looser tIoU `loose` keeps and
    `keep` lacks, up to `total` in all, with their scores: the added ones are scaled by the
    lowest kept score, so they rank after every kept one and among themselves as before."""
    second = nms(segments, scores, loose, max_keep=total)
    taken = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    taken[keep] = True
    added = second[~taken[second]][: max(total - len(keep), 0)]
    floor = scores[keep].min() if len(keep) else scores.new_ones(())
    return torch.cat([keep, added]), torch.cat([scores[keep], scores[added] * floor])


def demote_duplicates(
    segments: torch.Tensor, scores: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Segments (N, 2) and their scores (N,), best first, with those that overlap a better
    one by tIoU > `threshold` moved after all the others: kept, in their order, their scores
    scaled by the lowest remaining one (as `fill_proposals` ranks its additions)."""
    if not len(segments):
        return segments, scores
    keep = nms(segments, scores, threshold).sort().values  # in the given order
    kept = torch.zeros(len(scores), dtype=torch.bool, device=scores.device)
    kept[keep] = True
    later = torch.nonzero(~kept).flatten()
    floor = scores[keep].min()
    order = torch.cat([keep, later])
    return segments[order], torch.cat([scores[keep], scores[later] * floor])


def whole_video_segments(length: int, trims: list[float]) -> torch.Tensor:
    """The whole video [-0.5, T - 0.5] and its near-whole versions (ActivityNet practice: one
    instance often fills most of its video): every start trimmed by a fraction a of the video
    and end by b, for a, b in `trims` (0 gives the whole video), as (S, 2) in steps."""
    pairs = sorted({(float(a), float(b)) for a in trims for b in trims})
    if not pairs:
        return torch.zeros(0, 2)
    cut = torch.tensor(pairs, dtype=torch.float32) * length  # (S, 2): start and end trims
    return torch.stack([cut[:, 0] - 0.5, length - 0.5 - cut[:, 1]], dim=1)
