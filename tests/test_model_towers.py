import torch
import torch.nn.functional as F

from talnet.model.rangemax import range_max, window_max, window_mean, window_ranges
from talnet.model.towers import (
    ProposalNetwork,
    TowerBank,
    _dilated_conv,
    dilation_runs,
    propose_jointly,
    tile_windows,
    tower_geometry,
)

SCALES = [7, 12, 16, 32, 64]


def test_geometry_receptive_field_is_the_anchor_and_twice_with_context():
    for s in [7, 8, 11, 16, 23, 45, 64, 128, 181, 512]:
        assert tower_geometry(s, context=False).receptive_field == s
        assert tower_geometry(s, context=True).receptive_field == 2 * s
    # dilations double with context; pooling stays about s/7 (paper: about s/6)
    g, c = tower_geometry(64, False), tower_geometry(64, True)
    assert (c.dilation1, c.dilation2) == (2 * g.dilation1, 2 * g.dilation2)


def test_range_max_matches_brute_force():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 3, generator=gen)  # (T, C)
    lo = torch.randint(0, 40, (100,), generator=gen)
    hi = (lo + torch.randint(0, 20, (100,), generator=gen)).clamp(max=39)
    expected = torch.stack([x[a : b + 1].max(dim=0).values for a, b in zip(lo, hi, strict=True)])
    assert torch.equal(range_max(x, lo, hi), expected)  # inference path: values only
    tracked = range_max(x.clone().requires_grad_(True), lo, hi)  # training path: positions
    assert torch.equal(tracked.detach(), expected)


def test_batched_towers_equal_one_conv_stack_per_tower():
    torch.manual_seed(0)
    geoms = [tower_geometry(s, ctx) for s in SCALES for ctx in (False, True)]
    bank = TowerBank(5, 4, geoms, out_per_tower=3)
    x = torch.randn(2, 5, 50)  # (B, D, T) for the reference convolutions
    got = bank.features(x.transpose(1, 2)).transpose(2, 3)  # (B, K, H, T)
    for i, g in enumerate(geoms):
        left = (g.pool - 1) // 2
        padded = F.pad(x, (left, g.pool - 1 - left), value=-float("inf"))
        h = F.max_pool1d(padded, g.pool, stride=1)
        w1 = bank.conv1[i].view(5, 3, 4).permute(2, 0, 1)  # (D, 3H) -> (H, D, 3)
        h = torch.relu(F.conv1d(h, w1, bank.bias1[i, 0], padding=g.dilation1, dilation=g.dilation1))
        w2 = bank.conv2[i].view(4, 3, 4).permute(2, 0, 1)
        h = torch.relu(F.conv1d(h, w2, bank.bias2[i, 0], padding=g.dilation2, dilation=g.dilation2))
        assert torch.allclose(got[:, i], h, atol=1e-5), g


def _influence(bank: TowerBank, tower: int, t0: int, length: int) -> tuple[int, int]:
    """Span of input steps whose gradient reaches tower `tower`'s output at step t0."""
    with torch.no_grad():  # positive weights and biases keep every ReLU open
        for p in bank.parameters():
            p.abs_().add_(0.01)
    ramp = torch.arange(length, dtype=torch.float32)
    # rising and falling ramps: each pooling window's arg-max is its last and its first step
    x = torch.stack([ramp, length - ramp, ramp, length - ramp], 1)[None].requires_grad_(True)
    bank.features(x)[0, tower, t0].sum().backward()
    nonzero = torch.nonzero(x.grad[0].abs().sum(1)).flatten()
    return int(nonzero.min()), int(nonzero.max())


def test_gradient_probe_each_tower_sees_exactly_its_anchor():
    length, t0 = 400, 200
    for context in (False, True):
        bank = TowerBank(4, 3, [tower_geometry(s, context) for s in SCALES], 2)
        for i, s in enumerate(SCALES):
            lo, hi = _influence(bank, i, t0, length)
            expected = 2 * s if context else s
            assert hi - lo + 1 == expected, (s, context, lo, hi)
            assert lo <= t0 <= hi and abs((lo + hi) / 2 - t0) <= 1.0  # centred on the step


