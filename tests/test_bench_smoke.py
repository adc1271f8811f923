"""Smoke tests of every `talnet bench --only AREA --quick` path: each runs through the CLI on a
tiny case and prints its tables in their shape (header, row names, number of columns). No speed
is asserted. The tiny cases come from the bench modules' own knobs (module constants, function
parameters) and from timing helpers cut to one short run, set with monkeypatch per test."""

from __future__ import annotations

import functools
import re

import pytest

from talnet.cli.main import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)(e[+-]?\d+)?x?$")  # 12, 0.53, 1.2e-03, 3.1x


def is_number(cell: str) -> bool:
    return bool(NUMBER.match(cell))


def run_bench(area: str, capsys) -> list[str]:
    """`talnet bench --only AREA --quick`'s stdout lines, after its exit status 0."""
    assert main(["bench", "--only", area, "--quick"]) == 0
    out = capsys.readouterr().out
    print(out)  # captured again: pytest shows it beside a failure
    lines = out.splitlines()
    assert lines[0].startswith("matmul probe: ") and lines[2] == f"== {area} =="
    return lines[3:]


def index_of(lines: list[str], start: str) -> int:
    """Index of the one line that starts with `start` (there must be exactly one)."""
    found = [i for i, line in enumerate(lines) if line.startswith(start)]
    assert len(found) == 1, (start, lines)
    return found[0]


def rows_under(lines: list[str], header: str, count: int) -> list[str]:
    """The `count` lines under the header line that starts with `header`."""
    at = index_of(lines, header)
    return lines[at + 1 : at + 1 + count]


def cut(line: str, width: int) -> tuple[str, list[str]]:
    """A row whose name fills the first `width` characters: (name, the other cells)."""
    return line[:width].strip(), line[width:].split()


@pytest.fixture(autouse=True)
def cheap_timing(monkeypatch):
    """Timing helpers cut down, wherever a bench module imported them: a 64x64 matrix-multiply
    probe run once (printed beside every table), and repeat_for timing one run after one
    warm-up instead of as many as fit in a second or more."""
    from talnet.bench import detect, model, probe

    tiny_probe = functools.partial(probe.matmul_gflops, n=64, repeats=1)
    original_repeat = probe.repeat_for

    def one_run(fn, seconds, warmup=1, at_least=5):
        return original_repeat(fn, 0.0, warmup=1, at_least=1)

    for module in (probe, model, detect):
        monkeypatch.setattr(module, "matmul_gflops", tiny_probe)
    for module in (model, detect):
        monkeypatch.setattr(module, "repeat_for", one_run)


@pytest.fixture
def tiny_video(monkeypatch):
    """The video benchmarks' clip (bikes.mp4 or a 640x360 one): a 1 s synthetic 96x64 clip."""
    from talnet.bench import shared, video

    def bench_video(folder, quick):
        path = video.make_test_video(folder / "tiny.mp4", 1.0, size=(96, 64))
        return path, 1.0, "a 1 s synthetic 96x64 clip"

    monkeypatch.setattr(video, "bench_video", bench_video)
    monkeypatch.setattr(shared, "bench_video", bench_video)


# Six videos show only a few classes: detections of the others are ignored, with a warning.
@pytest.mark.filterwarnings("ignore::talnet.io.annotations.DataWarning")
def test_bench_evaluate(monkeypatch, capsys):
    from talnet.bench import evaluate

    small = functools.partial(evaluate.thumos_sized_case, videos=6, detections_per_video=40)
    monkeypatch.setattr(evaluate, "thumos_sized_case", small)
    lines = run_bench("evaluate", capsys)
    assert lines[1].startswith("case: 6 videos, 20 classes, ")
    assert lines[2].split() == ["wall", "s", "cpu", "s"]
    names = [
        "mAP, tIoU 0.1-0.7, vectorized",
        "mAP, tIoU 0.1-0.7, straightforward",
        "ratio",
        "AR@AN, AN 1-1000, tIoU 0.5-1.0",
    ]
    rows = [cut(line, 36) for line in lines[3:7]]
    assert [name for name, _ in rows] == names
    for name, cells in rows:  # wall s, cpu s (the ratio row adds the largest mAP difference)
        assert all(map(is_number, cells[:2])), name
        if name == "ratio":
            assert re.fullmatch(r"\(largest mAP difference \S+\)", " ".join(cells[2:])), cells
        else:
            assert len(cells) == 2, name
    assert lines[7].startswith("matmul probe: ") and len(lines) == 8


