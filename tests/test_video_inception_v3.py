"""InceptionV3: loads torchvision's ImageNet state-dict layout strictly; 2048-d frame features."""

from __future__ import annotations

import pytest
import torch
from video_factory import random_state_dict

import talnet

# torchvision's Inception3 layout, written out from its definition (not from ours):
# every conv+BN unit as (name, in, out, kernel_h, kernel_w).
STEM = [
    ("Conv2d_1a_3x3", 3, 32, 3, 3),
    ("Conv2d_2a_3x3", 32, 32, 3, 3),
    ("Conv2d_2b_3x3", 32, 64, 3, 3),
    ("Conv2d_3b_1x1", 64, 80, 1, 1),
    ("Conv2d_4a_3x3", 80, 192, 3, 3),
]


def block_a(cin: int, pool: int) -> list[tuple[str, int, int, int, int]]:
    return [
        ("branch1x1", cin, 64, 1, 1),
        ("branch5x5_1", cin, 48, 1, 1),
        ("branch5x5_2", 48, 64, 5, 5),
        ("branch3x3dbl_1", cin, 64, 1, 1),
        ("branch3x3dbl_2", 64, 96, 3, 3),
        ("branch3x3dbl_3", 96, 96, 3, 3),
        ("branch_pool", cin, pool, 1, 1),
    ]


def block_c(c7: int) -> list[tuple[str, int, int, int, int]]:
    return [
        ("branch1x1", 768, 192, 1, 1),
        ("branch7x7_1", 768, c7, 1, 1),
        ("branch7x7_2", c7, c7, 1, 7),
        ("branch7x7_3", c7, 192, 7, 1),
        ("branch7x7dbl_1", 768, c7, 1, 1),
        ("branch7x7dbl_2", c7, c7, 7, 1),
        ("branch7x7dbl_3", c7, c7, 1, 7),
        ("branch7x7dbl_4", c7, c7, 7, 1),
        ("branch7x7dbl_5", c7, 192, 1, 7),
        ("branch_pool", 768, 192, 1, 1),
    ]


def block_e(cin: int) -> list[tuple[str, int, int, int, int]]:
    return [
        ("branch1x1", cin, 320, 1, 1),
        ("branch3x3_1", cin, 384, 1, 1),
        ("branch3x3_2a", 384, 384, 1, 3),
        ("branch3x3_2b", 384, 384, 3, 1),
        ("branch3x3dbl_1", cin, 448, 1, 1),
        ("branch3x3dbl_2", 448, 384, 3, 3),
        ("branch3x3dbl_3a", 384, 384, 1, 3),
        ("branch3x3dbl_3b", 384, 384, 3, 1),
        ("branch_pool", cin, 192, 1, 1),
    ]


BLOCKS = {
    "Mixed_5b": block_a(192, 32),
    "Mixed_5c": block_a(256, 64),
    "Mixed_5d": block_a(288, 64),
    "Mixed_6a": [
        ("branch3x3", 288, 384, 3, 3),
        ("branch3x3dbl_1", 288, 64, 1, 1),
        ("branch3x3dbl_2", 64, 96, 3, 3),
        ("branch3x3dbl_3", 96, 96, 3, 3),
    ],
    "Mixed_6b": block_c(128),
    "Mixed_6c": block_c(160),
    "Mixed_6d": block_c(160),
    "Mixed_6e": block_c(192),
    "AuxLogits": [("conv0", 768, 128, 1, 1), ("conv1", 128, 768, 5, 5)],
    "Mixed_7a": [
        ("branch3x3_1", 768, 192, 1, 1),
        ("branch3x3_2", 192, 320, 3, 3),
        ("branch7x7x3_1", 768, 192, 1, 1),
        ("branch7x7x3_2", 192, 192, 1, 7),
        ("branch7x7x3_3", 192, 192, 7, 1),
        ("branch7x7x3_4", 192, 192, 3, 3),
    ],
    "Mixed_7b": block_e(1280),
    "Mixed_7c": block_e(2048),
}


