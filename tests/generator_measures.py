"""Measures of the generator families' features (tests of talnet.data.generators and
talnet.data.anet_generators): spans in steps, class patterns as rendered, background, pooling
accuracy, class means and the energy around instances. Every measure takes the feature grid."""

from __future__ import annotations

import numpy as np

from talnet.data.renderers import RGB_RATIO, Look, Patterns, VideoDraws
from talnet.data.synth import VideoLayout
from talnet.io.features import FeatureMeta

# (layout, features (T, 2*D), what the renderer drew) of one rendered video
Video = tuple[VideoLayout, np.ndarray, VideoDraws]


def span(x: np.ndarray, meta: FeatureMeta, start: float, end: float) -> tuple[int, int]:
    """The steps of `x` whose times lie in [start, end)."""
    lo, hi = np.searchsorted(meta.step_times(len(x)), [start, end])
    return int(lo), int(hi)


def class_pattern(patterns: Patterns, look: Look, cls: int, row: int) -> np.ndarray:
    """A class pattern as it is added to [rgb | flow] (signal and RGB_RATIO included)."""
    rgb, flow = patterns.phases["rgb"][cls, row], patterns.phases["flow"][cls, row]
    return look.signal * np.concatenate([RGB_RATIO * rgb, flow])


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def background(
    x: np.ndarray, meta: FeatureMeta, lay: VideoLayout, draws: VideoDraws, pad: float = 1.0
) -> np.ndarray:
    """Steps clear of every instance (and `pad` lengths around it) and every burst."""
    keep = np.ones(len(x), bool)
    for a in lay.actions:
        lo, hi = span(x, meta, a.start - pad * (a.end - a.start), a.end + pad * (a.end - a.start))
        keep[lo:hi] = False
    for b0, b1 in draws.bursts:
        lo, hi = span(x, meta, b0, b1)
        keep[lo:hi] = False
    return x[keep]


def pooling_accuracy(
    videos: list[Video], means: np.ndarray, meta: FeatureMeta, width: int = 33
) -> tuple[float, float, int, int]:
    """Nearest-class-mean accuracy (`means` (C, 2*D), the generator's own: an oracle) of single
    in-instance steps and of means over `width` steps; and how many steps and means."""
    steps, step_y, windows, window_y = [], [], [], []
    for lay, x, _ in videos:
        for act in lay.actions:
            lo, hi = span(x, meta, act.start, act.end)
            steps.append(x[lo:hi])
            step_y += [act.cls] * (hi - lo)
            for w in range(lo, hi - width + 1, width):
                windows.append(x[w : w + width].mean(0))
                window_y.append(act.cls)

    def accuracy(z: np.ndarray, y: list[int]) -> float:  # |z - m|^2 less |z|^2, per class
        distance = (means**2).sum(1) - 2.0 * z @ means.T
        return float(np.mean(np.argmin(distance, 1) == np.array(y)))

    per_step = accuracy(np.concatenate(steps), step_y)
    pooled = accuracy(np.array(windows), window_y) if windows else float("nan")
    return per_step, pooled, len(step_y), len(window_y)


def class_means(
    videos: list[Video], meta: FeatureMeta, classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per class: the mean in-instance feature (C, 2*D) and how many steps it averages (C,)."""
    width = videos[0][1].shape[1]
    sums, counts = np.zeros((classes, width)), np.zeros(classes)
    for lay, x, _ in videos:
        for act in lay.actions:
            lo, hi = span(x, meta, act.start, act.end)
            sums[act.cls] += x[lo:hi].sum(0)
            counts[act.cls] += hi - lo
    return sums / np.maximum(counts, 1)[:, None], counts


def flank_energy(videos: list[Video], meta: FeatureMeta) -> tuple[float, float, float]:
    """Mean square feature inside instances, on their flanks (half the length on each side,
    clear of other instances and bursts) and in the background."""
    inside, flank, back = [], [], []
    for lay, x, draws in videos:
        energy = (x**2).mean(1)
        busy = np.zeros(len(x), bool)
        for act in lay.actions:
            lo, hi = span(x, meta, act.start, act.end)
            busy[lo:hi] = True
            inside.append(energy[lo:hi])
        for b0, b1 in draws.bursts:
            lo, hi = span(x, meta, b0, b1)
            busy[lo:hi] = True
        for act in lay.actions:
            half = 0.5 * (act.end - act.start)
            for s0, s1 in ((act.start - half, act.start), (act.end, act.end + half)):
                lo, hi = span(x, meta, s0, s1)
                flank.append(energy[lo:hi][~busy[lo:hi]])
        back.append((background(x, meta, lay, draws) ** 2).mean(1))
    inside_e, flank_e, back_e = (float(np.mean(np.concatenate(v))) for v in (inside, flank, back))
    return inside_e, flank_e, back_e
