"""Has a finished run learned anything? Its last epoch's classification losses beside chance,
so that `talnet train` can say so when a CPU-sized run ends about where it started.

Chance, per loss term of the training log (`runfiles.LOG_FILE`):

- `video_cls` (the video-level classifier): ln(K) for K classes, the cross-entropy of a uniform
  guess against any target distribution, and the best constant guess when the videos' classes
  are balanced and one per video (ActivityNet). Near chance above NEAR_CHANCE * ln(K): the right
  class then gets a geometric-mean probability under K**-0.9, i.e. less than K**0.1 times
  chance (1.3x at 20 classes, 1.7x at 200); anet13 after 6 epochs on 160 synthetic videos of
  40 classes logged 3.38 against 3.32 (warned), a run that learned falls far below. After a
  refit of the head (`train.video_refit_iterations`) its own loss, `video_refit_loss`, is
  judged instead: that head is the one detection uses. Crops
  without an action add 0 to the mean, so the check errs towards silence; videos of several
  classes have a floor above 0 (their classes' entropy), so it may warn on those.
- `spn_cls` and `cls_cls` (the two stages' classifiers, on sampled anchors / proposals):
  chance is the cross-entropy of predicting the sampled class prior, which the log does not
  record; the samplers' quotas bound it (`prior_loss_bound`, when negatives fill the batch).
  Near chance when the last value is above NEAR_CHANCE times that bound (then it cannot be far
  below the prior's loss), or when, over two or more epochs, it fell by less than MIN_FALL of
  epoch 1's value (a stall: a too-small learning rate, or features the model cannot use). Runs
  that learn fall by far more (thumos14_cpu over 20 epochs: 50-90 %; a 2-epoch demo run: 21 %;
  anet13 above: 49 % and 30 %); stalled ones by 0-3 % (3 epochs of 4 steps, cpu_fast). A run
  whose epoch 1 already reached its plateau (very many steps an epoch) can trip the stall test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from talnet.config import Config
from talnet.model.losses import LOSS_NAMES
from talnet.model.video_head import VIDEO_LOSS
from talnet.train.video_refit import VIDEO_REFIT_LOSS

NEAR_CHANCE = 0.9  # a loss above this share of chance is "near chance"
MIN_FALL = 0.10  # a loss that fell by less than this share of epoch 1's has stalled
SPN_LOSS, CLS_LOSS = LOSS_NAMES[0], LOSS_NAMES[2]  # the two stages' classification terms


def prior_loss_bound(foreground_fraction: float, classes: int) -> float:
    """The most that predicting the class prior can cost on batches of at most
    `foreground_fraction` foreground over `classes` classes (background the rest), in nats."""
    q = min(foreground_fraction, classes / (classes + 1))  # the maximizing share
    binary = -(q * math.log(q) + (1 - q) * math.log(1 - q)) if 0 < q < 1 else 0.0
    return binary + q * math.log(classes)


def near_chance(
    records: Sequence[Mapping[str, Any]], config: Config, num_classes: int
) -> list[str]:
    """One warning line per classification loss that the run's last epoch left near chance
    (module docstring); none when the run has learned. `records`: log.jsonl's, epoch order."""
    if not records:
        return []
    first, last = records[0], records[-1]
    epochs, t = int(last.get("epoch", len(records))), config.train
    advice = _advice(config)
    lines = []
    # the head that detection uses: the refitted one where a refit ran (its loss unweighted)
    video_loss = VIDEO_REFIT_LOSS if VIDEO_REFIT_LOSS in last else VIDEO_LOSS
    weight = 1.0 if video_loss == VIDEO_REFIT_LOSS else t.video_cls_weight
    if video_loss in last and num_classes >= 2 and weight > 0:
        chance = weight * math.log(num_classes)
        value = float(last[video_loss])
        if value > NEAR_CHANCE * chance:
            scale = "" if weight == 1 else f"{weight:g} x "
            lines.append(
                f"{video_loss} {value:.3f} after {_epochs(epochs)} is near chance: "
                f"{scale}ln({num_classes}) = {chance:.3f}, a uniform guess over {num_classes} "
                f"classes (warned above {NEAR_CHANCE:.0%} of it); {advice}"
            )
    foreground = f"foreground over {num_classes} classes"
    stages = (
        (SPN_LOSS, t.spn_positive_fraction, 1, "positive anchors"),
        (CLS_LOSS, t.cls_foreground_fraction, num_classes, foreground),
    )
    for name, fraction, k, what in stages:
        if name not in last:
            continue
        value, bound = float(last[name]), prior_loss_bound(fraction, k)
        prior = (
            f"predicting the class prior costs at most {bound:.3f} (up to {fraction:.0%} {what})"
        )
        start = float(first.get(name, 0.0))
        if value > NEAR_CHANCE * bound:
            lines.append(
                f"{name} {value:.3f} after {_epochs(epochs)} is near chance: {prior}, "
                f"warned above {NEAR_CHANCE:.0%} of it; {advice}"
            )
        elif len(records) >= 2 and start > 0 and value > (1 - MIN_FALL) * start:
            change = f"fell only {1 - value / start:.0%}" if value <= start else "rose"
            lines.append(
                f"{name} {value:.3f} after {_epochs(epochs)} {change} from epoch "
                f"{first.get('epoch', 1)}'s {start:.3f} (warned under a {MIN_FALL:.0%} fall), so "
                f"it may be no better than chance: {prior}; {advice}"
            )
    return lines


def _epochs(n: int) -> str:
    return f"{n} epoch" + ("" if n == 1 else "s")


def _advice(config: Config) -> str:
    """What to change, the same on every line (each line stands alone)."""
    return (
        f"train more epochs (--epochs), raise train.lr (this run: {config.train.lr:g}; the CPU "
        "presets cpu_fast and thumos14_cpu use 10x the paper's 1e-4), set "
        "train.videos_per_batch for many short videos (k videos a step; lr times k), or start "
        "from a CPU preset"
    )
