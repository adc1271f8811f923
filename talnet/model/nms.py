"""1D non-maximum suppression in pure PyTorch (nothing to compile), greedy and Soft-NMS.

Greedy NMS is computed exactly but without a loop over boxes: with segments sorted by score
and S[j, i] = "earlier j overlaps later i above the threshold", the kept set is the unique
solution of keep[i] = not any_j(keep[j] and S[j, i]); iterating that map from all-true reaches
it in at most N rounds (round m fixes the first m entries) and in practice in a few.
Many groups (classes) are suppressed at once, each only against itself. When only the first
`max_keep` kept segments are wanted (proposals), the ranking is resolved a block at a time and
stops as soon as enough are kept: no N x N matrix for thousands of candidates.

Large groups (N * N above SPARSE_PAIRS, i.e. more than 1024 segments; e.g. the ~10^5
proposals, or one class's detections, of an hours-long video) never build S: segments are
intervals and a tIoU above a threshold >= 0 needs an overlap, so sorted by start, each segment
is tested only against those starting inside it (`searchsorted`, pairs expanded and tested
SPARSE_CHUNK at a time) and S is kept as the sparse list of the pairs that pass. The same
fixed point is then reached along those edges, each visited once: a segment is decided kept
once all its better neighbours are decided suppressed, suppressed as soon as one is kept
(`greedy_sparse`). Both paths test pairs with the same expression (`_above`), so their answers
are identical, ties and borderline tIoUs included (the order is the caller's sort by score).
Memory is the edge list, time about linear in the pairs tested (200,000 proposals of 2..512
steps over 24 hours at 0.7: 1.6 10^7 pairs tested, 10^6 edges, about a second). Many small
groups stay dense, a few at a time; batched_nms and its `top` prefixes go through the same
switch, and nms with a large `max_keep` (above PREFIX_KEEP) resolves growing prefixes of the
ranking sparsely instead of blocks.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F

from talnet.model.matching import pairwise_tiou

NMS_BLOCK = 128  # candidates resolved per step when only the first max_keep are wanted
SMALL_PAIRS = 1 << 18  # per-group NMS with fewer pairs than this is resolved whole at once
SPARSE_PAIRS = 1 << 20  # a group with more pairs than this is resolved on its overlap graph
PREFIX_KEEP = 2048  # nms of a large group keeping more than this: sparse prefixes, not blocks
SPARSE_CHUNK = 1 << 20  # candidate pairs expanded and tested at once on the sparse path


def nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    max_keep: int | None = None,
) -> torch.Tensor:
    """Indices of the segments (N, 2) kept by greedy NMS, in decreasing score order; with
    `max_keep`, the first max_keep of them (the same as cutting the full list)."""
    order = scores.argsort(descending=True)
    ordered = segments[order]
    n = len(order)
    if max_keep is None or max_keep >= n:
        return order[_greedy_sorted(ordered[None], iou_threshold)[0]]
    if max_keep <= PREFIX_KEEP or not _sparse_fits(n, iou_threshold):
        return order[greedy_prefix(ordered, iou_threshold, max_keep)]
    # a prefix of the ranking is resolved alone: grow it until it keeps enough
    part = min(n, 2 * max_keep)
    while True:
        kept = torch.nonzero(greedy_sparse(ordered[:part], iou_threshold)).flatten()
        if len(kept) >= max_keep or part == n:
            return order[kept[:max_keep]]
        part = min(n, 4 * part)


def greedy_prefix(
    segments: torch.Tensor, iou_threshold: float, max_keep: int, block: int = NMS_BLOCK
) -> torch.Tensor:
    """Positions of the first `max_keep` segments kept by greedy NMS, for segments (N, 2)
    sorted by score, resolving `block` candidates at a time: each block's candidates that no
    earlier kept segment suppresses are suppressed among themselves, in order."""
    kept = torch.zeros(0, dtype=torch.long, device=segments.device)
    for start in range(0, len(segments), block):
        candidates = segments[start : start + block]
        if len(kept):
            suppressed = _overlaps(segments[kept][None], candidates[None], iou_threshold)[0]
            alive = torch.nonzero(~suppressed.any(dim=0)).flatten()
            candidates = candidates[alive]
        else:
            alive = torch.arange(len(candidates), device=segments.device)
        survivors = alive[_greedy_sorted(candidates[None], iou_threshold)[0]]
        kept = torch.cat([kept, start + survivors])
        if len(kept) >= max_keep:
            break
    return kept[:max_keep]


def batched_nms(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    top: int | None = None,
    score_threshold: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group greedy NMS: segments (G, N, 2), scores (G, N) -> keep mask (G, N) and
    scores with suppressed entries set to 0 (groups are e.g. the classes of one video).

    With `top`, only what decides the `top` best kept scores above `score_threshold` is
    resolved (see `_greedy_top`; small cases are resolved whole); every other entry reads as
    suppressed. The `top` best returned scores above the threshold, and their ranking, are
    those of the full answer."""
    order = scores.argsort(dim=1, descending=True)
    sorted_segments = torch.gather(segments, 1, order[..., None].expand(-1, -1, 2))
    if top is None or segments.shape[0] * segments.shape[1] ** 2 <= SMALL_PAIRS:
        keep_sorted = _greedy_sorted(sorted_segments, iou_threshold)
    else:
        sorted_scores = torch.gather(scores, 1, order)
        keep_sorted = _greedy_top(
            sorted_segments, sorted_scores, iou_threshold, top, score_threshold
        )
    keep = torch.zeros_like(keep_sorted).scatter(1, order, keep_sorted)
    return keep, torch.where(keep, scores, torch.zeros_like(scores))


