"""A family of synthetic ActivityNet-shaped generators that differ in HOW an action shows in the
features (docs/design.md §7), as talnet.data.generators does for THUMOS'14's layout: a preset
tuned on one renderer learns that renderer, so an ActivityNet preset must win on all of them.
Every generator `anet-LOOK` is the `activitynet` profile (talnet.data.anet_profile: the same
videos, instances, one class per video, class names, ground truth, 16-frame grid and subsets
training / validation for a seed and class count) rendered by render_look with the THUMOS
family's look LOOKS[LOOK]. Per generator, what it renders and the failure it tests:

- anet-lowsignal: AR(1) noise, per-step flicker of all class patterns and a weak steady class
  signal: single steps classify poorly, 33-step (17.6 s) means well. Tests pooling evidence over
  an instance of tens of seconds instead of trusting single steps.
- anet-softedge: the amplitude ramps over 5-30 % of the instance at each end. Tests boundary
  regression on gradual onsets: on instances of ~25 s a ramp lasts seconds, so the tIoU >= 0.75
  thresholds of ActivityNet's average mAP punish a threshold that cuts them short.
- anet-phases: ordered start / middle / end patterns, the middle nearly a pair sibling's. Tests
  using the whole instance: a proposal on the middle alone confuses siblings, one phase is not an
  action (ActivityNet's instances are long enough for every phase to span several steps).
- anet-siblings: classes in groups of 4 sharing 80 % of their pattern. Tests fine-grained
  classification where one class per video puts all of a video's evidence on one label.
- anet-scene: a class scene over the instance and half its length around it, stronger than the
  action pattern that alone marks the extent. Tests context leaking outside the instance
  (segments twice too long), where the video's edges often cut the scene off.
- anet-bursts: class-free high-energy bursts, 6 a minute (about 5 fit, instances covering half
  the video), 0.5-20 s, outside the instances. Tests telling activity from action between the
  one or two long instances of a video.
- anet-mixed: all at once, weaker (AR(1) noise and flicker, bursts, 15 % ramps, phases, scene,
  groups of 4 sharing half their patterns). Tests that gains survive together.

What changes against the THUMOS'14-shaped family. Any class count (`--classes`, 200 by default):
sibling groups of 4 end in a smaller group, phase pairs in a lone class, where the count does
not divide; no parent class shares its phases (THUMOS'14's CliffDiving / Diving: ActivityNet
gives each instance one label). The flicker mixes every class's pattern, so its variance along
one pattern grows as 1 + (C - 1) / D with C classes in D dimensions; `anet_look` rescales it to
what the 20-class looks have (20 classes render the look unchanged), else 200 classes would
bury the 33-step means too. A look counts in steps: a step here is 16 frames (0.53 s), so the
AR(1) noise wanders four times longer in seconds than on THUMOS'14's grid. The profile's
context, distractors and camera cuts (activitynet_config) are drawn with the layouts, which thus
stay activitynet's, but render_look shows only the actions, the look's scene and its bursts.
`tempo` is left out: it redraws THUMOS'14's action lengths, and its 2 s period is ~4 steps here.
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from talnet.data.anet_profile import ACTIVITYNET, ACTIVITYNET_CLASSES
from talnet.data.generators import LOOKS
from talnet.data.renderers import Look, Patterns, make_patterns, render_look
from talnet.data.synth import SynthConfig, SynthProfile, VideoLayout, make_synthetic
from talnet.data.synth_types import Prototypes
from talnet.data.thumos_profile import CLASSES
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta

PREFIX = "anet-"
FLICKER_REFERENCE_CLASSES = len(CLASSES)  # the THUMOS'14-shaped looks' flicker is for 20

ANET_DESCRIPTIONS: dict[str, str] = {
    "lowsignal": "ActivityNet layout; AR(1) noise, flicker, weak signal: steps fail, pool 33",
    "softedge": "ActivityNet layout; 5-30 % ramps at each end: regress gradual boundaries",
    "phases": "ActivityNet layout; start / middle / end, the middle a sibling's: whole instance",
    "siblings": "ActivityNet layout; groups of 4 classes with cosine 0.8: fine-grained labels",
    "scene": "ActivityNet layout; class scene around a weaker action: segments too long",
    "bursts": "ActivityNet layout; class-free high-energy bursts: activity is not an action",
    "mixed": "ActivityNet layout; AR(1) noise, bursts, ramps, phases, scene, groups at once",
}
ANET_LOOKS = tuple(ANET_DESCRIPTIONS)


def anet_look(look: Look, classes: int, dim: int) -> Look:
    """`look` with its flicker rescaled for `classes` patterns in `dim` dimensions, so that its
    variance along each class pattern is the 20-class look's (see the module docstring)."""
    if not look.flicker:
        return look
    scale = (dim + FLICKER_REFERENCE_CLASSES - 1) / (dim + classes - 1)
    return replace(look, flicker=look.flicker * scale)


def look_patterns(look: Look, seed: int, classes: int, dim: int, cfg: SynthConfig) -> Patterns:
    """The look's class patterns for any class count (make_patterns; `cfg` does not enter)."""
    return make_patterns(seed, classes, dim, look)


def render_anet_look(
    look: Look,
    rng: np.random.Generator,
    layout: VideoLayout,
    protos: Prototypes,
    cfg: SynthConfig,
    meta: FeatureMeta,
) -> np.ndarray:
    """render_look with the flicker fitted to the class count and size of `protos`."""
    classes, _, dim = protos.phases["flow"].shape
    return render_look(anet_look(look, classes, dim), rng, layout, protos, cfg, meta)


def _anet_generator(look: str) -> SynthProfile:
    """The activitynet profile, its class patterns and renderer those of LOOKS[look]."""
    return replace(
        ACTIVITYNET,
        name=PREFIX + look,
        prototypes=partial(look_patterns, LOOKS[look]),
        render=partial(render_anet_look, LOOKS[look]),
        description=ANET_DESCRIPTIONS[look],
    )


ANET_GENERATORS: dict[str, SynthProfile] = {
    PREFIX + look: _anet_generator(look) for look in ANET_LOOKS
}


def anet_generator(name: str) -> SynthProfile:
    """The ActivityNet-shaped generator profile called `name` (anet-LOOK)."""
    if name not in ANET_GENERATORS:
        raise TalnetError(f"unknown generator {name!r}; known: {', '.join(ANET_GENERATORS)}")
    return ANET_GENERATORS[name]


def make_anet_generated(
    name: str,
    out_dir: str | Path,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 100,
    classes: int = ACTIVITYNET_CLASSES,
    dim: int = 64,
    config: SynthConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write generator `name`'s benchmark as make_activitynet writes its own (same annotations
    for the same arguments, features rendered with the look); return OUT."""
    sizes = (seed, videos_train, videos_test, classes, dim)
    return make_synthetic(out_dir, *sizes, config, progress, anet_generator(name))
