"""The synthetic benchmark's vocabulary (talnet.data.synth and its profiles): subsets, the
generator's settings, what happens in a video, class patterns, and the random streams and noise
every renderer shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

TRAIN_SUBSET = "validation"  # THUMOS'14 trains on its validation videos
TEST_SUBSET = "test"
# Subsets whose videos are training videos (ActivityNet's own names: training / validation).
TRAINING_SUBSETS = (TRAIN_SUBSET, "training")


@dataclass
class SynthConfig:
    """Every knob of the generative model; raise noise or lower amplitudes to make it harder."""

    fps: float = 30.0
    stride: int = 4
    window: int = 16
    duration_s: tuple[float, float] = (90.0, 240.0)
    instances: tuple[int, int] = (3, 15)
    # log-normal action length (seconds): median, sigma of ln, clip range
    length_median_s: float = 3.5
    length_sigma: float = 1.2
    length_clip_s: tuple[float, float] = (0.5, 90.0)
    adjacent_prob: float = 0.15  # gap to the previous instance under 0.5 s
    overlap_prob: float = 0.03  # instance overlaps the previous one (a different class)
    ramp_s: float = 0.12  # sigmoid ramp time constant at instance boundaries
    context_frac: float = 0.5  # approach / recovery cover this fraction of l on each side
    context_amp: float = 0.8  # context strength relative to the in-instance signal
    context_pair_frac: float = 0.5  # fraction of classes in pairs told apart only by context
    instance_amp: tuple[float, float] = (0.7, 1.3)  # per-instance amplitude factor
    distractors_per_min: float = 4.0
    # per stream: signal amplitude (per-dim rms), noise std, drift std, scene offset std,
    # confusion group size and the fraction of appearance shared within a group
    rgb_signal: float = 0.55
    rgb_noise: float = 0.8
    rgb_drift: float = 0.4
    rgb_scene: float = 0.6
    rgb_cuts_per_min: float = 2.0
    rgb_group: int = 3
    rgb_shared: float = 0.8
    flow_signal: float = 0.45
    flow_noise: float = 0.6
    flow_drift: float = 0.15
    flow_scene: float = 0.1
    flow_group: int = 2
    flow_shared: float = 0.8
    noise_corr_steps: int = 4  # window / stride: consecutive windows share frames
    # Venue shift (off by default): in the training subset each action's surroundings in RGB
    # carry a class-specific "venue" pattern of this amplitude, as when every training video of
    # a class was filmed at one event; in the test subset the venue is unrelated to the class.
    # An easy RGB shortcut on the training videos that fails on the test videos.
    rgb_venue: float = 0.0


@dataclass
class Segment:
    """One rendered pattern: an instance or a distractor, times in seconds."""

    kind: str  # "action", "partial", "context", "rgb_only", "flow_only"
    cls: int
    start: float
    end: float
    amp: float


@dataclass
class VideoLayout:
    """What happens in one video: ground-truth instances, distractors, RGB camera cuts."""

    video_id: str
    subset: str
    duration: float
    segments: list[Segment] = field(default_factory=list)
    cuts: list[float] = field(default_factory=list)

    @property
    def actions(self) -> list[Segment]:
        return [s for s in self.segments if s.kind == "action"]


def class_names(classes: int) -> list[str]:
    """Label names of the synthetic classes."""
    return [f"action_{c:02d}" for c in range(classes)]


def video_id(subset: str, index: int) -> str:
    return f"synth_{subset}_{index:04d}"


def synth_rng(seed: int, *key: int) -> np.random.Generator:
    # One independent stream per (seed, purpose, subset, video): the annotation-only path and the
    # full generation draw the same layouts, and videos do not depend on each other.
    return np.random.default_rng(np.random.SeedSequence([seed, *key]))


@dataclass
class Prototypes:
    """Per stream: in-instance phases (C, 3, D), approach (C, D) and recovery (C, D) patterns;
    RGB venue patterns (C, D) when the venue shift is on."""

    phases: dict[str, np.ndarray]
    approach: dict[str, np.ndarray]
    recovery: dict[str, np.ndarray]
    venue: np.ndarray | None = None


def unit_rms(x: np.ndarray) -> np.ndarray:
    return x / np.sqrt(np.mean(x**2, axis=-1, keepdims=True))


def correlated_noise(rng: np.random.Generator, t: int, dim: int, width: int) -> np.ndarray:
    """White noise averaged over `width` steps, rescaled to unit variance: (t, dim)."""
    white = rng.standard_normal((t + width - 1, dim))
    csum = np.cumsum(np.vstack([np.zeros((1, dim)), white]), axis=0)
    return (csum[width:] - csum[:-width]) / math.sqrt(width)
