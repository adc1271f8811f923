import pytest
import torch

import talnet.model.nms as nms_module
from talnet.model.matching import pairwise_tiou
from talnet.model.nms import batched_nms, greedy_prefix, nms, soft_nms, vote_boundaries


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


def dense_soft_nms(segments: torch.Tensor, scores: torch.Tensor, sigma: float) -> torch.Tensor:
    """Soft-NMS as the paper writes it, one group, every pick: the reference."""
    current, final = scores.clone().tolist(), [0.0] * len(scores)
    left = set(range(len(scores)))
    while left:
        best = max(sorted(left), key=lambda i: current[i])
        if current[best] <= 0:
            break
        final[best] = current[best]
        left.remove(best)
        iou = pairwise_tiou(segments[best][None], segments)[0]
        for i in left:
            current[i] *= float(torch.exp(-(iou[i] ** 2) / sigma))
    return torch.tensor(final)


def test_soft_nms_max_out_gives_the_best_final_scores_of_the_full_run():
    gen = torch.Generator().manual_seed(3)
    for g, n, max_out in ((1, 40, 5), (3, 120, 30), (4, 200, 700), (2, 90, None)):
        starts = torch.rand(g, n, 1, generator=gen) * 300
        segs = torch.cat([starts, starts + 1 + torch.rand(g, n, 1, generator=gen) * 40], -1)
        scores = torch.rand(g, n, generator=gen) * (torch.rand(g, n, generator=gen) > 0.2)
        full = torch.stack([dense_soft_nms(segs[i], scores[i], 0.3) for i in range(g)])
        out = soft_nms(segs, scores, 0.3, max_out)
        k = min(max_out or g * n, int((full > 0).sum()))
        best = full.flatten().topk(k)
        assert torch.allclose(out.flatten()[best.indices], best.values, atol=1e-6)
        assert int((out > 0).sum()) >= k  # nothing above the k-th is lost or invented
        assert torch.allclose(out.flatten().topk(k).values, best.values, atol=1e-6)


def test_soft_nms_of_a_long_video_needs_no_pairwise_matrix():
    # 4 classes x 40,000 candidates: a pairwise tIoU matrix would take 25 GB
    gen = torch.Generator().manual_seed(4)
    starts = torch.rand(4, 40_000, 1, generator=gen) * 600_000
    segs = torch.cat([starts, starts + 2 + torch.rand(4, 40_000, 1, generator=gen) * 500], -1)
    scores = torch.rand(4, 40_000, generator=gen)
    out = soft_nms(segs, scores, 0.3, max_out=300)
    top = out.flatten().topk(300)
    assert bool((top.values > 0).all()) and float(top.values[0]) == float(scores.max())


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


def _random_segments(gen, n, kind):
    """Segments (n, 2) that stress the sparse path: on an integer grid (equal starts, touching
    and duplicated segments, zero lengths) or real-valued with some zero lengths."""
    if kind == "grid":
        starts = torch.randint(
            0, int(torch.randint(2, 60, (1,), generator=gen)), (n,), generator=gen
        )
        lengths = torch.randint(0, 12, (n,), generator=gen)
        segs = torch.stack([starts, starts + lengths], 1).float()
    else:
        starts = torch.rand(n, generator=gen) * 50
        lengths = torch.rand(n, generator=gen) * 10
        lengths[torch.rand(n, generator=gen) < 0.1] = 0
        segs = torch.stack([starts, starts + lengths], 1)
    copies = torch.rand(n, generator=gen) < 0.2
    segs[copies] = segs[torch.randint(0, max(n, 1), (n,), generator=gen)[copies]]
    return segs


def test_greedy_sparse_equals_dense_on_random_cases():
    gen = torch.Generator().manual_seed(3)
    for case in range(600):
        n = int(torch.randint(0, 80, (1,), generator=gen))
        segs = _random_segments(gen, n, ("grid", "real")[case % 2])
        allowed = torch.rand(n, generator=gen) < 0.7 if case % 3 == 0 else None
        for thr in (0.0, 0.4, 0.7, 0.5, 1 / 3):  # 0.5 and 1/3: tIoUs of the grid meet them
            dense = nms_module._greedy_dense(
                segs[None], thr, None if allowed is None else allowed[None]
            )[0]
            assert torch.equal(nms_module.greedy_sparse(segs, thr, allowed), dense)


