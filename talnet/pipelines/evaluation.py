"""Evaluate a detector on a subset of a feature folder: detect every video, score with the
ActivityNet-equivalent mAP. The one place train, demo, ablate and the benchmarks do this."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from talnet.config import Config
from talnet.detect.detector import Detector, detect_features
from talnet.evaluate.detection import (
    PROTOCOL_TIOUS,
    THUMOS_TIOUS,
    DetectionReport,
    evaluate_detection,
)
from talnet.io.features import FeatureMeta
from talnet.io.types import Detections, GroundTruth
from talnet.model.talnet import TalNet
from talnet.train.fusion import FusionParts
from talnet.train.loop import Validator
from talnet.train.runfiles import VAL_MAP_AT_HALF, VAL_MAP_AVERAGE


@dataclass
class DetectorEvaluation:
    """The detections a detector made on the subset and their metrics."""

    detections: Detections
    report: DetectionReport

    def map_at(self, tiou: float) -> float:
        """mAP at one evaluated tIoU threshold (fraction in [0, 1])."""
        return self.report.map_at(tiou)


def evaluate_detector(
    detector: Detector,
    feat_dir: str | Path,
    gt: GroundTruth,
    progress: bool = False,
    tious: Sequence[float] = THUMOS_TIOUS,
) -> DetectorEvaluation:
    """Detect on the feature files of the videos of `gt` and evaluate against it."""
    dets = detect_features(detector, feat_dir, sorted(gt), progress=progress)
    return DetectorEvaluation(dets, evaluate_detection(gt, dets, tious))


def held_out_validator(feat_dir: str | Path, gt: GroundTruth) -> Validator:
    """A `train` hook that scores the model being trained on held-out videos each epoch, at
    the tIoU thresholds of its config's protocol (evaluate.protocol)."""

    def validate(model: TalNet, classes: list[str], meta: FeatureMeta) -> dict[str, float]:
        device = next(model.parameters()).device
        tious = PROTOCOL_TIOUS[model.config.evaluate.protocol]
        detector = Detector(model, classes, meta, device)
        result = evaluate_detector(detector, feat_dir, gt, tious=tious)
        return {
            VAL_MAP_AT_HALF: round(result.map_at(0.5), 4),
            VAL_MAP_AVERAGE: round(result.report.average, 4),
        }

    return validate


def score_fusion_weights(parts: FusionParts, config: Config) -> dict[float, float]:
    """A `train` hook (train.fusion_holdout, fusion_folds): each train.fusion_weights candidate
    w as detect.step_score_weight, each part's held-out videos detected by that part's model and
    all parts' detections pooled into one mAP, averaged over the protocol's tIoUs. Leaves the
    models in the mode they were found in."""
    tious = PROTOCOL_TIOUS[config.evaluate.protocol]
    gt = {video.video_id: held.gt[video.video_id] for _, held in parts for video in held.videos}
    modes = [model.training for model, _ in parts]
    detectors = [
        (Detector(model, held.classes, held.meta, next(model.parameters()).device), held)
        for model, held in parts
    ]
    scores: dict[float, float] = {}
    for weight in config.train.fusion_weights:
        trial = dataclasses.replace(
            config, detect=dataclasses.replace(config.detect, step_score_weight=weight)
        )
        dets: Detections = {}
        for detector, held in detectors:
            ids = [video.video_id for video in held.videos]
            dets.update(detect_features(detector.with_config(trial), held.feat_dir, ids, False))
        scores[weight] = round(evaluate_detection(gt, dets, tious).average, 4)
    for (model, _), mode in zip(parts, modes, strict=True):
        model.train(mode)
    return scores
