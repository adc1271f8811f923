"""make_feature_extractor: the inference wrapper gives the model's own features, on the CPU."""

from __future__ import annotations

import warnings
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
    monkeypatch.setenv("TALNET_CACHE", str(tmp_path / "cache"))
    assert cache_dir() == tmp_path / "cache" / "inductor"  # talnet's cache, when set
    monkeypatch.delenv("TALNET_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "talnet" / "inductor"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert cache_dir() == Path.home() / ".cache" / "talnet" / "inductor"


class TinyVideoNet(torch.nn.Module):
    """A stand-in backbone small enough to compile in seconds (I3D takes about a minute)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv3d(2, 8, 3, padding=1)
        self.bn = torch.nn.BatchNorm3d(8)

    def extract_features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3, 4))


def test_compiled_extractor_equals_eager_for_any_batch_size(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch.manual_seed(0)
    model = TinyVideoNet().eval()
    with torch.no_grad():
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
    x = torch.rand(3, 2, 4, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model.extract_features(x)
    extract = make_feature_extractor(model, compile=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = extract(x)
        tail = extract(x[:1])  # another batch size reuses the per-clip compiled shape
    assert not [w for w in caught if "eager mode" in str(w.message)]  # no fallback
    assert got.shape == (3, 8) and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(tail, expected[:1], rtol=1e-5, atol=1e-6)
    assert any((tmp_path / "inductor").iterdir())  # compiled code went to the cache folder
