"""The reference evaluator's greedy matching of predictions to ground truth, vectorized.

ActivityNet's `compute_average_precision_detection`, per class: walk the predictions in the
order `scores.argsort()[::-1]`; for each, scan the ground truths of its video in the order
`tiou.argsort()[::-1]`, stop at the first below the threshold, skip those already matched and
match the first other one. The walk is sequential only inside one lane, a (class, video) pair,
and only where two predictions want the same ground truth; so it runs here as rounds over all
lanes and thresholds at once, each accepting, per lane, the predictions in order up to the first
one whose choice an earlier one of the round took.

Ties (in score or tIoU) fall as in the reference: the same numpy sort is applied to the same
arrays, in the same order. Numpy's default sort is not stable, so tie order is whatever it gives.
"""

from __future__ import annotations

import numpy as np

from talnet.evaluate.tiou import tiou_pairs


def greedy_match(
    gt_key: np.ndarray, gt_video: np.ndarray, gt_seg: np.ndarray,
    det_key: np.ndarray, det_video: np.ndarray, det_seg: np.ndarray, det_score: np.ndarray,
    n_keys: int, n_videos: int, tious: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """Match detections to ground truth per key (a class) and video, at every threshold.

    Inputs are flat arrays in file order: keys and video indices (int), segments (N, 2),
    scores. Returns `order` (M,) detection indices grouped by key, by descending score within
    a key; `bounds` (n_keys + 1,) where each key's run starts in `order`; `tp` (T, M) bool in
    that order (False = false positive).
    """
    order, bounds = score_order(det_key, det_score, n_keys)
    # Work in lane order (score order kept inside each lane); map back at the end.
    lane_code = det_key[order] * n_videos + det_video[order]
    lane_pos = np.argsort(lane_code, kind="stable")  # lane order -> position in `order`
    lanes, det_lane = np.unique(lane_code[lane_pos], return_inverse=True)
    det_lane = det_lane.reshape(-1)
    gt_code = gt_key * n_videos + gt_video
    gt_sorted = np.argsort(gt_code, kind="stable")  # by lane, file order inside a lane
    pair_det, pair_gt = _lane_pairs(lanes, det_lane, gt_code[gt_sorted])
    det_seg = det_seg[order[lane_pos]]
    gt_seg = gt_seg[gt_sorted]
    overlap, pair_tiou = _overlapping_tiou(
        pair_det, pair_gt, det_seg[:, 0].copy(), det_seg[:, 1].copy(), gt_seg
    )
    u_det, u_gt, u_tiou = _usable_in_scan_order(
        pair_det, pair_gt, overlap, pair_tiou, det_seg, gt_seg, tious.min()
    )
    u_gt = gt_sorted[u_gt]
    tp_lane = _greedy_rounds(u_det, u_gt, u_tiou, det_lane, len(gt_key), tious)
    tp = np.empty_like(tp_lane)
    tp[:, lane_pos] = tp_lane
    return order, bounds, tp


def score_order(
    det_key: np.ndarray, det_score: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """Detection indices grouped by key, each key's by the reference's `argsort()[::-1]` of its
    scores in file order; and the (n_keys + 1,) bounds of each key's run."""
    by_key = np.argsort(det_key, kind="stable")
    bounds = np.searchsorted(det_key[by_key], np.arange(n_keys + 1))
    order = np.empty(len(det_key), dtype=np.int64)
    for k in range(n_keys):
        s, e = bounds[k], bounds[k + 1]
        if e > s:
            idx = by_key[s:e]
            order[s:e] = idx[np.argsort(np.ascontiguousarray(det_score[idx]))[::-1]]
    return order, bounds


def _lane_pairs(
    lanes: np.ndarray, det_lane: np.ndarray, sorted_codes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every (detection, ground truth of its lane) pair, grouped by detection (lane order).

    Ground truth is indexed in `sorted_codes` order (lane codes, sorted stably), so inside a
    group it is in file order, as the reference lists a video's instances.
    """
    first = np.searchsorted(sorted_codes, lanes, side="left")
    count = np.searchsorted(sorted_codes, lanes, side="right") - first
    n_cand = count[det_lane]  # ground truths facing each detection
    pair_start = np.cumsum(n_cand) - n_cand
    pair_det = np.repeat(np.arange(len(det_lane)), n_cand)
    pair_gt = np.arange(len(pair_det)) + np.repeat(first[det_lane] - pair_start, n_cand)
    return pair_det, pair_gt


def _overlapping_tiou(
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    det_start: np.ndarray,
    det_end: np.ndarray,
    gt_seg: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the pairs whose tIoU is not 0, and those tIoUs (the reference's arithmetic).

    A pair that does not overlap has tIoU 0 when its union is positive, which holds unless a
    segment has negative length (or both zero); then every pair is kept.
    """
    gs = gt_seg[:, 0][pair_gt]
    ge = gt_seg[:, 1][pair_gt]
    ds = det_start[pair_det]
    de = det_end[pair_det]
    inter = np.minimum(de, ge)
    inter -= np.maximum(ds, gs)
    if (gt_seg[:, 1] > gt_seg[:, 0]).all() and (det_end >= det_start).all():
        overlap = np.flatnonzero(inter > 0)
        gs, ge, ds, de, inter = gs[overlap], ge[overlap], ds[overlap], de[overlap], inter[overlap]
    else:
        overlap = np.arange(len(pair_det))
        inter = inter.clip(0)
    union = (ge - gs) + (de - ds) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return overlap, inter / union


def _usable_in_scan_order(
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    overlap: np.ndarray,
    overlap_tiou: np.ndarray,
    det_seg: np.ndarray,
    gt_seg: np.ndarray,
    lowest: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs usable at the lowest threshold, each detection's in the reference's scan order.

    Usable means "tIoU not below the threshold", the reference's test (so NaN is usable, as
    there). The scan order is `tiou.argsort()[::-1]` over the detection's whole row; the usable
    pairs are its head. Without ties (or NaN) among them that is descending tIoU whatever the
    sort; where there are, the reference's own sort is redone on the whole row.
    """
    ok = ~(overlap_tiou < lowest)
    keep, u_tiou = overlap[ok], overlap_tiou[ok]
    u_det = pair_det[keep]
    # Descending tIoU inside each detection (u_det is already sorted; stable sorts keep that).
    by_tiou = np.argsort(-u_tiou, kind="stable")
    scan = by_tiou[np.argsort(u_det[by_tiou], kind="stable")]
    keep, u_det, u_tiou = keep[scan], u_det[scan], u_tiou[scan]
    same = (u_det[1:] == u_det[:-1]) & ~(u_tiou[1:] != u_tiou[:-1])  # equal, or a NaN
    tied = np.unique(np.concatenate([u_det[1:][same], u_det[np.isnan(u_tiou)]]))
    if tied.size:
        row_start = np.searchsorted(pair_det, tied, side="left")
        row_len = np.searchsorted(pair_det, tied, side="right") - row_start
        scan_pos = np.zeros(len(pair_det))
        for size in np.unique(row_len):
            cols = row_start[row_len == size][:, None] + np.arange(size)  # whole rows
            row_tiou = tiou_pairs(det_seg[pair_det[cols]], gt_seg[pair_gt[cols]])
            ranked = np.argsort(row_tiou, axis=1)[:, ::-1]
            scan_pos[np.take_along_axis(cols, ranked, axis=1)] = np.arange(size)
        redo = np.isin(u_det, tied)
        rank = np.arange(len(keep), dtype=np.float64)
        rank[redo] = scan_pos[keep[redo]]
        scan = np.lexsort((rank, u_det))
        keep, u_det, u_tiou = keep[scan], u_det[scan], u_tiou[scan]
    return u_det, pair_gt[keep], u_tiou


def _greedy_rounds(
    u_det: np.ndarray,
    u_gt: np.ndarray,
    u_tiou: np.ndarray,
    det_lane: np.ndarray,
    n_gt: int,
    tious: np.ndarray,
) -> np.ndarray:
    """True-positive flags (T, M), detections in lane order, from the usable pairs in scan order.

    An item is a (threshold, detection); a lock is a (threshold, ground truth). Each round,
    every item's choice is its first pair to an unlocked ground truth. In a lane, items are
    accepted in order while no earlier item of the round chose the same ground truth: each
    of them would choose the same in the sequential walk. An item with no free pair left never
    gets one (locks only accumulate): it is a false positive and leaves.
    """
    n_thr, n_det = len(tious), len(det_lane)
    item_parts, lock_parts = [], []
    for t, thr in enumerate(tious):
        ok = ~(u_tiou < thr)  # a head of each detection's scan order
        item_parts.append(t * n_det + u_det[ok])
        lock_parts.append(t * n_gt + u_gt[ok])
    p_item = np.concatenate(item_parts)  # sorted: threshold, lane, score, then scan order
    p_lock = np.concatenate(lock_parts)
    n_lanes = int(det_lane.max()) + 1 if n_det else 0
    item_lane = (np.arange(n_thr)[:, None] * n_lanes + det_lane[None, :]).reshape(-1)

    tp = np.zeros(n_thr * n_det, dtype=bool)
    locked = np.zeros(n_thr * n_gt, dtype=bool)
    claim = np.zeros(n_thr * n_gt, dtype=np.int64)
    while p_item.size:
        head = np.ones(p_item.size, dtype=bool)
        np.not_equal(p_item[1:], p_item[:-1], out=head[1:])
        cand_item, cand_lock = p_item[head], p_lock[head]
        cand_lane = item_lane[cand_item]
        # The first candidate (in order) to choose each ground truth.
        pos = np.arange(cand_item.size)
        claim[cand_lock] = cand_item.size
        np.minimum.at(claim, cand_lock, pos)
        conflict = claim[cand_lock] != pos
        # Accept a lane's candidates up to (not including) its first conflict.
        lane_head = np.ones(cand_item.size, dtype=bool)
        np.not_equal(cand_lane[1:], cand_lane[:-1], out=lane_head[1:])
        seen = np.cumsum(conflict)
        before_lane = (seen - conflict)[lane_head][np.cumsum(lane_head) - 1]
        accept = seen == before_lane
        tp[cand_item[accept]] = True
        locked[cand_lock[accept]] = True
        keep = ~(locked[p_lock] | tp[p_item])
        p_item, p_lock = p_item[keep], p_lock[keep]
    return tp.reshape(n_thr, n_det)
