"""Detection mAP per tIoU threshold, number for number as ActivityNet's `eval_detection.py`.

The reference, per class: sort the predictions by score (`argsort()[::-1]`), walk them in that
order and match each one, at each threshold, to the ground truth of its video with the highest
tIoU that is at least the threshold and not yet matched (ties in tIoU broken the same way);
unmatched predictions are false positives. AP is the area under the interpolated
precision-recall curve (VOC 2011 `interpolated_prec_rec`); mAP is the mean over the classes of
the ground truth, so a class without predictions counts as AP 0 and a label without ground
truth is not a class.

Where talnet differs, by design:
- `Ambiguous` ground truth (THUMOS'14) is not a class and is left out, exactly as if it were
  absent from the file; predictions labelled `Ambiguous`, or with any label that is not a
  ground-truth class, are ignored with one warning (the reference raises KeyError).
- Predictions for videos that are not in the evaluated ground truth (another subset, or unknown)
  are ignored with one warning (the reference counts them as false positives).
On what remains, every match is the reference's and every AP equals its to float rounding
(~1e-16; the areas are summed in another order). Ties in score, and in tIoU, are ordered by
numpy's default (unstable) argsort reversed, as in the reference: the same sort is applied to
the same arrays in the same order, so even the tie order agrees on the same numpy.

The matching itself, vectorized over classes, videos and thresholds, is in
talnet.evaluate.matching.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talnet.evaluate.inputs import flatten_detections, flatten_ground_truth, parse_tious
from talnet.evaluate.matching import greedy_match
from talnet.io.types import Detections, GroundTruth

THUMOS_TIOUS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
# Exactly the reference's default, np.linspace(0.5, 0.95, 10), so threshold values agree bitwise.
ACTIVITYNET_TIOUS: tuple[float, ...] = tuple(np.linspace(0.5, 0.95, 10).tolist())
# The thresholds of each protocol by its name in configs (evaluate.protocol) and on the CLI.
PROTOCOL_TIOUS: dict[str, tuple[float, ...]] = {
    "thumos": THUMOS_TIOUS,
    "activitynet": ACTIVITYNET_TIOUS,
}


@dataclass
class DetectionReport:
    """AP per class and mAP per tIoU threshold (fractions in [0, 1])."""

    tious: np.ndarray  # (T,)
    mAP: np.ndarray  # (T,) mean over the ground-truth classes
    average: float  # mean of mAP over the thresholds
    ap_per_class: dict[str, np.ndarray]  # label -> (T,), labels sorted

    def to_json(self) -> dict:
        """Plain JSON-ready dict: {"tious", "mAP", "average", "ap_per_class"}."""
        return {
            "tious": [round(float(t), 12) for t in self.tious],  # 0.9, not 0.8999999999999999
            "mAP": [float(m) for m in self.mAP],
            "average": float(self.average),
            "ap_per_class": {k: [float(x) for x in v] for k, v in self.ap_per_class.items()},
        }

    def map_at(self, tiou: float) -> float:
        """mAP at one of the evaluated thresholds (KeyError naming them if it was not)."""
        hits = np.flatnonzero(np.isclose(self.tious, tiou))
        if not len(hits):
            raise KeyError(f"tIoU {tiou:g} not evaluated; thresholds: {self.tious.tolist()}")
        return float(self.mAP[hits[0]])

    def format_table(self) -> str:
        """mAP (%) per threshold and their average, then AP (%) per class at tIoU 0.5."""
        heads = [f"{t:g}" for t in self.tious] + ["avg"]
        values = [f"{100 * m:.2f}" for m in self.mAP] + [f"{100 * self.average:.2f}"]
        width = max(6, *(len(s) for s in heads + values))
        lines = [
            "tIoU     " + " ".join(h.rjust(width) for h in heads),
            "mAP (%)  " + " ".join(v.rjust(width) for v in values),
        ]
        # Per-class AP at 0.5 (or the nearest threshold evaluated), the usual headline.
        t = int(np.argmin(np.abs(self.tious - 0.5)))
        name_width = max([len("class")] + [len(k) for k in self.ap_per_class])
        lines += ["", f"{'class'.ljust(name_width)}  AP@{self.tious[t]:g} (%)"]
        lines += [
            f"{label.ljust(name_width)}  {100 * ap[t]:10.2f}"
            for label, ap in self.ap_per_class.items()
        ]
        return "\n".join(lines)


def evaluate_detection(
    gt: GroundTruth,
    dets: Detections,
    tious: Sequence[float] | np.ndarray = THUMOS_TIOUS,
    subset: str | None = None,
    normalized_positives: float | None = None,
) -> DetectionReport:
    """mAP of `dets` against `gt` at each tIoU, as ActivityNet's evaluator computes it.

    `subset` keeps only ground-truth videos of that subset (case-insensitive); predictions for
    other videos are ignored, with one warning. With `normalized_positives` N, precision is
    DETAD's normalized precision (Alwassel et al., ECCV 2018, §3): R·N / (R·N + FP), as if
    every class had N instances, which makes APs comparable across classes and subsets.
    """
    thresholds = parse_tious(tious)
    fgt = flatten_ground_truth(gt, subset)
    fdet = flatten_detections(dets, fgt)
    ap = _average_precision(
        fgt.label, fgt.video, fgt.segments,
        fdet.label, fdet.video, fdet.segments, fdet.score,
        len(fgt.labels), len(fgt.video_ids), thresholds, normalized_positives,
    )  # fmt: skip
    m_ap = ap.mean(axis=1)
    per_class = {label: ap[:, c] for c, label in sorted(enumerate(fgt.labels), key=_by_name)}
    return DetectionReport(thresholds, m_ap, float(m_ap.mean()), per_class)


def precision_recall(
    gt: GroundTruth, dets: Detections, label: str, tiou: float
) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of class `label` after each prediction, in score order (not
    interpolated); empty arrays if it has no predictions."""
    threshold = parse_tious([tiou])
    fgt = flatten_ground_truth(gt)
    if label not in fgt.labels:
        return np.zeros(0), np.zeros(0)
    c = fgt.labels.index(label)
    keep_gt = fgt.label == c
    fdet = flatten_detections(
        {vid: [d for d in items if d.label == label] for vid, items in dets.items()}, fgt
    )
    _, _, tp = greedy_match(
        np.zeros(int(keep_gt.sum()), np.int64), fgt.video[keep_gt], fgt.segments[keep_gt],
        np.zeros(fdet.label.size, np.int64), fdet.video, fdet.segments, fdet.score,
        1, len(fgt.video_ids), threshold,
    )  # fmt: skip
    precision, recall = _precision_recall(tp, int(keep_gt.sum()))
    return precision[0], recall[0]


