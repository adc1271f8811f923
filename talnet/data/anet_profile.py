"""The `activitynet` profile of the synthetic benchmark: videos laid out like ActivityNet v1.3
(docs/design.md §7): many classes (200 by default), videos of about two minutes with a spread,
one or two long instances per video covering about half of it, some the whole video, one class
per video; subsets named as ActivityNet names them (training / validation).

Targets. Published (activity-net.org, release 1.3): 200 classes; 10,024 training videos with
15,410 instances and 4,926 validation videos with 7,654 (1.54 and 1.55 per video); ~648 hours
over ~20k videos (116.7 s per video on average). Approximate (the usual description of the data,
not published figures, marked "~" in the table): most videos hold one instance and nearly all
one or two; instances cover about half of the video time; a tenth of the videos are one
instance from start to end.

Features: synth.py's renderer on a 16-frame grid (30 fps, stride 16, window 16: ~225 steps per
two minutes, as ActivityNet features commonly are), with short context (a tenth of the instance
on each side, which the video's edges often cut), no context-only class pairs and fewer
distractors than the THUMOS'14-like profiles; `talnet resample-features` then brings every
video to N steps.
"""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from talnet.data.profiles import statistics_table
from talnet.data.synth import (
    Segment,
    SynthConfig,
    SynthProfile,
    VideoLayout,
    add_distractors,
    make_prototypes,
    make_synthetic,
    video_id,
)
from talnet.io.annotations import AMBIGUOUS
from talnet.io.types import Annotation, GroundTruth, VideoInfo

TRAIN_SUBSET, TEST_SUBSET = "training", "validation"
ACTIVITYNET_CLASSES = 200
ACTIVITYNET_VIDEOS = {"training": 10024, "validation": 4926}  # published, release 1.3
ACTIVITYNET_INSTANCES = {"training": 15410, "validation": 7654}
ACTIVITYNET_MEAN_SECONDS = 648 * 3600 / 19994  # ~648 hours over 19,994 videos: 116.7 s
# The generator: log-normal durations of this median and spread (mean = the published mean),
# instance counts, whole-video share, and the covered fraction of the other videos.
DURATION_SIGMA = 0.5
DURATION_MEDIAN = ACTIVITYNET_MEAN_SECONDS / math.exp(DURATION_SIGMA**2 / 2)
DURATION_CLIP = (10.0, 600.0)
COUNT_P = {1: 0.70, 2: 0.19, 3: 0.06, 4: 0.0125, 5: 0.0125, 6: 0.0125, 7: 0.0125}  # mean 1.535
WHOLE_VIDEO_SHARE = 0.10  # single-instance videos that are the action from start to end
COVER_BETA = (2.0, 2.4)  # fraction of the other videos inside actions: mean 0.45
MIN_ACTION_S = 1.0

# quantity -> (target, published?)
ACTIVITYNET_TARGETS: dict[str, tuple[float, bool]] = {
    "classes": (ACTIVITYNET_CLASSES, True),
    "instances per video mean": (
        sum(ACTIVITYNET_INSTANCES.values()) / sum(ACTIVITYNET_VIDEOS.values()), True
    ),
    "video seconds mean": (ACTIVITYNET_MEAN_SECONDS, True),
    "videos with 1 instance share": (0.70, False),
    "videos with 1-2 instances share": (0.90, False),
    "coverage": (0.50, False),
    "videos with a whole-video instance share": (0.10, False),
}


def activitynet_config(cfg: SynthConfig) -> SynthConfig:
    """The generator settings of the profile (see the module docstring)."""
    return replace(
        cfg, stride=16, window=16, noise_corr_steps=1, context_frac=0.1, context_pair_frac=0.0,
        distractors_per_min=1.0, rgb_cuts_per_min=1.0,
    )  # fmt: skip


def sample_activitynet_layouts(
    seed: int, videos_train: int, videos_test: int, classes: int, cfg: SynthConfig
) -> list[VideoLayout]:
    """All videos' layouts, training then validation; each video draws from its own stream."""
    layouts = []
    for s_idx, (subset, videos) in enumerate(
        ((TRAIN_SUBSET, videos_train), (TEST_SUBSET, videos_test))
    ):
        # classes balanced over the subset (ActivityNet's are, roughly), in random order
        order = np.random.default_rng(np.random.SeedSequence([seed, 5, s_idx]))
        labels = order.permutation(np.arange(videos) % classes)
        for i in range(videos):
            rng = np.random.default_rng(np.random.SeedSequence([seed, 1, s_idx, i]))
            layouts.append(
                _layout(rng, video_id(subset, i), subset, int(labels[i]), classes, cfg)
            )
    return layouts


def _layout(
    rng: np.random.Generator, vid: str, subset: str, label: int, classes: int, cfg: SynthConfig
) -> VideoLayout:
    """One video: duration, 1-7 instances of one class covering a drawn fraction of it."""
    duration = float(np.exp(rng.normal(math.log(DURATION_MEDIAN), DURATION_SIGMA)))
    duration = round(float(np.clip(duration, *DURATION_CLIP)), 3)
    counts, probs = zip(*COUNT_P.items(), strict=True)
    n = int(rng.choice(counts, p=np.array(probs) / sum(probs)))
    whole = n == 1 and rng.random() < WHOLE_VIDEO_SHARE / COUNT_P[1]
    layout = VideoLayout(vid, subset, duration)
    if whole:
        amp = float(rng.uniform(*cfg.instance_amp))
        layout.segments.append(Segment("action", label, 0.0, duration, amp))
    else:
        covered = float(np.clip(rng.beta(*COVER_BETA), 0.08, 0.95)) * duration
        lengths = np.maximum(rng.dirichlet(np.full(n, 3.0)) * covered, MIN_ACTION_S)
        gaps = rng.dirichlet(np.ones(n + 1)) * max(duration - lengths.sum(), 0.0)
        t = 0.0
        for i in range(n):
            start = t + gaps[i]
            end = min(duration, start + lengths[i])
            amp = float(rng.uniform(*cfg.instance_amp))
            layout.segments.append(Segment("action", label, round(start, 3), round(end, 3), amp))
            t = end
    add_distractors(rng, layout, classes, cfg)
    n_cuts = rng.poisson(cfg.rgb_cuts_per_min * duration / 60.0)
    layout.cuts = sorted(float(x) for x in rng.uniform(0, duration, n_cuts))
    return layout


