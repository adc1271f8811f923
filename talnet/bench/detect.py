"""End-to-end detection speed on real-length videos, beside the fixed-length figure.

`bench model` times one warm 3000-frame video; `talnet detect` sees videos of every length, each
for the first time. This section runs `Detector.detect` (features in memory -> detections in
seconds) over videos whose durations follow THUMOS'14 test's (inverse CDF of the published
quantiles, fixed seed), cold (a fresh model per run, so every length is new to it), and reports
both per 3000 frames with their ratio. Features are random: speed does not depend on their
values, but an untrained model's near-uniform scores make NMS see worst-case numbers of boxes
(nothing stands out, so few are dropped early).

The long-video rows: one video of hours (6 h; 30 min with --quick) written as a float32 .npy to
a temporary folder and detected as `talnet detect --features` does (memory-mapped, window by
window) in a fresh process per config (cpu_fast; thumos14_cpu, whose budgets grow with the
video: ~1e5 proposals and detections for a day), which reports its time per 3000 frames beside
a 3-minute video's and its peak resident memory against the feature file's size. A day:
`python -c "from talnet.bench.detect import long_video_row; long_video_row(False, hours=24)"`.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from talnet.allocator import keep_freed_memory
from talnet.bench.probe import matmul_gflops, repeat_for
from talnet.config import Config, load_config
from talnet.data.profiles import THUMOS14_VIDEO_SECONDS
from talnet.detect.detector import Detector, detect_features
from talnet.io.features import FeatureMeta, write_meta
from talnet.model.talnet import TalNet

FRAMES = 3000
FPS = 30.0
DIM = 1024
CLASSES = 20
STREAMS = ("rgb", "flow")
CONFIGS = ("cpu_fast", "thumos14_i3d")
STRIDES = (16, 4)

LONG_SECONDS, QUICK_LONG_SECONDS = 6 * 3600.0, 1800.0  # the long video's duration
SHORT_SECONDS = 180.0  # the long video's yardstick: a 3-minute video, in the same process
LONG_CONFIGS, LONG_STRIDE = ("cpu_fast", "thumos14_cpu"), 4

ModelFactory = Callable[[Config], torch.nn.Module]


def quantile_draw(quantiles: dict[float, float], count: int, seed: int = 0) -> np.ndarray:
    """`count` values drawn by inverse CDF from {quantile: value} (piecewise linear between the
    given quantiles, which must include 0 and 1), with a fixed seed so every run sees the same."""
    levels = np.array(sorted(quantiles), dtype=np.float64)
    if levels[0] != 0.0 or levels[-1] != 1.0:
        raise ValueError("quantiles must include 0 and 1 (the minimum and the maximum)")
    values = np.array([quantiles[q] for q in levels], dtype=np.float64)
    return np.interp(np.random.default_rng(seed).random(count), levels, values)


def video_frames(count: int, seed: int = 0) -> list[int]:
    """Frame counts of `count` videos with THUMOS'14 test's durations at 30 fps."""
    seconds = quantile_draw(THUMOS14_VIDEO_SECONDS, count, seed)
    return [int(round(s * FPS)) for s in seconds]


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    info = Path("/proc/cpuinfo")
    if info.exists():
        for line in info.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def untrained_model(config: Config) -> TalNet:
    """The benchmark's model: seeded, untrained, 2 streams x 1024-d, 20 classes."""
    torch.manual_seed(0)
    return TalNet(dict.fromkeys(STREAMS, DIM), CLASSES, config)


@dataclass(frozen=True)
class VideoSet:
    """Random features of videos of the given step counts (views of one array per stream)."""

    meta: FeatureMeta
    frames: list[int]
    features: list[dict[str, np.ndarray]]

    @classmethod
    def make(cls, frames: Sequence[int], stride: int, seed: int = 0) -> VideoSet:
        meta = FeatureMeta(fps=FPS, stride=stride, streams=list(STREAMS), dims=[DIM, DIM])
        steps = [meta.num_steps(f) for f in frames]
        rng = np.random.default_rng(seed)
        full = {s: rng.standard_normal((max(steps), DIM), dtype=np.float32) for s in STREAMS}
        feats = [{s: full[s][:t] for s in STREAMS} for t in steps]
        return cls(meta, list(frames), feats)

    def per_3000(self, seconds: float) -> float:
        """Milliseconds per 3000 frames of video for `seconds` spent on the whole set."""
        return 1000 * seconds * FRAMES / sum(self.frames)