def video_ap(gt: GroundTruth, dets: Detections, tiou: float = 0.5) -> dict[str, float]:
    """Per video: mean AP over the classes in its ground truth, its own detections only.

    Videos without action instances are left out; detections of classes absent from the video
    are ignored (there is no AP to charge them to).
    """
    threshold = parse_tious([tiou])
    fgt = flatten_ground_truth(gt)
    fdet = flatten_detections(dets, fgt)
    n_labels = len(fgt.labels)
    # One "class" per (video, label) pair with ground truth; the evaluation is then per video.
    pair_codes, gt_key = np.unique(fgt.video * n_labels + fgt.label, return_inverse=True)
    det_codes = fdet.video * n_labels + fdet.label
    pos = np.searchsorted(pair_codes, det_codes).clip(max=len(pair_codes) - 1)
    known = pair_codes[pos] == det_codes
    ap = _average_precision(
        gt_key.reshape(-1), fgt.video, fgt.segments,
        pos[known], fdet.video[known], fdet.segments[known], fdet.score[known],
        len(pair_codes), len(fgt.video_ids), threshold,
    )[0]  # fmt: skip
    pair_video = pair_codes // n_labels
    out: dict[str, float] = {}
    for v in np.unique(pair_video):
        out[fgt.video_ids[v]] = float(ap[pair_video == v].mean())
    return out


def _by_name(item: tuple[int, str]) -> str:
    return item[1]


def _average_precision(
    gt_key: np.ndarray, gt_video: np.ndarray, gt_seg: np.ndarray,
    det_key: np.ndarray, det_video: np.ndarray, det_seg: np.ndarray, det_score: np.ndarray,
    n_keys: int, n_videos: int, tious: np.ndarray, normalized_positives: float | None = None,
) -> np.ndarray:  # fmt: skip
    """AP (T, n_keys) of each key (a class, or a class within one video) at each threshold;
    with `normalized_positives`, DETAD's normalized AP (evaluate_detection)."""
    order, bounds, tp = greedy_match(
        gt_key, gt_video, gt_seg, det_key, det_video, det_seg, det_score, n_keys, n_videos, tious
    )
    npos = np.bincount(gt_key, minlength=n_keys)
    seen = np.arange(1, len(order) + 1, dtype=np.float64)  # tp + fp after each prediction
    ap = np.zeros((len(tious), n_keys))
    for k in np.flatnonzero(np.diff(bounds)):  # no predictions: AP 0, as the reference returns
        flags = tp[:, bounds[k] : bounds[k + 1]]
        hits = np.cumsum(flags, axis=1, dtype=np.float64)
        if normalized_positives is None:
            precision = hits / seen[: flags.shape[1]]
        else:  # DETAD's compute_average_precision_detection with normalize_ap
            scaled = hits / npos[k] * normalized_positives
            precision = scaled / (scaled + (seen[: flags.shape[1]] - hits))
        # Interpolated precision: the best at this recall or any higher one. Recall steps by
        # 1/npos at each true positive, so the area is their interpolated precisions / npos.
        best = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
        ap[:, k] = np.sum(best, axis=1, where=flags) / npos[k]
    return ap


def _precision_recall(tp: np.ndarray, npos: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall (T, n) after each prediction, from true-positive flags (T, n)."""
    tp_cum = np.cumsum(tp, axis=1, dtype=np.float64)
    fp_cum = np.cumsum(~tp, axis=1, dtype=np.float64)
    return tp_cum / (tp_cum + fp_cum), tp_cum / npos


def interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    """Area under the interpolated precision-recall curve (VOC 2011), one value per row.

    Rows of `precision` and `recall` (T, n) are the curves after each prediction in score order.
    """
    precision = np.atleast_2d(precision)
    recall = np.atleast_2d(recall)
    rows = precision.shape[0]
    mprec = np.hstack([np.zeros((rows, 1)), precision, np.zeros((rows, 1))])
    mrec = np.hstack([np.zeros((rows, 1)), recall, np.ones((rows, 1))])
    # Precision made monotone: the best precision at this recall or any higher one.
    mprec = np.maximum.accumulate(mprec[:, ::-1], axis=1)[:, ::-1]
    ap = np.empty(rows)
    for t in range(rows):
        # Summing only where recall steps, in order, keeps the sum identical to the reference's.
        idx = np.flatnonzero(mrec[t, 1:] != mrec[t, :-1]) + 1
        ap[t] = np.sum((mrec[t, idx] - mrec[t, idx - 1]) * mprec[t, idx])
    return ap