def _greedy_top(
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    top: int,
    score_threshold: float,
) -> torch.Tensor:
    """Keep mask (G, N) of per-group greedy NMS for segments and scores sorted by score in each
    group, resolved only as far as the `top` best kept scores above `score_threshold` need;
    unresolved entries are False. A segment's fate depends only on better ones of its group,
    so the entries above a score bound are a prefix of each group that can be resolved alone:
    bounds that take in 2, 8, 32... times `top` entries are tried until the best `top` kept
    are known and untied, else (or once a prefix is half the width) everything that counts,
    the entries above the threshold (those below come last and cannot suppress them)."""
    g, n, _ = segments.shape
    width = int((scores > score_threshold).sum(dim=1).max())  # every entry that counts
    segments, scores = segments[:, :width], scores[:, :width]
    steps = torch.arange(width, device=segments.device)
    relevant = scores > score_threshold
    ranked = scores[relevant].sort(descending=True).values
    taken = 2 * top
    while taken < len(ranked):
        upto = (scores >= ranked[taken - 1]).sum(dim=1)  # per group: the prefix above the bound
        part = int(upto.max())
        if 2 * part > width:
            break  # about as costly as resolving everything
        prefix = steps[None, :part] < upto[:, None]
        keep = _greedy_sorted(segments[:, :part], iou_threshold, prefix)
        resolved = int(upto.sum())  # ties at the bound may take in everything that counts
        if resolved == len(ranked) or _top_known(
            scores[:, :part], keep, top, float(ranked[resolved])
        ):
            return F.pad(keep, (0, n - part))
        taken *= 4
    return F.pad(_greedy_sorted(segments, iou_threshold, relevant), (0, n - width))


def _top_known(scores: torch.Tensor, keep: torch.Tensor, top: int, unresolved: float) -> bool:
    """Whether the `top` best kept scores are all above every unresolved score and pairwise
    distinct, the next one too (so their ranking cannot depend on how ties are broken)."""
    kept = scores[keep]
    if kept.numel() < top:
        return False
    best = kept.topk(min(top + 1, kept.numel())).values
    head = best[:top]
    untied = bool((head[:-1] > head[1:]).all()) and (len(best) == top or best[top] < head[-1])
    return untied and float(head[-1]) > unresolved


def vote_boundaries(
    kept: torch.Tensor,
    rows: torch.Tensor,
    segments: torch.Tensor,
    scores: torch.Tensor,
    iou_threshold: float,
    power: float = 1.0,
    chunk: int = 256,
) -> torch.Tensor:
    """Boundary voting after NMS: each kept segment (M, 2) of group `rows` (M,) moved to the
    mean of its group's candidates, segments (G, N, 2) weighted by their scores (G, N) to the
    `power`, that overlap it by tIoU >= `iou_threshold` (itself among them). The cluster NMS
    suppressed agrees on where an instance is better than its single best member does."""
    out = kept.clone()
    for lo in range(0, len(kept), chunk):
        part = slice(lo, lo + chunk)
        cand, weight = segments[rows[part]], scores[rows[part]].clamp_min(0) ** power
        iou = pairwise_tiou(kept[part, None, :], cand)[:, 0]  # (m, N)
        weight = torch.where(iou >= iou_threshold, weight, torch.zeros_like(weight))
        total = weight.sum(dim=1, keepdim=True)
        voted = (weight[..., None] * cand).sum(dim=1) / total.clamp_min(1e-12)
        out[part] = torch.where(total > 0, voted, kept[part])
    return out


