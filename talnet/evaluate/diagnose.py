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
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from talnet.errors import TalnetError
from talnet.evaluate.detection import evaluate_detection
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
from talnet.io.types import Annotation, Detection, Detections, GroundTruth, VideoInfo

# DETAD's prediction outcomes, in its legend's order (fp_error_types_legned).
ERROR_TYPES: tuple[str, ...] = (
    "true_positive",
    "double_detection",
    "wrong_label",
    "localization",
    "confusion",
    "background",
)
FALSE_POSITIVE_TYPES: tuple[str, ...] = ERROR_TYPES[1:]
ERROR_NAMES: dict[str, str] = {
    "true_positive": "true positive",
    "double_detection": "double detection",
    "wrong_label": "wrong label",
    "localization": "localization",
    "confusion": "confusion",
    "background": "background",
}
# DETAD's min_tiou_thr: below this tIoU with every instance a false positive is background.
MIN_TIOU = 0.1
# DETAD's limit_factor: the false-positive analysis looks at the top 10·G predictions per class.
LIMIT_FACTOR = 10
# DETAD's false_negative_analysis: a match counts only where normalized precision exceeds this.
MIN_NORMALIZED_PRECISION = 0.05
_CODE = {name: i for i, name in enumerate(ERROR_TYPES)}


@dataclass(frozen=True)
class Buckets:
    """One ground-truth characteristic cut into DETAD's named buckets (lo, hi] (the first also
    closed at lo), as its pandas.cut(include_lowest=True) does."""

    characteristic: str  # "length" (s), "coverage" (length / duration), "instances" (per video)
    edges: tuple[float, ...]
    names: tuple[str, ...]

    def index(self, values: np.ndarray) -> np.ndarray:
        """The bucket of each value, -1 for values outside the edges or NaN (DETAD drops them)."""
        values = np.asarray(values, dtype=np.float64)
        edges = np.asarray(self.edges, dtype=np.float64)
        out = np.searchsorted(edges, values, side="left") - 1
        out[values == edges[0]] = 0
        out[~((values >= edges[0]) & (values <= edges[-1]))] = -1  # NaN too
        return out

    def describe(self, i: int) -> str:
        """The range of bucket i in words: "≤ 3 s", "3–6 s", "> 18 s", "1", "2–40"."""
        lo, hi = self.edges[i], self.edges[i + 1]
        unit = " s" if self.characteristic == "length" else ""
        if self.characteristic == "instances":  # integers: (1, 40] is 2–40
            lo_n = int(math.floor(lo)) + 1
            if i == 0:
                return f"≤ {int(hi)}"
            return f"≥ {lo_n}" if math.isinf(hi) else f"{lo_n}–{int(hi)}"
        if i == 0:
            return f"≤ {hi:g}{unit}"
        if math.isinf(hi):
            return f"> {lo:g}{unit}"
        return f"{lo:g}–{hi:g}{unit}"


_SIZES5 = ("XS", "S", "M", "L", "XL")
# The bins of DETAD's scripts, per benchmark (their `is_thumos14` switch).
BUCKETS: dict[str, tuple[Buckets, ...]] = {
    "thumos14": (
        Buckets("length", (0.0, 3.0, 6.0, 12.0, 18.0, math.inf), _SIZES5),
        Buckets("coverage", (0.0, 0.02, 0.04, 0.06, 0.08, 1.0), _SIZES5),
        Buckets("instances", (-1.0, 1.0, 40.0, 80.0, math.inf), _SIZES5[:4]),
    ),
    "activitynet": (
        Buckets("length", (0.0, 30.0, 60.0, 120.0, 180.0, math.inf), _SIZES5),
        Buckets("coverage", tuple(np.linspace(0.0, 1.0, 6).tolist()), _SIZES5),
        Buckets("instances", (-1.0, 1.0, 4.0, 8.0, math.inf), _SIZES5[:4]),
    ),
}


@dataclass(frozen=True)
class ClassifiedPrediction:
    """One prediction with DETAD's outcome: a true positive or the kind of false positive."""

    video_id: str
    detection: Detection
    rank: int  # 0-based place among its class's predictions, in the evaluator's score order
    error: str  # one of ERROR_TYPES
    tiou: float  # with `instance`; 0 when the video has no instance
    instance: Annotation | None  # the one it matched, else the one it overlaps most (any label)

    def to_json(self) -> dict:
        """Plain JSON-ready dict, times in seconds."""
        d = self.detection
        inst = self.instance
        return {
            "video_id": self.video_id,
            "label": d.label,
            "start": d.start,
            "end": d.end,
            "score": d.score,
            "rank": self.rank,
            "error": self.error,
            "tiou": float(self.tiou),
            "instance": None
            if inst is None
            else {"label": inst.label, "start": inst.start, "end": inst.end},
        }


