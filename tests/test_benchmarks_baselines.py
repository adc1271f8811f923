"""benchmarks/baselines.py: multi-threshold run decoding, NMS and the 9/33 context features."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from talnet.io.features import FeatureMeta

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "baselines.py"


@pytest.fixture(scope="module")
def bl():
    spec = importlib.util.spec_from_file_location("benchmarks_baselines", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def plateau() -> np.ndarray:
    """Background 0.05, a plateau of 0.65 over steps [20, 40) with a 0.95 bump over [28, 32)."""
    p = np.full(60, 0.05)
    p[20:40] = 0.65
    p[28:32] = 0.95
    return p


def test_threshold_runs_find_the_plateau_and_rank_it_first(bl):
    starts, ends, scores = bl.threshold_runs(plateau())
    runs = {(int(a), int(b)): float(s) for a, b, s in zip(starts, ends, scores, strict=True)}
    assert set(runs) == {(20, 40), (28, 32)}  # one copy of each across the 9 thresholds
    # inside 0.71, outside (5 steps each side) 0.05: the whole plateau beats its bump
    assert runs[(20, 40)] == pytest.approx(0.71 - 0.05)
    assert runs[(20, 40)] > runs[(28, 32)]


def test_decode_steps_returns_the_plateau_in_seconds(bl):
    meta = FeatureMeta()
    p = plateau()
    dets = bl.decode_steps(np.stack([1 - p, p], 1).astype(np.float32), 1, meta, ["Jump"])
    top = dets[0]
    assert top.label == "Jump"
    assert top.start == pytest.approx(meta.step_to_seconds(19.5))
    assert top.end == pytest.approx(meta.step_to_seconds(39.5))


def test_decoding_keeps_one_of_two_near_duplicate_runs(bl):
    p = plateau()
    p[20] = 0.35  # thresholds 0.1-0.3 see [20, 40), 0.4-0.6 see [21, 40): tIoU 0.95
    starts, ends, _ = bl.threshold_runs(p)
    assert {(20, 40), (21, 40)} <= set(zip(starts.tolist(), ends.tolist(), strict=True))
    meta = FeatureMeta()
    dets = bl.decode_steps(np.stack([1 - p, p], 1), 1, meta, ["Jump"])
    assert len(dets) == 2  # [20, 40) (the higher contrast) and the bump [28, 32)
    assert dets[0].start == pytest.approx(meta.step_to_seconds(19.5))


def test_nms_removes_a_duplicate(bl):
    segs = np.array([[0.0, 10.0], [1.0, 10.0], [20.0, 30.0], [6.0, 12.0]])
    kept = bl.nms(segs, np.array([0.9, 0.8, 0.7, 0.6]), 0.4)
    assert kept.tolist() == [0, 2, 3]  # [1, 10) overlaps [0, 10) at 0.9; [6, 12) at 1/3
    assert bl.nms(segs, np.array([0.9, 0.8, 0.7, 0.6]), 0.4, top=1).tolist() == [0]


def test_context_9_33_is_centred_means(bl):
    x = np.random.default_rng(0).normal(size=(80, 3)).astype(np.float32)
    ctx = bl.context(x, (9, 33))
    assert ctx.shape == (80, 9)
    np.testing.assert_allclose(ctx[40, :3], x[40])
    np.testing.assert_allclose(ctx[40, 3:6], x[36:45].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ctx[40, 6:], x[24:57].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ctx[3, 6:], x[:20].mean(0), rtol=1e-5, atol=1e-6)  # clipped