def test_greedy_sparse_hand_cases():
    # touching [0,10] [10,20]: no overlap even at threshold 0; zero-length never suppresses
    segs = torch.tensor([[0.0, 10.0], [10.0, 20.0], [5.0, 5.0], [0.0, 10.0], [2.0, 12.0]])
    assert nms_module.greedy_sparse(segs, 0.0).tolist() == [True, True, True, False, False]
    assert nms_module.greedy_sparse(segs, 0.7).tolist() == [True, True, True, False, True]
    allowed = torch.tensor([False, True, True, True, True])  # the first takes no part
    assert nms_module.greedy_sparse(segs, 0.4, allowed).tolist() == [
        False, True, True, True, False,
    ]  # fmt: skip
    assert nms_module.greedy_sparse(torch.zeros(0, 2), 0.5).tolist() == []
    with pytest.raises(ValueError, match="threshold >= 0"):
        nms_module.greedy_sparse(segs, -0.1)  # it would suppress disjoint segments too


def test_greedy_sparse_equals_dense_on_odd_segments():
    """Reversed (end < start), infinite and NaN coordinates: the same answers as the dense
    test gives them (a reversed segment passes it against every segment short enough)."""
    gen = torch.Generator().manual_seed(4)
    odd = torch.tensor([float("nan"), float("inf"), -float("inf")])
    for case in range(300):
        n = int(torch.randint(1, 60, (1,), generator=gen))
        segs = _random_segments(gen, n, ("grid", "real")[case % 2])
        flip = torch.rand(n, generator=gen) < 0.1
        segs[flip] = segs[flip].flip(1)
        spoil = torch.rand(n, 2, generator=gen) < 0.03
        segs[spoil] = odd[torch.randint(0, 3, (int(spoil.sum()),), generator=gen)]
        for thr in (0.0, 0.4, 0.7):
            dense = nms_module._greedy_dense(segs[None], thr)[0]
            assert torch.equal(nms_module.greedy_sparse(segs, thr), dense)


def test_greedy_sparse_resolves_long_chains():
    # sliding windows [i, i + 8], each better than the next: window i + 1 and i + 2 overlap i
    # above 0.5 (7/9, 6/10), i + 3 does not (5/11); every third is kept, each decided only
    # after the one before it: thousands of rounds
    starts = torch.arange(3000, dtype=torch.float32)
    keep = nms_module.greedy_sparse(torch.stack([starts, starts + 8], 1), 0.5)
    assert torch.equal(keep, torch.arange(3000) % 3 == 0)


def test_sparse_chunks_give_the_same_answer(monkeypatch):
    gen = torch.Generator().manual_seed(5)
    segs = _random_segments(gen, 300, "real")
    whole = nms_module.greedy_sparse(segs, 0.4)
    monkeypatch.setattr(nms_module, "SPARSE_CHUNK", 7)  # many chunks, owners split over none
    assert torch.equal(nms_module.greedy_sparse(segs, 0.4), whole)
    monkeypatch.setattr(nms_module, "SPARSE_CHUNK", 0)  # one owner at a time
    assert torch.equal(nms_module.greedy_sparse(segs, 0.4), whole)


def _forced(monkeypatch, path):
    """Send every case down one path: "sparse" (greedy_sparse, also for max_keep) or "dense"."""
    big = 1 << 62
    monkeypatch.setattr(nms_module, "SPARSE_PAIRS", 0 if path == "sparse" else big)
    monkeypatch.setattr(nms_module, "PREFIX_KEEP", 0 if path == "sparse" else big)


def test_nms_and_batched_nms_give_the_same_answers_on_both_paths(monkeypatch):
    gen = torch.Generator().manual_seed(6)
    monkeypatch.setattr(nms_module, "SMALL_PAIRS", 0)  # batched_nms with `top`: _greedy_top
    for case in range(40):
        groups, n = int(torch.randint(1, 6, (1,), generator=gen)), 5 + 7 * case
        segs = torch.stack(
            [_random_segments(gen, n, ("grid", "real")[case % 2]) for _ in range(groups)]
        )
        scores = torch.rand(groups, n, generator=gen)
        if case % 2:  # few distinct values: ties inside and across groups
            scores = (scores * 6).floor() / 6 + 0.01
        for thr in (0.0, 0.4, 0.7):
            answers = {}
            for path in ("dense", "sparse"):
                _forced(monkeypatch, path)
                answers[path] = (
                    [
                        nms(segs[0], scores[0], thr, max_keep=k).tolist()
                        for k in (None, 1, n // 3, n)
                    ],
                    batched_nms(segs, scores, thr),
                    batched_nms(segs, scores, thr, top=n // 2 + 1, score_threshold=0.3),
                    nms_module._greedy_sorted(segs, thr),
                )
            dense, sparse = answers["dense"], answers["sparse"]
            assert dense[0] == sparse[0]
            for got, want in zip(sparse[1:3], dense[1:3], strict=True):
                assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])
            assert torch.equal(sparse[3], dense[3])
            # many small groups, dense a few at a time: the same as all at once
            monkeypatch.setattr(nms_module, "SPARSE_PAIRS", n * n)
            assert torch.equal(nms_module._greedy_sorted(segs, thr), dense[3])