def detect_all(detector: Detector, videos: VideoSet) -> float:
    """Seconds to detect every video of the set, one after another."""
    began = time.perf_counter()
    for feats in videos.features:
        detector.detect(feats, videos.meta)
    return time.perf_counter() - began


def cold_seconds(
    config: Config, videos: VideoSet, runs: int, make_model: ModelFactory = untrained_model
) -> tuple[list[float], list[float]]:
    """Seconds per pass over the set with a fresh model (built outside the timing), so every
    length is new to it as for `talnet detect` on a folder of real videos; and of a second,
    warm pass with the same model. One of each per run."""
    cold, warm = [], []
    for _ in range(runs):
        detector = Detector(make_model(config), [f"c{i}" for i in range(CLASSES)], videos.meta)
        cold.append(detect_all(detector, videos))
        warm.append(detect_all(detector, videos))
    return cold, warm


def fixed_seconds(
    config: Config, stride: int, seconds: float, make_model: ModelFactory = untrained_model
) -> list[float]:
    """Seconds per warm detection of one 3000-frame video, as `bench model` measures it."""
    videos = VideoSet.make([FRAMES], stride)
    detector = Detector(make_model(config), [f"c{i}" for i in range(CLASSES)], videos.meta)
    return repeat_for(lambda: detect_all(detector, videos), seconds, warmup=3)


def run(quick: bool = False) -> None:
    """Print fixed-length warm and real-length cold detection times per 3000 frames."""
    count = 15 if quick else 24
    frames = video_frames(count)
    print(
        f"cpu: {cpu_model()}; threads: {torch.get_num_threads()}; features: {len(STREAMS)} "
        f"streams x {DIM}-d, {CLASSES} classes, {FPS:g} fps"
    )
    print(
        f"real lengths: {count} videos drawn from THUMOS'14 test durations (seed 0), "
        f"{sum(frames) / FPS / 60:.0f} min in all, {min(frames) / FPS:.0f}-"
        f"{max(frames) / FPS:.0f} s"
    )
    print(
        "fixed: one warm 3000-frame video (as `bench model`); cold: the real-length set with a "
        "fresh model; warm: its second pass. Untrained models: near-uniform scores make NMS "
        "see worst-case numbers of boxes"
    )
    print(
        f"{'config':14} {'stride':>6} {'fixed':>6} {'cold':>6} {'median':>6} {'warm':>6} "
        f"{'cold/fixed':>10} probe      (ms per {FRAMES} frames, best of runs)"
    )
    for name in CONFIGS:
        config = load_config(name)
        runs = 1 if quick or name != "cpu_fast" else 3
        for stride in STRIDES:
            videos = VideoSet.make(frames, stride)
            fixed = 1000 * min(fixed_seconds(config, stride, 0.5 if quick else 2.0))
            cold, warm = (
                [videos.per_3000(s) for s in times]
                for times in cold_seconds(config, videos, runs)
            )  # fmt: skip
            print(
                f"{name:14} {stride:6d} {fixed:6.1f} {min(cold):6.1f} {np.median(cold):6.1f} "
                f"{min(warm):6.1f} {min(cold) / fixed:9.2f}x {matmul_gflops():.0f} GFLOP/s"
            )
    long_video_row(quick)


