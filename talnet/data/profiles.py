"""Dataset profiles for the synthetic benchmark: the public statistics a synthetic set must
match so that measurements on it speak for the real dataset (docs/design.md §7).

THUMOS'14 test set (213 videos, 3,358 instances, 20 classes), as published.
"""

from __future__ import annotations

import numpy as np

from talnet.io.annotations import AMBIGUOUS
from talnet.io.types import GroundTruth

# quantile (0..1) -> value; 0 and 1 are the observed minimum and maximum.
THUMOS14_INSTANCES_PER_VIDEO = {0.0: 0, 0.5: 9, 0.75: 20, 0.9: 36, 0.95: 50, 0.99: 83, 1.0: 218}
THUMOS14_VIDEO_SECONDS = {
    0.0: 9.0, 0.1: 48.0, 0.25: 97.0, 0.5: 164.0, 0.75: 230.0, 0.9: 413.0, 0.95: 686.0,
    1.0: 1673.0,
}  # fmt: skip
THUMOS14_ACTION_SECONDS = {
    0.0: 0.2, 0.01: 0.5, 0.1: 1.1, 0.25: 1.7, 0.5: 3.2, 0.75: 6.2, 0.9: 9.1, 0.99: 18.2,
    1.0: 86.6,
}  # fmt: skip
THUMOS14_ACTION_COVERAGE = 0.33  # fraction of all video time inside actions
THUMOS14_VIDEOS = 213
THUMOS14_INSTANCES = 3358
THUMOS14_EMPTY_VIDEOS = 1  # test videos without any instance

# Instances per class in the test set, most frequent first; they sum to THUMOS14_INSTANCES.
# THUMOS'14's own counts: BasketballDunk 488, PoleVault 399, Diving 388, BaseballPitch 41 and
# GolfSwing 36. The other fifteen are not published here: they are chosen, plausible counts that
# fill the remaining 2,006 instances between those extremes.
THUMOS14_CLASS_INSTANCES = {
    "BasketballDunk": 488, "PoleVault": 399, "Diving": 388, "CricketShot": 190,
    "VolleyballSpiking": 180, "HammerThrow": 170, "CricketBowling": 165, "TennisSwing": 160,
    "ThrowDiscus": 150, "Shotput": 140, "SoccerPenalty": 130, "HighJump": 125,
    "JavelinThrow": 120, "CliffDiving": 110, "LongJump": 105, "FrisbeeCatch": 95,
    "CleanAndJerk": 85, "Billiards": 81, "BaseballPitch": 41, "GolfSwing": 36,
}  # fmt: skip
# Every instance of the key is also annotated as the value (same segment, a second label), so
# Diving's count includes CliffDiving's.
THUMOS14_ALSO_LABELLED = {"CliffDiving": "Diving"}


def _qname(q: float) -> str:
    return "max" if q == 1.0 else f"p{round(100 * q):02d}"


def thumos14_targets() -> dict[str, float]:
    """THUMOS'14's test-set statistics under the names `profile_statistics` gives its own."""
    out: dict[str, float] = {
        "videos": THUMOS14_VIDEOS,
        "instances": THUMOS14_INSTANCES,
        "instances per video mean": THUMOS14_INSTANCES / THUMOS14_VIDEOS,
    }
    for name, table in (
        ("instances per video", THUMOS14_INSTANCES_PER_VIDEO),
        ("video seconds", THUMOS14_VIDEO_SECONDS),
        ("action seconds", THUMOS14_ACTION_SECONDS),
    ):
        out.update({f"{name} {_qname(q)}": v for q, v in table.items() if q > 0})
        if name == "instances per video":
            out["videos without instances"] = THUMOS14_EMPTY_VIDEOS
    out["coverage"] = THUMOS14_ACTION_COVERAGE
    return out


