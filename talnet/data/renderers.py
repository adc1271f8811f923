"""Renderers of the generator family (talnet.data.generators).

A `Look` says how an action shows in the features: the background noise, the strength of the
class signal, its onsets, its phases, its tempo, a scene around it, class-free distractor bursts
and how much classes share their patterns. `render_look` draws one video's features from a look
on the 30 fps / stride 4 / window 16 grid: (T, 2*D) float32 = [rgb | flow], the RGB signal
`RGB_RATIO` of flow's. A video's random draws come from the per-video generator that
make_synthetic hands over, in a fixed order (per-instance draws and bursts by `draw_video`
first, then noise and burst patterns), so videos do not depend on each other and a seed gives
the same bytes; a test can redo `draw_video` with the same generator to see what was drawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from talnet.data.synth_types import (
    Prototypes,
    SynthConfig,
    VideoLayout,
    correlated_noise,
    synth_rng,
    unit_rms,
)
from talnet.io.features import FeatureMeta

RGB_RATIO = 0.75  # the RGB stream's action signal relative to flow's
STREAMS = ("rgb", "flow")
AR_BLOCK = 64  # AR(1) noise is computed this many steps at a time
BURST_MEDIAN_S, BURST_SIGMA = 2.5, 0.9  # burst lengths: log-normal, clipped to Look.burst_s


@dataclass(frozen=True)
class Look:
    """How a generator shows an action; ranges are drawn uniformly per instance."""

    signal: float = 0.6  # flow's action amplitude (per-dim rms; the noise has unit variance)
    noise: str = "windows"  # "windows": white noise averaged over 4 steps; "ar1": AR(1)
    ar_coef: float = 0.9
    flicker: float = 0.0  # per-step white mix of all class patterns, everywhere (see render_look)
    amp: tuple[float, float] = (0.8, 1.2)  # per-instance amplitude factor
    ramp: tuple[float, float] | None = None  # linear onset / offset, fraction of the length
    phases: tuple[float, float] | None = None  # start / end phase, fraction of the length
    tempo_period_s: float = 0.0  # > 0: oscillate between the start and end patterns
    tempo_speed: tuple[float, float] = (0.5, 2.0)  # period factor (log-uniform)
    scene: float = 0.0  # class scene amplitude over the instance and scene_frac of it around
    scene_frac: float = 0.5
    bursts_per_min: float = 0.0  # class-free distractor bursts outside the instances
    burst_amp: float = 1.2
    burst_s: tuple[float, float] = (0.5, 20.0)
    group: int = 1  # classes in sibling groups of this size ...
    shared: float = 0.0  # ... whose patterns have this cosine
    middle_shared: float = 0.0  # cosine of the middle patterns of pairs (2k, 2k+1)


@dataclass
class Patterns(Prototypes):
    """Per stream: phases (C, 3, D) start / middle / end patterns (a one-pattern look shows the
    middle, tempo oscillates between start and end), scene (C, D); the sibling group of each
    class. The demo's approach / recovery patterns stay empty."""

    scene: dict[str, np.ndarray] = field(default_factory=dict)
    groups: np.ndarray | None = None


def make_patterns(seed: int, classes: int, dim: int, look: Look) -> Patterns:
    """Unit-rms class patterns: siblings (group members) share `shared` of their variance (so
    their cosine is about `shared`), pair members `middle_shared` of their middle pattern."""
    rng = synth_rng(seed, 0)
    groups = np.arange(classes) // max(1, look.group)
    pairs = np.arange(classes) // 2
    out = Patterns({}, {}, {}, groups=groups)
    for stream in STREAMS:
        common = rng.standard_normal((int(groups.max()) + 1, 3, dim))
        own = rng.standard_normal((classes, 3, dim))
        phases = math.sqrt(look.shared) * common[groups] + math.sqrt(1 - look.shared) * own
        middle = rng.standard_normal((int(pairs.max()) + 1, dim))
        m = look.middle_shared
        phases[:, 1] = math.sqrt(m) * middle[pairs] + math.sqrt(1 - m) * phases[:, 1]
        out.phases[stream] = unit_rms(phases).astype(np.float32)
        out.scene[stream] = unit_rms(rng.standard_normal((classes, dim))).astype(np.float32)
    return out


