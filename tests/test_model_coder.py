import math

import torch

from talnet.model.anchors import make_anchors
from talnet.model.coder import SegmentCoder


def test_encode_uses_weights_10_and_5():
    anchor = torch.tensor([[0.0, 10.0]])  # centre 5, length 10
    target = torch.tensor([[2.0, 14.0]])  # centre 8, length 12
    t = SegmentCoder().encode(anchor, target)
    assert torch.allclose(t, torch.tensor([[10 * 3 / 10, 5 * math.log(12 / 10)]]))


def test_decode_inverts_encode():
    gen = torch.Generator().manual_seed(0)
    ref = torch.rand(50, 1, generator=gen) * 100
    ref = torch.cat([ref, ref + 1 + torch.rand(50, 1, generator=gen) * 50], 1)
    tgt = torch.rand(50, 1, generator=gen) * 100
    tgt = torch.cat([tgt, tgt + 0.5 + torch.rand(50, 1, generator=gen) * 50], 1)
    coder = SegmentCoder()
    assert torch.allclose(coder.decode(ref, coder.encode(ref, tgt)), tgt, atol=1e-4)


def test_decode_caps_growth():
    out = SegmentCoder().decode(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1e6]]))
    assert torch.isfinite(out).all() and out[0, 1] - out[0, 0] <= math.exp(4.0) + 1e-3


def test_anchors_scale_major_centred_on_steps():
    anchors = make_anchors(torch.tensor([2.0, 6.0]), 3)
    assert anchors.shape == (6, 2)
    assert anchors[1].tolist() == [0.0, 2.0]  # scale 2 at step 1
    assert anchors[5].tolist() == [-1.0, 5.0]  # scale 6 at step 2