def test_bench_visualize(monkeypatch, capsys):
    from talnet.bench import visualize

    # 20 frames of 320x180 instead of 50 of 1280x720 (the clip's circle needs a width > 200)
    for name, value in (("WIDTH", 320), ("HEIGHT", 180), ("FPS", 10)):
        monkeypatch.setattr(visualize, name, value)
    lines = run_bench("visualize", capsys)
    assert re.fullmatch(r"20 frames of 320x180 at 10 fps, \S+, best of 1", lines[0])
    assert lines[1].split() == ["what", "ms/frame", "frames/s"]
    names = [
        "decode + re-encode, blank panel (baseline)",
        "talnet visualize render (panel + labels)",
        "panel from static + labels (per frame)",
        "panel redrawn from scratch + labels",
    ]
    rows = [cut(line, 44) for line in lines[2:6]]
    assert [name for name, _ in rows] == names
    assert all(len(cells) == 2 and all(map(is_number, cells)) for _, cells in rows)
    assert re.fullmatch(r"render / baseline: \S+x; static panel saves \S+x", lines[6])
    assert len(lines) == 7


def test_bench_model(monkeypatch, capsys):
    from talnet.bench import model

    # 16-d features; 600-frame videos (147 steps at stride 4); training crops of 64 steps
    for name, value in (("DIM", 16), ("FRAMES", 600), ("THUMOS_STEPS", 64)):
        monkeypatch.setattr(model, name, value)
    lines = run_bench("model", capsys)
    assert lines[0].endswith("features: 2 streams x 16-d; 600 frames at 30 fps")
    header = ["config", "stride", "steps", "best", "ms", "median", "paper", "ms", "probe"]
    assert lines[1].split() == header
    expected = [
        (c, s, n) for c in ("cpu_fast", "thumos14_i3d") for s, n in (("16", "37"), ("4", "147"))
    ]
    for line, (config, stride, steps) in zip(lines[2:6], expected, strict=True):
        cells = line.split()  # ... best, median, paper ms, then the probe: "123 GFLOP/s"
        assert cells[:3] == [config, stride, steps] and len(cells) == 8, line
        assert all(map(is_number, cells[3:7])) and cells[5] == "9.0" and cells[7] == "GFLOP/s"
    assert lines[6] == "" and lines[7].startswith("training, THUMOS-sized: 200 videos of ~64")
    assert lines[8].split() == ["config", "s/step", "steps/epoch", "min/epoch", "probe"]
    for line, config in zip(lines[9:11], ["cpu_fast", "thumos14_i3d"], strict=True):
        cells = line.split()
        assert cells[0] == config and len(cells) == 6 and all(map(is_number, cells[1:5])), line
    assert lines[11].startswith("peak resident memory") and len(lines) == 12


def test_bench_detect(monkeypatch, capsys):
    from talnet.bench import detect

    # 16-d features at 1 fps: the THUMOS-length videos have 9-1673 frames, not 30 times that
    for name, value in (("DIM", 16), ("FPS", 1.0), ("FRAMES", 300)):
        monkeypatch.setattr(detect, name, value)
    lines = run_bench("detect", capsys)
    assert lines[0].startswith("cpu: ") and "streams x 16-d, 20 classes, 1 fps" in lines[0]
    assert lines[1].startswith("real lengths: 15 videos drawn from THUMOS'14 test durations")
    at = index_of(lines, "config ")
    header = ["config", "stride", "fixed", "cold", "median", "warm", "cold/fixed", "probe"]
    assert lines[at].split()[:8] == header
    assert lines[at].endswith("(ms per 300 frames, best of runs)")
    expected = [("cpu_fast", "16"), ("cpu_fast", "4"), ("thumos14_i3d", "16")]
    expected += [("thumos14_i3d", "4")]
    rows, long = lines[at + 1 : at + 5], lines[at + 5 :]
    for line, names in zip(rows, expected, strict=True):
        cells = line.split()  # config, stride, 4 times, the ratio "1.23x", "123 GFLOP/s"
        assert tuple(cells[:2]) == names and len(cells) == 9, line
        assert all(map(is_number, cells[2:8])) and cells[6].endswith("x")
        assert cells[8] == "GFLOP/s"
    # the long-video rows, quick: 30 min at 1 fps, stride 4, each config in a fresh process
    assert long[0] == "" and len(long) == 8, long
    title = r"long video: 0.5 h at stride 4 \(447 steps, 2 x 16-d float32 .npy of \S+ MB, "
    title += r"memory-mapped\), each preset in a fresh process"
    assert re.fullmatch(title, long[1]), long[1]
    header = "preset video ms x 3-min peak GB x file detections (ms per 300 frames)"
    assert long[2].split() == header.split()
    for at, config in ((3, "cpu_fast"), (5, "thumos14_cpu")):
        assert long[at].startswith(config) and long[at + 1].startswith(config)
        name, cells = cut(long[at][15:], 24)
        assert name == "3-min (warm, best)" and is_number(cells[0]) and cells[1:] == ["1.00x"]
        name, cells = cut(long[at + 1][15:], 24)  # ms, "x 3-min", peak GB, "x file", count
        assert name == "0.5 h (cold, one pass)" and len(cells) == 5 and all(map(is_number, cells))
    assert re.fullmatch(r"goal: .*; probe \d+ GFLOP/s", long[7]), long[7]