@dataclass
class VideoDraws:
    """One video's random choices, per action (in layout.actions order) and its bursts."""

    amp: np.ndarray  # (N,) amplitude factor
    ramp: np.ndarray  # (N, 2) onset / offset ramp, fraction of the length (0: sharp)
    phase: np.ndarray  # (N, 2) start / end phase, fraction of the length
    period: np.ndarray  # (N,) tempo period, seconds
    bursts: list[tuple[float, float]]


def _between(bounds: tuple[float, float] | None, u: np.ndarray) -> np.ndarray:
    return np.zeros_like(u) if bounds is None else bounds[0] + (bounds[1] - bounds[0]) * u


def draw_video(rng: np.random.Generator, layout: VideoLayout, look: Look) -> VideoDraws:
    """The per-instance draws (the same number whatever the look) and the bursts."""
    u = rng.random((len(layout.actions), 6))
    speed = np.exp(
        _between((math.log(look.tempo_speed[0]), math.log(look.tempo_speed[1])), u[:, 5])
    )
    draws = VideoDraws(
        _between(look.amp, u[:, 0]),
        _between(look.ramp, u[:, 1:3]),
        _between(look.phases, u[:, 3:5]),
        look.tempo_period_s * speed,
        [],
    )
    busy = [(a.start, a.end) for a in layout.actions]
    for _ in range(int(rng.poisson(look.bursts_per_min * layout.duration / 60.0))):
        length = math.exp(rng.normal(math.log(BURST_MEDIAN_S), BURST_SIGMA))
        start, length = _free_place(
            rng, busy, layout.duration, float(np.clip(length, *look.burst_s))
        )
        if length >= look.burst_s[0]:
            busy.append((start, start + length))
            draws.bursts.append((round(start, 3), round(start + length, 3)))
    return draws


def _free_place(
    rng: np.random.Generator, busy: list[tuple[float, float]], duration: float, length: float
) -> tuple[float, float]:
    """A start, uniform over the places where `length` fits clear of `busy`, and the length; a
    burst that fits nowhere shrinks to 0.9 of the largest gap."""
    gaps, reach = [], 0.0
    for b0, b1 in sorted(busy):
        if b0 > reach:
            gaps.append((reach, b0))
        reach = max(reach, b1)
    gaps.append((reach, max(reach, duration)))
    widest = max(g1 - g0 for g0, g1 in gaps)
    length = min(length, 0.9 * widest)
    room = np.array([max(0.0, g1 - g0 - length) for g0, g1 in gaps])
    pick = float(rng.uniform(0.0, room.sum()))
    k = min(int(np.searchsorted(np.cumsum(room), pick)), len(gaps) - 1)
    return gaps[k][0] + pick - float(room[:k].sum()), length


def ar1_noise(rng: np.random.Generator, t: int, dim: int, coef: float) -> np.ndarray:
    """Stationary AR(1) noise of unit variance, x[i] = coef x[i-1] + sqrt(1 - coef^2) e[i]."""
    k = np.arange(AR_BLOCK)
    lags = k[:, None] - k[None, :]
    mix = np.where(lags >= 0, coef ** np.maximum(lags, 0), 0.0) * math.sqrt(1 - coef**2)
    decay = coef ** (k + 1.0)
    white = rng.standard_normal((t, dim))
    out = np.empty((t, dim))
    prev = rng.standard_normal(dim)
    for b0 in range(0, t, AR_BLOCK):
        n = min(AR_BLOCK, t - b0)
        out[b0 : b0 + n] = decay[:n, None] * prev + mix[:n, :n] @ white[b0 : b0 + n]
        prev = out[b0 + n - 1]
    return out