def _assert_greedy(segs, scores, kept, thr):
    """That `kept` is what greedy NMS keeps, checked pair by pair over overlapping segments:
    kept in score order, no two kept ones overlap above thr, and every other segment is
    overlapped above thr by a better kept one (the two conditions that define greedy NMS)."""
    n = len(segs)
    rank = torch.empty(n, dtype=torch.long)
    rank[scores.argsort(descending=True)] = torch.arange(n)
    assert (rank[kept].diff() > 0).all()
    is_kept = torch.zeros(n, dtype=torch.bool)
    is_kept[kept] = True
    by_start = segs[:, 0].argsort()
    start, end = segs[by_start, 0], segs[by_start, 1]
    rank, is_kept = rank[by_start], is_kept[by_start]
    covered = torch.zeros(n, dtype=torch.bool)
    # pairs (p, p + d) in start order, d up to the most starts any segment holds
    reach = int((torch.searchsorted(start, end) - torch.arange(n)).max())
    for d in range(1, reach + 1):
        inter = (torch.minimum(end[:-d], end[d:]) - start[d:]).clamp_min(0)
        total = (end[:-d] - start[:-d]) + (end[d:] - start[d:])
        above = inter * (1 + thr) > thr * total
        assert not (above & is_kept[:-d] & is_kept[d:]).any()
        first_better = rank[:-d] < rank[d:]
        covered[d:] |= above & is_kept[:-d] & first_better
        covered[:-d] |= above & is_kept[d:] & ~first_better
    assert (covered | is_kept).all() and not (covered & is_kept).any()


def test_nms_of_200k_long_video_proposals_is_greedy():
    """Proposals of a 24-hour video (648,000 steps): 200,000 segments of 2..512 steps. The
    sparse path takes a few seconds where an N x N matrix would need 160 GB."""
    gen = torch.Generator().manual_seed(7)
    n = 200_000
    centres = torch.rand(n, generator=gen, dtype=torch.float64) * 648_000
    lengths = 2 + torch.rand(n, generator=gen, dtype=torch.float64) * 510
    segs = torch.stack([centres - lengths / 2, centres + lengths / 2], 1).float()
    scores = torch.rand(n, generator=gen)
    kept = nms(segs, scores, 0.7)
    assert 0 < len(kept) < n
    _assert_greedy(segs, scores, kept, 0.7)
    assert torch.equal(nms(segs, scores, 0.7, max_keep=20_000), kept[:20_000])


def test_boundary_voting_moves_a_kept_segment_to_its_clusters_weighted_mean():
    # class 0: the kept segment [10, 20] and two suppressed neighbours; class 1 votes elsewhere
    segments = torch.tensor([
        [[10.0, 20.0], [12.0, 22.0], [8.0, 18.0], [40.0, 50.0]],
        [[11.0, 21.0], [11.0, 21.0], [11.0, 21.0], [11.0, 21.0]],
    ])  # fmt: skip
    scores = torch.tensor([[0.5, 0.3, 0.2, 0.9], [1.0, 1.0, 1.0, 1.0]])
    kept, rows = segments[0, :1], torch.tensor([0])
    voted = vote_boundaries(kept, rows, segments, scores, 0.5)
    # (0.5 x 10 + 0.3 x 12 + 0.2 x 8) / 1.0, likewise the ends; [40, 50] and class 1 do not vote
    assert torch.allclose(voted, torch.tensor([[10.2, 20.2]]))
    # a stricter threshold leaves only the segment itself (tIoU of [12, 22] with it: 8/12)
    assert torch.allclose(vote_boundaries(kept, rows, segments, scores, 0.7), kept)
    # one kept segment per class, chunked: the same as one at a time
    both = torch.tensor([[10.0, 20.0], [11.0, 21.0]])
    together = vote_boundaries(both, torch.tensor([0, 1]), segments, scores, 0.5, chunk=1)
    assert torch.allclose(together, torch.tensor([[10.2, 20.2], [11.0, 21.0]]))
    # squared scores: (0.25 x 10 + 0.09 x 12 + 0.04 x 8) / 0.38
    squared = vote_boundaries(kept, rows, segments, scores, 0.5, power=2.0)
    assert torch.allclose(squared[0, 0], torch.tensor(3.9 / 0.38))


def test_boundary_voting_leaves_a_segment_without_voters_where_it_is():
    segments = torch.tensor([[[10.0, 20.0], [30.0, 40.0]]])
    scores = torch.tensor([[0.0, 0.8]])  # the kept segment's own score is 0: nobody votes
    kept = torch.tensor([[10.0, 20.0]])
    assert torch.equal(vote_boundaries(kept, torch.tensor([0]), segments, scores, 0.5), kept)
