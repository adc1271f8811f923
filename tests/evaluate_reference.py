"""Brute-force versions of ActivityNet's evaluators, written from their definitions.

Plain loops, one prediction at a time, following Evaluation/eval_detection.py and
eval_proposal.py step by step (without pandas), on the inputs talnet evaluates: `Ambiguous`
ground truth and predictions for unknown videos or labels are dropped first.
"""

from __future__ import annotations

import numpy as np


def segment_iou(target: tuple[float, float], candidates: np.ndarray) -> np.ndarray:
    tt1 = np.maximum(target[0], candidates[:, 0])
    tt2 = np.minimum(target[1], candidates[:, 1])
    inter = (tt2 - tt1).clip(0)
    union = (candidates[:, 1] - candidates[:, 0]) + (target[1] - target[0]) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter.astype(float) / union


def interpolated_prec_rec(prec: np.ndarray, rec: np.ndarray) -> float:
    mprec = np.hstack([[0], prec, [0]])
    mrec = np.hstack([[0], rec, [1]])
    for i in range(len(mprec) - 1)[::-1]:
        mprec[i] = max(mprec[i], mprec[i + 1])
    idx = np.where(mrec[1::] != mrec[0:-1])[0] + 1
    return float(np.sum((mrec[idx] - mrec[idx - 1]) * mprec[idx]))


def _gt_rows(gt):
    classes: dict[str, int] = {}
    rows = []
    for vid, info in gt.items():
        for a in info.annotations:
            if a.label == "Ambiguous":
                continue
            if a.label not in classes:
                classes[a.label] = len(classes)
            rows.append((vid, classes[a.label], a.start, a.end))
    return classes, rows


def class_ap(gt_rows, pred_rows, tious) -> np.ndarray:
    """compute_average_precision_detection for one class."""
    ap = np.zeros(len(tious))
    if not pred_rows:
        return ap
    npos = float(len(gt_rows))
    lock_gt = np.ones((len(tious), len(gt_rows))) * -1
    scores = np.array([p[3] for p in pred_rows], dtype=float)
    sort_idx = scores.argsort()[::-1]
    preds = [pred_rows[i] for i in sort_idx]
    tp = np.zeros((len(tious), len(preds)))
    fp = np.zeros((len(tious), len(preds)))
    for idx, (vid, start, end, _score) in enumerate(preds):
        this_gt = [(j, r) for j, r in enumerate(gt_rows) if r[0] == vid]
        if not this_gt:
            fp[:, idx] = 1
            continue
        segs = np.array([[r[1], r[2]] for _, r in this_gt], dtype=float)
        tiou_arr = segment_iou((start, end), segs)
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for tidx, thr in enumerate(tious):
            for jdx in tiou_sorted_idx:
                if tiou_arr[jdx] < thr:
                    fp[tidx, idx] = 1
                    break
                if lock_gt[tidx, this_gt[jdx][0]] >= 0:
                    continue
                tp[tidx, idx] = 1
                lock_gt[tidx, this_gt[jdx][0]] = idx
                break
            if fp[tidx, idx] == 0 and tp[tidx, idx] == 0:
                fp[tidx, idx] = 1
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall = tp_cumsum / npos
    precision = tp_cumsum / (tp_cumsum + fp_cumsum)
    for tidx in range(len(tious)):
        ap[tidx] = interpolated_prec_rec(precision[tidx, :], recall[tidx, :])
    return ap


def detection_ap(gt, dets, tious) -> dict[str, np.ndarray]:
    """AP per class name (T,) as the reference computes it."""
    classes, rows = _gt_rows(gt)
    out = {}
    for name, c in classes.items():
        class_gt = [(r[0], r[2], r[3]) for r in rows if r[1] == c]
        preds = [
            (vid, d.start, d.end, d.score)
            for vid, items in dets.items()
            if vid in gt
            for d in items
            if d.label == name
        ]
        out[name] = class_ap(class_gt, preds, list(tious))
    return out


def proposal_recall(gt, dets, max_avg, tious, points=100):
    """average_recall_vs_avg_nr_proposals: (recall (T, points), proposals_per_video)."""
    _, rows = _gt_rows(gt)
    video_lst = []
    for r in rows:
        if r[0] not in video_lst:
            video_lst.append(r[0])
    props = [
        (vid, d.start, d.end, d.score) for vid, items in dets.items() if vid in gt for d in items
    ]
    ratio = max_avg * float(len(video_lst)) / len(props)
    score_lst = []
    total = 0
    for vid in video_lst:
        this_gt = np.array([[r[2], r[3]] for r in rows if r[0] == vid])
        mine = [p for p in props if p[0] == vid]
        if not mine:
            score_lst.append(np.zeros((len(this_gt), 1)))
            continue
        order = np.array([p[3] for p in mine]).argsort()[::-1]
        segs = np.array([[p[1], p[2]] for p in mine])[order]
        nr = min(int(segs.shape[0] * ratio), segs.shape[0])
        total += nr
        segs = segs[:nr]
        tiou = np.empty((len(this_gt), nr))
        for i in range(nr):
            tiou[:, i] = segment_iou(segs[i], this_gt)
        score_lst.append(tiou)
    pcn_lst = np.arange(1, points + 1) / float(points) * (max_avg * float(len(video_lst)) / total)
    matches = np.empty((len(video_lst), len(pcn_lst)))
    positives = np.empty(len(video_lst))
    recall = np.empty((len(tious), len(pcn_lst)))
    for ridx, thr in enumerate(tious):
        for i, score in enumerate(score_lst):
            positives[i] = score.shape[0]
            true_positives = score >= thr
            pcn_proposals = np.minimum((score.shape[1] * pcn_lst).astype(int), score.shape[1])
            for j, nr in enumerate(pcn_proposals):
                matches[i, j] = np.count_nonzero(true_positives[:, :nr].sum(axis=1))
        recall[ridx, :] = matches.sum(axis=0) / positives.sum()
    return recall, pcn_lst * (float(total) / len(video_lst))