@dataclass(frozen=True)
class MissedInstance:
    """A ground-truth instance no prediction found, with the best same-label try in its video."""

    video_id: str
    instance: Annotation
    best_tiou: float  # highest tIoU of a prediction of its label in its video (0 if none)
    best_score: float | None  # that prediction's score (None when none overlaps it)
    # The score of the prediction that matched it where its class's normalized precision was
    # already at or below MIN_NORMALIZED_PRECISION (None: no prediction matched it at all).
    matched_score: float | None = None

    def to_json(self) -> dict:
        """Plain JSON-ready dict, times in seconds."""
        a = self.instance
        return {
            "video_id": self.video_id,
            "label": a.label,
            "start": a.start,
            "end": a.end,
            "length": a.end - a.start,
            "best_tiou": float(self.best_tiou),
            "best_score": self.best_score,
            "matched_score": self.matched_score,
        }


@dataclass(frozen=True)
class FalsePositiveProfile:
    """DETAD's false-positive profile: the outcomes of each class's top k·G predictions.

    `bands[k-1]` counts the predictions ranked (k-1)·G … k·G-1 of their class (0-based; G = its
    instances), the bars DETAD draws (split_predictions_by_score_ranges); `cumulative[k-1]`
    counts all of the top k·G. Counts are pooled over classes, one per type in ERROR_TYPES.
    """

    bands: list[list[int]]
    cumulative: list[list[int]]

    @staticmethod
    def shares(counts: Sequence[int]) -> list[float]:
        """Counts as fractions of their sum (zeros when empty)."""
        total = sum(counts)
        return [c / total if total else 0.0 for c in counts]

    def to_json(self) -> dict:
        """Counts and shares per k, each a list in ERROR_TYPES order."""
        return {
            "k": list(range(1, len(self.bands) + 1)),
            "types": list(ERROR_TYPES),
            "band_counts": self.bands,
            "band_shares": [self.shares(c) for c in self.bands],
            "cumulative_counts": self.cumulative,
            "cumulative_shares": [self.shares(c) for c in self.cumulative],
        }


@dataclass(frozen=True)
class BucketResult:
    """One bucket of one characteristic: its instances, how many were missed, its mAP_N."""

    characteristic: str
    bucket: str
    range: str
    instances: int
    missed: int
    map_n: float | None  # None when the bucket has no instance

    @property
    def missed_share(self) -> float | None:
        """Fraction of the bucket's instances missed (None when it is empty)."""
        return self.missed / self.instances if self.instances else None

    def to_json(self) -> dict:
        """Plain JSON-ready dict."""
        return {
            "characteristic": self.characteristic,
            "bucket": self.bucket,
            "range": self.range,
            "instances": self.instances,
            "missed": self.missed,
            "missed_share": self.missed_share,
            "mAP_N": self.map_n,
        }


@dataclass
class Diagnosis:
    """Everything `talnet diagnose` reports; fractions in [0, 1], times in seconds."""

    tiou: float
    buckets: str  # key of BUCKETS
    classes: int
    instances: int
    predictions: int  # evaluated predictions (known video and label)
    diagnosed: int  # of those, the top LIMIT_FACTOR·G per class
    normalized_positives: float  # DETAD's N: instances per class on average
    map: float  # mAP of the diagnosed predictions
    map_n: float  # their normalized mAP
    profile: FalsePositiveProfile
    gain: dict[str, tuple[float, float]]  # error type -> (mAP gain, mAP_N gain) when removed
    sensitivity_map_n: float  # mAP_N of all predictions (DETAD's sensitivity base)
    missed: int  # instances missed by all predictions
    sensitivity: list[BucketResult]
    worst_false_positives: dict[str, list[ClassifiedPrediction]] = field(default_factory=dict)
    longest_missed: list[MissedInstance] = field(default_factory=list)

    @property
    def missed_share(self) -> float:
        """Fraction of all instances missed."""
        return self.missed / self.instances if self.instances else 0.0

    def to_json(self) -> dict:
        """One JSON-ready object (what `talnet diagnose --json` prints)."""
        return {
            "tiou": self.tiou,
            "buckets": self.buckets,
            "classes": self.classes,
            "instances": self.instances,
            "predictions": self.predictions,
            "diagnosed_predictions": self.diagnosed,
            "limit_factor": LIMIT_FACTOR,
            "normalized_positives": self.normalized_positives,
            "mAP": self.map,
            "mAP_N": self.map_n,
            "false_positive_profile": self.profile.to_json(),
            "removal_gain": {name: {"mAP": g, "mAP_N": gn} for name, (g, gn) in self.gain.items()},
            "false_negatives": {
                "missed": self.missed,
                "missed_share": self.missed_share,
                "min_normalized_precision": MIN_NORMALIZED_PRECISION,
            },
            "sensitivity": {
                "mAP_N": self.sensitivity_map_n,
                "buckets": [b.to_json() for b in self.sensitivity],
            },
            "worst_false_positives": {
                name: [p.to_json() for p in cases]
                for name, cases in self.worst_false_positives.items()
            },
            "longest_missed": [m.to_json() for m in self.longest_missed],
        }

    def format_table(self) -> str:
        """The diagnosis as plain-text tables."""
        return "\n".join(_format(self))


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


