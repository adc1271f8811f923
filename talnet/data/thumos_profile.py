"""The `thumos14` profile of the synthetic benchmark: videos laid out like THUMOS'14's test set
(long, dense videos of short actions; 20 named classes of skewed frequency; every CliffDiving
also labelled Diving), features from synth.py's renderer unchanged (docs/design.md §7).

Per subset, video durations and instance counts are drawn together (a Gaussian copula of
correlation RHO: long videos hold more instances) and read off their quantile tables in
talnet.data.profiles by inverse-CDF interpolation (log seconds, log(1 + count)); action lengths
come from their table, the longer ones rather where a video has more room per instance
(LENGTH_RHO), classes in proportion to THUMOS14_CLASS_INSTANCES. The draws are stratified over
the subset, so 200 videos follow the tables closely; instances are placed as in the demo profile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from talnet.data.profiles import (
    THUMOS14_ACTION_SECONDS,
    THUMOS14_ALSO_LABELLED,
    THUMOS14_CLASS_INSTANCES,
    THUMOS14_INSTANCES,
    THUMOS14_INSTANCES_PER_VIDEO,
    THUMOS14_VIDEO_SECONDS,
    THUMOS14_VIDEOS,
)
from talnet.data.synth import (
    TEST_SUBSET,
    TRAIN_SUBSET,
    Prototypes,
    Segment,
    SynthConfig,
    SynthProfile,
    VideoLayout,
    add_distractors,
    make_prototypes,
    make_synthetic,
    sample_layouts,
    video_id,
)
from talnet.errors import TalnetError
from talnet.io.types import Annotation, GroundTruth, VideoInfo

# Class index order. make_prototypes makes classes (0, 1), (2, 3) ... (8, 9) context pairs, alike
# inside the instance and told apart by what comes before and after: pairs that share a venue.
CLASSES: tuple[str, ...] = (
    "CricketBowling", "CricketShot", "HammerThrow", "ThrowDiscus", "Shotput", "JavelinThrow",
    "HighJump", "LongJump", "TennisSwing", "GolfSwing", "BaseballPitch", "BasketballDunk",
    "Billiards", "CleanAndJerk", "CliffDiving", "Diving", "FrisbeeCatch", "PoleVault",
    "SoccerPenalty", "VolleyballSpiking",
)  # fmt: skip
# (labels, quantiles of their drawn lengths) -> action lengths in seconds
LengthRule = Callable[[np.ndarray, np.ndarray], np.ndarray]
RHO = 0.6  # copula correlation of video duration and instance count
LENGTH_RHO = 0.5  # correlation of an action's length and its video's seconds per instance
DIVING_SHARE = 0.8  # CliffDiving's in-instance appearance: this much Diving's (cosine)
DENSITY_CAP = 0.9  # actions fill at most this fraction of a video


def _knots(table: dict[float, float], sample: int) -> tuple[np.ndarray, np.ndarray]:
    """Quantile knots of a table whose minimum and maximum were observed among `sample` values:
    those sit at the plotting positions 0.5/n and 1 - 0.5/n (beyond them, the extreme itself)."""
    q = np.array(list(table), dtype=float)
    q[0], q[-1] = 0.5 / sample, 1.0 - 0.5 / sample
    return q, np.array(list(table.values()), dtype=float)


_DURATION_Q, _DURATION_V = _knots(THUMOS14_VIDEO_SECONDS, THUMOS14_VIDEOS)
_LENGTH_Q, _LENGTH_V = _knots(THUMOS14_ACTION_SECONDS, THUMOS14_INSTANCES)
# One test video of 213 has no instance: an added knot (1/213 -> 0.5, rounding to 0 below it)
# keeps that share, which interpolating from 0 up to the median's 9 would multiply by ten.
_COUNT_Q, _COUNT_V = _knots(THUMOS14_INSTANCES_PER_VIDEO, THUMOS14_VIDEOS)
_COUNT_Q = np.insert(_COUNT_Q, 1, 1.0 / THUMOS14_VIDEOS)
_COUNT_V = np.insert(_COUNT_V, 1, 0.5)
# A CliffDiving draw yields two instances (CliffDiving and Diving), so Diving's own draws are
# its count less CliffDiving's.
_DRAWS = np.array([THUMOS14_CLASS_INSTANCES[c] for c in CLASSES], dtype=float)
for _child, _parent in THUMOS14_ALSO_LABELLED.items():
    _DRAWS[CLASSES.index(_parent)] -= THUMOS14_CLASS_INSTANCES[_child]
_DRAW_P = _DRAWS / _DRAWS.sum()
LABELS_PER_DRAW = np.array([1 + (c in THUMOS14_ALSO_LABELLED) for c in CLASSES])
FILLER = CLASSES.index(THUMOS14_ALSO_LABELLED["CliffDiving"])


def _stratified(rng: np.random.Generator, ranks: np.ndarray) -> np.ndarray:
    """Uniforms one per stratum: the value of rank r lies in [r/n, (r+1)/n)."""
    return (ranks + rng.random(ranks.size)) / max(1, ranks.size)


def _ranks(x: np.ndarray) -> np.ndarray:
    return np.argsort(np.argsort(x))


@dataclass
class SubsetDraws:
    """A subset's durations and instance counts (per video), labels and lengths (one pool)."""

    durations: np.ndarray
    counts: np.ndarray
    labels: np.ndarray
    lengths: np.ndarray


