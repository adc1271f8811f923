"""A trained TAL-Net ready to detect: `Detector.from_checkpoint(path).detect(features)`."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from talnet.config import Config
from talnet.errors import TalnetError
from talnet.io.annotations import DataWarning
from talnet.io.features import FeatureMeta, list_feature_videos, load_features, read_meta
from talnet.io.types import Detection, Detections
from talnet.io.usable import usable_videos
from talnet.io.video_ids import some_ids
from talnet.io.video_scores import VideoScores
from talnet.model.checkpoint import load_checkpoint, model_from_checkpoint
from talnet.model.implications import implication_matrix
from talnet.model.numerics import flush_denormals, zero_subnormals
from talnet.model.talnet import TalNet

PROPOSAL_LABEL = "proposal"  # the label of class-agnostic proposals in a results file


class Detector:
    """A model with its classes and the feature meta it was trained on."""

    def __init__(
        self,
        model: TalNet,
        classes: list[str],
        meta: FeatureMeta,
        device: str | torch.device = "cpu",
    ):
        flush_denormals()  # a trained model's subnormal weights would slow every product
        zero_subnormals(model.parameters())
        self.model = model.to(device).eval()
        self.classes, self.meta = classes, meta
        self.device = torch.device(device)
        self._implied()  # detect.implied_labels must name these classes

    @property
    def config(self) -> Config:
        """The model's config; its `proposals` and `detect` settings apply to every call."""
        return self.model.config

    def with_config(self, config: Config) -> Detector:
        """A detector sharing this one's weights that detects with `config`'s `proposals` and
        `detect` settings (e.g. another proposal budget), leaving this one as it was."""
        if config.model != self.config.model:
            raise TalnetError("with_config changes detection settings only, not the model")
        config.validate()
        model = copy.copy(self.model)  # a new module object over the same submodules
        model.config = config
        return Detector(model, self.classes, self.meta, self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str = "cpu") -> Detector:
        """Load a checkpoint written by `talnet train` (weights_only: no code is unpickled)."""
        ckpt = load_checkpoint(path)
        model, _, meta = model_from_checkpoint(ckpt, path)
        try:
            return cls(model, list(ckpt["classes"]), meta, device)
        except TalnetError as exc:  # its config names a label it has no class for
            raise TalnetError(str(exc), path) from exc

    @property
    def expected_meta(self) -> FeatureMeta:
        """The feature grid and streams the model was trained on (only the streams it uses)."""
        streams = list(self.model.stream_dims)
        return self.meta.restricted_to(streams, [self.model.stream_dims[s] for s in streams])

    def check_fits(self, meta: FeatureMeta, source: str | Path | None = None) -> None:
        """Refuse features made on another grid (fps, stride, window) or lacking a stream the
        model uses: their steps would map to wrong times. The error names each setting."""
        problems = self.expected_meta.mismatches(meta)
        if problems:
            raise TalnetError("features do not fit the checkpoint: " + "; ".join(problems), source)

    def detect(
        self,
        features: dict[str, np.ndarray],
        meta: FeatureMeta | None = None,
        video_scores: np.ndarray | None = None,
    ) -> list[Detection]:
        """One video's features {stream: (T, C)} -> detections in seconds, best first.

        `meta` describes the features (default: the checkpoint's own grid; for resampled
        features the video's `FeatureMeta.for_video` view); features on another grid are
        refused (see `check_fits`). `video_scores` (C,), one per class of `classes`, score
        the model's class-agnostic proposals instead (ActivityNet practice)."""
        return self._detect_fitted(features, self._fitting(meta), video_scores=video_scores)

    def propose(
        self, features: dict[str, np.ndarray], meta: FeatureMeta | None = None
    ) -> list[Detection]:
        """One video's class-agnostic proposals in seconds (label "proposal"), best first: the
        first stage's, scored by its objectness or, with detect.proposal_rank, re-scored by
        the second stage, and with detect.refine_proposals placed by it; for recall at a
        number of proposals."""
        return self._detect_fitted(features, self._fitting(meta), proposals_only=True)

    def _fitting(self, meta: FeatureMeta | None) -> FeatureMeta:
        """`meta`, checked to fit the checkpoint, or the checkpoint's own grid when None."""
        if meta is None:
            return self.meta
        self.check_fits(meta)
        return meta

    def video_probabilities(self, features: dict[str, np.ndarray]) -> np.ndarray:
        """One video's class probabilities (C,) from the model's video-level classifier."""
        with torch.inference_mode():
            return self.model.video_probabilities(self._tensors(features)).cpu().numpy()

    def _detect_fitted(
        self,
        features: dict[str, np.ndarray],
        meta: FeatureMeta,
        proposals_only: bool = False,
        video_scores: np.ndarray | None = None,
    ) -> list[Detection]:
        """`detect` (or `propose`) for features whose `meta` is already known to fit."""
        tensors = self._tensors(features)
        length = next(iter(tensors.values())).shape[0]
        with torch.inference_mode():
            if proposals_only:
                segments, scores = self.model.proposals(tensors)
                labels = [PROPOSAL_LABEL] * len(scores)
            else:
                probs = None
                if video_scores is not None:
                    probs = torch.as_tensor(np.asarray(video_scores, dtype=np.float32))
                    if probs.shape != (len(self.classes),):
                        raise TalnetError(
                            f"video scores: expected {len(self.classes)} values (one per "
                            f"class), got shape {tuple(probs.shape)}"
                        )
                found = self.model(tensors, video_probs=probs, implied=self._implied())
                segments, scores = found.segments, found.scores
                labels = [self.classes[int(c)] for c in found.classes.tolist()]
        seconds = np.asarray(meta.step_to_seconds(segments.double().cpu().numpy()))
        seconds = np.clip(seconds.reshape(-1, 2), 0.0, meta.duration(length))
        return [
            Detection(label, float(s[0]), float(s[1]), float(p))
            for s, label, p in zip(seconds, labels, scores.tolist(), strict=True)
            if s[1] > s[0]
        ]

    def _implied(self) -> torch.Tensor | None:
        """The (C, C) matrix of detect.implied_labels over this model's classes (None if none)."""
        pairs = self.config.detect.implied_labels
        return implication_matrix(pairs, self.classes) if pairs else None

    def _tensors(self, features: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        """The model's streams as (T, C) float tensors over the arrays' memory (no copy of a
        float32 array, memory-mapped ones included); the model moves them to its device a
        window at a time. Wrong shapes refused."""
        missing = [s for s in self.model.stream_dims if s not in features]
        if missing:
            raise TalnetError(f"features lack stream(s) {missing} the model was trained on")
        tensors = {}
        for stream, dim in self.model.stream_dims.items():
            arr = np.asarray(features[stream], dtype=np.float32)
            if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] < 1:
                raise TalnetError(
                    f"stream {stream!r}: expected (T, {dim}) features, got {arr.shape}"
                )
            tensors[stream] = _as_tensor(arr)
        return tensors


