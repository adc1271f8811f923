"""Speed on a shared machine: training, detection, extraction and I3D beside another CPU-busy
process.

Each case runs in a fresh Python process (OpenMP reads its settings when torch loads), first
alone and then beside a busy process (torch matrix multiplies on every core, like a second
training job). The slowdown is alone rate / beside rate: on 2 cores a process that gets one
core should run about 2x slower; OpenMP threads that spin at barriers while their sibling is
descheduled make it far worse. Variants: torch's default threads with OpenMP's default wait
policy, with OMP_WAIT_POLICY=PASSIVE (what `talnet` sets unless the user did), and one thread.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from talnet.bench.probe import probe_line
from talnet.bench.video import bench_video

# Workloads, run by `python -c`: print one JSON {"rate": units per second}; work() returns the
# units one call did (None: one).
_WORKLOAD = r"""
import json, sys, time, torch
kind, seconds = sys.argv[1], float(sys.argv[2])
if kind == "train":
    from talnet.bench.model import DIM
    from talnet.config import load_config
    from talnet.model.losses import TOTAL_LOSS
    from talnet.model.talnet import TalNet
    from talnet.model.targets import GroundTruthSteps
    config = load_config("cpu_fast")
    torch.manual_seed(0)
    model = TalNet({"rgb": DIM, "flow": DIM}, 20, config)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    feats = {s: torch.randn(512, DIM) for s in ("rgb", "flow")}
    gt = GroundTruthSteps(torch.tensor([[10.0, 40.0], [100.0, 180.0]]), torch.tensor([1, 2]))
    def work():
        _, losses = model(feats, gt, gen)
        opt.zero_grad(); losses[TOTAL_LOSS].backward(); opt.step()
elif kind == "detect":
    from talnet.bench.model import DIM
    from talnet.config import load_config
    from talnet.model.talnet import TalNet
    torch.manual_seed(0)
    model = TalNet({"rgb": DIM, "flow": DIM}, 20, load_config("cpu_fast")).eval()
    feats = {s: torch.randn(750, DIM) for s in ("rgb", "flow")}  # 3000 frames at stride 4
    def work():
        with torch.inference_mode():
            model(feats)
elif kind == "extract":  # the whole pipeline: decoder process, flow processes, I3D here
    from talnet.video.options import ExtractOptions
    from talnet.video.pipeline import Extractor
    options = ExtractOptions(flow="dis", stride=16, size=112, short_side=128, random_weights=True)
    extractor = Extractor(options)
    def work():  # counts frames of video, not passes
        return sum(video.frames for video in extractor.iter([sys.argv[3]]))
else:
    from talnet.video.i3d import InceptionI3d
    model = InceptionI3d(in_channels=3).eval().to(memory_format=torch.channels_last_3d)
    clip = torch.randn(1, 3, 16, 112, 112).contiguous(memory_format=torch.channels_last_3d)
    def work():
        with torch.inference_mode():
            model.extract_features(clip)
work()
if kind != "extract":
    work()
count, began = 0, time.perf_counter()
while time.perf_counter() - began < seconds:
    count += work() or 1
print(json.dumps({"rate": count / (time.perf_counter() - began)}))
"""

_BUSY = r"""
import torch
a = torch.randn(1024, 1024)
while True:
    a = torch.tanh(a @ a * 1e-3)
"""

VARIANTS = {
    "default threads, OpenMP default wait": {"OMP_WAIT_POLICY": None},
    "default threads, OMP_WAIT_POLICY=PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"},
    "1 thread": {"OMP_WAIT_POLICY": None, "OMP_NUM_THREADS": "1"},
}
UNITS = {"train": "steps/s", "detect": "videos/s", "i3d": "clips/s", "extract": "frames/s"}
KINDS = ("train", "detect", "extract", "i3d")  # i3d not with --quick
SECONDS, QUICK_SECONDS = 6.0, 3.0  # each measurement, alone and beside
EXTRACT_SECONDS = 10.0  # at least, for extract: one pass takes seconds
SETTLE_SECONDS = 1.0  # the busy process's head start, to reach its loop


def _env(settings: dict[str, str | None]) -> dict[str, str]:
    env = dict(os.environ)
    for key, value in settings.items():
        env.pop(key, None)
        if value is not None:
            env[key] = value
    return env


def measure(kind: str, settings: dict[str, str | None], seconds: float, video: str = "") -> float:
    """Rate of one workload in a fresh process with these environment settings."""
    cmd = [sys.executable, "-c", _WORKLOAD, kind, str(seconds), video]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=_env(settings))
    return float(json.loads(out.stdout.strip().splitlines()[-1])["rate"])


def beside_busy(
    kind: str, settings: dict[str, str | None], seconds: float, video: str = ""
) -> float:
    """Rate of one workload while a busy process (default threads and wait policy) runs."""
    busy = subprocess.Popen(
        [sys.executable, "-c", _BUSY], env=_env({"OMP_WAIT_POLICY": None}),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        time.sleep(SETTLE_SECONDS)  # let it reach its loop
        return measure(kind, settings, seconds, video)
    finally:
        busy.kill()
        busy.wait()


def run(quick: bool = False) -> None:
    """Print alone and beside-busy rates per workload and threading variant, with slowdowns."""
    seconds = QUICK_SECONDS if quick else SECONDS
    print(probe_line())
    print(
        f"\nbeside a CPU-busy process (torch matmuls on every core): {os.cpu_count()} cores; "
        "slowdown = alone / beside (2.0 = a fair share of 2 cores)"
    )
    print(
        "extract: the whole pipeline (decoder and flow processes, I3D) in fast mode (DIS flow, "
        "stride 16) at 112 px, random weights, on a 4 s clip"
    )
    print(f"{'workload':<9}{'variant':<44}{'alone':>9}{'beside':>9}{'slowdown':>10}")
    kinds = tuple(k for k in KINDS if not (quick and k == "i3d"))
    with tempfile.TemporaryDirectory() as tmp:
        video = str(bench_video(Path(tmp), quick=True)[0])
        for kind in kinds:
            span = max(seconds, EXTRACT_SECONDS) if kind == "extract" else seconds
            for name, settings in VARIANTS.items():
                alone = measure(kind, settings, span, video)
                shared = beside_busy(kind, settings, span, video)
                print(
                    f"{kind:<9}{name:<44}{alone:>9.2f}{shared:>9.2f}{alone / shared:>9.1f}x"
                    f"  {UNITS[kind]}"
                )
    print(probe_line())
