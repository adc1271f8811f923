"""Labels that imply others (docs/design.md §4): THUMOS'14 labels every CliffDiving instance
Diving as well, on the same segment. A softmax classifier can give such a segment only one of
the two classes, so the other (here Diving, where the classifier learned CliffDiving) scores
low on the instances they share and loses them to background detections. Learned from the
training annotations: label a implies label b when nearly every instance of a has an instance
of b on the same segment; detection then scores b as the probability of b or of any label that
implies it (the classes are exclusive in the softmax: their sum)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import torch

from talnet.errors import TalnetError
from talnet.io.types import GroundTruth
from talnet.model.matching import pairwise_tiou

# Two instances are on the same segment from this tIoU (annotators' rounding, not a near miss).
SAME_SEGMENT_TIOU = 0.9
# a implies b when at least this share of a's training instances (and at least MIN_INSTANCES of
# them) are on the same segment as an instance of b.
IMPLIED_SHARE = 0.9
MIN_INSTANCES = 2


def learn_implications(gt: GroundTruth, classes: Sequence[str]) -> list[list[str]]:
    """The pairs [a, b] of `classes` (in class order) where label a implies label b in `gt`,
    closed under chaining (a implies b implies c: a implies c)."""
    known = set(classes)
    count: dict[str, int] = defaultdict(int)
    together: dict[tuple[str, str], int] = defaultdict(int)
    for info in gt.values():
        anns = [a for a in info.annotations if a.label in known]
        segments = torch.tensor([[a.start, a.end] for a in anns], dtype=torch.float64)
        for i, a in enumerate(anns):  # one row at a time: memory linear in the instances
            same = pairwise_tiou(segments[i : i + 1], segments)[0] >= SAME_SEGMENT_TIOU
            count[a.label] += 1
            for b in {anns[j].label for j in torch.nonzero(same)[:, 0].tolist()} - {a.label}:
                together[a.label, b] += 1
    direct = [[a, b] for (a, b), n in together.items()
              if count[a] >= MIN_INSTANCES and n >= IMPLIED_SHARE * count[a]]  # fmt: skip
    implies = _relation(direct, classes)
    np.fill_diagonal(implies, False)
    return [[classes[a], classes[b]] for a, b in zip(*np.nonzero(implies), strict=True)]


def implication_matrix(pairs: Sequence[Sequence[str]], classes: Sequence[str]) -> torch.Tensor:
    """(C, C) float: row b has ones at b and at every class that implies b (chains followed),
    so that class probabilities p (..., C) become p @ M.T, each class's the probability of it or
    of a label implying it. Unknown labels are an error (detect.implied_labels names the
    model's classes)."""
    implies = _relation(pairs, classes)
    np.fill_diagonal(implies, True)
    return torch.from_numpy(implies.T.astype(np.float32))


def _relation(pairs: Sequence[Sequence[str]], classes: Sequence[str]) -> np.ndarray:
    """(C, C) bool: [a, b] true where a implies b, directly or by a chain."""
    index = {name: i for i, name in enumerate(classes)}
    implies = np.zeros((len(classes), len(classes)), dtype=bool)
    for pair in pairs:
        unknown = [name for name in pair if name not in index]
        if unknown:
            raise TalnetError(
                f"detect.implied_labels: {unknown} not among the model's {len(classes)} classes"
            )
        implies[index[pair[0]], index[pair[1]]] = True
    return _closed(implies)


def _closed(implies: np.ndarray) -> np.ndarray:
    """The transitive closure of a (C, C) boolean relation (Warshall)."""
    implies = implies.copy()
    for k in range(len(implies)):
        implies |= implies[:, k : k + 1] & implies[k : k + 1, :]
    return implies