# ---------------------------------------------------------------------------------------------
# Text output

_SHORT = {
    "true_positive": "TP",
    "double_detection": "double",
    "wrong_label": "wrong label",
    "localization": "localization",
    "confusion": "confusion",
    "background": "background",
}


def _pct(x: float | None) -> str:
    return "–" if x is None or not math.isfinite(x) else f"{100 * x:.1f}"


def _row(cells: Iterable[str], widths: Sequence[int]) -> str:
    return "  ".join(
        c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    return [_row(head, widths), *(_row(r, widths) for r in rows)]


def _format(d: Diagnosis) -> list[str]:
    lines = [
        f"DETAD diagnosis at tIoU {d.tiou:g}: {d.classes} classes, {d.instances} instances, "
        f"{d.predictions} predictions ({d.diagnosed} in the top {LIMIT_FACTOR}G of their class)",
        f"top-{LIMIT_FACTOR}G predictions: mAP {_pct(d.map)} %, mAP_N {_pct(d.map_n)} % "
        f"(N = {d.normalized_positives:.1f} instances per class)",
        "",
        "False-positive profile (%): predictions ranked (k-1)G+1 … kG in their class, "
        "G = its instances",
    ]
    head = ["k", *(_SHORT[t] for t in ERROR_TYPES), "predictions"]
    rows = [
        [f"{k}G", *(_pct(s) for s in FalsePositiveProfile.shares(c)), str(sum(c))]
        for k, c in enumerate(d.profile.bands, 1)
    ]
    lines += _table(head, rows)
    lines += ["", f"Removing each error type from the top-{LIMIT_FACTOR}G predictions (points)"]
    rows = [
        [ERROR_NAMES[t], f"{100 * g:+.2f}", f"{100 * gn:+.2f}"] for t, (g, gn) in d.gain.items()
    ]
    lines += _table(["error type", "mAP gain", "mAP_N gain"], rows)
    lines += [
        "",
        f"Sensitivity (all predictions): mAP_N {_pct(d.sensitivity_map_n)} %, "
        f"{d.missed} of {d.instances} instances missed ({_pct(d.missed_share)} %)",
    ]
    rows = [
        [b.characteristic, b.bucket, b.range, str(b.instances), _pct(b.missed_share), _pct(b.map_n)]
        for b in d.sensitivity
    ]
    lines += _table(
        ["characteristic", "bucket", "range", "instances", "missed (%)", "mAP_N (%)"], rows
    )
    lines += ["", "Highest-scoring false positives (times in seconds)"]
    rows = []
    for name, cases in d.worst_false_positives.items():
        for p in cases[:3]:
            inst = p.instance
            near = "–" if inst is None else f"{inst.label} {inst.start:.2f}–{inst.end:.2f}"
            det = p.detection
            rows.append(
                [ERROR_NAMES[name], f"{det.score:.3f}", p.video_id, det.label,
                 f"{det.start:.2f}", f"{det.end:.2f}", f"{p.tiou:.2f}", near]
            )  # fmt: skip
    lines += _table(
        ["error type", "score", "video", "label", "start", "end", "tIoU", "closest instance"],
        rows,
    )
    lines += [
        "",
        "Longest missed instances (times in seconds; best tIoU: of a prediction of its label; "
        f"late match: matched only where normalized precision ≤ {MIN_NORMALIZED_PRECISION:.0%})",
    ]
    rows = [
        [m.video_id, m.instance.label, f"{m.instance.start:.2f}", f"{m.instance.end:.2f}",
         f"{m.instance.end - m.instance.start:.2f}", f"{m.best_tiou:.2f}",
         "–" if m.matched_score is None else f"{m.matched_score:.3f}"]
        for m in d.longest_missed
    ]  # fmt: skip
    lines += _table(
        ["video", "label", "start", "end", "length", "best tIoU", "late match score"], rows
    )
    return lines
