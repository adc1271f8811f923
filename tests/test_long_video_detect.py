"""Detection on long videos: memory-mapped features and window-by-window inference give the
detections of before (bit for bit on a video of one window; up to float rounding on a long one),
and the chunked finiteness check still names the first bad step."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from model_factory import TINY_MODEL

from talnet.config import Config, load_config
from talnet.detect.detector import Detector, detect_features
from talnet.errors import TalnetError
from talnet.io import features as feature_io
from talnet.io.features import FeatureMeta, load_features, read_meta, save_array, write_meta
from talnet.model.proposals import generate_proposals, ranked_proposals
from talnet.model.stream import fuse
from talnet.model.talnet import StepDetections, TalNet
from talnet.model.towers import tile_windows
from talnet.model.windows import VideoRows, WindowPlan, top_candidates, window_outputs

WINDOW = 64  # detect.window_steps: >= 4 x the largest tiny anchor (8)
LONG = 1000  # steps: 20 windows
SHORT = 50  # steps: less than one window
STREAMS = ("rgb", "flow")
DIM = 8

# Config edits: each part of the model that runs per step, in both fusions.
VARIANTS = {
    "late fusion": {},
    "early fusion, boundary and step heads": {
        "model": dict(
            fusion="early",
            boundary_head=True,
            boundary_dilations=[1, 2, 4],
            step_classifier=True,
            step_context=[3, 9],
        ),
        "proposals": dict(actionness_thresholds=[0.5]),
        "detect": dict(step_score_weight=0.5),
    },
    "video-level classes": {
        "model": dict(video_classifier=True),
        "detect": dict(class_scores="video"),
    },
    "step head on the features": {"model": dict(step_classifier=True, step_input="features")},
}


def tiny_config(variant: str, window: int = WINDOW) -> Config:
    """cpu_fast with the tiny widths, small windows and one variant's edits."""
    config = load_config("cpu_fast")
    edits = VARIANTS[variant]
    for key, value in {**TINY_MODEL, **edits.get("model", {})}.items():
        setattr(config.model, key, value)
    for section in ("proposals", "detect"):
        for key, value in edits.get(section, {}).items():
            setattr(getattr(config, section), key, value)
    config.detect.window_steps = window
    config.validate()
    return config


def tiny_model(variant: str, window: int = WINDOW) -> TalNet:
    torch.manual_seed(0)
    return TalNet(dict.fromkeys(STREAMS, DIM), 3, tiny_config(variant, window)).eval()


def random_features(length: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s: rng.standard_normal((length, DIM), dtype=np.float32) for s in STREAMS}


