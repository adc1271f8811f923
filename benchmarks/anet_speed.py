"""One real training epoch of an ActivityNet preset (anet13 by default) on ActivityNet v1.3's
10,024 training videos (random features, written packed), batched and unbatched in the same run,
with memory and the arithmetic floor.

Usage: .venv/bin/python benchmarks/anet_speed.py OUT [--videos 10024] [--steps 128] [--dim 1024]
           [--classes 200] [--videos-per-batch 16] [--baseline-videos 256] [--threads N]
           [--config anet13]

Writes OUT/annotations.json (ActivityNet-shaped: `talnet synth --profile activitynet`'s layouts)
and OUT/features, a packed store (`talnet pack-features`' layout) of random (N, dim) rgb and flow
features resampled to N steps, written video by video (10.5 GB at the defaults). Then, in one
process: one epoch of the preset with one video per step on the first --baseline-videos videos (the
reference), one full epoch on all videos with `train.videos_per_batch` (the measurement), and
detection on 50 videos. Prints the CPU, the matmul probe before and after, minutes per epoch, the
speed-up of batching measured in the same run, the training FLOPs per video (PyTorch's flop
counter on one step) with the epoch time they take at the probe's rate (a floor for this CPU),
and peak memory: anonymous (the process's own) apart from the memory-mapped features' file pages.
The time per step does not depend on the feature values.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from talnet.bench.detect import cpu_model
from talnet.bench.probe import matmul_gflops
from talnet.config import Config, edit_config, load_config, resolve_anchors
from talnet.data.anet_profile import ACTIVITYNET_VIDEOS, activitynet_synthetic_ground_truth
from talnet.data.dataset import TrainingData
from talnet.detect.detector import Detector, detect_features
from talnet.io.annotations import clip_for_training, load_ground_truth, save_ground_truth
from talnet.io.features import FeatureMeta, read_meta
from talnet.io.packed import write_store
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps
from talnet.train.loop import FitOptions, train

DETECT_VIDEOS = 50


class MemoryWatch:
    """Peak resident memory of this process, sampled: anonymous (its own allocations) and file
    pages (the memory-mapped features, which the kernel may drop at any time)."""

    def __init__(self, every_s: float = 0.2):
        self.peak = {"RssAnon": 0, "RssFile": 0, "VmRSS": 0}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def __enter__(self) -> MemoryWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self, every_s: float) -> None:
        while not self._stop.wait(every_s):
            for line in Path("/proc/self/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in self.peak:
                    self.peak[key] = max(self.peak[key], int(value.split()[0]) // 1024)  # MB


def write_features(out: Path, args: argparse.Namespace) -> tuple[Path, Path]:
    """OUT/annotations.json and OUT/features (packed, random), unless already there."""
    annotations, feats = out / "annotations.json", out / "features"
    gt = activitynet_synthetic_ground_truth(0, args.videos, 0, args.classes)
    if feats.exists() and annotations.exists():
        return annotations, feats
    save_ground_truth(annotations, gt)
    videos = sorted(gt)
    meta = FeatureMeta(
        dims=[args.dim, args.dim], resample_steps=args.steps,
        durations={v: gt[v].duration for v in videos},
    )  # fmt: skip
    rng = np.random.default_rng(0)

    def arrays(_video: str) -> dict[str, np.ndarray]:
        shape = (args.steps, args.dim)
        return {s: rng.standard_normal(shape, np.float32) for s in ("rgb", "flow")}

    write_store(feats, meta, videos, [args.steps] * len(videos), arrays, progress=True)
    return annotations, feats


def flops_per_video(config: Config, feats: Path, annotations: Path, classes: int) -> float:
    """Training FLOPs (forward and backward) of one video, by PyTorch's flop counter."""
    meta = read_meta(feats)
    config = resolve_anchors(config, meta.resample_steps, feats)
    gt = clip_for_training(load_ground_truth(annotations, "training"))
    data = TrainingData({v: gt[v] for v in sorted(gt)[:1]}, feats, meta)
    torch.manual_seed(0)
    model = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), classes, config).train()
    crop = data.crop(0, config.train.max_steps, torch.Generator())
    with FlopCounterMode(display=False) as counter:
        _, losses = model(crop.features, GroundTruthSteps(crop.segments, crop.labels))
        losses["loss"].backward()
    return float(counter.get_total_flops())