def _as_tensor(arr: np.ndarray) -> torch.Tensor:
    """A tensor sharing `arr`'s memory, also when it is read-only (a memory-mapped feature file:
    inference only reads its inputs, so torch's warning about writes does not apply)."""
    if arr.flags.writeable:
        return torch.from_numpy(arr)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(arr)


def detect_features(
    detector: Detector,
    feat_dir: str | Path,
    video_ids: list[str] | None = None,
    progress: bool = True,
    proposals_only: bool = False,
    video_scores: VideoScores | None = None,
) -> Detections:
    """Run `detector` on the videos of a feature folder (all of them when video_ids is None)
    -> {video_id: detections in seconds}, or with `proposals_only` its class-agnostic
    proposals (see `Detector.propose`). Features on another grid are refused first; videos
    without features are listed in one warning and skipped (an error if none has any).
    `video_scores` (e.g. CUHK's file) score the class-agnostic proposals of the videos it
    holds (under their id or its "v_" twin); the others, listed in one warning, are scored as
    the checkpoint's config says."""
    meta = read_meta(feat_dir)
    detector.check_fits(meta, feat_dir)
    wanted = list_feature_videos(feat_dir, meta) if video_ids is None else list(video_ids)
    ids = usable_videos(feat_dir, meta, wanted, consequence="no detections for them")
    if video_scores is not None:
        video_scores = video_scores.for_classes(detector.classes)
        unscored = [v for v in ids if video_scores.lookup(v) is None]
        if unscored:
            warnings.warn(
                f"{video_scores.source}: no video scores for {some_ids(unscored)}; scored as "
                "the checkpoint's config says",
                DataWarning,
                stacklevel=2,
            )
    out: Detections = {}
    for vid in tqdm(ids, desc="detect", unit="video", disable=not progress, leave=False):
        features = load_features(feat_dir, vid, meta, mmap=True)  # hours-long: not copied
        scores = video_scores.lookup(vid) if video_scores is not None else None
        grid = meta.for_video(vid, feat_dir)
        out[vid] = detector._detect_fitted(features, grid, proposals_only, scores)
    return out
