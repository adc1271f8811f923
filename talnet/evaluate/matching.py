"""The reference evaluator's greedy matching of predictions to ground truth, vectorized.

ActivityNet's `compute_average_precision_detection`, per class: walk the predictions in the
order `scores.argsort()[::-1]`; for each, scan the ground truths of its video in the order
`tiou.argsort()[::-1]`, stop at the first below the threshold, skip those already matched and
match the first other one. The walk is sequential only inside one lane, a (class, video) pair,
and only where two predictions want the same ground truth; so it runs here as rounds over all
lanes and thresholds at once, each settling every prediction whose outcome no earlier unsettled
one can change.

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
    order, bounds, matched = greedy_assign(
        gt_key, gt_video, gt_seg, det_key, det_video, det_seg, det_score, n_keys, n_videos, tious
    )
    return order, bounds, matched >= 0


def greedy_assign(
    gt_key: np.ndarray, gt_video: np.ndarray, gt_seg: np.ndarray,
    det_key: np.ndarray, det_video: np.ndarray, det_seg: np.ndarray, det_score: np.ndarray,
    n_keys: int, n_videos: int, tious: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """greedy_match, telling which ground truth each detection took: `matched` (T, M) int64 in
    the order of `order`, the ground truth's row in the inputs, or -1 for a false positive.

    The diagnosis (talnet.evaluate.diagnose) needs it to find missed instances and to split
    true positives by the characteristics of the instance they found.
    """
    order, bounds = score_order(det_key, det_score, n_keys)
    # Work in lane order (score order kept inside each lane); map back at the end.
    lane_code = det_key[order] * n_videos + det_video[order]
    lane_pos = np.argsort(_narrow(lane_code), kind="stable")  # lane order -> position in order
    sorted_code = lane_code[lane_pos]
    new_lane = np.ones(len(sorted_code), dtype=bool)
    np.not_equal(sorted_code[1:], sorted_code[:-1], out=new_lane[1:])
    lanes = sorted_code[new_lane]
    det_lane = np.cumsum(new_lane) - 1
    det_seg = det_seg[order[lane_pos]]
    lane_gt = _LaneGroundTruth(gt_key * n_videos + gt_video, gt_seg, lanes)
    pair_det, pair_gt, pair_tiou = _overlapping_pairs(lane_gt, det_lane, det_seg)
    u_det, u_gt, u_tiou = _usable_in_scan_order(
        pair_det, pair_gt, pair_tiou, lane_gt, det_lane, det_seg, tious.min()
    )
    matched_lane = _greedy_rounds(u_det, u_gt, u_tiou, len(det_lane), len(gt_key), tious)
    matched = np.empty_like(matched_lane)
    matched[:, lane_pos] = matched_lane
    return order, bounds, matched


def score_order(
    det_key: np.ndarray, det_score: np.ndarray, n_keys: int
) -> tuple[np.ndarray, np.ndarray]:
    """Detection indices grouped by key, each key's by the reference's `argsort()[::-1]` of its
    scores in file order; and the (n_keys + 1,) bounds of each key's run."""
    by_key = np.argsort(_narrow(det_key), kind="stable")
    bounds = np.searchsorted(det_key[by_key], np.arange(n_keys + 1))
    order = np.empty(len(det_key), dtype=np.int64)
    for k in range(n_keys):
        s, e = bounds[k], bounds[k + 1]
        if e > s:
            idx = by_key[s:e]
            order[s:e] = idx[np.argsort(np.ascontiguousarray(det_score[idx]))[::-1]]
    return order, bounds


def _narrow(codes: np.ndarray) -> np.ndarray:
    """Non-negative codes as int16 when they fit: numpy then sorts them stably by radix."""
    if len(codes) and codes.max() < 2**15:
        return codes.astype(np.int16)
    return codes


