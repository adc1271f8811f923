"""I3D speed: ms per 16-frame 224x224 clip per stream, beside the paper's 825 ms per input."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import numpy as np

PAPER_MS = 825.0  # TAL-Net supplement: I3D features, CPU, per 16-frame input
FRAMES, SIZE = 16, 224
STREAMS = {"rgb": 3, "flow": 2}


def clip_gflop(in_channels: int) -> float:
    """GFLOP (multiply and add counted separately) of one clip through `extract_features`."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from talnet.video.i3d import InceptionI3d

    model = InceptionI3d(in_channels=in_channels).eval()
    x = torch.zeros(1, in_channels, FRAMES, SIZE, SIZE)
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model.extract_features(x)
    return counter.get_total_flops() / 1e9


def _variants(model, compile: bool) -> dict[str, Callable]:
    import torch

    from talnet.video.compile import make_feature_extractor

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.extract_features(x)

    variants = {"eager fp32": eager}
    # make_feature_extractor converts the model to channels-last in place, so give it copies.
    variants["eager + channels_last"] = make_feature_extractor(copy.deepcopy(model))
    if compile:
        variants["compiled + freezing"] = make_feature_extractor(copy.deepcopy(model), compile=True)
    return variants


def run(quick: bool) -> None:
    """Time each variant on both streams, interleaved in rounds so load drift hits all alike."""
    import torch

    from talnet.bench.probe import matmul_gflops
    from talnet.video.i3d import InceptionI3d

    rounds = 2 if quick else 5
    print(
        f"I3D features, one {FRAMES}-frame {SIZE}x{SIZE} clip per stream, fp32, "
        f"{torch.get_num_threads()} torch threads; paper: {PAPER_MS:.0f} ms per 16-frame input"
    )
    if quick:
        print("(quick: torch.compile variant skipped)")
    rows = []
    for stream, channels in STREAMS.items():
        torch.manual_seed(0)
        model = InceptionI3d(in_channels=channels).eval()
        x = torch.rand(1, channels, FRAMES, SIZE, SIZE) * 2 - 1
        gflop = clip_gflop(channels)
        variants = _variants(model, compile=not quick)
        reference = variants["eager fp32"](x)
        notes = {}
        for name, fn in variants.items():
            start = time.perf_counter()
            out = fn(x)  # warm-up; for the compiled variant this is the compile
            first = time.perf_counter() - start
            diff = float((out - reference).abs().max() / reference.abs().max())
            notes[name] = f"first call {first:.1f} s, max rel diff vs eager {diff:.1e}"
        times: dict[str, list[float]] = {name: [] for name in variants}
        probes = [matmul_gflops()]
        for _ in range(rounds):
            for name, fn in variants.items():
                start = time.perf_counter()
                fn(x)
                times[name].append(time.perf_counter() - start)
            probes.append(matmul_gflops())
        probe = f"{min(probes):.0f}-{max(probes):.0f}"
        for name, ts in times.items():
            best, median = min(ts) * 1e3, float(np.median(ts)) * 1e3
            rows.append((stream, name, best, median, gflop / (best / 1e3), probe, notes[name]))
        print(f"{stream}: {gflop:.1f} GFLOP per clip")

    print(
        f"{'stream':<6} {'variant':<22} {'best ms':>8} {'median':>8} {'GFLOP/s':>8} "
        f"{'probe GFLOP/s':>13} {'vs eager':>8} {'paper/ours':>10}  notes"
    )
    eager_best = {stream: best for stream, name, best, *_ in rows if name == "eager fp32"}
    for stream, name, best, median, rate, probe, note in rows:
        print(
            f"{stream:<6} {name:<22} {best:8.0f} {median:8.0f} {rate:8.0f} "
            f"{probe:>13} {eager_best[stream] / best:7.2f}x {PAPER_MS / best:9.2f}x  {note}"
        )
    print(
        "best/median over interleaved rounds; the probe range was measured between rounds. "
        "Shared or loaded machines inflate every figure: compare ratios within one run."
    )
