import torch

from talnet.model.matching import pairwise_tiou
from talnet.model.nms import batched_nms, nms, soft_nms


def _naive_nms(segments, scores, thr):
    order = scores.argsort(descending=True).tolist()
    keep = []
    for i in order:
        if all(pairwise_tiou(segments[i : i + 1], segments[j : j + 1]).item() <= thr for j in keep):
            keep.append(i)
    return keep


def test_nms_hand_case():
    segs = torch.tensor([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0], [0.0, 5.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    # [1,11] overlaps [0,10] 9/11 > 0.5 -> gone; [0,5] overlaps [0,10] 0.5, not above -> kept
    assert nms(segs, scores, 0.5).tolist() == [0, 2, 3]


def test_nms_equals_naive_greedy_on_chains():
    gen = torch.Generator().manual_seed(0)
    starts = torch.arange(60, dtype=torch.float32)  # sliding windows: long suppression chains
    segs = torch.stack([starts, starts + 8], 1)
    for _ in range(5):
        scores = torch.rand(60, generator=gen)
        for thr in (0.3, 0.5, 0.7):  # no tIoU of these windows equals a threshold
            assert nms(segs, scores, thr).tolist() == _naive_nms(segs, scores, thr)


def test_batched_nms_is_per_group():
    segs = torch.tensor([[[0.0, 10.0], [1.0, 11.0]], [[0.0, 10.0], [1.0, 11.0]]])
    scores = torch.tensor([[0.9, 0.8], [0.1, 0.2]])
    keep, kept_scores = batched_nms(segs, scores, 0.5)
    assert keep.tolist() == [[True, False], [False, True]]
    assert torch.equal(kept_scores, torch.tensor([[0.9, 0.0], [0.0, 0.2]]))


def test_soft_nms_decays_overlaps_and_keeps_the_best():
    segs = torch.tensor([[[0.0, 10.0], [0.0, 10.0], [50.0, 60.0]]])
    scores = torch.tensor([[0.9, 0.8, 0.5]])
    out = soft_nms(segs, scores, sigma=0.5)
    assert torch.allclose(out, torch.tensor([[0.9, 0.8 * torch.exp(torch.tensor(-2.0)), 0.5]]))