def test_bench_i3d(monkeypatch, capsys):
    from talnet.bench import i3d
    from talnet.errors import TalnetError

    monkeypatch.setattr(i3d, "SIZE", 32)  # 32x32 clips instead of 224x224
    # int8 Conv3d table: two tiny layers (the first is left out when quick)
    tiny = (("tiny 7x7x7 (3->8)", 3, 8, 7, 4, 16), ("tiny 3x3x3 (8->16)", 8, 16, 3, 2, 8))
    monkeypatch.setattr(i3d, "CONV_SHAPES", tiny)

    def no_weights(_name):  # real-footage agreement needs 224x224 real-weight I3D: too slow here
        raise TalnetError("not in the smoke test")

    monkeypatch.setattr("talnet.video.weights.resolve_named_weights", no_weights)
    lines = run_bench("i3d", capsys)
    assert lines[0].startswith("I3D features, one 16-frame 32x32 clip per stream, fp32, ")
    assert lines[1] == "(quick: torch.compile variant skipped)"
    assert re.fullmatch(r"rgb: \S+ GFLOP per clip", lines[2])
    assert re.fullmatch(r"flow: \S+ GFLOP per clip", lines[3])
    header = "stream variant best ms median GFLOP/s probe GFLOP/s vs eager paper/ours notes"
    assert lines[4].split() == header.split()
    variants = ["eager fp32", "eager + channels_last", "int8 (--precision int8)"]
    expected = [(s, v) for s in ("rgb", "flow") for v in variants]
    for line, (stream, variant) in zip(lines[5:11], expected, strict=True):
        assert (line[:6].strip(), line[7:31].strip()) == (stream, variant), line
        cells = line[31:].split()  # best, median, GFLOP/s, probe range, 2 ratios, notes
        assert all(map(is_number, cells[:3])) and re.fullmatch(r"\d+-\d+", cells[3]), line
        assert all(map(is_number, cells[4:6])), line
        notes = r"first call \S+ s, vs eager: max rel diff \S+, cos \S+"
        assert re.fullmatch(notes, " ".join(cells[6:])), line
    assert lines[11].startswith("best/median over interleaved rounds")
    assert lines[12].startswith("int8: ") and lines[13].startswith("int8 on real footage: skip")
    batch = r"per clip, channels-last fp32, 1 clip per call -> 4 \(extract's --batch\): "
    assert re.fullmatch(batch + r"rgb \d+ -> \d+ ms, flow \d+ -> \d+ ms", lines[15])

    streaming = rows_under(lines, "streaming clips over 112 frames (RGB, 32x32, fp32):", 4)
    assert streaming[0].split() == ["mode", "ms", "per", "window", "x", "per", "clip"]
    names = ["one clip per window, x4", "streaming, stride 4", "streaming, stride 8"]
    rows = [cut(line, 28) for line in streaming[1:]]
    assert [name for name, _ in rows] == names
    assert all(len(cells) == 2 and all(map(is_number, cells)) for _, cells in rows)

    at = index_of(lines, "int8 Conv3d (PyTorch static quantization) vs fp32, one thread: ")
    header = lines[at + 1].split()
    engines = len(header[3:]) // 4  # "x86 ms x fp32" per int8 engine
    assert header[:3] == ["layer", "fp32", "ms"] and engines >= 1 and len(header) == 3 + 4 * engines
    name, cells = cut(lines[at + 2], 34)
    assert name == "tiny 3x3x3 (8->16)" and len(cells) == 1 + 2 * engines
    assert all(map(is_number, cells))
    assert lines[at + 3].startswith("x fp32 > 1 means int8 is faster") and len(lines) == at + 4


