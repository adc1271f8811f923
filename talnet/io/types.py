"""Plain data types shared by every stage: ground truth and detections, times in seconds."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Annotation:
    """One ground-truth action instance."""

    label: str
    start: float
    end: float


@dataclass
class VideoInfo:
    """One video of a ground-truth file: its subset, duration, fps and instances."""

    video_id: str
    subset: str
    duration: float | None = None
    fps: float | None = None
    annotations: list[Annotation] = field(default_factory=list)


# video id -> VideoInfo
GroundTruth = dict[str, VideoInfo]


@dataclass(frozen=True)
class Detection:
    """One predicted action instance."""

    label: str
    start: float
    end: float
    score: float


# video id -> detections of that video
Detections = dict[str, list[Detection]]
