import torch
import torch.nn.functional as F

from talnet.model.rangemax import range_max
from talnet.model.towers import ProposalNetwork, TowerBank, propose_jointly, tower_geometry

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
