"""A synthetic THUMOS'14-like benchmark: two-stream I3D-style features with known ground truth.

Generative model (per video, features on the 30 fps / stride 4 / window 16 grid; step i is at
(4 i + 8) / 30 s). Each element exists so that one of TAL-Net's ideas earns an honest gain:

- Layout: videos of 1.5-4 min, 3-15 instances (fewer when long ones do not fit) whose lengths
  are log-normal (median ~3.5 s, clipped to 0.5-90 s), so a few last over a minute; some
  instances nearly touch, a rare one overlaps another class. The extreme spread of lengths is
  what multi-scale anchors are for.
- Phases: a class's appearance is three prototypes (onset, middle, offset) blended by hat functions
  of the relative position inside the instance, so identity and extent are spread over the whole
  instance; a receptive field sized for one scale sees only one phase of a long instance, or the
  background around a short one (multi-tower receptive fields).
- Context: each class has an "approach" pattern over the l/2 before its instance and a "recovery"
  pattern over the l/2 after it. Context pairs of classes share the in-instance appearance and
  differ only by that context, and "partial" distractors (the middle phase without context)
  mimic actions in the background (context for proposals and classifier).
- Two streams: as with I3D on THUMOS'14, RGB is weaker than flow but still informative, and the
  two err in different places. Appearance is shared within confusion groups per stream (RGB:
  groups of 3, like actions filmed in the same venue; flow: pairs, like the same motion in two
  sports), the groups drawn independently, so each stream resolves classes the other confuses.
  RGB also has lower signal-to-noise, slow drifts and per-scene offsets that jump at camera
  cuts. Each stream has its own full look-alikes, approach and recovery included, that the
  other stream does not see: the venue and its build-up on screen with nobody performing (RGB
  only), the motion rehearsed somewhere else or mimicked by camera motion (flow only). One
  stream alone cannot reject its look-alikes; a decision that needs both streams to agree (two
  streams, fused) can.
- Venue shift (`rgb_venue`, off by default): a class-specific RGB pattern around training actions
  only, an appearance shortcut that fails on the test videos. Joint (early-fusion) training
  leans on it; streams trained apart (late fusion) keep flow's evidence whole.
- Nuisances: temporally correlated Gaussian noise (neighbouring I3D windows share frames), slow
  low-rank drifts, smooth onsets (sigmoid ramps ~1-2 steps), per-instance amplitude variation.
Trivial detectors fail: thresholding the feature norm finds action-plus-context stretches (about
twice too long) and distractors; a per-step classifier confuses context pairs and fragments
long instances.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from talnet.data.synth_types import (  # noqa: F401  (re-exported: the profiles import them here)
    TEST_SUBSET,
    TRAIN_SUBSET,
    TRAINING_SUBSETS,
    Prototypes,
    Segment,
    SynthConfig,
    VideoLayout,
    class_names,
    correlated_noise,
    synth_rng,
    unit_rms,
    video_id,
)
from talnet.errors import TalnetError
from talnet.io.annotations import save_ground_truth
from talnet.io.features import FeatureMeta, save_array, write_meta
from talnet.io.types import Annotation, GroundTruth, VideoInfo


def sample_layout(
    rng: np.random.Generator, vid: str, subset: str, classes: int, cfg: SynthConfig
) -> VideoLayout:
    """Draw one video's duration, instances (rarely overlapping), distractors and RGB cuts."""
    duration = round(float(rng.uniform(*cfg.duration_s)), 3)
    n = int(rng.integers(cfg.instances[0], cfg.instances[1] + 1))
    lengths = np.exp(rng.normal(math.log(cfg.length_median_s), cfg.length_sigma, n))
    lengths = np.clip(lengths, *cfg.length_clip_s)
    lengths = lengths[np.argsort(rng.random(n))]
    # Instances and their context must fit: drop others than the longest until they do, so
    # the rare minute-long actions survive (a video with one long action has few others).
    budget = 0.8 * duration
    while lengths.size > 1 and lengths.sum() * (1 + cfg.context_frac) > budget:
        others = np.flatnonzero(np.arange(lengths.size) != np.argmax(lengths))
        lengths = np.delete(lengths, others[rng.integers(0, others.size)])
    lengths = np.minimum(lengths, budget / (1 + 2 * cfg.context_frac))
    n = lengths.size
    free = duration - lengths.sum()
    gaps = rng.dirichlet(np.full(n + 1, 1.0)) * free
    near = rng.random(n + 1) < cfg.adjacent_prob
    near[0] = False
    gaps[near] = rng.uniform(0.0, 0.5, near.sum())
    labels = rng.integers(0, classes, n)
    layout = VideoLayout(vid, subset, duration)
    t = 0.0
    prev: Segment | None = None
    for i in range(n):
        start = t + gaps[i]
        end = start + lengths[i]
        if prev is not None and rng.random() < cfg.overlap_prob:
            start = prev.end - rng.uniform(0.1, 0.5) * min(lengths[i], prev.end - prev.start)
            end = start + lengths[i]
            labels[i] = (prev.cls + 1 + rng.integers(0, classes - 1)) % classes
        start, end = max(0.0, start), min(duration, end)
        amp = float(rng.uniform(*cfg.instance_amp))
        seg = Segment("action", int(labels[i]), round(start, 3), round(end, 3), amp)
        layout.segments.append(seg)
        prev, t = seg, max(t, end)
    add_distractors(rng, layout, classes, cfg)
    n_cuts = rng.poisson(cfg.rgb_cuts_per_min * duration / 60.0)
    layout.cuts = sorted(float(x) for x in rng.uniform(0, duration, n_cuts))
    return layout


