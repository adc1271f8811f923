"""Temporal intersection over union (tIoU) of segments given as [start, end] in seconds.

The arithmetic is the one ActivityNet's `segment_iou` performs, operation for operation
(intersection clipped at 0, union = length + length - intersection), so values sitting exactly
on a threshold compare the same way as in the reference evaluator.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def tiou_matrix(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """tIoU of every segment of `a` (N, 2) with every segment of `b` (M, 2), as (N, M).

    Symmetric bit for bit: tiou_matrix(a, b) == tiou_matrix(b, a).T.
    """
    a = _segments(a)
    b = _segments(b)
    return tiou_pairs(a[:, None, :], b[None, :, :])


def tiou_pairs(a: ArrayLike, b: ArrayLike) -> np.ndarray:
    """Elementwise tIoU of segments `a` (..., 2) and `b` (..., 2), broadcast together.

    Zero-length segments give 0 against anything longer; two that coincide give NaN (0 / 0),
    as in the reference.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    intersection = (np.minimum(a[..., 1], b[..., 1]) - np.maximum(a[..., 0], b[..., 0])).clip(0)
    union = (b[..., 1] - b[..., 0]) + (a[..., 1] - a[..., 0]) - intersection
    with np.errstate(divide="ignore", invalid="ignore"):
        return intersection / union


def _segments(x: ArrayLike) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.size == 0:
        return arr.reshape(0, 2)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"segments must have shape (N, 2), got {arr.shape}")
    return arr