def draw_subset(rng: np.random.Generator, videos: int) -> SubsetDraws:
    """A whole subset's draws, stratified so that its quantiles and class counts follow the tables
    closely, not within the wide noise of 200 heavy-tailed draws (copula: ranks of normals)."""
    z = rng.standard_normal((videos, 2))
    z_count = RHO * z[:, 0] + math.sqrt(1.0 - RHO**2) * z[:, 1]
    u_duration, u_count = _stratified(rng, _ranks(z[:, 0])), _stratified(rng, _ranks(z_count))
    durations = np.exp(np.interp(u_duration, _DURATION_Q, np.log(_DURATION_V)))
    counts = np.rint(np.expm1(np.interp(u_count, _COUNT_Q, np.log1p(_COUNT_V)))).astype(int)
    pool = int(counts.sum())
    # longer actions go rather to videos with more room per instance, so that they fit
    room = np.repeat(np.log(durations / np.maximum(counts, 1)), counts)
    if pool:
        room = (room - room.mean()) / (room.std() + 1e-9)
    key = LENGTH_RHO * room + math.sqrt(1.0 - LENGTH_RHO**2) * rng.standard_normal(pool)
    lengths = np.exp(np.interp(_stratified(rng, _ranks(key)), _LENGTH_Q, np.log(_LENGTH_V)))
    # class draws in proportion to THUMOS'14's counts (largest remainders), shuffled
    quota = _DRAW_P * pool
    per_class = np.floor(quota).astype(int)
    per_class[np.argsort(per_class - quota)[: pool - per_class.sum()]] += 1
    labels = rng.permutation(np.repeat(np.arange(len(CLASSES)), per_class))
    return SubsetDraws(durations, counts, labels, lengths)


def sample_thumos_layouts(
    seed: int,
    videos_train: int,
    videos_test: int,
    classes: int,
    cfg: SynthConfig,
    lengths_of: LengthRule | None = None,
) -> list[VideoLayout]:
    """All videos' layouts (no features), in make_synthetic's order; a video depends on its
    subset's size (the draws are stratified over the subset), not on the other subset.
    `lengths_of(labels, quantiles)` redraws the action lengths from each one's class and the
    quantile (0..1) of its drawn length in the subset (a generator with other lengths)."""
    if classes != len(CLASSES):
        raise TalnetError(f"the thumos14 profile has {len(CLASSES)} classes, not {classes}")
    layouts = []
    for s_idx, (subset, videos) in enumerate(
        ((TRAIN_SUBSET, videos_train), (TEST_SUBSET, videos_test))
    ):
        draws = draw_subset(np.random.default_rng(np.random.SeedSequence([seed, 4, s_idx])), videos)
        quantile = (_ranks(draws.lengths) + 0.5) / max(1, draws.lengths.size)
        offset = 0
        for i in range(videos):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 1, s_idx, i]))
            count = int(draws.counts[i])
            labels = draws.labels[offset : offset + count]
            # a CliffDiving draw is two instances: keep the draws that fit in `count`, and
            # where a last CliffDiving did not fit, a Diving (one instance) takes its place
            labels = labels[np.cumsum(LABELS_PER_DRAW[labels]) <= count]
            if LABELS_PER_DRAW[labels].sum() < count:
                labels = np.append(labels, FILLER)
            lengths = draws.lengths[offset : offset + labels.size]
            if lengths_of is not None:
                lengths = lengths_of(labels, quantile[offset : offset + labels.size])
            offset += count
            duration = draws.durations[i]
            vid = video_id(subset, i)
            layouts.append(place_instances(rng, vid, subset, duration, labels, lengths, cfg))
    return layouts


