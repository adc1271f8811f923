"""Optical flow between consecutive frames, in the form I3D's flow stream expects.

Methods: "tvl1" (OpenCV's Dual TV-L1, the flow the public I3D flow weights were trained on, with
iteration settings chosen for speed, see TVL1_FAST), "tvl1-default" (OpenCV's defaults, slow),
"tvl1-torch" (the same TV-L1 with TVL1_FAST, batched in PyTorch: flow_torch.py; on a GPU when
extracting with --device cuda), "dis" (OpenCV's DIS, medium preset) and "dis-fast" (DIS, fast
preset). Flow is computed on grayscale frames; values are clipped to [-20, 20] pixels and
scaled to [-1, 1].

Alignment: for n frames, flow[j] is the motion from frame j to frame j + 1, and the last flow is
repeated so the flow sequence has n entries, aligned with the frames (a single frame gets zeros).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.pool
import os
from collections.abc import Callable

import cv2
import numpy as np

from talnet.errors import TalnetError

FLOW_BOUND = 20.0  # pixels; the public I3D flow preprocessing clips here, then divides

# OpenCV's DualTVL1 defaults (tau, lambda, theta as in OpenCV; listed for the record).
TVL1_DEFAULT: dict[str, float] = {
    "tau": 0.25,
    "lambda": 0.15,
    "theta": 0.3,
    "scalesNumber": 5,
    "warpingsNumber": 5,
    "epsilon": 0.01,
    "innerIterations": 30,
    "outerIterations": 10,
    "scaleStep": 0.8,
    "gamma": 0.0,
    "medianFiltering": 5,
}

# Chosen by a grid search on SYNTHETIC_MOTIONS (epsilon, warps, scales, scale step, inner and
# outer iterations): a coarser pyramid (halving per level reaches ~8 px motions better than the
# defaults' 0.8 steps), 2 warps and at most 10x2 iterations per warp: far fewer iterations
# than the defaults, and a lower mean end-point error on these motions, though on the smallest
# motion (1.3 px) alone its error is above theirs. `talnet bench --only video` prints both
# methods' CPU time per 224x224 frame and their end-point error on each motion.
TVL1_FAST: dict[str, float] = {
    **TVL1_DEFAULT,
    "scalesNumber": 4,
    "scaleStep": 0.5,
    "warpingsNumber": 2,
    "innerIterations": 10,
    "outerIterations": 2,
}

FLOW_METHODS = ("tvl1", "tvl1-default", "tvl1-torch", "dis", "dis-fast")


def create_flow(method: str) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function (gray_a, gray_b) (H, W) uint8 -> raw flow (H, W, 2) float32 pixels."""
    if method in ("tvl1", "tvl1-default"):
        algo = cv2.optflow.DualTVL1OpticalFlow_create()
        params = TVL1_FAST if method == "tvl1" else TVL1_DEFAULT
        for name, value in params.items():
            # Setters, because the keyword form of the constructor misspells innerIterations.
            getattr(algo, f"set{name[0].upper()}{name[1:]}")(value)
        return lambda a, b: algo.calc(a, b, None)
    if method == "tvl1-torch":  # imported here: only this method needs torch in a flow worker
        from talnet.video.flow_torch import TorchTVL1

        return TorchTVL1("cpu", params=TVL1_FAST)
    if method in ("dis", "dis-fast"):
        preset = cv2.DISOPTICAL_FLOW_PRESET_MEDIUM
        if method == "dis-fast":
            preset = cv2.DISOPTICAL_FLOW_PRESET_FAST
        algo = cv2.DISOpticalFlow_create(preset)
        return lambda a, b: algo.calc(a, b, None)
    raise TalnetError(f"unknown flow method {method!r}; choose from {', '.join(FLOW_METHODS)}")


def scale_flow(flow: np.ndarray) -> np.ndarray:
    """Raw flow in pixels -> I3D input range: clip to ±FLOW_BOUND, divide by it."""
    return np.clip(flow, -FLOW_BOUND, FLOW_BOUND, dtype=np.float32) / np.float32(FLOW_BOUND)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """(n, H, W, 3) uint8 RGB -> (n, H, W) uint8 luma."""
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def flow_between(frames: np.ndarray, method: str, flow_fn: Callable | None = None) -> np.ndarray:
    """Scaled flow of each consecutive pair: (n, H, W, 3) uint8 -> (n - 1, H, W, 2) float32."""
    flow_fn = flow_fn or create_flow(method)
    gray = to_gray(frames)
    if hasattr(flow_fn, "pairs"):  # tvl1-torch: the whole chunk as batches
        return scale_flow(flow_fn.pairs(gray))
    out = np.empty((max(len(frames) - 1, 0), *frames.shape[1:3], 2), np.float32)
    for j in range(len(out)):
        out[j] = scale_flow(flow_fn(gray[j], gray[j + 1]))
    return out


def pad_last(flows: np.ndarray, n: int, size: tuple[int, int]) -> np.ndarray:
    """Extend (m, H, W, 2) flows to n entries by repeating the last one (zeros if there is none)."""
    if len(flows) >= n:
        return flows[:n]
    tail = flows[-1:] if len(flows) else np.zeros((1, *size, 2), np.float32)
    return np.concatenate([flows, np.repeat(tail, n - len(flows), axis=0)])


