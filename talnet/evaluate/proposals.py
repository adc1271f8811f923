"""Proposal quality: average recall against the average number of proposals per video (AR@AN).

Number for number as ActivityNet's `eval_proposal.py` (`average_recall_vs_avg_nr_proposals`),
labels ignored. For a budget of AN proposals per video on average, the reference keeps in each
video the top `int(n_v * AN * V / P)` proposals by score (at most n_v; n_v = that video's
proposals, V = videos with ground truth, P = all proposals), so videos with more proposals keep
more; its curve then takes the fraction k/100 (rescaled by the budget actually kept) of each
video's kept proposals, k = 1..100. An instance counts as recalled at threshold t when one of the
proposals taken has tIoU >= t; AR is recall averaged over the thresholds.

`AR@AN` here is the end of the reference's curve run with max_avg_nr_proposals = AN (what its
program reports for that budget), AR@100 and the AUC figure are those of the AN = 100 run, as in
the ActivityNet challenge. Talnet's usual differences apply (see talnet.evaluate.detection):
`Ambiguous` instances are not recalled, proposals of videos not in the ground truth are ignored
with one warning. Ties in score fall as in the reference (same arrays, same numpy sort).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from talnet.evaluate.inputs import flatten_detections, flatten_ground_truth, parse_tious
from talnet.evaluate.tiou import tiou_matrix
from talnet.io.types import Detections, GroundTruth

# The paper's AR (docs/design.md): tIoU 0.5:0.05:1.0. ActivityNet's eval_proposal.py itself
# defaults to 0.5:0.05:0.95 (talnet evaluate --proposals --protocol activitynet).
PROPOSAL_TIOUS: tuple[float, ...] = tuple(np.linspace(0.5, 1.0, 11).tolist())
ACTIVITYNET_PROPOSAL_TIOUS: tuple[float, ...] = tuple(np.linspace(0.5, 0.95, 10).tolist())
AN_VALUES: tuple[int, ...] = (1, 5, 10, 50, 100, 200, 500, 1000)
# Points of the reference's curve: fractions k/100 of the budget, k = 1..100.
_CURVE_POINTS = 100
_NEVER = np.iinfo(np.int64).max


@dataclass
class ProposalReport:
    """Recall per threshold and AR at each proposal budget (fractions in [0, 1])."""

    tious: np.ndarray  # (T,)
    an: np.ndarray  # (A,) average numbers of proposals per video
    recall: np.ndarray  # (T, A) recall at each threshold and budget
    average_recall: np.ndarray  # (A,) mean of `recall` over the thresholds
    ar100: float  # AR at 100 proposals per video (ActivityNet's figure)
    auc: float  # area under the AR-AN curve for AN up to 100, divided by 100
    curve_an: np.ndarray  # (100,) the reference's AR-AN curve up to the largest AN ...
    curve_ar: np.ndarray  # (100,) ... for plotting

    def to_json(self) -> dict:
        """Plain JSON-ready dict."""
        return {
            "tious": [round(float(t), 12) for t in self.tious],  # 0.9, not 0.8999999999999999
            "an": [int(a) for a in self.an],
            "average_recall": [float(r) for r in self.average_recall],
            "recall": [[float(r) for r in row] for row in self.recall],
            "ar100": float(self.ar100),
            "auc": float(self.auc),
            "curve": {
                "an": [float(a) for a in self.curve_an],
                "average_recall": [float(r) for r in self.curve_ar],
            },
        }

    def format_table(self) -> str:
        """AR (%) at each AN, then AR@100 and the AUC."""
        lines = [f"{'AN':>6}  {'AR (%)':>8}"]
        lines += [
            f"{a:>6}  {100 * r:8.2f}" for a, r in zip(self.an, self.average_recall, strict=True)
        ]
        t0, t1 = self.tious.min(), self.tious.max()
        lines += [
            "",
            f"AR@100 (%): {100 * self.ar100:.2f}   AUC (%): {100 * self.auc:.2f}   "
            f"(tIoU {t0:g}-{t1:g}, {len(self.tious)} thresholds)",
        ]
        return "\n".join(lines)


def evaluate_proposals(
    gt: GroundTruth,
    dets: Detections,
    tious: Sequence[float] | np.ndarray = PROPOSAL_TIOUS,
    an_values: Sequence[int] = AN_VALUES,
    subset: str | None = None,
) -> ProposalReport:
    """AR@AN of `dets` used as class-agnostic proposals, as ActivityNet's evaluator computes it."""
    thresholds = parse_tious(tious)
    an = np.asarray(sorted(set(int(a) for a in an_values)), dtype=np.int64)
    if an.size == 0 or an[0] < 1:
        raise ValueError(f"an_values must be positive integers, got {list(an_values)}")
    ranked = _rank_hits(gt, dets, thresholds, subset)
    recall = np.stack([_recall_curve(ranked, int(a), points=1)[1][:, -1] for a in an], axis=1)
    an100, recall100 = _recall_curve(ranked, 100, _CURVE_POINTS)
    ar100 = recall100.mean(axis=0)
    curve_an, curve_recall = _recall_curve(ranked, int(an[-1]), _CURVE_POINTS)
    return ProposalReport(
        tious=thresholds,
        an=an,
        recall=recall,
        average_recall=recall.mean(axis=0),
        ar100=float(ar100[-1]),
        auc=float(_trapezoid(ar100, an100) / an100[-1]) if an100[-1] > 0 else 0.0,
        curve_an=curve_an,
        curve_ar=curve_recall.mean(axis=0),
    )


