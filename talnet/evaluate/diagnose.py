"""Why detections fail, diagnosed as DETAD does (Alwassel et al., ECCV 2018, "Diagnosing Error in
Temporal Action Detectors"): the false-positive profile, the mAP gained by removing each error
type, false negatives and normalized mAP by ground-truth characteristics, and the worst cases.

The definitions are the paper's, checked against its public code (HumamAlwassel/DETAD,
src/action_detector_diagnosis.py and the three *_analysis.py scripts); each function says which
part it follows and where talnet departs. One tIoU threshold is analysed (DETAD runs THUMOS'14
at 0.5 alone and averages ActivityNet's ten). Matching and AP are talnet's evaluator's
(talnet.evaluate.detection, number for number ActivityNet's), and inputs are read as `talnet
evaluate` reads them: `Ambiguous` is not a class, predictions for other videos or labels are
ignored with one warning; zero-length instances (a few in ActivityNet) are dropped, as DETAD's
loader does (`talnet evaluate` keeps them, never matched, as the reference evaluator does).

The analysis is this module's; the result types, outcome names and DETAD's settings are
talnet.evaluate.diagnosis_types' (re-exported here); the text tables are diagnosis_text's.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from talnet.errors import TalnetError
from talnet.evaluate.detection import evaluate_detection
from talnet.evaluate.diagnosis_types import (
    BUCKETS,
    ERROR_NAMES,
    ERROR_TYPES,
    FALSE_POSITIVE_TYPES,
    LIMIT_FACTOR,
    MIN_NORMALIZED_PRECISION,
    MIN_TIOU,
    BucketResult,
    Buckets,
    ClassifiedPrediction,
    Diagnosis,
    FalsePositiveProfile,
    MissedInstance,
)
from talnet.evaluate.inputs import (
    FlatDetections,
    FlatGroundTruth,
    flatten_detections,
    flatten_ground_truth,
    parse_tious,
)
from talnet.evaluate.matching import greedy_assign
from talnet.evaluate.tiou import tiou_matrix, tiou_pairs
from talnet.io.annotations import AMBIGUOUS, DataWarning
from talnet.io.types import Detections, GroundTruth, VideoInfo

_CODE = {name: i for i, name in enumerate(ERROR_TYPES)}


def classify_predictions(
    gt: GroundTruth, dets: Detections, tiou: float = 0.5, subset: str | None = None
) -> list[ClassifiedPrediction]:
    """Every evaluated prediction with its DETAD outcome (the rule: _Analysis._classify), in
    file order; for tests and tools that want the per-prediction labels."""
    a = _Analysis(gt, dets, tiou, subset)
    return [a.classified(i) for i in range(len(a.items))]


def diagnose(
    gt: GroundTruth,
    dets: Detections,
    tiou: float = 0.5,
    subset: str | None = None,
    buckets: str = "thumos14",
    worst: int = 10,
) -> Diagnosis:
    """DETAD's three analyses of `dets` at one tIoU, plus the `worst` cases of each kind.

    The profile, the removal gains and the worst false positives look at each class's top
    LIMIT_FACTOR·G predictions (false_positive_analysis.py, limit_factor 10); a type's gain is
    the (normalized) mAP with its predictions removed minus the mAP with all of them (the
    paper's "fixing" is, in its code, removal, for localization errors too). False negatives and
    the buckets use all predictions (sensitivity_analysis.py, false_negative_analysis.py).
    `buckets` names the bins of the ground-truth characteristics (BUCKETS: DETAD's THUMOS'14 or
    ActivityNet ones). Raises TalnetError for unusable input, as evaluate_detection does.
    """
    if buckets not in BUCKETS:
        raise TalnetError(f"unknown bucket set {buckets!r}; choose from {', '.join(BUCKETS)}")
    a = _Analysis(gt, dets, tiou, subset)
    top = a.rank < LIMIT_FACTOR * a.positives
    base, base_n = a.map_of(top)
    gain = {}
    for name in FALSE_POSITIVE_TYPES:
        m, mn = a.map_of(top & (a.error != _CODE[name]))
        gain[name] = (m - base, mn - base_n)
    _, all_n = a.map_of(np.ones(len(a.items), dtype=bool), plain=False)
    detected = a.detected()
    sensitivity = [
        a.bucket_result(b, i, detected) for b in BUCKETS[buckets] for i in range(len(b.names))
    ]
    worst_fp = {}
    for name in FALSE_POSITIVE_TYPES:
        idx = np.flatnonzero(top & (a.error == _CODE[name]))
        idx = sorted(idx, key=lambda i: (-a.fdet.score[i], a.items[i][0], a.fdet.segments[i, 0]))
        worst_fp[name] = [a.classified(i) for i in idx[:worst]]
    return Diagnosis(
        tiou=float(a.threshold),
        buckets=buckets,
        classes=len(a.fgt.labels),
        instances=len(a.fgt.label),
        predictions=len(a.items),
        diagnosed=int(top.sum()),
        normalized_positives=a.normalized_positives,
        map=base,
        map_n=base_n,
        profile=a.profile(),
        gain=gain,
        sensitivity_map_n=all_n,
        missed=int((~detected).sum()),
        sensitivity=sensitivity,
        worst_false_positives=worst_fp,
        longest_missed=a.longest_missed(detected, worst),
    )


class _Analysis:
    """The evaluated predictions matched once (talnet's greedy matching at one threshold), with
    DETAD's outcome, rank and closest instance of each; the analyses are views of it."""

    def __init__(self, gt: GroundTruth, dets: Detections, tiou: float, subset: str | None) -> None:
        self.threshold = float(parse_tious([tiou])[0])
        wanted = None if subset is None else subset.lower()
        # Zero-length instances (ActivityNet has a few) are dropped, as DETAD's loader does.
        self.gt: GroundTruth = {
            vid: VideoInfo(
                vid, info.subset, info.duration, info.fps,
                [a for a in info.annotations if a.end > a.start],
            )
            for vid, info in gt.items()
            if wanted is None or info.subset.lower() == wanted
        }  # fmt: skip
        if not self.gt:
            raise TalnetError(f"no ground-truth video in subset {subset!r}")
        self.fgt: FlatGroundTruth = flatten_ground_truth(self.gt)
        # The instances in the rows of self.fgt (same walk as flatten_ground_truth).
        self.gt_items = [
            (vid, ann)
            for vid, info in self.gt.items()
            for ann in info.annotations
            if ann.label != AMBIGUOUS
        ]
        self.fdet: FlatDetections = flatten_detections(dets, self.fgt)  # the one warning
        videos, labels = set(self.fgt.video_ids), set(self.fgt.labels)
        # The kept detections in the rows of self.fdet (flatten_detections' order).
        self.items = [
            (vid, d) for vid, its in dets.items() if vid in videos for d in its if d.label in labels
        ]
        n_classes = len(self.fgt.labels)
        self.npos = np.bincount(self.fgt.label, minlength=n_classes)
        # DETAD's average_num_instance_per_class, the N of normalized precision.
        self.normalized_positives = len(self.fgt.label) / n_classes
        order, bounds, matched = greedy_assign(
            self.fgt.label, self.fgt.video, self.fgt.segments,
            self.fdet.label, self.fdet.video, self.fdet.segments, self.fdet.score,
            n_classes, len(self.fgt.video_ids), np.array([self.threshold]),
        )  # fmt: skip
        self.order, self.bounds = order, bounds
        n = len(self.items)
        self.rank = np.empty(n, dtype=np.int64)
        self.rank[order] = np.arange(n) - np.repeat(bounds[:-1], np.diff(bounds))
        self.matched = np.empty(n, dtype=np.int64)
        self.matched[order] = matched[0]
        self.positives = self.npos[self.fdet.label]  # G of each prediction's class
        self._closest()
        self._classify()

    def _closest(self) -> None:
        """Each prediction's instance of highest tIoU in its video, any label (the first in
        file order on ties, as DETAD's argmax; none when nothing overlaps); the matched one for
        true positives."""
        n = len(self.items)
        self.best_gt = np.full(n, -1, dtype=np.int64)
        self.best_tiou = np.zeros(n)
        gt_rows = _group(self.fgt.video, len(self.fgt.video_ids))
        det_rows = _group(self.fdet.video, len(self.fgt.video_ids))
        for v, rows in det_rows.items():
            g = gt_rows.get(v)
            if g is None:
                continue
            overlaps = tiou_matrix(self.fdet.segments[rows], self.fgt.segments[g])
            best = np.argmax(overlaps, axis=1)
            top = overlaps[np.arange(len(rows)), best]
            self.best_gt[rows] = np.where(top > 0, g[best], -1)  # no overlap: no instance
            self.best_tiou[rows] = np.where(top > 0, top, 0.0)
        tp = self.matched >= 0
        self.best_gt[tp] = self.matched[tp]
        self.best_tiou[tp] = tiou_pairs(self.fdet.segments[tp], self.fgt.segments[self.matched[tp]])

    def _classify(self) -> None:
        """DETAD's analyze_fp_error_types for every prediction its matching left unmatched:
        the instance of highest tIoU (any label) decides. tIoU ≥ threshold: same label = double
        detection (its instance was taken by a higher-scoring one), another = wrong label;
        MIN_TIOU ≤ tIoU < threshold: localization or confusion alike; lower, or a video
        without instances: background. DETAD's loop reuses the previous video's instances for
        the second prediction of a video without any (a bug); here all of them are background.
        """
        has_gt = self.best_gt >= 0
        same = has_gt & (self.fgt.label[np.maximum(self.best_gt, 0)] == self.fdet.label)
        high = has_gt & (self.best_tiou >= self.threshold)
        near = has_gt & ~high & (self.best_tiou >= MIN_TIOU)
        error = np.full(len(self.items), _CODE["background"], dtype=np.int64)
        error[high & same] = _CODE["double_detection"]
        error[high & ~same] = _CODE["wrong_label"]
        error[near & same] = _CODE["localization"]
        error[near & ~same] = _CODE["confusion"]
        error[self.matched >= 0] = _CODE["true_positive"]
        self.error = error

    def classified(self, i: int) -> ClassifiedPrediction:
        """Prediction i as a ClassifiedPrediction."""
        vid, det = self.items[i]
        g = self.best_gt[i]
        return ClassifiedPrediction(
            video_id=vid,
            detection=det,
            rank=int(self.rank[i]),
            error=ERROR_TYPES[self.error[i]],
            tiou=float(self.best_tiou[i]),
            instance=None if g < 0 else self.gt_items[g][1],
        )

    def profile(self) -> FalsePositiveProfile:
        """Outcome counts of the k-th band and the top k·G of each class, k = 1 … LIMIT_FACTOR."""
        bands, cumulative = [], []
        for k in range(1, LIMIT_FACTOR + 1):
            band = (self.rank >= (k - 1) * self.positives) & (self.rank < k * self.positives)
            upto = self.rank < k * self.positives
            for mask, out in ((band, bands), (upto, cumulative)):
                out.append(np.bincount(self.error[mask], minlength=len(ERROR_TYPES)).tolist())
        return FalsePositiveProfile(bands, cumulative)

    def detections(self, mask: np.ndarray) -> Detections:
        """The predictions selected by `mask` as a Detections dict, file order kept."""
        out: Detections = {}
        for i in np.flatnonzero(mask):
            vid, det = self.items[i]
            out.setdefault(vid, []).append(det)
        return out

    def map_of(self, mask: np.ndarray, plain: bool = True) -> tuple[float, float]:
        """(mAP, mAP_N) of the predictions selected by `mask`, from talnet's evaluator (mAP is
        NaN with `plain` False). Removing false positives never changes another prediction's
        match, so this equals DETAD's reuse of the first matching."""
        dets = self.detections(mask)
        tious = [self.threshold]
        m = evaluate_detection(self.gt, dets, tious).mAP[0] if plain else math.nan
        mn = evaluate_detection(
            self.gt, dets, tious, normalized_positives=self.normalized_positives
        ).mAP[0]
        return float(m), float(mn)

    def detected(self) -> np.ndarray:
        """Which instances are found, as DETAD's false-negative analysis counts them: matched by
        a prediction ranked where its class's normalized precision still exceeds
        MIN_NORMALIZED_PRECISION (all predictions, no top-k·G limit)."""
        found = np.zeros(len(self.fgt.label), dtype=bool)
        for c in range(len(self.fgt.labels)):
            run = self.order[self.bounds[c] : self.bounds[c + 1]]
            if not len(run):
                continue
            tp = self.matched[run] >= 0
            hits = np.cumsum(tp, dtype=np.float64)
            scaled = hits / self.npos[c] * self.normalized_positives
            precision = scaled / (scaled + (np.arange(1, len(run) + 1) - hits))
            found[self.matched[run[tp & (precision > MIN_NORMALIZED_PRECISION)]]] = True
        return found

    def characteristic(self, name: str) -> np.ndarray:
        """DETAD's characteristic of each instance: length (s), coverage (length / video
        duration; NaN without a duration) or instances (of any class) in its video. A coverage
        above 1 (an instance past the video's end) falls in no bucket; DETAD drops such
        instances from every analysis."""
        seg = self.fgt.segments
        length = seg[:, 1] - seg[:, 0]
        if name == "length":
            return length
        if name == "coverage":
            durations = [self.gt[vid].duration for vid in self.fgt.video_ids]
            duration = np.array([math.nan if d is None else d for d in durations])
            return length / duration[self.fgt.video]
        if name == "instances":
            return np.bincount(self.fgt.video, minlength=len(self.fgt.video_ids))[
                self.fgt.video
            ].astype(np.float64)
        raise ValueError(f"unknown characteristic {name!r}")

    def bucket_result(self, buckets: Buckets, i: int, detected: np.ndarray) -> BucketResult:
        """Missed instances and mAP_N of bucket i, as DETAD's sensitivity analysis computes it:
        the bucket's instances against all predictions matched to them or to nothing (those
        matched to other instances are neither right nor wrong here), with the whole set's N.
        """
        inside = buckets.index(self.characteristic(buckets.characteristic)) == i
        n = int(inside.sum())
        map_n = None
        if n:
            keep = self.matched < 0
            keep[self.matched >= 0] = inside[self.matched[self.matched >= 0]]
            gt_bucket = self._ground_truth_of(inside)
            with warnings.catch_warnings():  # labels without instances in the bucket
                warnings.simplefilter("ignore", DataWarning)
                map_n = float(
                    evaluate_detection(
                        gt_bucket,
                        self.detections(keep),
                        [self.threshold],
                        normalized_positives=self.normalized_positives,
                    ).mAP[0]
                )
        return BucketResult(
            characteristic=buckets.characteristic,
            bucket=buckets.names[i],
            range=buckets.describe(i),
            instances=n,
            missed=int((inside & ~detected).sum()),
            map_n=map_n,
        )

    def _ground_truth_of(self, rows: np.ndarray) -> GroundTruth:
        """The evaluated videos with only the instances of `rows` (a mask over self.fgt)."""
        out = {
            vid: VideoInfo(vid, info.subset, info.duration, info.fps)
            for vid, info in self.gt.items()
        }
        for r in np.flatnonzero(rows):
            vid, ann = self.gt_items[r]
            out[vid].annotations.append(ann)
        return out

    def longest_missed(self, detected: np.ndarray, count: int) -> list[MissedInstance]:
        """The `count` longest missed instances, each with the best same-label prediction."""
        seg = self.fgt.segments
        rows = sorted(
            np.flatnonzero(~detected),
            key=lambda r: (seg[r, 0] - seg[r, 1], self.gt_items[r][0], seg[r, 0]),
        )[:count]
        out = []
        for r in rows:
            mine = np.flatnonzero(
                (self.fdet.video == self.fgt.video[r]) & (self.fdet.label == self.fgt.label[r])
            )
            best_tiou, best_score = 0.0, None
            if len(mine):
                overlaps = tiou_matrix(self.fdet.segments[mine], seg[r : r + 1])[:, 0]
                j = int(np.argmax(overlaps))
                if overlaps[j] > 0:
                    best_tiou, best_score = float(overlaps[j]), float(self.fdet.score[mine[j]])
            taker = np.flatnonzero(self.matched == r)
            matched_score = float(self.fdet.score[taker[0]]) if len(taker) else None
            vid, ann = self.gt_items[r]
            out.append(MissedInstance(vid, ann, best_tiou, best_score, matched_score))
        return out


def _group(keys: np.ndarray, n: int) -> dict[int, np.ndarray]:
    """Row indices of each key value present, rows in order."""
    by_key = np.argsort(keys, kind="stable")
    bounds = np.searchsorted(keys[by_key], np.arange(n + 1))
    return {k: by_key[bounds[k] : bounds[k + 1]] for k in range(n) if bounds[k + 1] > bounds[k]}


__all__ = [
    "BUCKETS",
    "ERROR_NAMES",
    "ERROR_TYPES",
    "FALSE_POSITIVE_TYPES",
    "LIMIT_FACTOR",
    "MIN_NORMALIZED_PRECISION",
    "MIN_TIOU",
    "BucketResult",
    "Buckets",
    "ClassifiedPrediction",
    "Diagnosis",
    "FalsePositiveProfile",
    "MissedInstance",
    "classify_predictions",
    "diagnose",
]