def activitynet_class_names(classes: int) -> list[str]:
    """Label names of the profile's classes."""
    return [f"activity_{c:03d}" for c in range(classes)]


def activitynet_ground_truth(layouts: list[VideoLayout], classes: int, fps: float) -> GroundTruth:
    """The layouts' ground truth, durations in seconds (no fps: ActivityNet's file has none)."""
    names = activitynet_class_names(classes)
    return {
        lay.video_id: VideoInfo(
            lay.video_id, lay.subset, lay.duration, None,
            [Annotation(names[a.cls], a.start, a.end) for a in lay.actions],
        )  # fmt: skip
        for lay in layouts
    }


ACTIVITYNET = SynthProfile(
    "activitynet",
    sample_activitynet_layouts,
    make_prototypes,
    activitynet_ground_truth,
    configure=activitynet_config,
    subsets=(TRAIN_SUBSET, TEST_SUBSET),
)


def activitynet_statistics(gt: GroundTruth, subset: str | None = None) -> dict[str, float]:
    """The statistics of ACTIVITYNET_TARGETS realized by `gt` (one subset or all videos)."""
    infos = [v for v in gt.values() if subset is None or v.subset == subset]
    anns = [[a for a in v.annotations if a.label != AMBIGUOUS] for v in infos]
    counts = np.array([len(a) for a in anns], dtype=float)
    timed = [(v.duration, a) for v, a in zip(infos, anns, strict=True) if v.duration]
    durations = np.array([d for d, _ in timed], dtype=float)
    covered = sum(min(d, sum(a.end - a.start for a in video)) for d, video in timed)
    whole = [any(a.end - a.start >= 0.95 * d for a in video) for d, video in timed]
    out = {
        "classes": float(len({a.label for video in anns for a in video})),
        "videos": float(len(infos)),
        "instances": float(counts.sum()),
        "instances per video mean": float(counts.mean()) if counts.size else np.nan,
        "video seconds mean": float(durations.mean()) if durations.size else np.nan,
        "video seconds p10": _quantile(durations, 0.1),
        "video seconds p50": _quantile(durations, 0.5),
        "video seconds p90": _quantile(durations, 0.9),
        "videos with 1 instance share": float((counts == 1).mean()) if counts.size else np.nan,
        "videos with 1-2 instances share": (
            float(((counts >= 1) & (counts <= 2)).mean()) if counts.size else np.nan
        ),
        "coverage": covered / durations.sum() if durations.size else np.nan,
        "videos with a whole-video instance share": float(np.mean(whole)) if whole else np.nan,
    }
    return out


def _quantile(values: np.ndarray, q: float) -> float:
    return float(np.quantile(values, q)) if values.size else np.nan


def describe_activitynet(gt: GroundTruth) -> str:
    """A table of `gt`'s statistics per subset beside ActivityNet v1.3's ("~": approximate)."""
    subsets = sorted({v.subset for v in gt.values()}, key=lambda s: (s != "training", s))
    stats = {s: activitynet_statistics(gt, s) for s in subsets}
    targets = {k: v for k, (v, _) in ACTIVITYNET_TARGETS.items()}
    approx = {k for k, (_, published) in ACTIVITYNET_TARGETS.items() if not published}
    rows = ["videos", "instances", *targets, "video seconds p10", "video seconds p50",
            "video seconds p90"]  # fmt: skip
    return statistics_table(
        "realized statistics beside ActivityNet v1.3's (published; ~ approximate)",
        "ANet1.3", {k: targets.get(k, np.nan) for k in rows}, stats, approx,
        formats={"instances per video mean": ".2f"},
    )  # fmt: skip


def activitynet_synthetic_ground_truth(
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 100,
    classes: int = ACTIVITYNET_CLASSES,
    config: SynthConfig | None = None,
) -> GroundTruth:
    """The ground truth `make_activitynet` writes, without rendering features (fast)."""
    cfg = ACTIVITYNET.config(config or SynthConfig())
    layouts = sample_activitynet_layouts(seed, videos_train, videos_test, classes, cfg)
    return activitynet_ground_truth(layouts, classes, cfg.fps)


def make_activitynet(
    out_dir: str | Path,
    seed: int = 0,
    videos_train: int = 200,
    videos_test: int = 100,
    classes: int = ACTIVITYNET_CLASSES,
    dim: int = 64,
    config: SynthConfig | None = None,
    progress: bool = True,
) -> Path:
    """Write an ActivityNet-shaped synthetic benchmark in make_synthetic's formats (subsets
    training / validation, features on the 16-frame grid); return OUT."""
    return make_synthetic(
        out_dir, seed, videos_train, videos_test, classes, dim, config, progress, ACTIVITYNET
    )