def render_look(
    look: Look,
    rng: np.random.Generator,
    layout: VideoLayout,
    protos: Prototypes,
    cfg: SynthConfig,
    meta: FeatureMeta,
) -> np.ndarray:
    """Features of one video as `look` shows its actions: (T, 2*D) float32 = [rgb | flow].
    Per stream: unit-variance noise; the flicker, a white per-step mix of every class's middle
    pattern in and out of the instances (variance `flicker` along each pattern while dim >=
    classes), which makes single steps ambiguous but averages out over steps; the bursts; each
    action's pattern times its envelope (amplitude, ramps) and its scene."""
    assert isinstance(protos, Patterns)
    draws = draw_video(rng, layout, look)
    t_count = meta.num_steps(math.floor(layout.duration * meta.fps))
    times = meta.step_times(t_count)
    dim = protos.phases["rgb"].shape[-1]
    streams = []
    for stream in STREAMS:
        if look.noise == "ar1":
            x = ar1_noise(rng, t_count, dim, look.ar_coef)
        else:
            x = correlated_noise(rng, t_count, dim, cfg.noise_corr_steps)
        if look.flicker:  # variance `flicker` along each class pattern, averaging out in time
            mix = rng.standard_normal((t_count, protos.phases[stream].shape[0]))
            x += math.sqrt(look.flicker / dim) * (mix @ protos.phases[stream][:, 1])
        for b0, b1 in draws.bursts:  # a random pattern drifting into another, same energy
            ends = rng.standard_normal((2, dim))
            lo, hi = np.searchsorted(times, [b0, b1])
            v = np.linspace(0.0, 1.0, hi - lo)[:, None]
            blend = ((1 - v) * ends[0] + v * ends[1]) / np.sqrt((1 - v) ** 2 + v**2)
            x[lo:hi] += look.burst_amp * blend
        signal = look.signal * (RGB_RATIO if stream == "rgb" else 1.0)
        for i, act in enumerate(layout.actions):
            _add_action(
                x, times, act.cls, act.start, act.end, i, draws, protos, stream, signal, look
            )
        streams.append(x)
    return np.concatenate(streams, axis=1).astype(np.float32)


def _add_action(
    x: np.ndarray,
    times: np.ndarray,
    cls: int,
    start: float,
    end: float,
    i: int,
    draws: VideoDraws,
    protos: Patterns,
    stream: str,
    signal: float,
    look: Look,
) -> None:
    """Add instance i (and its scene) to the stream features `x` (T, D) in place."""
    length = max(end - start, 1e-3)
    pad = look.scene_frac * length if look.scene else 0.0
    lo, hi = np.searchsorted(times, [start - pad, end + pad])
    if hi <= lo:
        return
    t = times[lo:hi]
    env = draws.amp[i] * ((t >= start) & (t < end))
    f0, f1 = draws.ramp[i]
    if f0 > 0 or f1 > 0:
        env *= np.clip((t - start) / max(f0 * length, 1e-6), 0.0, 1.0)
        env *= np.clip((end - t) / max(f1 * length, 1e-6), 0.0, 1.0)
    phases = protos.phases[stream][cls]  # (3, D)
    if look.tempo_period_s > 0:
        w = 0.5 + 0.5 * np.cos(2 * math.pi * (t - start) / draws.period[i])
        pattern = w[:, None] * phases[0] + (1 - w[:, None]) * phases[2]
    elif look.phases is not None:
        u = (t - start) / length
        p0, p1 = draws.phase[i]
        pattern = phases[np.where(u < p0, 0, np.where(u >= 1 - p1, 2, 1))]
    else:
        pattern = np.broadcast_to(phases[1], (t.size, phases.shape[1]))
    x[lo:hi] += signal * env[:, None] * pattern
    if look.scene:
        x[lo:hi] += look.scene * protos.scene[stream][cls]
