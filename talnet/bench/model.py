"""Model speed and memory: proposal + classification forward per 3000 frames (paper: 9 ms on
CPU), and training time per epoch and peak memory on a THUMOS-sized set (200 videos, ~3 min).

Features are random (1024-d per stream, two streams, like public I3D features): speed does not
depend on their values. Training time per epoch is measured on a few steps and scaled to 200
videos x windows_per_video; the crops are max_steps long, as in real training.
"""

from __future__ import annotations

import resource
import time

import numpy as np
import torch

from talnet.bench.probe import matmul_gflops, repeat_for
from talnet.config import Config, load_config
from talnet.io.features import FeatureMeta
from talnet.model.losses import TOTAL_LOSS
from talnet.model.talnet import TalNet
from talnet.model.targets import GroundTruthSteps

PAPER_MS = 9.0
FRAMES = 3000
FPS = 30.0
DIM = 1024
THUMOS_VIDEOS = 200
THUMOS_STEPS = 1350  # ~3 min at 30 fps, stride 4


def forward_ms(
    config: Config, steps: int, classes: int = 20, seconds: float = 2.0
) -> tuple[float, float]:
    """Best and median time (ms) of the model's inference pass (proposals, classifier, NMS) on
    one video of `steps`, over as many runs as fit in `seconds` (at least 5, after 3 warm-up
    runs)."""
    torch.manual_seed(0)
    model = TalNet({"rgb": DIM, "flow": DIM}, classes, config).eval()
    feats = {s: torch.randn(steps, DIM) for s in ("rgb", "flow")}

    def detect() -> None:
        with torch.inference_mode():
            model(feats)

    times = repeat_for(detect, seconds, warmup=3)
    return 1000 * min(times), 1000 * float(np.median(times))


def train_step_s(config: Config, steps: int, classes: int = 20) -> float:
    """Mean seconds per training step (forward, backward, Adam) on max_steps-long crops."""
    torch.manual_seed(0)
    model = TalNet({"rgb": DIM, "flow": DIM}, classes, config)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    gen = torch.Generator().manual_seed(0)
    length = min(config.train.max_steps, THUMOS_STEPS)
    feats = {s: torch.randn(length, DIM) for s in ("rgb", "flow")}
    starts = torch.rand(10, generator=gen) * (length - 60)
    segments = torch.stack([starts, starts + 5 + torch.rand(10, generator=gen) * 50], 1)
    gt = GroundTruthSteps(segments, torch.randint(1, classes + 1, (10,), generator=gen))

    def step() -> None:
        _, losses = model(feats, gt, gen)
        optimizer.zero_grad()
        losses[TOTAL_LOSS].backward()
        optimizer.step()

    step()
    began = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - began) / steps


def run(quick: bool = False) -> None:
    """Print forward times next to the paper's 9 ms, then training time and peak memory."""
    threads = torch.get_num_threads()
    print(f"threads: {threads}; features: 2 streams x {DIM}-d; {FRAMES} frames at {FPS:g} fps")
    print(
        f"{'config':14} {'stride':>6} {'steps':>6} {'best ms':>8} {'median':>7} "
        f"{'paper ms':>9} probe"
    )
    for name in ("cpu_fast", "thumos14_i3d"):
        config = load_config(name)
        for stride in (16, 4):
            steps = FeatureMeta(fps=FPS, stride=stride).num_steps(FRAMES)
            best, median = forward_ms(config, steps, seconds=1.0 if quick else 3.0)
            print(
                f"{name:14} {stride:6d} {steps:6d} {best:8.1f} {median:7.1f} {PAPER_MS:9.1f} "
                f"{matmul_gflops():.0f} GFLOP/s"
            )
    print(f"\ntraining, THUMOS-sized: {THUMOS_VIDEOS} videos of ~{THUMOS_STEPS} steps")
    print(f"{'config':14} {'s/step':>7} {'steps/epoch':>11} {'min/epoch':>10} probe")
    for name in ("cpu_fast", "thumos14_i3d"):
        config = load_config(name)
        per_step = train_step_s(config, 3 if quick else 10)
        steps = THUMOS_VIDEOS * config.train.windows_per_video
        print(
            f"{name:14} {per_step:7.3f} {steps:11d} {per_step * steps / 60:10.1f} "
            f"{matmul_gflops():.0f} GFLOP/s"
        )
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak resident memory of this process (both configs): {peak_mb:.0f} MB")