def add_distractors(
    rng: np.random.Generator, layout: VideoLayout, classes: int, cfg: SynthConfig
) -> None:
    """Place background-like distractors where no instance or its context lies."""
    busy = [
        (
            a.start - cfg.context_frac * (a.end - a.start),
            a.end + cfg.context_frac * (a.end - a.start),
        )
        for a in layout.actions
    ]
    kinds = ("partial", "context", "rgb_only", "flow_only")
    count = rng.poisson(cfg.distractors_per_min * layout.duration / 60.0)
    for _ in range(count):
        length = float(np.clip(np.exp(rng.normal(math.log(cfg.length_median_s), 0.9)), 0.5, 30))
        kind = kinds[int(rng.integers(0, len(kinds)))]
        # a one-stream look-alike carries its approach and recovery too: keep those free as well
        pad = cfg.context_frac * length if kind in ("rgb_only", "flow_only") else 0.0
        for _try in range(5):  # a few tries to find a free place, else drop it
            start = float(rng.uniform(0, max(0.0, layout.duration - length)))
            end = start + length
            if not any(start - pad < b1 and end + pad > b0 for b0, b1 in busy):
                break
        else:
            continue
        busy.append((start - pad, end + pad))
        amp = float(rng.uniform(0.6, 1.0))
        layout.segments.append(
            Segment(kind, int(rng.integers(0, classes)), round(start, 3), round(end, 3), amp)
        )


