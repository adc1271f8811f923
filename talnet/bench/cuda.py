"""GPU checks and timings (only where CUDA exists; never required): I3D per clip, TAL-Net's
forward per 3000-frame video, and training + detection on `--device cuda` with and without AMP.

Run as `talnet bench --only cuda`; without a CUDA device it says so and returns.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

I3D_BATCHES = (1, 8)
FRAMES, SIZE = 16, 224


def _cuda_time(fn: Callable[[], object], repeats: int, warmup: int = 2) -> float:
    """Median seconds of `fn()` on the GPU (synchronized around each call)."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def _gpu_probe() -> str:
    """fp32 (TF32 off) and bf16 matrix-multiply TFLOP/s right now, for context."""
    import torch

    n = 8192
    a = torch.randn(n, n, device="cuda")
    b = torch.randn(n, n, device="cuda")
    rates = []
    for dtype in (torch.float32, torch.bfloat16):
        x, y = a.to(dtype), b.to(dtype)
        rates.append(2 * n**3 / _cuda_time(lambda x=x, y=y: x @ y, 5) / 1e12)
    return f"GPU matmul probe: {rates[0]:.0f} TFLOP/s fp32, {rates[1]:.0f} TFLOP/s bf16"


def bench_i3d(quick: bool) -> None:
    """ms per 16-frame clip per stream: fp32, channels-last, fp16/bf16 autocast; batch 1 and 8."""
    import torch

    from talnet.video.i3d import InceptionI3d

    torch.backends.cudnn.benchmark = True
    print(f"{'stream':<6} {'variant':<24} {'batch':>5} {'ms/clip':>8} {'max rel diff':>12}")
    for stream, channels in (("rgb", 3), ("flow", 2)):
        torch.manual_seed(0)
        model = InceptionI3d(in_channels=channels).eval().cuda()
        for batch in I3D_BATCHES:
            x = torch.rand(batch, channels, FRAMES, SIZE, SIZE, device="cuda") * 2 - 1
            with torch.inference_mode():
                reference = model.extract_features(x).float()
            variants: dict[str, Callable[[], torch.Tensor]] = {}

            def plain(m=model, x=x):
                return m.extract_features(x)

            variants["fp32"] = plain
            cl_model = InceptionI3d(in_channels=channels).eval().cuda()
            cl_model.load_state_dict(model.state_dict())
            cl_model = cl_model.to(memory_format=torch.channels_last_3d)
            x_cl = x.contiguous(memory_format=torch.channels_last_3d)
            variants["fp32 channels_last"] = lambda m=cl_model, x=x_cl: m.extract_features(x)
            for name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):

                def mixed(m=cl_model, x=x_cl, dtype=dtype):
                    with torch.autocast("cuda", dtype=dtype):
                        return m.extract_features(x)

                variants[f"{name} autocast, ch-last"] = mixed
            for name, fn in variants.items():
                with torch.inference_mode():
                    out = fn().float()
                    seconds = _cuda_time(fn, 5 if quick else 20)
                diff = float((out - reference).abs().max() / reference.abs().max())
                print(
                    f"{stream:<6} {name:<24} {batch:5d} {1000 * seconds / batch:8.2f} {diff:12.1e}"
                )
        del model, cl_model
        torch.cuda.empty_cache()


def bench_model(quick: bool) -> None:
    """TAL-Net proposal + classification + NMS per 3000-frame video on the GPU, fp32 and fp16."""
    import torch

    from talnet.config import load_config
    from talnet.io.features import FeatureMeta
    from talnet.model.talnet import TalNet

    print(f"{'config':14} {'stride':>6} {'steps':>6} {'fp32 ms':>8} {'fp16 ms':>8}")
    for name in ("cpu_fast", "thumos14_i3d"):
        config = load_config(name)
        torch.manual_seed(0)
        model = TalNet({"rgb": 1024, "flow": 1024}, 20, config).eval().cuda()
        for stride in (16, 4):
            steps = FeatureMeta(stride=stride).num_steps(3000)
            feats = {s: torch.randn(steps, 1024, device="cuda") for s in ("rgb", "flow")}

            def run(model=model, feats=feats):
                with torch.inference_mode():
                    return model(feats)

            def run_fp16(run=run):
                with torch.autocast("cuda", dtype=torch.float16):
                    return run()

            fp32 = _cuda_time(run, 5 if quick else 20)
            fp16 = _cuda_time(run_fp16, 5 if quick else 20)
            print(f"{name:14} {stride:6d} {steps:6d} {1000 * fp32:8.1f} {1000 * fp16:8.1f}")


def bench_training(quick: bool, device: str = "cuda") -> None:
    """Train the cpu_fast config on small synthetic data with --device cuda, fp32 and --amp, then
    detect on the GPU and evaluate: the CUDA path end to end, with its mAP and seconds/epoch."""
    from talnet.config import load_config
    from talnet.data.synth import TEST_SUBSET, TRAIN_SUBSET, make_synthetic
    from talnet.detect.detector import Detector
    from talnet.io.annotations import load_ground_truth
    from talnet.pipelines.evaluation import evaluate_detector
    from talnet.train.loop import FitOptions, train

    videos, epochs = (30, 3) if quick else (100, 10)
    with tempfile.TemporaryDirectory() as tmp:
        data = make_synthetic(
            Path(tmp) / "data", seed=0, videos_train=videos, videos_test=videos // 2,
            progress=False,
        )  # fmt: skip
        annotations, features = data / "annotations.json", data / "features"
        test_gt = load_ground_truth(annotations, TEST_SUBSET)
        print(f"synthetic data: {videos} training, {videos // 2} test videos; {epochs} epochs")
        print(f"{'run':<12} {'s/epoch':>8} {'final loss':>10} {'mAP@0.5':>8} {'avg mAP':>8}")
        for amp in (False, True):
            config = load_config("cpu_fast")
            config.train.epochs = epochs
            began = time.perf_counter()
            result = train(
                annotations, features, Path(tmp) / f"run_amp{int(amp)}", config,
                train_subset=TRAIN_SUBSET,
                options=FitOptions(device=device, amp=amp, progress=False, log_fn=_silent),
            )  # fmt: skip
            per_epoch = (time.perf_counter() - began) / epochs
            detector = Detector.from_checkpoint(result.checkpoint, device=device)
            evaluation = evaluate_detector(detector, features, test_gt)
            print(
                f"{device + (' amp' if amp else ' fp32'):<12} {per_epoch:8.1f} "
                f"{result.last['loss']:10.3f} {100 * evaluation.map_at(0.5):8.1f} "
                f"{100 * evaluation.report.average:8.1f}"
            )


def _silent(_line: str) -> None:
    """Training lines are not part of the benchmark's table."""


def run(quick: bool = False) -> None:
    """Every GPU section, each reporting its own failure without stopping the others."""
    import torch

    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure (talnet never needs one)")
        return
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(_gpu_probe())
    for title, section in (
        ("I3D features", bench_i3d),
        ("TAL-Net forward, 3000 frames, two streams", bench_model),
        ("training and detection on CUDA", bench_training),
    ):
        print(f"\n-- {title} --")
        try:
            section(quick)
        except Exception as exc:  # report and go on: one broken section must not hide the rest
            import traceback

            traceback.print_exc()
            print(f"FAILED: {type(exc).__name__}: {exc}")