class _LaneGroundTruth:
    """Ground truth grouped by lane: in file order (as the reference lists a video's
    instances) and, for finding overlaps, by start time."""

    def __init__(self, gt_code: np.ndarray, gt_seg: np.ndarray, lanes: np.ndarray) -> None:
        self.seg = gt_seg
        self.by_file = np.argsort(gt_code, kind="stable")
        self.file_rank = np.empty_like(self.by_file)
        self.file_rank[self.by_file] = np.arange(len(gt_code))
        self.by_start = np.lexsort((gt_seg[:, 0], gt_code))
        sorted_codes = gt_code[self.by_file]
        self.first = np.searchsorted(sorted_codes, lanes, side="left")  # per lane, both orders
        self.block_first = np.searchsorted(sorted_codes, sorted_codes, side="left")
        self.count = np.searchsorted(sorted_codes, lanes, side="right") - self.first


def _overlapping_pairs(
    gt: _LaneGroundTruth, det_lane: np.ndarray, det_seg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(detection, ground truth, tIoU) for every pair of a lane with tIoU not 0, grouped by
    detection; the tIoU computed with the reference's arithmetic.

    Overlaps are found by binary search: all times shifted by a per-lane offset so that one
    sorted array serves every lane. Float rounding is monotone, so the ranges found contain
    every overlapping pair (a few others too, dropped after the exact test). Non-overlapping
    pairs have tIoU 0 unless a segment has negative length (or both are empty); then every
    pair of the lane is kept.
    """
    first, count = gt.first[det_lane], gt.count[det_lane]
    gs, ge = gt.seg[gt.by_start, 0], gt.seg[gt.by_start, 1]
    valid = (gt.seg[:, 1] > gt.seg[:, 0]).all() and (det_seg[:, 1] >= det_seg[:, 0]).all()
    if valid and len(gs):
        width = 2.0 * max(np.abs(gt.seg).max(), np.abs(det_seg).max(initial=0.0)) + 1.0
        # Offset of each ground truth: its lane block's first index (same as `first`) * width.
        offset = gt.block_first * width
        start_key = gs + offset
        end_key = np.maximum.accumulate(ge + offset)  # within a block: latest end so far
        det_offset = first * width
        lo = np.searchsorted(end_key, det_seg[:, 0] + det_offset, side="left")
        hi = np.searchsorted(start_key, det_seg[:, 1] + det_offset, side="right")
        lo = np.clip(lo, first, first + count)
        n_cand = np.maximum(np.clip(hi, first, first + count) - lo, 0)
    else:
        lo, n_cand = first, count
    pair_start = np.cumsum(n_cand) - n_cand
    pair_det = np.repeat(np.arange(len(det_lane)), n_cand)
    pair_pos = np.arange(len(pair_det)) + np.repeat(lo - pair_start, n_cand)
    ds, de = det_seg[pair_det, 0], det_seg[pair_det, 1]
    inter = np.minimum(de, ge[pair_pos]) - np.maximum(ds, gs[pair_pos])
    if valid:
        hit = np.flatnonzero(inter > 0)
        pair_det, pair_pos, ds, de, inter = (x[hit] for x in (pair_det, pair_pos, ds, de, inter))
    inter = inter.clip(0)
    union = (ge[pair_pos] - gs[pair_pos]) + (de - ds) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return pair_det, gt.by_start[pair_pos], inter / union


def _usable_in_scan_order(
    pair_det: np.ndarray,
    pair_gt: np.ndarray,
    pair_tiou: np.ndarray,
    gt: _LaneGroundTruth,
    det_lane: np.ndarray,
    det_seg: np.ndarray,
    lowest: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The pairs usable at the lowest threshold, each detection's in the reference's scan order.

    Usable means "tIoU not below the threshold", the reference's test (so NaN is usable, as
    there). The scan order is `tiou.argsort()[::-1]` over all the ground truth of the lane in
    file order; the usable pairs are its head. Without ties (or NaN) among them that is
    descending tIoU whatever the sort; where there are, the reference's own sort is redone on
    the whole row.
    """
    ok = np.flatnonzero(~(pair_tiou < lowest))
    u_det, u_gt, u_tiou = pair_det[ok], pair_gt[ok], pair_tiou[ok]
    # Descending tIoU inside each detection; u_det is sorted, and most have a single pair.
    several = np.flatnonzero(np.bincount(u_det, minlength=len(det_lane))[u_det] > 1)
    scan = np.arange(len(u_det))
    scan[several] = several[np.lexsort((-u_tiou[several], u_det[several]))]
    u_det, u_gt, u_tiou = u_det[scan], u_gt[scan], u_tiou[scan]
    same = (u_det[1:] == u_det[:-1]) & ~(u_tiou[1:] != u_tiou[:-1])  # equal, or a NaN
    tied = np.unique(np.concatenate([u_det[1:][same], u_det[np.isnan(u_tiou)]]))
    if tied.size:
        redo = np.flatnonzero(np.isin(u_det, tied))
        row_of = np.searchsorted(tied, u_det[redo])  # which tied detection
        local = gt.file_rank[u_gt[redo]] - gt.first[det_lane[u_det[redo]]]  # file position
        rank = np.arange(len(u_det), dtype=np.int64)
        size = gt.count[det_lane[tied]]
        for n in np.unique(size):
            rows = np.flatnonzero(size == n)
            cols = gt.first[det_lane[tied[rows]]][:, None] + np.arange(n)  # whole lanes
            row_tiou = tiou_pairs(det_seg[tied[rows]][:, None, :], gt.seg[gt.by_file[cols]])
            scan_pos = np.empty((len(rows), n), dtype=np.int64)
            np.put_along_axis(
                scan_pos, np.argsort(row_tiou, axis=1)[:, ::-1], np.arange(n)[None, :], axis=1
            )
            mine = np.flatnonzero(size[row_of] == n)
            where_row = np.searchsorted(rows, row_of[mine])
            rank[redo[mine]] = scan_pos[where_row, local[mine]]
        scan = np.lexsort((rank, u_det))
        u_det, u_gt, u_tiou = u_det[scan], u_gt[scan], u_tiou[scan]
    return u_det, u_gt, u_tiou


def _greedy_rounds(
    u_det: np.ndarray, u_gt: np.ndarray, u_tiou: np.ndarray, n_det: int, n_gt: int,
    tious: np.ndarray,
) -> np.ndarray:  # fmt: skip
    """The ground truth each detection takes (T, M), -1 for none, detections in lane order, from
    the usable pairs in scan order.

    An item is a (threshold, detection); a lock is a (threshold, ground truth), and belongs to
    one lane. Each round, an item's choice is its first pair to an unlocked ground truth. If
    the item is the earliest (in the walk's order) of all items still able to take that ground
    truth, nothing before it can take it, so the walk gives it that one: accept. An item left
    with no free pair never gets one (locks only accumulate): a false positive, it leaves.
    Each round accepts at least the first waiting item of every lane.
    """
    n_thr = len(tious)
    item_parts, lock_parts = [], []
    for t, thr in enumerate(tious):
        ok = ~(u_tiou < thr)  # a head of each detection's scan order
        item_parts.append(t * n_det + u_det[ok])
        lock_parts.append(t * n_gt + u_gt[ok])
    p_item = np.concatenate(item_parts)  # sorted: threshold, lane, score, then scan order
    p_lock = np.concatenate(lock_parts)

    tp = np.zeros(n_thr * n_det, dtype=bool)
    matched = np.full(n_thr * n_det, -1, dtype=np.int64)
    locked = np.zeros(n_thr * n_gt, dtype=bool)
    earliest = np.empty(n_thr * n_gt, dtype=np.int64)
    while p_item.size:
        head = np.ones(p_item.size, dtype=bool)
        np.not_equal(p_item[1:], p_item[:-1], out=head[1:])
        cand_item, cand_lock = p_item[head], p_lock[head]
        earliest[p_lock] = np.iinfo(np.int64).max
        np.minimum.at(earliest, p_lock, p_item)
        accept = earliest[cand_lock] == cand_item
        tp[cand_item[accept]] = True
        matched[cand_item[accept]] = cand_lock[accept] % n_gt
        locked[cand_lock[accept]] = True
        keep = ~(locked[p_lock] | tp[p_item])
        p_item, p_lock = p_item[keep], p_lock[keep]
    return matched.reshape(n_thr, n_det)