def test_single_shared_tower_has_one_receptive_field_for_all_scales():
    net = ProposalNetwork(6, SCALES, 8, 4, multi_tower=False, context=False, shared_rf=16)
    assert len(net.towers.geometries) == 1
    assert net.towers.geometries[0].receptive_field == 16
    obj, off = net(torch.randn(1, 30, 6))
    assert obj.shape == (1, len(SCALES), 30, 2) and off.shape == (1, len(SCALES), 30, 2)


def test_multi_tower_output_shapes():
    net = ProposalNetwork(6, SCALES, 8, 4)
    obj, off = net(torch.randn(2, 30, 6))
    assert obj.shape == (2, len(SCALES), 30, 2) and off.shape == (2, len(SCALES), 30, 2)


def test_two_streams_run_jointly_equal_each_stream_alone():
    # late fusion batches both streams' towers into one set of kernels; it must change nothing
    torch.manual_seed(0)
    rgb, flow = (ProposalNetwork(d, SCALES, 6, 5) for d in (7, 3))
    xs = [torch.randn(2, 40, 7), torch.randn(2, 40, 3)]
    joint = propose_jointly([rgb, flow], xs)
    for spn, x, (objectness, offsets) in zip((rgb, flow), xs, joint, strict=True):
        alone = spn.towers(torch.relu(spn.reduce(x)))
        assert torch.allclose(objectness, alone[..., :2], atol=1e-6)
        assert torch.allclose(offsets, alone[..., 2:], atol=1e-6)
    assert not torch.allclose(joint[0][0], joint[1][0])  # the streams' weights differ


def test_window_max_hand_case():
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])[:, None]  # (T, C)
    # window 0: [t, t] ; window 1: [t - 1, t + 1] ; window 2: [t - 1, t + 2], cut at the edges
    out = window_max(x, left=[0, 1, 1], size=[1, 3, 4])[..., 0]
    assert out.tolist() == [[3, 1, 4, 1, 5], [3, 4, 4, 5, 5], [4, 4, 5, 5, 5]]


def test_window_mean_averages_what_of_each_window_is_inside_the_video():
    x = torch.tensor([3.0, 1.0, 4.0, 1.0, 5.0])[:, None]  # (T, C)
    out = window_mean(x, left=[0, 1, 1], size=[1, 3, 4])[..., 0]
    assert torch.allclose(out[0], x[:, 0])
    assert torch.allclose(out[1], torch.tensor([2.0, 8 / 3, 2.0, 10 / 3, 3.0]))
    assert torch.allclose(out[2], torch.tensor([8 / 3, 9 / 4, 11 / 4, 10 / 3, 3.0]))
    gen = torch.Generator().manual_seed(0)
    batched = torch.randn(2, 3, 33, 4, generator=gen)  # (B, S, T, C), windows past the video
    lo, hi = window_ranges([3, 40], [7, 80], 33)
    got = window_mean(batched, [3, 40], [7, 80])
    for k in range(2):
        for t in (0, 16, 32):
            a, b = max(int(lo[k, t]), 0), min(int(hi[k, t]), 32)
            assert torch.allclose(got[:, :, k, t], batched[:, :, a : b + 1].mean(dim=2), atol=1e-5)


def test_window_max_equals_range_max_and_keeps_the_gradient_path():
    gen = torch.Generator().manual_seed(0)
    left, size = [0, 3, 1, 40, 7], [1, 7, 2, 80, 8]  # windows wider than the video too
    for length in (1, 5, 33, 90):
        x = torch.randn(2, 3, length, 4, generator=gen)  # (B, S, T, C)
        lo, hi = window_ranges(left, size, length)
        ranges = range_max(x, lo.clamp(min=0).flatten(), hi.clamp(max=length - 1).flatten())
        expected = ranges.view(2, 3, len(left), length, 4)
        assert torch.equal(window_max(x, left, size), expected)  # a max is exact
        tracked = x.clone().requires_grad_(True)
        out = window_max(tracked, left, size)
        assert torch.equal(out.detach(), expected)
        out.sum().backward()  # every output's gradient lands on one arg-max
        assert tracked.grad.sum().item() == expected.numel()