@dataclass
class _Hits:
    """For each instance, how many of its video's proposals (score order) precede the first hit."""

    first_hit: np.ndarray  # (T, N) rank of the first proposal with tIoU >= t; _NEVER if none
    gt_video: np.ndarray  # (N,) index into the videos with ground truth
    proposals: np.ndarray  # (V,) proposals of each video with ground truth
    total: int  # proposals of all evaluated videos, with ground truth or not (the reference's P)


def _rank_hits(gt: GroundTruth, dets: Detections, tious: np.ndarray, subset: str | None) -> _Hits:
    fgt = flatten_ground_truth(gt, subset)
    fdet = flatten_detections(dets, fgt, need_label=False)
    # The reference's videos are those with at least one instance, in order of appearance.
    with_gt, gt_video = np.unique(fgt.video, return_inverse=True)
    gt_video = gt_video.reshape(-1)
    by_video = np.argsort(fdet.video, kind="stable")  # file order kept within a video
    sorted_video = fdet.video[by_video]
    starts = np.searchsorted(sorted_video, with_gt, side="left")
    ends = np.searchsorted(sorted_video, with_gt, side="right")
    proposals = ends - starts
    first_hit = np.full((len(tious), len(gt_video)), _NEVER, dtype=np.int64)
    for v in np.flatnonzero(proposals):
        idx = by_video[starts[v] : ends[v]]
        # The reference's `score.argsort()[::-1]` over the video's proposals in file order.
        idx = idx[np.argsort(np.ascontiguousarray(fdet.score[idx]))[::-1]]
        inst = np.flatnonzero(gt_video == v)
        tiou = tiou_matrix(fgt.segments[inst], fdet.segments[idx])  # (g, n)
        tiou[np.isnan(tiou)] = -np.inf  # NaN >= t is false: never a hit
        best_so_far = np.maximum.accumulate(tiou, axis=1)
        # Leading proposals whose best tIoU so far is below t: the rank of the first hit.
        first_hit[:, inst] = (best_so_far[None] < tious[:, None, None]).sum(axis=2)
    return _Hits(first_hit, gt_video, proposals, int(fdet.video.size))


def _recall_curve(hits: _Hits, max_avg: int, points: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's curve for `max_avg_nr_proposals`: AN (points,), recall (T, points)."""
    n_videos = len(hits.proposals)
    n_thr = hits.first_hit.shape[0]
    step = np.arange(1, points + 1) / float(points)
    if hits.total == 0:
        return step * 0.0, np.zeros((n_thr, points))
    ratio = max_avg * float(n_videos) / hits.total
    kept = np.minimum((hits.proposals * ratio).astype(np.int64), hits.proposals)
    total_kept = int(kept.sum())
    if total_kept == 0:
        return step * 0.0, np.zeros((n_thr, points))
    fraction = step * (max_avg * float(n_videos) / total_kept)
    # The reference scores a video without proposals as one column of zeros: width 1, no hit.
    width = np.where(hits.proposals > 0, kept, 1)
    taken = np.minimum((width[:, None] * fraction[None, :]).astype(np.int64), width[:, None])
    hit = hits.first_hit[:, :, None] < taken[hits.gt_video][None, :, :]  # (T, N, points)
    recall = hit.sum(axis=1) / float(hits.first_hit.shape[1])
    return fraction * (float(total_kept) / n_videos), recall


def _trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    trapezoid = getattr(np, "trapezoid", None) or np.trapz  # numpy < 2 has only trapz
    return float(trapezoid(y, x))
