import pytest
import torch

import talnet.model.nms as nms_module
from talnet.model.matching import pairwise_tiou
from talnet.model.nms import batched_nms, greedy_prefix, nms, soft_nms


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


def test_nms_max_keep_hand_case():
    segs = torch.tensor([[0.0, 10.0], [1.0, 11.0], [20.0, 30.0], [0.0, 5.0], [40.0, 41.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5])
    assert nms(segs, scores, 0.5, max_keep=2).tolist() == [0, 2]
    # blocks of 2: [0,10] [1,11] | [20,30] [0,5] | ...; the second block resolves both
    assert greedy_prefix(segs, 0.5, max_keep=3, block=2).tolist() == [0, 2, 3]


def test_nms_max_keep_is_the_head_of_the_full_list():
    gen = torch.Generator().manual_seed(1)
    for n in (1, 7, 60, 300):
        starts = torch.rand(n, generator=gen) * 200
        segs = torch.stack([starts, starts + 1 + torch.rand(n, generator=gen) * 30], 1)
        scores = torch.rand(n, generator=gen)
        for thr in (0.3, 0.7):
            full = nms(segs, scores, thr)
            for max_keep in (1, 5, 50, n):
                assert torch.equal(nms(segs, scores, thr, max_keep=max_keep), full[:max_keep])
            order = scores.argsort(descending=True)
            for block in (1, 3, 64):  # any block size resolves the same greedy order
                head = greedy_prefix(segs[order], thr, max_keep=n, block=block)
                assert torch.equal(order[head], full)


def _top_detections(kept_scores, top, threshold):
    """What detection keeps of per-class NMS: the `top` best scores above the threshold."""
    flat = kept_scores.flatten()
    flat = torch.where(flat > threshold, flat, torch.zeros_like(flat))
    best = flat.topk(min(top, flat.numel()))
    return best.indices[best.values > 0], best.values[best.values > 0]


def test_batched_nms_top_hand_case(monkeypatch):
    monkeypatch.setattr(nms_module, "SMALL_PAIRS", 0)  # no shortcut for small cases
    # group 0: [0,10] 0.9 suppresses [1,11] 0.8; group 1: [0,10] 0.3, [50,60] 0.2
    segs = torch.tensor([[[0.0, 10.0], [1.0, 11.0]], [[0.0, 10.0], [50.0, 60.0]]])
    scores = torch.tensor([[0.9, 0.8], [0.3, 0.2]])
    keep, kept = batched_nms(segs, scores, 0.5, top=2, score_threshold=0.25)
    # the best two kept above 0.25 are 0.9 and 0.3; 0.2 is below the threshold, never resolved
    assert keep.tolist() == [[True, False], [True, False]]
    assert torch.equal(kept, torch.tensor([[0.9, 0.0], [0.3, 0.0]]))


@pytest.mark.parametrize("small_pairs", [0, nms_module.SMALL_PAIRS])
def test_batched_nms_top_gives_the_full_answers_best_even_with_ties(monkeypatch, small_pairs):
    monkeypatch.setattr(nms_module, "SMALL_PAIRS", small_pairs)
    gen = torch.Generator().manual_seed(2)
    cases = ((1, 50, 5), (20, 100, 200), (20, 300, 40), (5, 400, 2000), (3, 200, 1))
    for groups, n, top in cases:
        starts = torch.rand(groups, n, generator=gen) * 300
        segs = torch.stack([starts, starts + 1 + torch.rand(groups, n, generator=gen) * 40], -1)
        for ties in ("none", "some", "all"):
            scores = torch.rand(groups, n, generator=gen)
            if ties == "some":  # few distinct values: ties inside and across groups
                scores = (scores * 8).floor() / 8 + 0.01
            elif ties == "all":
                scores = torch.full_like(scores, 0.6)
            for threshold in (0.0, 0.5):
                full = _top_detections(batched_nms(segs, scores, 0.4)[1], top, threshold)
                kept = batched_nms(segs, scores, 0.4, top=top, score_threshold=threshold)[1]
                fast = _top_detections(kept, top, threshold)
                assert torch.equal(fast[0], full[0]) and torch.equal(fast[1], full[1])