# -- worker processes ------------------------------------------------------------------------

_WORKER_FLOW: dict[str, Callable] = {}


def _init_worker(method: str) -> None:
    # One OpenCV (or torch) thread per worker: the pool itself spreads work over the cores.
    cv2.setNumThreads(1)
    if method == "tvl1-torch":
        import torch

        torch.set_num_threads(1)


def _flow_job(method: str, frames: np.ndarray) -> np.ndarray:
    if method not in _WORKER_FLOW:
        _WORKER_FLOW[method] = create_flow(method)
    return flow_between(frames, method, _WORKER_FLOW[method])


class _Done:
    """A result computed at once, with the AsyncResult methods the pipeline uses."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value

    def ready(self) -> bool:
        return True

    def get(self, timeout: float | None = None) -> np.ndarray:
        return self.value


class FlowWorkers:
    """A pool of processes computing flow for chunks of frames, so every core is busy; but
    "tvl1-torch" with a device other than the CPU runs in this process, a chunk per batch on
    that device (the GPU beside I3D)."""

    def __init__(self, method: str, processes: int | None = None, device: str = "cpu") -> None:
        create_flow(method)  # fail early on an unknown method
        self.method = method
        self._pool = None
        if method == "tvl1-torch" and not str(device).startswith("cpu"):
            from talnet.video.flow_torch import TorchTVL1

            self._flow_fn, self.processes = TorchTVL1(device, params=TVL1_FAST), 1
            return
        self.processes = processes or os.cpu_count() or 1
        # "spawn": the parent holds torch's thread pools, which do not survive fork() safely.
        context = multiprocessing.get_context("spawn")
        self._pool = context.Pool(self.processes, initializer=_init_worker, initargs=(method,))

    def submit(self, frames: np.ndarray) -> multiprocessing.pool.AsyncResult | _Done:
        """Start computing flow_between(frames); `.get()` returns (n - 1, H, W, 2) float32."""
        if self._pool is None:
            return _Done(flow_between(frames, self.method, self._flow_fn))
        return self._pool.apply_async(_flow_job, (self.method, frames))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()

    def __enter__(self) -> FlowWorkers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- accuracy on synthetic known motion (benchmarks and tests) -----------------------------------


def textured_image(size: int, seed: int = 0) -> np.ndarray:
    """(size, size) uint8: noise at several scales plus flat shapes, so flow is well posed."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.float32)
    for sigma, weight in ((1, 0.3), (3, 0.5), (8, 0.8), (20, 1.0)):
        noise = cv2.GaussianBlur(
            rng.standard_normal((size, size)).astype(np.float32), (0, 0), sigma
        )
        image += weight * noise / noise.std()
    for _ in range(12):
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(5, max(6, size // 6)))
        value = float(rng.uniform(-3, 3))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), r, value, -1)
        else:
            cv2.rectangle(image, (x, y), (x + r, y + int(r * 0.7)), value, -1)
    image = (image - image.min()) / (image.max() - image.min()) * 255
    return image.astype(np.uint8)


def synthetic_pair(
    motion: tuple[str, float, float], size: int = 224, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two gray frames related by a known affine motion, and the true flow (size, size, 2).

    motion: ("shift", dx, dy) in pixels or ("rotate", degrees, zoom) about the centre. Frames get
    a little sensor noise (σ = 2 gray levels) so no method sees a perfectly clean signal.
    """
    margin = 32
    big = size + 2 * margin
    image = textured_image(big, seed)
    kind, a, b = motion
    if kind == "shift":
        matrix = np.float32([[1, 0, a], [0, 1, b]])
    elif kind == "rotate":
        matrix = cv2.getRotationMatrix2D((big / 2, big / 2), a, b).astype(np.float32)
    else:
        raise ValueError(f"unknown motion {kind!r}")
    moved = cv2.warpAffine(
        image, matrix, (big, big), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
    )
    yy, xx = np.mgrid[0:big, 0:big].astype(np.float32)
    # warpAffine moves the pixel at p to matrix @ p, so the true flow is matrix @ p - p.
    true_flow = np.stack(
        [
            matrix[0, 0] * xx + matrix[0, 1] * yy + matrix[0, 2] - xx,
            matrix[1, 0] * xx + matrix[1, 1] * yy + matrix[1, 2] - yy,
        ],
        axis=-1,
    )
    rng = np.random.default_rng(seed + 1)
    crop = slice(margin, margin + size)

    def noisy(frame: np.ndarray) -> np.ndarray:
        return np.clip(frame[crop, crop] + rng.normal(0, 2, (size, size)), 0, 255).astype(np.uint8)

    return noisy(image), noisy(moved), true_flow[crop, crop]


def end_point_error(flow: np.ndarray, true_flow: np.ndarray, border: int = 16) -> float:
    """Mean Euclidean distance between flows (pixels), ignoring a border where content leaves."""
    diff = (flow - true_flow)[border:-border, border:-border]
    return float(np.sqrt((diff**2).sum(-1)).mean())


SYNTHETIC_MOTIONS: tuple[tuple[str, float, float], ...] = (
    ("shift", 1.3, -0.6),
    ("shift", 4.5, 2.2),
    ("shift", -8.0, 5.5),
    ("rotate", 3.0, 1.0),
    ("rotate", -2.0, 1.04),
)