def write_long_video(folder: Path, frames: int, stride: int, seed: int = 0) -> tuple[Path, int]:
    """FOLDER/long.npy: random features (T, 2 x DIM) of one video of `frames` frames in the
    concat layout, with meta.json, written a block of steps at a time -> (file, steps T)."""
    dims = [DIM] * len(STREAMS)
    meta = FeatureMeta(fps=FPS, stride=stride, streams=list(STREAMS), layout="concat", dims=dims)
    steps, width = meta.num_steps(frames), sum(dims)
    path = folder / "long.npy"
    out = np.lib.format.open_memmap(path, "w+", np.float32, (steps, width))
    rng = np.random.default_rng(seed)
    block = max(1, (1 << 24) // (4 * width))
    for lo in range(0, steps, block):
        out[lo : lo + block] = rng.standard_normal((min(block, steps - lo), width), np.float32)
    out.flush()
    del out
    write_meta(folder, meta)
    return path, steps


def long_video_child(spec: dict) -> dict:
    """Inside a fresh process: a warm 3-minute video's best time, then one cold detection of
    the long video's folder as `talnet detect --features` runs it; seconds and peak RSS."""
    keep_freed_memory()  # as the `talnet` command does
    for name in ("DIM", "FPS", "FRAMES"):  # the parent's settings (a smoke test shrinks them)
        globals()[name] = spec[name.lower()]
    config = load_config(spec["config"])
    short = VideoSet.make([int(SHORT_SECONDS * FPS)], spec["stride"])
    detector = Detector(untrained_model(config), [f"c{i}" for i in range(CLASSES)], short.meta)
    short_best = min(repeat_for(lambda: detect_all(detector, short), spec["seconds"], warmup=3))
    began = time.perf_counter()
    found = detect_features(detector, spec["folder"], progress=False)
    long_seconds = time.perf_counter() - began
    scale = 1024 if sys.platform != "darwin" else 1  # ru_maxrss: KB on Linux, bytes on macOS
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    return {
        "short_ms": short.per_3000(short_best),
        "long_seconds": long_seconds,
        "peak_bytes": peak,
        "detections": sum(len(v) for v in found.values()),
    }


_CHILD = (
    "import json, sys; from talnet.bench.detect import long_video_child; "
    "print(json.dumps(long_video_child(json.loads(sys.argv[1]))))"
)


def long_video_row(quick: bool, hours: float | None = None) -> None:
    """Write the long video (6 h, 30 min with `quick`, or `hours`), detect it with each of
    LONG_CONFIGS in a fresh process and print its time per 3000 frames beside the 3-minute
    video's and its peak resident memory against the file's size."""
    seconds = 3600.0 * hours if hours else QUICK_LONG_SECONDS if quick else LONG_SECONDS
    frames = int(seconds * FPS)
    with tempfile.TemporaryDirectory(prefix="talnet-bench-long-") as tmp:
        path, steps = write_long_video(Path(tmp), frames, LONG_STRIDE)
        size = os.path.getsize(path)
        print(
            f"\nlong video: {seconds / 3600:g} h at stride {LONG_STRIDE} ({steps} steps, "
            f"{len(STREAMS)} x {DIM}-d float32 .npy of {_size(size)}, memory-mapped), "
            "each preset in a fresh process"
        )
        header = f"{'preset':14} {'video':24} {'ms':>8} {'x 3-min':>8} {'peak GB':>8} {'x file':>7}"
        print(f"{header} {'detections':>10} (ms per {FRAMES} frames)")
        for config in LONG_CONFIGS:
            spec = {
                "folder": tmp, "config": config, "stride": LONG_STRIDE, "dim": DIM,
                "fps": FPS, "frames": FRAMES, "seconds": 0.5 if quick else 2.0,
            }  # fmt: skip
            cmd = [sys.executable, "-c", _CHILD, json.dumps(spec)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            child = json.loads(out.stdout.strip().splitlines()[-1])
            long_ms = 1000 * child["long_seconds"] * FRAMES / frames
            peak_gb, file_gb = child["peak_bytes"] / 1e9, size / 1e9
            print(f"{config:14} {'3-min (warm, best)':24} {child['short_ms']:8.1f} {1:7.2f}x")
            print(
                f"{config:14} {f'{seconds / 3600:g} h (cold, one pass)':24} {long_ms:8.1f} "
                f"{long_ms / child['short_ms']:7.2f}x {peak_gb:8.2f} {peak_gb / file_gb:6.2f}x "
                f"{child['detections']:10d}"
            )
    print(
        f"goal: time <= 1.5x the 3-min video's; peak <= 1.5x the file + 1 GB "
        f"({1.5 * file_gb + 1:.2f} GB); probe {matmul_gflops():.0f} GFLOP/s"
    )


def _size(count: int) -> str:
    """A byte count in GB, or in MB below a tenth of a GB."""
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.2f} MB"