def place_instances(
    rng: np.random.Generator,
    vid: str,
    subset: str,
    duration: float,
    labels: np.ndarray,
    lengths: np.ndarray,
    cfg: SynthConfig,
) -> VideoLayout:
    """Place one video's instances (gaps by Dirichlet, some adjacent, rare overlaps of another
    class), then distractors and RGB cuts."""
    n = labels.size
    # a short video drawn with many long actions: lengthen the video until they fit
    duration = round(max(float(duration), lengths.sum() / DENSITY_CAP), 3)
    free = duration - lengths.sum()
    gaps = rng.dirichlet(np.ones(n + 1)) * free
    near = rng.random(n + 1) < cfg.adjacent_prob
    near[0] = False
    gaps[near] = rng.uniform(0.0, 0.5, near.sum())
    layout = VideoLayout(vid, subset, duration)
    t = 0.0
    prev: Segment | None = None
    for i in range(n):
        start = t + gaps[i]
        if prev is not None and labels[i] != prev.cls and rng.random() < cfg.overlap_prob:
            start = prev.end - rng.uniform(0.1, 0.5) * min(lengths[i], prev.end - prev.start)
        start, end = max(0.0, start), min(duration, start + lengths[i])
        amp = float(rng.uniform(*cfg.instance_amp))
        seg = Segment("action", int(labels[i]), round(start, 3), round(end, 3), amp)
        layout.segments.append(seg)
        prev, t = seg, max(t, end)
    add_distractors(rng, layout, len(CLASSES), cfg)
    n_cuts = rng.poisson(cfg.rgb_cuts_per_min * duration / 60.0)
    layout.cuts = sorted(float(x) for x in rng.uniform(0, duration, n_cuts))
    return layout


def thumos_prototypes(seed: int, classes: int, dim: int, cfg: SynthConfig) -> Prototypes:
    """The demo's class patterns, with CliffDiving's in-instance phases mostly Diving's, so that
    a Diving detector fires on a CliffDiving instance (which is a Diving instance too)."""
    protos = make_prototypes(seed, classes, dim, cfg)
    share_parent_phases(protos.phases)
    return protos


def share_parent_phases(phases: dict[str, np.ndarray]) -> None:
    """In place, per stream (C, 3, D): each doubly labelled class's phases become mostly its
    parent's (cosine DIVING_SHARE), unit rms, so the parent's detector fires on it too."""
    for child, parent in THUMOS14_ALSO_LABELLED.items():
        c, p = CLASSES.index(child), CLASSES.index(parent)
        for stream in phases.values():
            mixed = DIVING_SHARE * stream[p] + math.sqrt(1.0 - DIVING_SHARE**2) * stream[c]
            stream[c] = mixed / np.sqrt(np.mean(mixed**2, axis=-1, keepdims=True))


def thumos_ground_truth(layouts: list[VideoLayout], classes: int, fps: float) -> GroundTruth:
    """The layouts' ground truth with THUMOS'14's class names; a CliffDiving instance is there
    twice, labelled CliffDiving and Diving, as in THUMOS'14's annotations."""
    out: GroundTruth = {}
    for lay in layouts:
        anns = []
        for a in lay.actions:
            for name in (CLASSES[a.cls], THUMOS14_ALSO_LABELLED.get(CLASSES[a.cls])):
                if name:
                    anns.append(Annotation(name, a.start, a.end))
        out[lay.video_id] = VideoInfo(lay.video_id, lay.subset, lay.duration, fps, anns)
    return out


THUMOS14 = SynthProfile("thumos14", sample_thumos_layouts, thumos_prototypes, thumos_ground_truth)


def thumos14_ground_truth(
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    config: SynthConfig | None = None,
    profile: SynthProfile = THUMOS14,
) -> GroundTruth:
    """The ground truth `make_thumos14` writes, without rendering features (fast); `profile`:
    another generator with THUMOS'14's layout (talnet.data.generators)."""
    cfg = config or SynthConfig()
    layouts = sample_layouts(seed, videos_train, videos_test, len(CLASSES), cfg, profile)
    return thumos_ground_truth(layouts, len(CLASSES), cfg.fps)


def make_thumos14(
    out_dir: str | Path,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    dim: int = 64,
    config: SynthConfig | None = None,
    progress: bool = True,
    profile: SynthProfile = THUMOS14,
) -> Path:
    """Write a THUMOS'14-shaped synthetic benchmark in make_synthetic's formats; return OUT.
    `profile`: another generator with THUMOS'14's layout (talnet.data.generators)."""
    return make_synthetic(
        out_dir, seed, videos_train, videos_test, len(CLASSES), dim, config, progress, profile
    )