def test_window_max_gradient_goes_where_range_max_sends_it_even_with_ties():
    # Integer features tie everywhere: each window's gradient must land on the first step of
    # its max, as range_max's does, whatever the split into power-of-two windows.
    gen = torch.Generator().manual_seed(1)
    left, size = [0, 3, 1, 40, 7, 12], [1, 7, 2, 80, 8, 26]
    for length in (5, 33, 90):
        x = torch.randint(0, 3, (2, 3, length, 4), generator=gen).float()
        weight = torch.rand(2, 3, len(left), length, 4, generator=gen)
        lo, hi = window_ranges(left, size, length)
        lo, hi = lo.clamp(min=0).flatten(), hi.clamp(max=length - 1).flatten()
        grads = []
        for windows in (True, False):
            tracked = x.clone().requires_grad_(True)
            pooled = window_max(tracked, left, size) if windows else range_max(tracked, lo, hi)
            (pooled.reshape(weight.shape) * weight).sum().backward()
            grads.append(tracked.grad)
        assert torch.equal(grads[0], grads[1])


def test_dilation_runs_hand_case_and_round_trip():
    assert dilation_runs([2, 2, 2, 4, 8, 8]) == ((0, 3, 2), (3, 4, 4), (4, 6, 8))
    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        dilations = torch.randint(1, 4, (int(torch.randint(1, 12, (1,), generator=gen)),),
                                  generator=gen).tolist()  # fmt: skip
        runs = dilation_runs(dilations)
        assert [d for first, end, d in runs for _ in range(first, end)] == dilations
        assert all(a[2] != b[2] for a, b in zip(runs, runs[1:], strict=False))  # maximal


def test_reach_is_the_wider_side_of_the_receptive_field():
    for s in [2, 7, 16, 45, 512]:
        for context in (False, True):
            g = tower_geometry(s, context)
            left = (g.pool - 1) // 2 + g.dilation1 + g.dilation2
            assert g.reach >= left and left + 1 + g.reach == g.receptive_field


def test_tile_windows_hand_case():
    assert tile_windows(100, 128, 32) == (100, [0])
    # 300 steps, windows of <= 128 overlapping >= 32: 3 windows of ceil((300 + 64) / 3) = 122
    assert tile_windows(300, 128, 32) == (122, [0, 89, 178])


def test_tile_windows_cover_with_the_overlap_and_are_the_fewest():
    for length in range(1, 700, 7):
        for window, overlap in ((64, 16), (100, 50), (128, 0), (37, 36)):
            size, starts = tile_windows(length, window, overlap)
            assert size <= window and starts[0] == 0 and starts[-1] + size == length
            gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
            assert all(0 < g <= size - overlap for g in gaps)  # neighbours overlap enough
            fewer = len(starts) - 1  # fewer windows of the largest size cannot reach the end
            assert fewer == 0 or window + (fewer - 1) * (window - overlap) < length


def test_dilated_conv_gradient_is_exact():
    # the shifted-slice sum has its own backward: check it against finite differences, with
    # one dilation longer than the video (its side taps never land), two videos in the batch,
    # and the in-place bias and ReLU the towers apply to its output
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 2 * 3, 7, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2 * 3, 2, 3 * 3, generator=gen, dtype=torch.float64, requires_grad=True)
    runs = dilation_runs([1, 3, 12])
    conv = lambda a, b: _dilated_conv(a, b, runs, 2).add_(0.1).relu_()  # noqa: E731
    assert torch.autograd.gradcheck(conv, (x, w), fast_mode=True)
    assert torch.autograd.gradcheck(conv, (x[:1], w), fast_mode=True)