def test_bench_video(monkeypatch, capsys, tiny_video):
    from talnet.bench import video

    # Flow on 64x64 pairs of two motions, tvl1-torch in batches of 1 and 2, one real-footage
    # pair; extraction of the 1 s clip at 32x32.
    monkeypatch.setattr(video, "FLOW_SIZE", 64)
    monkeypatch.setattr(video, "EXTRACT_SIZE", 32)
    monkeypatch.setattr(video, "flow_table", functools.partial(video.flow_table, motions=2))
    rows_fn = functools.partial(video._torch_tvl1_rows, batches=(1, 2))
    monkeypatch.setattr(video, "_torch_tvl1_rows", rows_fn)
    agreement = functools.partial(video.tvl1_torch_agreement, pairs=1)
    monkeypatch.setattr(video, "tvl1_torch_agreement", agreement)
    lines = run_bench("video", capsys)

    flow = rows_under(lines, "optical flow at 64x64, one core per pair (paper: 239 ms", 7)
    header = "method cpu ms wall ms x default EPE px EPE each"
    assert flow[0].split() == header.split()
    methods = ["tvl1-default", "tvl1", "dis", "dis-fast", "tvl1-torch b1", "tvl1-torch b2"]
    rows = [cut(line, 14) for line in flow[1:]]
    assert [name for name, _ in rows] == methods
    for name, cells in rows:  # cpu ms, wall ms, "x default", EPE, then the 2 EPEs as a list
        assert all(map(is_number, cells[:4])) and cells[2].endswith("x"), name
        assert re.fullmatch(r"\[\S+, \S+\]", " ".join(cells[4:])), name  # the EPE per motion
    for start in ("tuned TV-L1: EPE ", "tvl1-torch b1: CPU time per frame ",
                  "tvl1-torch b2: CPU time per frame ", "tvl1-torch vs OpenCV on ",
                  "decode a 1 s synthetic 96x64 clip -> 224x224 at 30 fps: "):  # fmt: skip
        index_of(lines, start)
    agreement = lines[index_of(lines, "tvl1-torch vs OpenCV on ")]
    assert re.search(r"on 1 frame pairs of bikes.mp4|no real footage", agreement)
    at = index_of(lines, "extraction of a 1 s synthetic 96x64 clip, rgb + flow I3D")
    header = ["flow", "stride", "threads", "steps", "startup", "s", "wall", "s"]
    assert lines[at + 1].split()[:8] == header
    cells = lines[at + 2].split()  # one case when quick: dis, stride 16, default threads
    assert cells[:4] == ["dis", "16", "0", "1"] and all(map(is_number, cells[4:8])), cells
    assert re.fullmatch(r"\d+% / \d+%, \d+%", " ".join(cells[8:])), cells
    assert lines[at + 3].startswith("  matmul probe: ") and len(lines) == at + 4


def test_bench_shared(monkeypatch, capsys, tiny_video):
    from talnet.bench import shared

    # Two of the workloads (a training step; the whole extraction pipeline, on the 1 s clip),
    # one variant, one short measurement each, the busy process given no head start. (Each
    # measurement is a fresh Python process: the detection workload would add seconds and no
    # code path the others lack.)
    monkeypatch.setattr(shared, "KINDS", ("train", "extract", "i3d"))  # i3d: never when quick
    variant = "default threads, OMP_WAIT_POLICY=PASSIVE"
    monkeypatch.setattr(shared, "VARIANTS", {variant: shared.VARIANTS[variant]})
    for name, value in (("QUICK_SECONDS", 0.1), ("EXTRACT_SECONDS", 0.1), ("SETTLE_SECONDS", 0)):
        monkeypatch.setattr(shared, name, value)
    lines = run_bench("shared", capsys)
    at = index_of(lines, "workload ")
    assert lines[at].split() == ["workload", "variant", "alone", "beside", "slowdown"]
    rows = lines[at + 1 : at + 3]
    for line, (kind, unit) in zip(
        rows, [("train", "steps/s"), ("extract", "frames/s")], strict=True
    ):
        assert (line[:9].strip(), line[9:53].strip()) == (kind, variant), line
        cells = line[53:].split()  # alone, beside, the slowdown "1.9x", the unit
        assert len(cells) == 4 and all(map(is_number, cells[:3])) and cells[3] == unit, line
    assert lines[at + 3].startswith("matmul probe: ") and len(lines) == at + 4


def test_bench_cuda(monkeypatch, capsys):
    """Without a GPU (made so here, on any machine) the area says so and returns."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    lines = run_bench("cuda", capsys)
    assert lines == ["no CUDA device: nothing to measure (talnet never needs one)"]
