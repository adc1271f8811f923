"""Choosing the score fusion on training videos the choice's models have not seen
(train.fusion_holdout or train.fusion_folds, docs/design.md §3).

A detection's score is (1 - w) x the classifier's probability + w x the per-step head's vote.
Which of the two is the stronger depends on the data: where an action shows as a window's mean
the classifier on SoI-pooled proposals is strong and the per-step head weak, where the signal
per step is faint the head's votes are what finds the actions. No one w serves both (measured
on held-out videos of nine feature generators, benchmarks/model_results.md), and scoring w on
the videos the model trained on prefers the classifier, which has memorized them. Two ways out:
- fusion_holdout: a part of the training videos is left out of all but the last few epochs,
  each candidate w is scored on it, and the best is kept; those videos then join the training
  for its last epochs;
- fusion_folds: after training, the linear heads (the step head, the window classifier and
  the edge regressor if any) are fitted again on all folds of the training videos but one, and
  each w is scored on the fold left out, the window classifier standing in for the proposal
  classifier (which has trained on every fold). No video misses an epoch; the cost is K refits.
  The edge regressor is kept on only if the best w scores at least as well with it as without.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch
from tqdm import tqdm

from talnet.config import Config
from talnet.data.dataset import TrainingData
from talnet.model.talnet import TalNet
from talnet.train.refit import refit_linear_heads

FUSION_WEIGHT = "fusion_weight"  # the chosen w, in the log record of the epoch that chose it
EDGE_CHOICE = "edge_regress_map_avg"  # {"on": mAP, "off": mAP} of the chosen w on the folds
FUSION_SCORES = "fusion_map_avg"  # {w: held-out mAP averaged over the protocol's tIoUs}

# Models, each with the training videos it has not seen (one pair for fusion_holdout, one per
# fold for fusion_folds).
FusionParts = list[tuple[TalNet, TrainingData]]
# Scores each train.fusion_weights candidate on those parts, pooled: (parts, config) ->
# {w: mAP averaged over the protocol's tIoUs}. Detecting and evaluating sit above training
# (talnet.pipelines.evaluation.score_fusion_weights), so the caller hands it to `fit`.
FusionScorer = Callable[[FusionParts, Config], dict[float, float]]


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


def fusion_folds(data: TrainingData, config: Config) -> list[tuple[TrainingData, TrainingData]]:
    """train.fusion_folds seeded folds of the videos as (the rest, the fold) pairs, each video in
    one fold (fewer folds when there are fewer videos); none when it is off or under 2 videos."""
    folds = min(config.train.fusion_folds, len(data))
    if folds < 2:
        return []
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(config.train.seed))
    out = []
    for k in range(folds):
        fold = sorted(int(i) for i in order[k::folds])
        rest = sorted(set(range(len(data))) - set(fold))
        out.append((data.subset(rest), data.subset(fold)))
    return out


@dataclass
class FoldScores:
    """What `score_folds` measured: {w: mAP} with the edge regressor as configured, and the
    best w's mAP with detect.edge_regress off (None where not scored)."""

    weights: dict[float, float]
    edge_off: float | None = None


def score_folds(
    model: TalNet,
    data: TrainingData,
    config: Config,
    score: FusionScorer,
    progress: bool = False,
) -> FoldScores:
    """train.fusion_weights scored on train.fusion_folds folds: per fold, a copy of the trained
    model with its step head, window classifier (and edge regressor) fitted on the other folds
    detects the fold, its class probability the window classifier's alone (the proposal
    classifier has trained on every fold); nothing when there are too few videos to fold. With an
    edge regressor that is on (and train.edge_fold_choice), the best w is scored again with it
    off. The model itself is untouched. With `progress`, a bar counts the refits, then the
    scoring."""
    folds = fusion_folds(data, config)
    if not folds:
        return FoldScores({})
    scoring = replace(config, detect=replace(config.detect, window_score_weight=1.0))
    edges = (
        model.edge_head is not None
        and config.detect.edge_regress
        and config.train.edge_fold_choice
    )
    parts: FusionParts = []
    with tqdm(
        total=len(folds) + 1 + edges, desc="vote weight: refits on folds", unit="step",
        leave=False, disable=not progress,
    ) as bar:  # fmt: skip
        for rest, fold in folds:
            part = copy.deepcopy(model)
            refit_linear_heads(part, rest, config)
            parts.append((part, fold))
            bar.update()
        bar.set_description(f"vote weight: scoring {len(config.train.fusion_weights)} weights")
        scores = FoldScores(score(parts, scoring))
        bar.update()
        if edges and scores.weights:
            best = choose_fusion_weight(scores.weights, config.detect.step_score_weight)
            bar.set_description("edge regressor: scoring it off")
            off = replace(
                scoring,
                train=replace(scoring.train, fusion_weights=[best]),
                detect=replace(scoring.detect, edge_regress=False),
            )
            scores.edge_off = score(parts, off)[best]
            bar.update()
    return scores


def keep_fusion(scores: dict[float, float], config: Config) -> dict[str, Any]:
    """The best-scoring fusion weight made the config's detect.step_score_weight, for the log
    (none scored: the config's own stays)."""
    if not scores:
        return {}
    weight = choose_fusion_weight(scores, config.detect.step_score_weight)
    config.detect.step_score_weight = weight
    return {FUSION_WEIGHT: weight, FUSION_SCORES: {str(w): v for w, v in scores.items()}}


def keep_fold_choice(scores: FoldScores, config: Config) -> dict[str, Any]:
    """`keep_fusion`, then, where it was scored off, detect.edge_regress kept on only if the
    chosen weight scores at least as well with the edge regressor as without it."""
    record = keep_fusion(scores.weights, config)
    if scores.edge_off is not None and scores.weights:
        choice = {"on": scores.weights[config.detect.step_score_weight], "off": scores.edge_off}
        config.detect.edge_regress = edge_kept(choice)
        record[EDGE_CHOICE] = choice
    return record


def edge_kept(choice: dict[str, float]) -> bool:
    """Whether the folds keep the edge regressor: {"on": mAP, "off": mAP} (the log's
    EDGE_CHOICE) scores at least as well on (a tie keeps it)."""
    return choice["on"] >= choice["off"]