def make_prototypes(seed: int, classes: int, dim: int, cfg: SynthConfig) -> Prototypes:
    """Class patterns: context pairs share appearance; each stream has its own confusion groups."""
    rng = synth_rng(seed, 0)
    pairs = int(round(classes * cfg.context_pair_frac / 2))
    # appearance id: pair members (2k, 2k+1) look the same inside the instance
    appearance = np.array([c // 2 if c < 2 * pairs else c - pairs for c in range(classes)])
    n_app = int(appearance.max()) + 1
    out = Prototypes({}, {}, {})
    for stream, group, shared in (
        ("rgb", cfg.rgb_group, cfg.rgb_shared),
        ("flow", cfg.flow_group, cfg.flow_shared),
    ):
        groups = np.empty(n_app, dtype=int)
        groups[rng.permutation(n_app)] = np.arange(n_app) // max(1, group)
        common = rng.standard_normal((n_app, 3, dim))
        own = rng.standard_normal((n_app, 3, dim))
        app = unit_rms(shared * common[groups] + math.sqrt(1 - shared**2) * own)
        out.phases[stream] = app[appearance].astype(np.float32)
        out.approach[stream] = unit_rms(rng.standard_normal((classes, dim))).astype(np.float32)
        out.recovery[stream] = unit_rms(rng.standard_normal((classes, dim))).astype(np.float32)
    if cfg.rgb_venue > 0:  # its own generator: data without the shift stay byte-identical
        venue = synth_rng(seed, 3).standard_normal((classes, dim))
        out.venue = unit_rms(venue).astype(np.float32)
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _drift(rng: np.random.Generator, t: int, dim: int, rank: int = 3) -> np.ndarray:
    """Slow low-rank drift: smoothed random walks mixed into `dim` channels, unit rms: (t, dim)."""
    walk = np.cumsum(rng.standard_normal((t, rank)), axis=0)
    walk -= walk.mean(axis=0)
    walk /= walk.std(axis=0) + 1e-8
    return walk @ (rng.standard_normal((rank, dim)) / math.sqrt(rank))


def render_features(
    rng: np.random.Generator,
    layout: VideoLayout,
    protos: Prototypes,
    cfg: SynthConfig,
    meta: FeatureMeta,
) -> np.ndarray:
    """Features of one video: (T, 2*D) float32 = [rgb | flow]."""
    t_count = meta.num_steps(math.floor(layout.duration * meta.fps))
    times = meta.step_times(t_count)
    dim = protos.phases["rgb"].shape[-1]
    streams = []
    for stream in ("rgb", "flow"):
        signal, noise = getattr(cfg, f"{stream}_signal"), getattr(cfg, f"{stream}_noise")
        x = noise * correlated_noise(rng, t_count, dim, cfg.noise_corr_steps)
        x += getattr(cfg, f"{stream}_drift") * _drift(rng, t_count, dim)
        # scene offsets: one per shot in RGB (camera cuts), a faint one in flow
        bounds = np.searchsorted(times, layout.cuts) if stream == "rgb" else np.array([], int)
        scenes = rng.standard_normal((len(bounds) + 1, dim)) * getattr(cfg, f"{stream}_scene")
        x += scenes[np.searchsorted(bounds, np.arange(t_count), side="right")]
        if stream == "rgb" and protos.venue is not None:
            _add_venues(rng, x, times, layout, protos.venue, cfg)
        for seg in layout.segments:
            if seg.kind == "rgb_only" and stream != "rgb":
                continue
            if seg.kind == "flow_only" and stream != "flow":
                continue
            _add_segment(x, times, seg, protos, stream, signal, cfg)
        streams.append(x)
    return np.concatenate(streams, axis=1).astype(np.float32)


def _add_venues(
    rng: np.random.Generator,
    x: np.ndarray,
    times: np.ndarray,
    layout: VideoLayout,
    venue: np.ndarray,
    cfg: SynthConfig,
) -> None:
    """The venue shift: each action and its context get a venue pattern in RGB, the class's own
    in training videos, a random class's in test videos."""
    own = layout.subset in TRAINING_SUBSETS
    for seg in layout.actions:
        cls = seg.cls if own else int(rng.integers(0, venue.shape[0]))
        ctx = cfg.context_frac * (seg.end - seg.start)
        lo, hi = np.searchsorted(times, [seg.start - ctx, seg.end + ctx])
        x[lo:hi] += cfg.rgb_venue * venue[cls]


def _add_segment(
    x: np.ndarray,
    times: np.ndarray,
    seg: Segment,
    protos: Prototypes,
    stream: str,
    signal: float,
    cfg: SynthConfig,
) -> None:
    """Add one segment's pattern to the stream features `x` (T, D) in place."""
    length = max(seg.end - seg.start, 1e-3)
    ctx = cfg.context_frac * length
    lo, hi = np.searchsorted(
        times, [seg.start - ctx - 4 * cfg.ramp_s, seg.end + ctx + 4 * cfg.ramp_s]
    )
    if hi <= lo:
        return
    t = times[lo:hi]
    amp = signal * seg.amp
    inside = _sigmoid((t - seg.start) / cfg.ramp_s) * _sigmoid((seg.end - t) / cfg.ramp_s)
    u = np.clip((t - seg.start) / length, 0.0, 1.0)
    # hat functions centred at 0, 1/2, 1: onset -> middle -> offset, a partition of unity
    hats = np.clip(1.0 - np.abs(u[:, None] - np.array([0.0, 0.5, 1.0])) / 0.5, 0.0, 1.0)
    phases = protos.phases[stream][seg.cls]  # (3, D)
    if seg.kind in ("action", "rgb_only", "flow_only"):
        x[lo:hi] += amp * inside[:, None] * (hats @ phases)
    elif seg.kind == "partial":
        x[lo:hi] += amp * inside[:, None] * phases[1][None, :]
    c_amp = amp * cfg.context_amp
    if seg.kind == "context":  # an approach that is not followed by the action
        x[lo:hi] += c_amp * inside[:, None] * protos.approach[stream][seg.cls][None, :]
    if seg.kind in ("action", "rgb_only", "flow_only"):
        # approach before, recovery after: full strength for the first third, fading out by l/2
        before = np.clip(1.5 * (1.0 - (seg.start - t) / ctx), 0.0, 1.0) * _sigmoid(
            (seg.start - t) / cfg.ramp_s
        )
        after = np.clip(1.5 * (1.0 - (t - seg.end) / ctx), 0.0, 1.0) * _sigmoid(
            (t - seg.end) / cfg.ramp_s
        )
        x[lo:hi] += c_amp * before[:, None] * protos.approach[stream][seg.cls][None, :]
        x[lo:hi] += c_amp * after[:, None] * protos.recovery[stream][seg.cls][None, :]


# render(rng, layout, prototypes, config, meta) -> (T, 2*D) float32 features of one video
Renderer = Callable[
    [np.random.Generator, VideoLayout, Prototypes, SynthConfig, FeatureMeta], np.ndarray
]


@dataclass(frozen=True)
class SynthProfile:
    """What a profile other than the demo replaces (talnet.data.thumos_profile): all layouts
    (from sample_layouts's arguments), class patterns, ground-truth labels, and optionally the
    renderer (talnet.data.generators: same layouts, actions shown differently).
    `configure` adapts the generator's settings to the profile (grid, context, distractors);
    `subsets` names its training and test subsets; `description` is one line for listings."""

    name: str
    sample_layouts: Callable[[int, int, int, int, SynthConfig], list[VideoLayout]]
    prototypes: Callable[[int, int, int, SynthConfig], Prototypes]
    ground_truth: Callable[[list[VideoLayout], int, float], GroundTruth]
    configure: Callable[[SynthConfig], SynthConfig] | None = None
    subsets: tuple[str, str] = (TRAIN_SUBSET, TEST_SUBSET)
    render: Renderer = render_features
    description: str = ""

    def config(self, cfg: SynthConfig) -> SynthConfig:
        """The generator settings this profile renders with."""
        return self.configure(cfg) if self.configure else cfg


def sample_layouts(
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    classes: int = 20,
    config: SynthConfig | None = None,
    profile: SynthProfile | None = None,
) -> list[VideoLayout]:
    """All videos' layouts (cheap: no features), in the order make_synthetic writes them."""
    cfg = config or SynthConfig()
    if profile:
        return profile.sample_layouts(seed, videos_train, videos_test, classes, profile.config(cfg))
    layouts = []
    for s_idx, (subset, count) in enumerate(
        ((TRAIN_SUBSET, videos_train), (TEST_SUBSET, videos_test))
    ):
        for i in range(count):
            rng = synth_rng(seed, 1, s_idx, i)
            layouts.append(sample_layout(rng, video_id(subset, i), subset, classes, cfg))
    return layouts


def layouts_to_ground_truth(layouts: list[VideoLayout], classes: int, fps: float) -> GroundTruth:
    """The ground truth of the layouts (actions only; distractors are background)."""
    names = class_names(classes)
    return {
        lay.video_id: VideoInfo(
            lay.video_id,
            lay.subset,
            lay.duration,
            fps,
            [Annotation(names[a.cls], a.start, a.end) for a in lay.actions],
        )
        for lay in layouts
    }


def make_synthetic(
    out_dir: str | Path,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 213,
    classes: int = 20,
    dim: int = 64,
    config: SynthConfig | None = None,
    progress: bool = True,
    profile: SynthProfile | None = None,
) -> Path:
    """Write OUT/annotations.json, OUT/features/VIDEO_ID.npy (T, 2*dim), meta.json; return OUT."""
    cfg = config or SynthConfig()
    if profile:
        cfg = profile.config(cfg)
    if classes < 2:
        raise TalnetError(f"need at least 2 classes, got {classes}")
    if dim < 1 or videos_train < 0 or videos_test < 0 or videos_train + videos_test < 1:
        raise TalnetError(
            f"bad sizes: dim={dim}, videos_train={videos_train}, videos_test={videos_test}"
        )
    out = Path(out_dir)
    feat_dir = out / "features"
    extra = {"seed": seed, "classes": classes, "config": asdict(cfg)}
    extra.update({"profile": profile.name} if profile else {})
    meta = FeatureMeta(
        fps=cfg.fps,
        stride=cfg.stride,
        window=cfg.window,
        streams=["rgb", "flow"],
        layout="concat",
        dims=[dim, dim],
        extra={"synthetic": extra},
    )
    protos = (profile.prototypes if profile else make_prototypes)(seed, classes, dim, cfg)
    layouts = sample_layouts(seed, videos_train, videos_test, classes, cfg, profile)
    render = profile.render if profile else render_features
    bar = tqdm(layouts, "synth videos", unit="video", disable=not progress or len(layouts) < 20)
    for idx, lay in enumerate(bar):
        rng = synth_rng(seed, 2, idx)
        save_array(feat_dir, lay.video_id, render(rng, lay, protos, cfg, meta))
    write_meta(feat_dir, meta)
    to_gt = profile.ground_truth if profile else layouts_to_ground_truth
    save_ground_truth(out / "annotations.json", to_gt(layouts, classes, cfg.fps))
    return out