def public_shapes(num_classes: int = 1000) -> dict[str, tuple[int, ...]]:
    """Key -> shape of torchvision's inception_v3 ImageNet file (without BN counters)."""
    units = list(STEM) + [
        (f"{block}.{name}", cin, cout, kh, kw)
        for block, convs in BLOCKS.items()
        for name, cin, cout, kh, kw in convs
    ]
    shapes: dict[str, tuple[int, ...]] = {}
    for name, cin, cout, kh, kw in units:
        shapes[f"{name}.conv.weight"] = (cout, cin, kh, kw)
        for p in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.bn.{p}"] = (cout,)
    shapes["AuxLogits.fc.weight"] = (num_classes, 768)
    shapes["AuxLogits.fc.bias"] = (num_classes,)
    shapes["fc.weight"] = (num_classes, 2048)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def random_public_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    return random_state_dict(public_shapes(), "conv.weight", seed)


def test_public_table_matches_torchvision_parameter_count() -> None:
    shapes = public_shapes()
    learnable = [s for k, s in shapes.items() if not k.endswith(("running_mean", "running_var"))]
    # torchvision documents 27,161,264 parameters for Inception_V3_Weights.IMAGENET1K_V1.
    assert sum(torch.Size(s).numel() for s in learnable) == 27_161_264
    assert len(shapes) == 96 * 5 + 4


def test_model_matches_public_layout() -> None:
    model = talnet.InceptionV3()
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: v for k, v in ours.items() if not k.endswith("num_batches_tracked")} == (
        public_shapes()
    )
    assert sum(p.numel() for p in model.parameters()) == 27_161_264


def test_public_file_loads_strictly(tmp_path) -> None:
    sd = random_public_state_dict()
    path = tmp_path / "inception_v3_google.pth"
    torch.save(sd, path)
    model = talnet.InceptionV3()
    model.load_state_dict(torch.load(path, weights_only=True), strict=True)
    assert torch.equal(
        model.Mixed_6e.branch7x7dbl_5.bn.running_var, sd["Mixed_6e.branch7x7dbl_5.bn.running_var"]
    )
    assert torch.equal(model.fc.weight, sd["fc.weight"])
    without_aux = {k: v for k, v in sd.items() if not k.startswith("AuxLogits.")}
    talnet.InceptionV3(aux_logits=False).load_state_dict(without_aux, strict=True)
    with pytest.raises(RuntimeError, match="Unexpected key"):
        talnet.InceptionV3(aux_logits=False).load_state_dict(sd, strict=True)


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    m = talnet.InceptionV3()
    m.load_state_dict(random_public_state_dict(), strict=True)
    return m.eval()


@pytest.mark.parametrize("size, grid", [(299, 8), (224, 5)])
def test_features_shape_and_determinism(model, size: int, grid: int) -> None:
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size)) * 2 - 1
    with torch.inference_mode():
        fmap = model.feature_map(x)
        a = model.extract_features(x.clone())
    assert fmap.shape == (1, 2048, grid, grid)
    assert a.shape == (1, 2048) and a.dtype == torch.float32
    assert torch.equal(a, fmap.mean(dim=(2, 3)))  # same input, same numbers
    assert (a >= 0).all() and a.std() > 0


def test_logits_are_fc_of_the_features(model) -> None:
    x = torch.rand(2, 3, 96, 96, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.inference_mode():
        features = model.extract_features(x)
        logits = model(x)
        expected = features @ model.fc.weight.T + model.fc.bias
    assert logits.shape == (2, 1000)
    torch.testing.assert_close(logits, expected)
    assert not torch.allclose(features[0], features[1])


def test_transform_input_maps_imagenet_normalisation_to_unit_range(model) -> None:
    pixels = torch.rand(1, 3, 160, 160, generator=torch.Generator().manual_seed(5))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    transforming = talnet.InceptionV3(transform_input=True)
    transforming.load_state_dict(model.state_dict(), strict=True)
    transforming.eval()
    with torch.inference_mode():
        expected = model.extract_features(pixels * 2 - 1)
        got = transforming.extract_features((pixels - mean) / std)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
