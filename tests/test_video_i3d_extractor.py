"""make_feature_extractor: the inference wrapper gives the model's own features, on the CPU."""

from __future__ import annotations

from pathlib import Path

import torch

import talnet
from talnet.video.compile import cache_dir, make_feature_extractor


def test_extractor_matches_plain_features_for_i3d() -> None:
    torch.manual_seed(0)
    model = talnet.InceptionI3d(in_channels=2).eval()
    x = torch.rand(2, 2, 8, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        expected = model.extract_features(x)
    extract = make_feature_extractor(model, compile=False, device="cpu")
    got = extract(x.double())  # any float dtype in, float32 out
    assert got.shape == (2, 1024) and got.dtype == torch.float32 and got.device.type == "cpu"
    assert not model.training
    assert model.Conv3d_1a_7x7.conv3d.weight.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)
    assert torch.equal(extract(x), got)


def test_extractor_works_for_inception_v3_frames() -> None:
    torch.manual_seed(0)
    model = talnet.InceptionV3().eval()
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        expected = model.extract_features(x)
    got = make_feature_extractor(model)(x)
    assert model.Conv2d_1a_3x3.conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert got.shape == (2, 2048)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_cache_dir_follows_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    assert cache_dir() == tmp_path / "inductor"
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "talnet" / "inductor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "talnet" / "inductor"
