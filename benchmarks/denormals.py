"""Detection time with subnormal floats computed as the CPU does by default, and flushed to zero
(what talnet does since training and detection call talnet.model.numerics.flush_denormals).

Late in training some weights become subnormal (|x| < 1.2e-38); every product with one takes a
slow path. With `--checkpoint` the model is a trained one (its subnormal weights are counted);
without, thumos14_cpu at random initialization with `--plant` of every weight made subnormal.
Both modes time the same video's detection with flushing off and on, alternately, in one run:

    .venv/bin/python benchmarks/denormals.py [--checkpoint RUN/checkpoint.pt] [--minutes 10]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from talnet.bench.detect import cpu_model
from talnet.bench.probe import matmul_gflops
from talnet.config import load_config
from talnet.detect.detector import Detector
from talnet.io.features import FeatureMeta
from talnet.model.numerics import subnormal_mask
from talnet.model.talnet import TalNet

STEPS_PER_MINUTE = 450  # 30 fps, stride 4


def subnormal_share(model: torch.nn.Module) -> tuple[int, int]:
    """(subnormal, all) weight counts of `model`."""
    counts = [subnormal_mask(p).sum().item() for p in model.parameters()]
    return int(sum(counts)), sum(p.numel() for p in model.parameters())


def planted(fraction: float) -> Detector:
    """thumos14_cpu, seeded, 2 x 1024-d streams, with `fraction` of every weight subnormal."""
    torch.manual_seed(0)
    model = TalNet({"rgb": 1024, "flow": 1024}, 20, load_config("thumos14_cpu"))
    meta = FeatureMeta(streams=["rgb", "flow"], layout="concat", dims=[1024, 1024])
    detector = Detector(model, [f"class_{i:02d}" for i in range(20)], meta)
    torch.set_flush_denormal(False)  # else the planted values are zero on creation
    with torch.no_grad():
        for p in model.parameters():
            mask = torch.rand(p.shape) < fraction
            p.copy_(torch.where(mask, p.sign() * 1e-39, p))
    return detector


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a trained run's checkpoint.pt (default: planted)")
    parser.add_argument("--plant", type=float, default=0.1, help="share made subnormal")
    parser.add_argument("--minutes", type=float, default=10.0, help="the video's length")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.checkpoint:
        detector = Detector.from_checkpoint(args.checkpoint)
        torch.set_flush_denormal(False)
    else:
        detector = planted(args.plant)
    sub, total = subnormal_share(detector.model)
    print(f"cpu: {cpu_model()}; {args.threads} threads; matmul {matmul_gflops():.0f} GFLOP/s")
    print(f"model: {args.checkpoint or 'thumos14_cpu, planted'}; subnormal weights {sub:,} "
          f"of {total:,} ({100 * sub / total:.1f} %)")  # fmt: skip
    rng = np.random.default_rng(0)
    steps = int(args.minutes * STEPS_PER_MINUTE)
    feats = {
        s: rng.standard_normal((steps, d)).astype(np.float32)
        for s, d in zip(detector.meta.streams, detector.meta.dims, strict=True)
    }
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.repeats):
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            began = time.perf_counter()
            detector.detect(feats)
            times[flush].append(time.perf_counter() - began)
    off, on = min(times[False]), min(times[True])
    print(f"detect a {args.minutes:g}-min video: subnormals computed {off:.2f} s, "
          f"flushed {on:.2f} s: {off / on:.1f} x")  # fmt: skip


if __name__ == "__main__":
    main()