def soft_nms(
    segments: torch.Tensor, scores: torch.Tensor, sigma: float = 0.5, max_out: int | None = None
) -> torch.Tensor:
    """Gaussian Soft-NMS per group: segments (G, N, 2), scores (G, N) -> decayed scores (G, N).

    Each round picks every group's best remaining segment and multiplies the others' scores by
    exp(-tIoU^2 / sigma); the picked score is final, and only positive scores are picked. With
    `max_out`, only what decides the `max_out` best final scores of all groups is resolved (the
    rest read 0), in memory linear in G x N (no N x N matrix): scores only fall, so a prefix of
    each group's ranking above a bound b is resolved alone, exactly as long as its picks stay
    above b; bounds taking in 2, 8, 32... x max_out entries are tried until max_out picks do.
    """
    g, n, _ = segments.shape
    want = max_out or g * n
    order = scores.argsort(dim=1, descending=True, stable=True)
    ranked = torch.gather(scores, 1, order)
    ordered = torch.gather(segments, 1, order[..., None].expand(-1, -1, 2))
    flat = ranked.flatten().sort(descending=True).values
    taken = 2 * want
    while True:
        whole = taken >= flat.numel()
        bound = 0.0 if whole else max(float(flat[taken]), 0.0)
        inside = ranked > bound
        width = int(inside.sum(dim=1).max())
        final = _soft_rounds(
            ordered[:, :width], ranked[:, :width], inside[:, :width], sigma, min(width, want),
            bound, want,
        )  # fmt: skip
        if whole or int((final > bound).sum()) >= want:
            return torch.zeros_like(scores).scatter_(1, order[:, :width], final)
        taken *= 4


def _soft_rounds(
    segments: torch.Tensor,
    scores: torch.Tensor,
    alive: torch.Tensor,
    sigma: float,
    rounds: int,
    floor: float,
    enough: int,
) -> torch.Tensor:
    """Final scores (G, W) of Soft-NMS on segments (G, W, 2) and scores (G, W) of the `alive`
    entries, at most `rounds` picks per group, each group picking while its best is above
    `floor`, until the `enough` best picks of all groups are known; each pick's tIoU with its
    group is computed when it is picked."""
    current = torch.where(alive, scores, torch.zeros_like(scores))
    alive = alive.clone()
    final = torch.zeros_like(scores)
    rows = torch.arange(segments.shape[0], device=scores.device)
    gone = torch.full_like(current, float("-inf"))
    for _ in range(rounds):
        value, best = torch.where(alive, current, gone).max(dim=1)  # (G,)
        live = value > floor
        # every later pick is at most the best left: stop once `enough` picks are above it
        if not bool(live.any()) or int((final > value.max()).sum()) >= enough:
            break
        final[rows[live], best[live]] = value[live]
        alive[rows, best] = False
        iou = pairwise_tiou(segments[rows, best][:, None, :], segments)[:, 0]  # (G, W)
        current = current * torch.exp(-(iou**2) / sigma)
    return final


def _overlaps_above(segments: torch.Tensor, threshold: float) -> torch.Tensor:
    """tIoU > threshold for every pair, (G, N, 2) -> (G, N, N) bool."""
    return _overlaps(segments, segments, threshold)


def _overlaps(a: torch.Tensor, b: torch.Tensor, threshold: float) -> torch.Tensor:
    """tIoU > threshold between a (G, M, 2) and b (G, N, 2) -> (G, M, N) bool (see `_above`)."""
    # contiguous starts and ends: broadcasting strided columns is several times slower
    start_a, end_a = a[..., 0].contiguous(), a[..., 1].contiguous()
    start_b, end_b = b[..., 0].contiguous(), b[..., 1].contiguous()
    return _above(
        start_a[:, :, None], end_a[:, :, None], start_b[:, None, :], end_b[:, None, :], threshold
    )


