"""Training data: features and ground truth of one subset, as feature-step targets.

Long-video policy (training): a video longer than `max_steps` feature steps is randomly cropped
to `max_steps` each time it is drawn; ground truth is clipped to the crop and an instance keeps
its label only if at least half of it lies inside (a fragment would teach wrong boundaries).
Inference never crops (see talnet.model.talnet for its window policy).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talnet.io.annotations import labels_of
from talnet.io.features import FeatureMeta, feature_length, load_features
from talnet.io.packed import LAYOUT as PACKED
from talnet.io.packed import open_store
from talnet.io.types import GroundTruth
from talnet.io.usable import usable_videos

# Keep every video's features in memory when they all fit in this many bytes (a packed store
# is sliced from its memory map instead).
CACHE_LIMIT_BYTES = 1 << 30


@dataclass
class TrainingVideo:
    """One video's targets in feature steps: segments (G, 2), labels (G,) in 1..C."""

    video_id: str
    length: int
    segments: np.ndarray
    labels: np.ndarray


@dataclass
class Crop:
    """What one training step sees: features {stream: (T, C)}, targets in crop steps."""

    video_id: str
    features: dict[str, torch.Tensor]
    segments: torch.Tensor  # (G, 2) float32
    labels: torch.Tensor  # (G,) long

    @property
    def length(self) -> int:
        """Number of feature steps in the crop."""
        return next(iter(self.features.values())).shape[0]


class TrainingData:
    """The training videos of a ground truth (clipped for training) with their features."""

    def __init__(
        self,
        gt: GroundTruth,
        feat_dir: str | Path,
        meta: FeatureMeta,
        classes: list[str] | None = None,
    ):
        self.feat_dir, self.meta, self.gt = Path(feat_dir), meta, gt
        self.classes = classes if classes is not None else labels_of(gt)
        index = {name: i + 1 for i, name in enumerate(self.classes)}
        usable = usable_videos(
            feat_dir, meta, sorted(gt), " of the training subset", "training without them"
        )
        self.videos: list[TrainingVideo] = []
        for vid in usable:
            # "Ambiguous" and classes unknown to the model are left out of the targets
            anns = [a for a in gt[vid].annotations if a.label in index]
            segs = np.array([[a.start, a.end] for a in anns], dtype=np.float64).reshape(-1, 2)
            grid = meta.for_video(vid, feat_dir)
            steps = np.asarray(grid.seconds_to_step(segs), dtype=np.float32).reshape(-1, 2)
            labels = np.array([index[a.label] for a in anns], dtype=np.int64)
            length = feature_length(feat_dir, vid, meta)
            self.videos.append(TrainingVideo(vid, length, steps, labels))
        dims = sum(meta.dims or [0])
        total = sum(v.length for v in self.videos) * max(dims, 1) * 4
        # a packed store: one memory map per stream, each video checked once when first drawn
        self._store = open_store(feat_dir) if meta.layout == PACKED else None
        self._checked: set[str] = set()
        self._cache: dict[str, dict[str, np.ndarray]] | None = (
            {} if total <= CACHE_LIMIT_BYTES and self._store is None else None
        )

    def __len__(self) -> int:
        return len(self.videos)

    def subset(self, indices: list[int]) -> TrainingData:
        """The same data restricted to videos `indices` (in that order), sharing the feature
        cache and store: a part of the training videos to train on while the rest is held out."""
        part = copy.copy(self)
        part.videos = [self.videos[i] for i in indices]
        return part

    def features(self, i: int) -> dict[str, np.ndarray]:
        """Video i's features {stream: (T, C)} (cached in memory when the set is small; for a
        packed store, read-only slices of its memory maps, no copy)."""
        vid = self.videos[i].video_id
        if self._store is not None:
            feats = self._store.views(vid, self.meta, check=vid not in self._checked)
            self._checked.add(vid)
            return feats
        if self._cache is not None and vid in self._cache:
            return self._cache[vid]
        feats = load_features(self.feat_dir, vid, self.meta)
        if self._cache is not None:
            self._cache[vid] = feats
        return feats

    def crop(self, i: int, max_steps: int, generator: torch.Generator) -> Crop:
        """Video i, randomly cropped to at most max_steps steps, targets shifted and clipped."""
        video = self.videos[i]
        feats = self.features(i)
        length = next(iter(feats.values())).shape[0]
        start = 0
        if length > max_steps:
            start = int(torch.randint(0, length - max_steps + 1, (1,), generator=generator))
        end = min(length, start + max_steps)
        segs = video.segments - start
        clipped = np.clip(segs, -0.5, end - start - 0.5)
        inside = (clipped[:, 1] - clipped[:, 0]) >= 0.5 * (segs[:, 1] - segs[:, 0])
        inside &= clipped[:, 1] > clipped[:, 0]
        return Crop(
            video.video_id,
            {s: torch.from_numpy(_own_crop(a[start:end])) for s, a in feats.items()},
            torch.from_numpy(clipped[inside].astype(np.float32)),
            torch.from_numpy(video.labels[inside]),
        )


def _own_crop(part: np.ndarray) -> np.ndarray:
    """A crop torch can take: contiguous; a read-only memory-map slice is copied to float32 (only
    the crop's rows are read), an in-memory array passed on as before."""
    return np.ascontiguousarray(part) if part.flags.writeable else np.array(part, np.float32)
