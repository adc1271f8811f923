"""Choosing the score fusion on training videos held out for it (train.fusion_holdout,
docs/design.md §3).

A detection's score is (1 - w) x the classifier's probability + w x the per-step head's vote.
Which of the two is the stronger depends on the data: where an action shows as a window's mean
the classifier on SoI-pooled proposals is strong and the per-step head weak, where the signal
per step is faint the head's votes are what finds the actions. No one w serves both (measured
on held-out videos of nine feature generators, benchmarks/model_results.md), and scoring w on
the videos the model trained on prefers the classifier, which has memorized them. So a part of
the training videos is left out of all but the last few epochs, each candidate w is scored on
it, and the best is kept; those videos then join the training for its last epochs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.talnet import TalNet

FUSION_WEIGHT = "fusion_weight"  # the chosen w, in the log record of the epoch that chose it
FUSION_SCORES = "fusion_map_avg"  # {w: held-out mAP averaged over the protocol's tIoUs}

# Scores each train.fusion_weights candidate on held-out videos: (model, held, config) ->
# {w: mAP averaged over the protocol's tIoUs}. Detecting and evaluating sit above training
# (talnet.pipelines.evaluation.score_fusion_weights), so the caller hands it to `fit`.
FusionScorer = Callable[[TalNet, TrainingData, Config], dict[float, float]]


@dataclass
class FusionSplit:
    """The training videos trained on until the choice (`kept`) and those held out for it."""

    kept: TrainingData
    held: TrainingData
    choice_epoch: int  # 0-based: the choice is made after this epoch, on `held`


def fusion_split(data: TrainingData, config: Config) -> FusionSplit | None:
    """A seeded draw of train.fusion_holdout of the videos (at least one, and one left to
    train on), or None when the choice is off or there are too few videos to split."""
    tcfg = config.train
    if not tcfg.fusion_holdout or len(data) < 2:
        return None
    held_count = min(len(data) - 1, max(1, round(tcfg.fusion_holdout * len(data))))
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(tcfg.seed))
    held = sorted(int(i) for i in order[:held_count])
    kept = sorted(int(i) for i in order[held_count:])
    last_held_out = tcfg.epochs - tcfg.fusion_final_epochs - 1
    return FusionSplit(data.subset(kept), data.subset(held), last_held_out)


def choose_fusion_weight(scores: dict[float, float], own: float) -> float:
    """The best-scoring w; ties go to the config's own detect.step_score_weight (`own`), then
    to the larger w."""
    return max(scores, key=lambda w: (scores[w], w == own, w))
