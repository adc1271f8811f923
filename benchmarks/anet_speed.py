"""Training and detection speed of the anet13 preset at N resampled steps, extrapolated to
ActivityNet v1.3's 10,024 training videos, and the process's memory peak.

Usage: .venv/bin/python benchmarks/anet_speed.py OUT [--videos 100] [--steps 128] [--dim 1024]
           [--classes 200] [--threads 1]
Writes OUT/annotations.json (ActivityNet-shaped, `talnet synth --profile activitynet`'s layouts)
and OUT/features/ID.npy, random (N, 2*dim) features in a resampled folder (I3D's two 1024-d
streams by default), then trains anet13 for one epoch (one video per step, as the preset does)
and detects on 50 videos. The time per step does not depend on the features' values. Minutes
per epoch for 10,024 videos = seconds per step x 10,024 / 60 (the data loader reads one (N, C)
file per step; at 10k videos the features, 10.5 GB at N = 128, exceed the in-memory cache of
talnet.data.dataset and are read from disk, measured here as np.load time per video). On a
shared machine the wall time per step depends on the load; the process's CPU time per step
(`cpu_seconds_per_step`, one thread) is what a core to itself would take, roughly.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from talnet.bench.probe import matmul_gflops
from talnet.config import load_config
from talnet.data.anet_profile import ACTIVITYNET_VIDEOS, activitynet_synthetic_ground_truth
from talnet.detect.detector import Detector, detect_features
from talnet.io.annotations import save_ground_truth
from talnet.io.features import FeatureMeta, save_array, write_meta
from talnet.train.loop import FitOptions, train

DETECT_VIDEOS = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--videos", type=int, default=100)
    parser.add_argument("--steps", type=int, default=128)
    parser.add_argument("--dim", type=int, default=1024, help="per stream (rgb, flow)")
    parser.add_argument("--classes", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    probe_before = matmul_gflops()
    gt = activitynet_synthetic_ground_truth(0, args.videos, 0, args.classes)
    feats = args.out / "features"
    rng = np.random.default_rng(0)
    for vid in gt:
        save_array(feats, vid, rng.standard_normal((args.steps, 2 * args.dim), np.float32))
    durations = {vid: info.duration for vid, info in gt.items()}
    write_meta(feats, FeatureMeta(dims=[args.dim, args.dim], resample_steps=args.steps,
                                  durations=durations))  # fmt: skip
    save_ground_truth(args.out / "annotations.json", gt)
    began = time.perf_counter()
    for vid in list(gt)[:50]:
        np.load(feats / f"{vid}.npy")
    load_s = (time.perf_counter() - began) / min(50, len(gt))

    config = load_config("anet13")
    config.train.epochs = 1
    cpu_began = time.process_time()
    result = train(
        args.out / "annotations.json", feats, args.out / "run", config, train_subset="training",
        options=FitOptions(progress=False, log_fn=lambda _line: None),
    )  # fmt: skip
    record = json.loads(Path(result.log).read_text().splitlines()[-1])
    step_s = record["time_s"] / record["steps"]
    step_cpu_s = (time.process_time() - cpu_began) / record["steps"]  # this process's CPU time
    detector = Detector.from_checkpoint(result.checkpoint)
    ids = sorted(gt)[:DETECT_VIDEOS]
    began, cpu_began = time.perf_counter(), time.process_time()
    detect_features(detector, feats, ids, progress=False)
    detect_s = (time.perf_counter() - began) / len(ids)
    detect_cpu_s = (time.process_time() - cpu_began) / len(ids)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    probe = [round(probe_before, 1), round(matmul_gflops(), 1)]
    videos = ACTIVITYNET_VIDEOS["training"]
    summary = {
        "cpu": _cpu_name(),
        "threads": torch.get_num_threads(),
        "matmul_probe_gflops_before_after": probe,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "steps": args.steps,
        "feature_dims": [args.dim, args.dim],
        "classes": args.classes,
        "videos_timed": record["steps"],
        "seconds_per_step": round(step_s, 4),
        "cpu_seconds_per_step": round(step_cpu_s, 4),
        "load_seconds_per_video": round(load_s, 5),
        "minutes_per_epoch_10024_videos": round((step_s + load_s) * videos / 60, 1),
        "cpu_minutes_per_epoch_10024_videos": round((step_cpu_s + load_s) * videos / 60, 1),
        "detect_seconds_per_video": round(detect_s, 4),
        "detect_cpu_seconds_per_video": round(detect_cpu_s, 4),
        "detect_minutes_4926_validation_videos": round(
            detect_s * ACTIVITYNET_VIDEOS["validation"] / 60, 1
        ),
        "peak_rss_mb": round(peak_mb),
    }
    print(json.dumps(summary, indent=1))
    (args.out / "speed.json").write_text(json.dumps(summary, indent=1))


def _cpu_name() -> str:
    """The CPU's model name (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