def profile_statistics(gt: GroundTruth, subset: str | None = None) -> dict[str, float]:
    """The statistics of `thumos14_targets` realized by `gt` (one subset or all videos); coverage
    takes the union of a video's instances, so a doubly labelled one counts once."""
    infos = [v for v in gt.values() if subset is None or v.subset == subset]
    anns = [[a for a in v.annotations if a.label != AMBIGUOUS] for v in infos]
    counts = np.array([len(a) for a in anns], dtype=float)
    lengths = np.array([a.end - a.start for video in anns for a in video], dtype=float)
    timed = [(v.duration, a) for v, a in zip(infos, anns, strict=True) if v.duration]
    durations = np.array([d for d, _ in timed], dtype=float)
    out: dict[str, float] = {
        "videos": len(infos),
        "instances": float(counts.sum()),
        "instances per video mean": float(counts.mean()) if counts.size else np.nan,
    }
    for name, values, table in (
        ("instances per video", counts, THUMOS14_INSTANCES_PER_VIDEO),
        ("video seconds", durations, THUMOS14_VIDEO_SECONDS),
        ("action seconds", lengths, THUMOS14_ACTION_SECONDS),
    ):
        for q in table:
            if q > 0:
                value = float(np.quantile(values, q)) if values.size else np.nan
                out[f"{name} {_qname(q)}"] = value
    out["videos without instances"] = float((counts == 0).sum())
    covered = sum(_union_length(d, video) for d, video in timed)
    out["coverage"] = covered / durations.sum() if durations.size else np.nan
    return out


def _union_length(duration: float, anns: list) -> float:
    """Seconds of [0, duration] inside at least one of the instances."""
    total, reach = 0.0, 0.0
    for start, end in sorted((max(0.0, a.start), min(duration, a.end)) for a in anns):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def class_counts(gt: GroundTruth, subset: str | None = None) -> dict[str, int]:
    """Instances per label (Ambiguous left out), in one subset or all videos."""
    out: dict[str, int] = {}
    for info in gt.values():
        if subset is None or info.subset == subset:
            for a in info.annotations:
                if a.label != AMBIGUOUS:
                    out[a.label] = out.get(a.label, 0) + 1
    return out


def describe_profile(gt: GroundTruth) -> str:
    """A table of `gt`'s statistics per subset beside THUMOS'14's test set, to judge a profile."""
    subsets = sorted({v.subset for v in gt.values()}, key=lambda s: (s != "test", s))
    targets = thumos14_targets()
    stats = {s: profile_statistics(gt, s) for s in subsets}
    width = max(len(k) for k in targets) + 2
    table = statistics_table(
        "realized statistics beside THUMOS'14's test set (the targets)", "THUMOS14", targets, stats
    )
    lines = [table]
    counts = {s: class_counts(gt, s) for s in subsets}
    if any(set(c) & set(THUMOS14_CLASS_INSTANCES) for c in counts.values()):
        names = list(THUMOS14_CLASS_INSTANCES)
        lines.append("instances per class (most and least frequent in THUMOS'14)")
        for name in names[:3] + names[-2:]:
            cells = "".join(f"{counts[s].get(name, 0):>12}" for s in subsets)
            lines.append(f"  {name:<{width - 2}}{THUMOS14_CLASS_INSTANCES[name]:>10}{cells}")
    return "\n".join(lines)


def statistics_table(
    title: str,
    target_name: str,
    targets: dict[str, float],
    stats: dict[str, dict[str, float]],
    approximate: set[str] | frozenset[str] = frozenset(),
    formats: dict[str, str] | None = None,
) -> str:
    """One row per statistic: the target (prefixed "~" where `approximate`), then its value in
    each subset of `stats` (subset -> statistic -> value); how a profile is judged. `formats`
    gives a row's number format where the default rule (by the name) does not fit."""
    width = max(len(k) for k in targets) + 2
    header = f"{'':<{width}}{target_name:>10}" + "".join(f"{s[:10]:>12}" for s in stats)
    lines = [title, header]
    spec = formats or {}

    def fmt(key: str, value: float) -> str:
        return "-" if np.isnan(value) or key not in spec else f"{value:{spec[key]}}"

    for key, target in targets.items():
        cell = fmt if key in spec else _fmt
        shown = ("~" if key in approximate else "") + cell(key, target)
        cells = "".join(f"{cell(key, stats[s].get(key, np.nan)):>12}" for s in stats)
        lines.append(f"{key:<{width}}{shown:>10}" + cells)
    return "\n".join(lines)


def _fmt(key: str, value: float) -> str:
    if np.isnan(value):
        return "-"
    if key == "coverage" or key.endswith("share"):
        return f"{value:.3f}"
    if key == "classes":
        return f"{value:.0f}"
    if key.startswith(("videos", "instances")) and not key.endswith("mean"):
        return f"{value:.0f}"
    return f"{value:.1f}"