def tensors(features: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {s: torch.from_numpy(a) for s, a in features.items()}


def old_propose_windowed(model: TalNet, inputs: dict[str, torch.Tensor]) -> tuple:
    """`TalNet.propose_windowed` before windows ran one at a time (copied verbatim): every
    window's inputs concatenated into one batch, the towers run on all of them at once."""
    window = model.config.detect.window_steps
    length = next(iter(inputs.values())).shape[1]  # inputs are (B, T, C)
    if length <= window:
        objectness, offsets = fuse(model.propose(inputs))
        return objectness[0], offsets[0]
    reach = max(model.branches[name].spn.reach for name in inputs)
    size, starts = tile_windows(length, window, min(window // 2, 2 * reach))
    batched = {name: torch.cat([x[:, s : s + size] for s in starts]) for name, x in inputs.items()}
    objectness, offsets = fuse(model.propose(batched))  # (W, K, size, 2)
    pieces_obj, pieces_off = [], []
    for w, s in enumerate(starts):
        lo = 0 if w == 0 else (s + starts[w - 1] + size) // 2
        hi = length if w == len(starts) - 1 else (starts[w + 1] + s + size) // 2
        pieces_obj.append(objectness[w, :, lo - s : hi - s])
        pieces_off.append(offsets[w, :, lo - s : hi - s])
    return torch.cat(pieces_obj, dim=1), torch.cat(pieces_off, dim=1)


def with_old_front_end(model: TalNet) -> TalNet:
    """`model` computing as before this change: whole-video branch inputs (streams concatenated
    for early fusion), the old batched windows, whole-video heads, classifier map and video
    head; the rest of detection (scoring, NMS) is shared code."""

    def inputs(video: VideoRows) -> dict[str, torch.Tensor]:
        return model.branch_inputs(video.tensors)

    def video_probs(video: VideoRows) -> torch.Tensor:
        logits = model.video_head(torch.cat(list(inputs(video).values()), dim=-1))[0]
        return torch.softmax(logits.float(), dim=-1)

    model._step_maps = lambda video: (
        model.boundary_probabilities(inputs(video)),
        model.step_probabilities(inputs(video)),
    )
    model._window_proposals = lambda video, actionness=None: model._proposals(
        *old_propose_windowed(model, inputs(video)), actionness
    )
    model._feature_maps = lambda video: [
        model.branches[name].classifier.feature_map(x)[0] for name, x in inputs(video).items()
    ]
    model._video_probs = video_probs
    return model


def assert_bit_identical(a: StepDetections, b: StepDetections) -> None:
    assert len(a.scores) > 0
    assert torch.equal(a.segments, b.segments)
    assert torch.equal(a.classes, b.classes)
    assert torch.equal(a.scores, b.scores)


def assert_same_up_to_rounding(a: StepDetections, b: StepDetections, atol: float = 1e-5) -> None:
    """The same detections, each matched to one of the other's with its class, segment (to
    1e-3 steps) and score (to `atol`); the order may differ only between such near ties."""
    assert len(a.scores) == len(b.scores) > 0
    close = (
        (a.classes[:, None] == b.classes[None, :])
        & ((a.segments[:, None] - b.segments[None, :]).abs().amax(dim=-1) < 1e-3)
        & ((a.scores[:, None] - b.scores[None, :]).abs() < atol)
    )
    free = torch.ones(len(b.scores), dtype=torch.bool)
    for i in range(len(a.scores)):
        match = torch.nonzero(close[i] & free).flatten()
        assert len(match), f"detection {i} has no counterpart"
        free[match[0]] = False


def write_folder(folder: Path, features: dict[str, np.ndarray], layout: str) -> FeatureMeta:
    """One video "long" in a feature folder of the given layout."""
    meta = FeatureMeta(streams=list(STREAMS), layout=layout, dims=[DIM, DIM])
    if layout == "concat":
        save_array(folder, "long", np.concatenate([features[s] for s in STREAMS], axis=1))
    else:
        for stream in STREAMS:
            save_array(folder, "long", features[stream], stream)
    write_meta(folder, meta)
    return read_meta(folder)


@pytest.mark.parametrize("layout", ["concat", "folders"])
@pytest.mark.parametrize("variant", ["late fusion", "early fusion, boundary and step heads"])
def test_memory_mapped_features_detect_as_in_memory_ones(tmp_path, layout, variant):
    features = random_features(LONG)
    meta = write_folder(tmp_path, features, layout)
    mapped = load_features(tmp_path, "long", meta, mmap=True)
    for stream in STREAMS:  # read-only views of the file, not copies, equal to what it holds
        view = mapped[stream]
        assert not view.flags.writeable and not view.flags.owndata
        base = view
        while base is not None and not isinstance(base, np.memmap):
            base = base.base
        assert isinstance(base, np.memmap)
        assert np.array_equal(view, features[stream])
    detector = Detector(tiny_model(variant), ["a", "b", "c"], meta)
    by_file = detect_features(detector, tmp_path, progress=False)["long"]  # memory-mapped
    in_memory = detector.detect(load_features(tmp_path, "long", meta), meta)
    assert len(by_file) > 0
    assert by_file == in_memory


def test_a_detector_flushes_subnormal_floats_to_zero():
    """A trained model's subnormal weights make every product slow (benchmarks/denormals.py)."""
    torch.set_flush_denormal(False)  # (made after it: a flushing CPU zeroes it on creation)
    subnormal = torch.tensor([1e-39])
    assert (subnormal * 1.0).item() != 0.0
    meta = FeatureMeta(streams=list(STREAMS), layout="concat", dims=[DIM, DIM])
    model = tiny_model(next(iter(VARIANTS)))
    weight = next(model.parameters())
    with torch.no_grad():
        weight.view(-1)[:3] = subnormal  # as training leaves some
    assert (weight.view(-1)[:3] != 0).all()
    Detector(model, ["a", "b", "c"], meta)
    assert (subnormal * 1.0).item() == 0.0
    # and none left in the weights, for the intra-op threads started before the flag was set
    assert (weight.view(-1)[:3] == 0).all()


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_video_of_one_window_detects_exactly_as_before(variant):
    feats = tensors(random_features(SHORT, seed=1))
    with torch.inference_mode():
        now = tiny_model(variant)(feats)
        before = with_old_front_end(tiny_model(variant))(feats)
    assert_bit_identical(now, before)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_a_long_video_detects_as_before_and_as_a_whole_video_pass(variant):
    """Up to float rounding: the 1x1 reductions' matrix products round differently for other
    numbers of rows (a window against all windows batched), and the heads' running means for
    other offsets; a few 1e-6 in the scores, which can swap near ties."""
    feats = tensors(random_features(LONG, seed=2))
    with torch.inference_mode():
        now = tiny_model(variant)(feats)
        before = with_old_front_end(tiny_model(variant))(feats)
        whole = tiny_model(variant, window=100 * LONG)(feats)
    assert_same_up_to_rounding(now, before)
    assert_same_up_to_rounding(now, whole)


@pytest.mark.parametrize("variant", ["late fusion", "early fusion, boundary and step heads"])
def test_windowed_proposals_are_exactly_those_of_the_stitched_outputs(variant):
    """Per-window candidates (each window's own best offsets) lose nothing: the proposals are
    bit for bit those of generate_proposals on the whole stitched (K, T, 2) outputs."""
    model = tiny_model(variant)
    model.config.proposals.post_nms_per_step_test = 0.25  # a budget that grows with the video
    feats = tensors(random_features(LONG, seed=3))
    with torch.inference_mode():
        video = model.video_rows(feats)
        windowed = model._window_proposals(video)
        stitched = model._proposals(*model.propose_windowed(model.branch_inputs(feats)))
    assert len(windowed[0]) > 100
    assert torch.equal(windowed[0], stitched[0]) and torch.equal(windowed[1], stitched[1])


# Owned ranges of the windows, and pre_nms: even windows; then one long window and many short
# ones, whose ties outgrow the room made for the candidates when the first window came.
@pytest.mark.parametrize(
    "bounds, pre_nms",
    [([0, 300, 500, 800, 900], 500), ([0, 600, 650, 700, 750, 800, 850, 900], 100)],
)
def test_window_candidates_keep_every_tie_of_the_video_cut(bounds, pre_nms):
    """Integer logits: thousands of exactly tied scores. Each window's cut keeps its ties, so
    the video's best are the same topk of the same scores, ties ordered as a whole pass."""
    gen = torch.Generator().manual_seed(0)
    k, length = 3, bounds[-1]
    objectness = torch.randint(-3, 4, (k, length, 2), generator=gen).float()
    offsets = torch.randn(k, length, 2, generator=gen)

    def outputs():
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            yield lo, hi, objectness[:, lo:hi], offsets[:, lo:hi]

    best = top_candidates(outputs(), length, pre_nms)
    scores = torch.softmax(objectness.reshape(-1, 2), dim=-1)[:, 1]
    top = scores.topk(pre_nms).indices
    assert len(torch.unique(scores[top])) < 10  # mostly ties
    assert torch.equal(best.index, top) and torch.equal(best.scores, scores[top])
    assert torch.equal(best.offsets, offsets.reshape(-1, 2)[top])
    scales = torch.tensor([2.0, 4.0, 8.0])
    coder = tiny_model("late fusion").coder
    windowed = ranked_proposals(
        best.index, best.scores, best.offsets, length, scales, coder, 0.7, 50
    )
    whole = generate_proposals(objectness, offsets, scales, coder, pre_nms, 0.7, 50)
    assert torch.equal(windowed[0], whole[0]) and torch.equal(windowed[1], whole[1])


def test_window_outputs_run_one_window_at_a_time():
    """The towers see one window's rows per call, never the whole video or all windows."""
    model = tiny_model("late fusion")
    feats = tensors(random_features(LONG, seed=4))
    video = model.video_rows(feats)
    seen = []

    def propose(rows):
        seen.append(next(iter(rows.values())).shape)
        return fuse(model.propose(rows))

    size, starts = tile_windows(LONG, WINDOW, 16)
    with torch.inference_mode():
        owned = list(window_outputs(propose, video, WindowPlan(LONG, size, starts)))
    assert len(seen) == len(starts) > 10 and all(s == (1, size, DIM) for s in seen)
    assert sum(hi - lo for lo, hi, *_ in owned) == LONG


@pytest.mark.parametrize("layout", ["concat", "folders"])
@pytest.mark.parametrize("mmap", [True, False])
def test_chunked_finiteness_check_names_the_first_bad_step(tmp_path, monkeypatch, layout, mmap):
    monkeypatch.setattr(feature_io, "_CHECK_BYTES", 4 * 2 * DIM * 7)  # 7 steps per block
    features = random_features(LONG)
    features["flow"][730, 3] = np.nan  # in a later block than the first bad step ...
    features["rgb"][123, [0, 5]] = [np.inf, -np.inf]  # ... which this block holds
    meta = write_folder(tmp_path, features, layout)
    if layout == "concat":
        expected = r"3 NaN/inf value\(s\) in 2 step\(s\), first at step 123"
        with pytest.raises(TalnetError, match=expected) as err:
            load_features(tmp_path, "long", meta, mmap=mmap)
        assert "long.npy" in str(err.value)
    else:  # streams are checked one after another: rgb first
        expected = r"2 NaN/inf value\(s\) in 1 step\(s\), first at step 123"
        with pytest.raises(TalnetError, match=expected):
            load_features(tmp_path, "long", meta, mmap=mmap)
        features["rgb"][123] = 0.0
        save_array(tmp_path, "long", features["rgb"], "rgb")
        expected = r"1 NaN/inf value\(s\) in 1 step\(s\), first at step 730"
        with pytest.raises(TalnetError, match=expected) as err:
            load_features(tmp_path, "long", meta, mmap=mmap)
        assert "flow" in str(err.value)
