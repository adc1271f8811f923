import torch

from talnet.model.soi import extend_segments, soi_pool


def _ramp(length: int = 100, dims: int = 3) -> torch.Tensor:
    return torch.arange(length, dtype=torch.float32)[:, None].repeat(1, dims)  # (T, D) = step


def test_interp_on_a_ramp_gives_bin_centres():
    out = soi_pool(_ramp(), torch.tensor([[10.0, 18.0], [20.5, 40.5]]), bins=4, mode="interp")
    assert out.shape == (2, 4, 3)
    assert torch.allclose(out[0, :, 0], torch.tensor([11.0, 13.0, 15.0, 17.0]))
    assert torch.allclose(out[1, :, 2], torch.tensor([23.0, 28.0, 33.0, 38.0]))


def test_max_on_a_ramp_gives_last_step_of_each_bin():
    out = soi_pool(_ramp(), torch.tensor([[10.0, 18.0]]), bins=4, mode="max")
    # bins [10,12), [12,14), ... touch cells up to ceil(x1 - 1/2) = 12, 14, 16, 18
    assert out[0, :, 0].tolist() == [12.0, 14.0, 16.0, 18.0]


def test_mean_averages_every_step_a_bin_touches():
    out = soi_pool(_ramp(), torch.tensor([[10.0, 18.0], [0.0, 40.0]]), bins=4, mode="mean")
    # bin [10, 12) touches cells 10, 11, 12 -> mean 11; the same cells as "max" uses
    assert out[0, :, 0].tolist() == [11.0, 13.0, 15.0, 17.0]
    assert out[1, :, 1].tolist() == [5.0, 15.0, 25.0, 35.0]  # [0, 10): cells 0..10
    x = torch.randn(50, 2, requires_grad=True)
    soi_pool(x, torch.tensor([[5.0, 25.0]]), 4, "mean").sum().backward()
    assert x.grad[:4].eq(0).all() and (x.grad[5:26] > 0).all()  # every step inside counts


def test_outside_the_video_sees_the_edge():
    out = soi_pool(_ramp(10), torch.tensor([[-20.0, -10.0], [20.0, 30.0]]), 2, "interp")
    assert out[0].eq(0).all() and out[1].eq(9).all()


def test_context_extends_by_half_length_each_side():
    ext = extend_segments(torch.tensor([[10.0, 18.0]]))
    assert ext.tolist() == [[6.0, 22.0]]


def test_soi_is_differentiable_in_features():
    feats = torch.randn(50, 4, requires_grad=True)
    for mode in ("interp", "max"):
        feats.grad = None
        soi_pool(feats, torch.tensor([[3.3, 20.7]]), 8, mode).sum().backward()
        touched = torch.nonzero(feats.grad.abs().sum(1)).flatten()
        assert touched.min() >= 3 and touched.max() <= 21 and len(touched) >= 8