def _above(
    start_a: torch.Tensor,
    end_a: torch.Tensor,
    start_b: torch.Tensor,
    end_b: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """tIoU > threshold of segments a and b (broadcast), without a division: inter / (la + lb -
    inter) > t  <=>  inter * (1 + t) > t * (la + lb). Both NMS paths test pairs with this."""
    inter = torch.minimum(end_a, end_b)
    inter.sub_(torch.maximum(start_a, start_b)).clamp_min_(0)
    total = ((end_a - start_a) + (end_b - start_b)).mul_(threshold)
    return inter.mul_(1 + threshold) > total


def _greedy_sorted(
    segments: torch.Tensor, iou_threshold: float, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """Keep mask (G, N) of greedy NMS for segments (G, N, 2) already sorted by score; entries
    outside `allowed` (G, N) are neither kept nor suppress others."""
    g, n, _ = segments.shape
    if g * n * n <= SPARSE_PAIRS:
        return _greedy_dense(segments, iou_threshold, allowed)
    if _sparse_fits(n, iou_threshold):
        return torch.stack([
            greedy_sparse(segments[k], iou_threshold, None if allowed is None else allowed[k])
            for k in range(g)
        ])  # fmt: skip
    step = max(1, SPARSE_PAIRS // (n * n))  # many small groups: dense, a few at a time
    return torch.cat([
        _greedy_dense(
            segments[k : k + step], iou_threshold,
            None if allowed is None else allowed[k : k + step],
        )
        for k in range(0, g, step)
    ])  # fmt: skip


def _sparse_fits(n: int, iou_threshold: float) -> bool:
    """Whether a group of n segments goes to `greedy_sparse`: large, and a threshold >= 0 (a
    negative one also suppresses disjoint segments: no sparse graph)."""
    return n * n > SPARSE_PAIRS and iou_threshold >= 0


def greedy_sparse(
    segments: torch.Tensor, iou_threshold: float, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """Keep mask (N,) of greedy NMS for one group of segments (N, 2) sorted by score, from the
    sparse graph of its suppressions: the same answer as `_greedy_dense`, for thresholds >= 0."""
    if iou_threshold < 0:
        raise ValueError(f"greedy_sparse needs a tIoU threshold >= 0, not {iou_threshold}")
    n = len(segments)
    if allowed is not None and not bool(allowed.all()):  # the others take no part at all
        inside = torch.nonzero(allowed).flatten()
        keep = torch.zeros(n, dtype=torch.bool, device=segments.device)
        keep[inside] = greedy_sparse(segments[inside], iou_threshold)
        return keep
    better, worse = _suppressions(segments, iou_threshold)
    return _resolve(n, better, worse)


def _suppressions(segments: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Every pair of segments (N, 2) with tIoU > threshold >= 0, as (better, worse) positions
    (E,) each (better < worse), found without an N x N matrix: see `_candidates`."""
    n, device = len(segments), segments.device
    start, end = segments[:, 0].contiguous(), segments[:, 1].contiguous()
    length = end - start
    index = torch.int32 if n < 2**31 else torch.int64
    found: list[tuple[torch.Tensor, torch.Tensor]] = []
    # tIoU > t >= 0 of segments of lengths >= 0 needs an overlap: the later start of the two
    # lies in [earlier start, earlier end). Sorted by start, each segment's partners are those
    # after it up to the first start >= its end (none for zero-length or touching ones).
    key = _sortable(start)
    by_start = key.argsort(stable=True)
    upto = torch.searchsorted(key[by_start], end[by_start], side="left")
    positions = torch.arange(n, device=device)
    counts = torch.where(length[by_start].isfinite(), upto - positions - 1, 0).clamp_min_(0)
    for owner, partner in _candidates(by_start, positions + 1, counts, by_start):
        ok = _above(start[owner], end[owner], start[partner], end[partner], threshold)
        ok &= length[partner] >= 0  # pairs with a reversed segment are found below
        found.append(_oriented(owner[ok], partner[ok], index))
    # A reversed segment (end < start, never an overlap) still passes the test against every
    # segment whose length is below minus its own (0 > t * (la + lb)): by length, a prefix.
    reversed_ = torch.nonzero(length < 0).flatten()
    if threshold > 0 and len(reversed_):
        key = _sortable(length)
        by_length = key.argsort(stable=True)
        counts = torch.searchsorted(key[by_length], -length[reversed_], side="left")
        for owner, partner in _candidates(reversed_, torch.zeros_like(counts), counts, by_length):
            ok = _above(start[owner], end[owner], start[partner], end[partner], threshold)
            ok &= (length[partner] >= 0) | (owner < partner)  # two reversed: found twice
            found.append(_oriented(owner[ok], partner[ok], index))
    if not found:
        empty = torch.zeros(0, dtype=index, device=device)
        return empty, empty
    return torch.cat([pair[0] for pair in found]), torch.cat([pair[1] for pair in found])


def _oriented(
    a: torch.Tensor, b: torch.Tensor, index: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs of positions as (better, worse) = (smaller, larger), stored as `index`."""
    return torch.minimum(a, b).to(index), torch.maximum(a, b).to(index)


def _sortable(values: torch.Tensor) -> torch.Tensor:
    """Values with NaN read as +inf, for `searchsorted` (segments with a NaN pair with none)."""
    return torch.where(values.isnan(), torch.inf, values)


def _candidates(
    owners: torch.Tensor, firsts: torch.Tensor, counts: torch.Tensor, order: torch.Tensor
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Candidate pairs (owner, partner) as position tensors, at most about SPARSE_CHUNK at a
    time: owners[k] with order[firsts[k]], ..., order[firsts[k] + counts[k] - 1]."""
    ends = counts.cumsum(0)
    begin, done = 0, 0
    while begin < len(counts):
        stop = int(torch.searchsorted(ends, done + SPARSE_CHUNK, side="right"))
        stop = max(stop, begin + 1)  # one owner with more partners than a chunk goes alone
        size = int(ends[stop - 1]) - done
        if size:
            count = counts[begin:stop]
            owner = torch.repeat_interleave(owners[begin:stop], count, output_size=size)
            shift = firsts[begin:stop] - (ends[begin:stop] - count - done)
            steps = torch.arange(size, device=counts.device)
            yield owner, order[torch.repeat_interleave(shift, count, output_size=size) + steps]
        begin, done = stop, done + size


def _resolve(n: int, better: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """Keep mask (N,) of greedy NMS from its suppression edges better -> worse (E,) each: the
    fixed point of `_greedy_dense`, reached visiting each edge once."""
    # A segment is decided kept when all its better neighbours are decided suppressed, and
    # suppressed as soon as one is kept; each round passes the verdicts of the newly decided
    # along their edges. The best open segment is always decidable, so at most N rounds: as
    # many as the longest chain of decisions (a few for random scores, 2000 for 3000 sliding
    # windows ranked in time order), each costing only the edges of the newly decided.
    device = better.device
    targets = worse[better.argsort(stable=True)]  # edges grouped by their better end
    first = torch.zeros(n + 1, dtype=torch.long, device=device)
    first[1:] = torch.bincount(better, minlength=n).cumsum(0)
    waiting = torch.bincount(worse, minlength=n)  # better neighbours not yet suppressed
    state = torch.zeros(n, dtype=torch.int8, device=device)  # 0 open, 1 kept, 2 suppressed
    decided = torch.nonzero(waiting == 0).flatten()  # no better neighbour at all: kept
    state[decided] = 1
    kept = torch.ones(len(decided), dtype=torch.bool, device=device)
    none = decided[:0]
    while len(decided):
        news = [none]
        counts = first[decided + 1] - first[decided]
        for from_kept, target in _candidates(kept, first[decided], counts, targets):
            target = target.long()
            hit = target[from_kept]
            hit = hit[state[hit] == 0].unique()
            state[hit] = 2
            freed = target[~from_kept]
            waiting.index_add_(0, freed, torch.full_like(freed, -1, dtype=waiting.dtype))
            freed = freed[(waiting[freed] == 0) & (state[freed] == 0)].unique()
            state[freed] = 1
            news += [freed, hit]
        decided = torch.cat(news)
        kept = state[decided] == 1
    return state == 1


def _greedy_dense(
    segments: torch.Tensor, iou_threshold: float, allowed: torch.Tensor | None = None
) -> torch.Tensor:
    """`_greedy_sorted` with the whole (G, N, N) suppression matrix: fast for small groups."""
    g, n, _ = segments.shape
    if n == 0:
        return torch.zeros(g, 0, dtype=torch.bool, device=segments.device)
    # (G, j, i) as float, so "any kept j suppresses i" is one batched matrix-vector product
    suppresses = _overlaps_above(segments, iou_threshold).triu(diagonal=1).float()
    keep = torch.ones(g, n, dtype=torch.bool, device=segments.device)
    if allowed is not None:
        keep = allowed.clone()
    for _ in range(n):
        new_keep = torch.matmul(keep.float()[:, None, :], suppresses)[:, 0, :] == 0
        if allowed is not None:
            new_keep &= allowed
        if torch.equal(new_keep, keep):
            break
        keep = new_keep
    return keep
