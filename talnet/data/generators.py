"""A family of synthetic THUMOS'14-shaped generators that differ in HOW an action shows in the
features (docs/design.md §7). A detector tuned on one generator learns that generator's renderer;
a method must win on all of them. Every generator lays its videos out like the `thumos14`
profile (talnet.data.thumos_profile: the same videos, instances, 20 class names and ground truth
for a seed; `tempo` alone redraws the action lengths), and renders two streams (RGB weaker than
flow) with its own look (talnet.data.renderers). Each is deterministic per seed, videos are
independent of each other. Per generator, what it renders and the failure it tests:

- lowsignal: AR(1) background noise (coefficient 0.9 per step, unit variance), a white per-step
  flicker of all class patterns everywhere (variance 2 along each pattern), and a weak steady
  class pattern with sharp boundaries: a single step is classified poorly (nearest class mean,
  dim 64: ~0.3), the mean over 33 steps well (~0.85; AR(1) noise alone hardly averages out over
  33 steps, the flicker does). Tests pooling evidence over time instead of trusting single
  steps, against slowly wandering noise that looks like a signal.
- softedge: the amplitude rises linearly from 0 to full over 5-30 % of the instance at each end
  (drawn per instance and end); moderate signal. Tests boundary regression where the onset is
  gradual and its extent varies: a threshold on the signal cuts instances short, by varying
  amounts.
- phases: each class shows start, middle and end patterns in that order (start and end each
  10-30 % of the instance), with sharp transitions; the middle pattern of a class is nearly
  its pair sibling's (cosine 0.9). Tests using the ordered phases of the whole instance: a
  receptive field that sees only the middle confuses siblings, and one phase is not an action.
- tempo: per-instance amplitude (x0.4-1.6) and speed (a pattern oscillating between two class
  patterns, its period 2 s x0.5-2); a class's lengths span 20x (class base lengths 0.25-2.6 s),
  so more than 5 % of instances last over 18 s, among short ones. Tests scale and amplitude
  invariance: multi-scale anchors, no fixed-size or fixed-strength template.
- siblings: classes in groups of 4 whose patterns share 80 % of their variance (cosine 0.8),
  told apart only by the rest, in both streams. Tests fine-grained classification: confusable
  siblings, as CricketBowling and CricketShot.
- scene: a class-specific scene over the instance and half its length on each side, stronger
  than the in-instance action pattern that alone marks the true extent. Tests context that
  leaks outside the instance: thresholding finds segments twice too long.
- bursts: class-free distractor bursts, 6 per minute, 0.5-20 s, of high-energy random patterns
  outside the instances. Tests telling actions from mere activity: an energy or "something
  happens" detector fires on every burst.
- mixed: all at once, weaker: AR(1) noise and flicker (variance 1), bursts (4 per minute),
  15 % ramps at both ends, start / middle / end phases, a scene around the instance, sport
  groups of 4 sharing half their patterns, low signal per step. Tests that a method's gains
  survive together, not only one nuisance at a time.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from talnet.data.profiles import THUMOS14_CLASS_INSTANCES
from talnet.data.renderers import Look, Patterns, make_patterns, render_look
from talnet.data.synth import (
    SynthConfig,
    SynthProfile,
    VideoLayout,
    sample_layouts,
)
from talnet.data.thumos_profile import (
    CLASSES,
    make_thumos14,
    sample_thumos_layouts,
    share_parent_phases,
    thumos14_ground_truth,
    thumos_ground_truth,
)
from talnet.errors import TalnetError
from talnet.io.types import GroundTruth

TEMPO_SPREAD = 20.0  # a class's lengths span base .. TEMPO_SPREAD x base
TEMPO_BASE_S = (0.25, 2.6)  # class base lengths, spread log-evenly over the classes

LOOKS: dict[str, Look] = {
    "lowsignal": Look(signal=0.25, noise="ar1", flicker=2.0),
    "softedge": Look(signal=0.6, ramp=(0.05, 0.30)),
    "phases": Look(signal=0.6, phases=(0.10, 0.30), middle_shared=0.9),
    "tempo": Look(signal=0.6, amp=(0.4, 1.6), tempo_period_s=2.0),
    "siblings": Look(signal=0.6, group=4, shared=0.8),
    "scene": Look(signal=0.35, scene=0.6),
    "bursts": Look(signal=0.6, bursts_per_min=6.0),
    "mixed": Look(
        signal=0.3, noise="ar1", flicker=1.0, ramp=(0.15, 0.15), phases=(0.10, 0.30), scene=0.3,
        bursts_per_min=4.0, group=4, shared=0.5,
    ),
}  # fmt: skip

DESCRIPTIONS: dict[str, str] = {
    "lowsignal": "AR(1) noise, class-pattern flicker, weak steady signal: pool ~33 steps",
    "softedge": "amplitude ramps over 5-30 % of the instance at each end: gradual boundaries",
    "phases": "ordered start / middle / end patterns; the middle alone looks like a sibling's",
    "tempo": "amplitude x0.4-1.6, speed x0.5-2, a class's lengths over 20x, 5 %+ over 18 s",
    "siblings": "classes in groups of 4 sharing 80 % of their pattern (cosine 0.8)",
    "scene": "class scene over the instance and half its length around it; weaker action",
    "bursts": "6 class-free high-energy distractor bursts per minute outside the instances",
    "mixed": "AR(1) noise, bursts, ramps, phases, scene and shared sport groups, low signal",
}


def generator_patterns(look: Look, seed: int, classes: int, dim: int, cfg: SynthConfig) -> Patterns:
    """The look's class patterns, CliffDiving's phases mostly Diving's as in thumos14 (every
    CliffDiving instance is a Diving instance too)."""
    patterns = make_patterns(seed, classes, dim, look)
    share_parent_phases(patterns.phases)
    return patterns


def tempo_base_lengths() -> np.ndarray:
    """Each class's shortest length (s): spread log-evenly over TEMPO_BASE_S, handed out by
    THUMOS'14 frequency rank with a stride, so frequent and rare classes get short and long."""
    bases = np.geomspace(*TEMPO_BASE_S, len(CLASSES))
    ranks = [list(THUMOS14_CLASS_INSTANCES).index(c) for c in CLASSES]
    return np.array([bases[(7 * r) % len(CLASSES)] for r in ranks])


