"""The numbers and per-video content a report shows, computed once from ground truth and
predictions, so figures and pages only format them."""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.evaluate.detection import (
    ACTIVITYNET_TIOUS,
    THUMOS_TIOUS,
    evaluate_detection,
    precision_recall,
    video_ap,
)
from talnet.evaluate.diagnose import Diagnosis, diagnose
from talnet.io.annotations import DataWarning, select_subset
from talnet.io.atomic import safe_child
from talnet.io.types import Annotation, Detection, Detections, GroundTruth, VideoInfo
from talnet.visualize.plots import pr_panel_classes

# tIoU of the per-class bars, the precision-recall curves and each video's AP.
PAGE_TIOU = 0.5


@dataclass(frozen=True)
class ReportMetrics:
    """The evaluation the report shows: mAP per tIoU, AP per class, PR curves, AP per video."""

    tious: list[float]
    map_per_tiou: list[float]  # one mAP per entry of tious
    average_map: float
    ap_per_class: dict[str, list[float]]  # label -> AP at each entry of tious
    class_ap: dict[str, float]  # label -> AP at PAGE_TIOU
    pr_curves: dict[str, tuple[np.ndarray, np.ndarray]]  # only the classes the figure draws
    video_ap: dict[str, float]  # video id -> AP at PAGE_TIOU (NaN when it has no AP)
    instances: dict[str, int]  # ground-truth instances per label in the evaluated videos

    @property
    def n_instances(self) -> int:
        """Ground-truth instances of the evaluated classes."""
        return sum(self.instances.get(label, 0) for label in self.ap_per_class)


@dataclass
class VideoPage:
    """What one video page shows, and where its file and video live."""

    video_id: str
    page: str  # file name under REPORT_DIR/video/
    info: VideoInfo | None
    dets: list[Detection] = field(default_factory=list)
    ap: float | None = None
    source: Path | None = None  # the video file, when found in the video folder

    @property
    def duration(self) -> float | None:
        """The ground truth's duration of the video, if it gives one."""
        return self.info.duration if self.info is not None else None

    @property
    def ground_truth(self) -> list[Annotation]:
        """The video's ground-truth instances (none for a prediction-only video)."""
        return self.info.annotations if self.info is not None else []


def evaluate_report(
    gt: GroundTruth, dets: Detections, subset: str | None, tious: Sequence[float] | None
) -> ReportMetrics:
    """Evaluate `dets` on (the `subset` of) `gt` at `tious`, PAGE_TIOU always among them."""
    selected = select_subset(gt, subset) if subset is not None else gt
    tious = list(THUMOS_TIOUS if tious is None else tious)
    if not any(math.isclose(t, PAGE_TIOU) for t in tious):
        tious = sorted([*tious, PAGE_TIOU])
    summary = evaluate_detection(gt, dets, tious=tious, subset=subset).to_json()
    page_index = next(i for i, t in enumerate(summary["tious"]) if math.isclose(t, PAGE_TIOU))
    # evaluate_detection already warned once about predictions outside the evaluated videos.
    own = {vid: items for vid, items in dets.items() if vid in selected}
    class_ap = {label: aps[page_index] for label, aps in summary["ap_per_class"].items()}
    curves = {  # one evaluation pass per class: only for those drawn
        label: precision_recall(selected, own, label, PAGE_TIOU)
        for label in pr_panel_classes(class_ap)
    }
    return ReportMetrics(
        tious=summary["tious"],
        map_per_tiou=summary["mAP"],
        average_map=summary["average"],
        ap_per_class=summary["ap_per_class"],
        class_ap=class_ap,
        pr_curves=curves,
        video_ap=video_ap(selected, own, tiou=PAGE_TIOU),
        instances=_count_instances(selected),
    )


def diagnose_report(
    gt: GroundTruth, dets: Detections, subset: str | None, tious: Sequence[float] | None
) -> Diagnosis | None:
    """The DETAD diagnosis at PAGE_TIOU for the Diagnosis page, with ActivityNet's buckets when
    the report uses ActivityNet's thresholds; None when there is nothing to diagnose (only
    zero-length instances, which the diagnosis drops). evaluate_report has already warned about
    the predictions it ignores, so this stays quiet."""
    anet = tious is not None and tuple(tious) == ACTIVITYNET_TIOUS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        try:
            return diagnose(
                gt, dets, PAGE_TIOU, subset, buckets="activitynet" if anet else "thumos14"
            )
        except TalnetError:
            return None


def _count_instances(gt: GroundTruth) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in gt.values():
        for ann in info.annotations:
            counts[ann.label] = counts.get(ann.label, 0) + 1
    return counts


def page_names(video_ids: Iterable[str]) -> dict[str, str]:
    """A page file name per video id: the id itself when safe_child accepts it, else a sanitized
    stem plus a hash of the id. Names stay unique even on case-insensitive file systems."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for video_id in video_ids:
        try:
            name = safe_child("video", video_id, ".html").name
        except TalnetError:
            name = ""
        if not name or len(name) > 120 or name.lower() in taken:
            stem = re.sub(r"[^A-Za-z0-9._+=@-]+", "_", video_id)[:60].strip("._-") or "video"
            digest = hashlib.sha1(video_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
            name = f"{stem}-{digest}.html"
        names[video_id] = name
        taken.add(name.lower())
    return names


def video_pages(
    gt: GroundTruth, dets: Detections, subset: str | None, aps: Mapping[str, float]
) -> list[VideoPage]:
    """The videos of the (subset of the) ground truth, then prediction-only videos, lowest AP
    first: the videos worth looking at; videos without an AP go last."""
    selected = select_subset(gt, subset) if subset is not None else gt
    ids = list(selected) + [vid for vid in dets if vid not in gt]
    names = page_names(ids)
    pages = []
    for vid in ids:
        ap = aps.get(vid)
        ap = None if ap is None or not math.isfinite(ap) else float(ap)
        pages.append(VideoPage(vid, names[vid], selected.get(vid), list(dets.get(vid, [])), ap))
    pages.sort(key=lambda p: (p.ap is None, p.ap if p.ap is not None else 0.0, p.video_id))
    return pages
