"""Optical flow: scaling, alignment, known motion, the tuned TV-L1 versus OpenCV's defaults."""

from __future__ import annotations

import numpy as np
import pytest
from video_factory import flow_sequence

from talnet.errors import TalnetError
from talnet.video.flow import (
    SYNTHETIC_MOTIONS,
    FlowWorkers,
    create_flow,
    end_point_error,
    flow_between,
    scale_flow,
    synthetic_pair,
)


def test_scale_flow_clips_and_divides():
    raw = np.array([[[-50.0, -20.0], [10.0, 25.0]]], np.float32)
    np.testing.assert_allclose(scale_flow(raw), [[[-1.0, -1.0], [0.5, 1.0]]])


@pytest.mark.parametrize("method", ["tvl1", "dis", "dis-fast"])
def test_known_shift_is_recovered(method):
    a, b, _ = synthetic_pair(("shift", 3.0, -2.0), size=96, seed=1)
    frames = np.repeat(np.stack([a, b])[..., None], 3, axis=3)  # gray -> RGB
    flow = flow_between(frames, method)
    assert flow.shape == (1, 96, 96, 2)
    centre = flow[0, 24:-24, 24:-24] * 20  # back to pixels
    np.testing.assert_allclose(np.median(centre, axis=(0, 1)), [3.0, -2.0], atol=0.3)


def test_sequence_is_aligned_with_frames():
    a, b, _ = synthetic_pair(("shift", 2.0, 0.0), size=48, seed=2)
    frames = np.repeat(np.stack([a, b, a])[..., None], 3, axis=3)
    flow = flow_sequence(frames, "dis")
    assert flow.shape == (3, 48, 48, 2)
    np.testing.assert_array_equal(flow[2], flow[1])  # the last flow is repeated
    assert np.median(flow[0, ..., 0]) > 0 > np.median(flow[1, ..., 0])  # there and back
    np.testing.assert_array_equal(flow_sequence(frames[:1], "dis"), np.zeros((1, 48, 48, 2)))


def test_tuned_tvl1_is_as_accurate_as_defaults():
    errors = {"tvl1": [], "tvl1-default": []}
    for method, errs in errors.items():
        flow_fn = create_flow(method)
        for seed, motion in enumerate(SYNTHETIC_MOTIONS):
            a, b, truth = synthetic_pair(motion, size=128, seed=seed)
            errs.append(end_point_error(flow_fn(a, b), truth))
    assert np.mean(errors["tvl1"]) <= 1.1 * np.mean(errors["tvl1-default"])
    assert np.mean(errors["tvl1"]) < 0.2  # pixels: both really track the motion


def test_workers_match_in_process_flow():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (4, 32, 32, 3), dtype=np.uint8)
    with FlowWorkers("dis", processes=2) as workers:
        jobs = [workers.submit(frames), workers.submit(frames[::-1].copy())]
        results = [job.get(timeout=60) for job in jobs]
    np.testing.assert_array_equal(results[0], flow_between(frames, "dis"))
    np.testing.assert_array_equal(results[1], flow_between(frames[::-1].copy(), "dis"))


def test_unknown_method():
    with pytest.raises(TalnetError, match="unknown flow method"):
        create_flow("farneback")