def epoch(
    annotations: Path, feats: Path, run: Path, config: Config, videos: list[str] | None
) -> dict:
    """Train one epoch (on `videos` only, if given); its log record and the run's wall time."""
    if videos is not None:
        gt = load_ground_truth(annotations)
        subset = annotations.parent / f"{run.name}_annotations.json"
        save_ground_truth(subset, {v: gt[v] for v in videos})
        annotations = subset
    began = time.perf_counter()
    result = train(
        annotations, feats, run, config, train_subset="training",
        options=FitOptions(progress=True, log_fn=lambda _line: None),
    )  # fmt: skip
    record = json.loads(Path(result.log).read_text().splitlines()[-1])
    record["wall_s"] = time.perf_counter() - began
    record["checkpoint"] = str(result.checkpoint)
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--videos", type=int, default=ACTIVITYNET_VIDEOS["training"])
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--dim", type=int, default=1024, help="per stream (rgb, flow)")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--videos-per-batch", type=int, default=16)
    parser.add_argument("--baseline-videos", type=int, default=256,
                        help="videos of the one-video-per-step reference epoch")  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--config", default="anet13", help="preset timed (anet13, anet13_cpu)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    annotations, feats = write_features(args.out, args)
    probe_before = matmul_gflops()
    base = edit_config(load_config(args.config), {"train": {"epochs": 1, "videos_per_batch": 1}})
    batched = edit_config(base, {"train": {"videos_per_batch": args.videos_per_batch}})
    ids = sorted(load_ground_truth(annotations))
    flops = flops_per_video(base, feats, annotations, args.classes)

    with MemoryWatch() as memory:
        single = epoch(annotations, feats, args.out / "one_per_step", base,
                       ids[: args.baseline_videos])  # fmt: skip
        full = epoch(annotations, feats, args.out / "batched", batched, None)
        detector = Detector.from_checkpoint(full["checkpoint"])
        began = time.perf_counter()
        detect_features(detector, feats, ids[:DETECT_VIDEOS], progress=False)
        detect_s = (time.perf_counter() - began) / DETECT_VIDEOS
    probe_after = matmul_gflops()

    single_s = single["time_s"] / min(args.baseline_videos, len(ids))
    full_s = full["time_s"] / len(ids)
    rate = min(probe_before, probe_after) * 1e9
    summary = {
        "cpu": cpu_model(),
        "config": args.config,
        "threads": torch.get_num_threads(),
        "matmul_probe_gflops_before_after": [round(probe_before, 1), round(probe_after, 1)],
        "steps": args.steps,
        "feature_dims": [args.dim, args.dim],
        "classes": args.classes,
        "videos": len(ids),
        "videos_per_batch": args.videos_per_batch,
        "epoch_minutes": round(full["time_s"] / 60, 1),
        "videos_per_s": round(len(ids) / full["time_s"], 1),
        "one_per_step_minutes_per_epoch": round(single_s * len(ids) / 60, 1),
        "batching_speedup": round(single_s / full_s, 2),
        "training_gflop_per_video": round(flops / 1e9, 2),
        "epoch_minutes_at_probe_rate": round(flops * len(ids) / rate / 60, 1),
        "detect_seconds_per_video": round(detect_s, 4),
        "peak_anonymous_mb": memory.peak["RssAnon"],
        "peak_feature_pages_mb": memory.peak["RssFile"],
        "peak_rss_mb": memory.peak["VmRSS"],
        "losses": {k: full[k] for k in ("loss", "video_cls") if k in full},
    }
    print(json.dumps(summary, indent=1))
    (args.out / "speed.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
