"""The results of a DETAD diagnosis (talnet.evaluate.diagnose) and the settings they are made
with: the outcome names, DETAD's thresholds and buckets, and each result's JSON form.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from talnet.io.types import Annotation, Detection

# DETAD's prediction outcomes, in its legend's order (fp_error_types_legned): the one table of
# their names, (key, name in words, short name for the text table's columns).
_OUTCOMES: tuple[tuple[str, str, str], ...] = (
    ("true_positive", "true positive", "TP"),
    ("double_detection", "double detection", "double"),
    ("wrong_label", "wrong label", "wrong label"),
    ("localization", "localization", "localization"),
    ("confusion", "confusion", "confusion"),
    ("background", "background", "background"),
)
ERROR_TYPES: tuple[str, ...] = tuple(key for key, _, _ in _OUTCOMES)
FALSE_POSITIVE_TYPES: tuple[str, ...] = ERROR_TYPES[1:]
ERROR_NAMES: dict[str, str] = {key: name for key, name, _ in _OUTCOMES}
ERROR_SHORT_NAMES: dict[str, str] = {key: short for key, _, short in _OUTCOMES}
# DETAD's min_tiou_thr: below this tIoU with every instance a false positive is background.
MIN_TIOU = 0.1
# DETAD's limit_factor: the false-positive analysis looks at the top 10·G predictions per class.
LIMIT_FACTOR = 10
# DETAD's false_negative_analysis: a match counts only where normalized precision exceeds this.
MIN_NORMALIZED_PRECISION = 0.05


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
        from talnet.evaluate.diagnosis_text import format_table  # it imports this module

        return format_table(self)