def sample_tempo_layouts(
    seed: int, videos_train: int, videos_test: int, classes: int, cfg: SynthConfig
) -> list[VideoLayout]:
    """thumos14's layouts with action lengths redrawn per class: an instance whose thumos14
    length has quantile u in its subset lasts base[class] * TEMPO_SPREAD**u, so longer actions
    still go to the videos with room for them (sample_thumos_layouts, lengths changed)."""
    if classes != len(CLASSES):
        raise TalnetError(f"the THUMOS'14-shaped generators have {len(CLASSES)} classes")
    base = tempo_base_lengths()
    return sample_thumos_layouts(
        seed, videos_train, videos_test, classes, cfg,
        lengths_of=lambda labels, u: base[labels] * TEMPO_SPREAD**u,
    )  # fmt: skip


def _generator(name: str) -> SynthProfile:
    look = LOOKS[name]
    return SynthProfile(
        name,
        sample_tempo_layouts if name == "tempo" else sample_thumos_layouts,
        partial(generator_patterns, look),
        thumos_ground_truth,
        render=partial(render_look, look),
        description=DESCRIPTIONS[name],
    )


GENERATORS: dict[str, SynthProfile] = {name: _generator(name) for name in LOOKS}


def generator(name: str) -> SynthProfile:
    """The generator profile called `name`."""
    if name not in GENERATORS:
        raise TalnetError(f"unknown generator {name!r}; known: {', '.join(GENERATORS)}")
    return GENERATORS[name]


def generator_layouts(
    name: str,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    config: SynthConfig | None = None,
) -> list[VideoLayout]:
    """The layouts `make_generated` renders, in its order (fast: no features)."""
    cfg = config or SynthConfig()
    return sample_layouts(seed, videos_train, videos_test, len(CLASSES), cfg, generator(name))


def generator_ground_truth(
    name: str,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    config: SynthConfig | None = None,
) -> GroundTruth:
    """The ground truth `make_generated` writes, without rendering features (fast)."""
    return thumos14_ground_truth(seed, videos_train, videos_test, config, generator(name))


def make_generated(
    name: str,
    out_dir: str | Path,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    dim: int = 64,
    config: SynthConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write generator `name`'s benchmark in make_synthetic's formats; return OUT."""
    sizes = (seed, videos_train, videos_test, dim, config, progress)
    return make_thumos14(out_dir, *sizes, profile=generator(name))
