"""Evaluation speed: vectorized mAP against a straightforward loop, on a THUMOS-sized case.

The case has THUMOS'14 test's shape: 213 videos, 20 classes, about 3,400 ground-truth instances
(16 per video), 200 detections per video. The baseline follows the reference evaluator's loops
(per class, per prediction, per threshold, scanning ground truth by tIoU) without pandas.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from talnet.bench.probe import probe_line
from talnet.evaluate.detection import THUMOS_TIOUS, evaluate_detection, interpolated_ap
from talnet.evaluate.proposals import evaluate_proposals
from talnet.io.types import Annotation, Detection, Detections, GroundTruth, VideoInfo


def thumos_sized_case(
    seed: int = 0,
    videos: int = 213,
    classes: int = 20,
    instances_per_video: int = 16,
    detections_per_video: int = 200,
) -> tuple[GroundTruth, Detections]:
    """Random ground truth and detections shaped like THUMOS'14 test and a TAL-Net output.

    Each video shows one or two classes; detections are jittered copies of its instances
    (some with the wrong class) and random segments, with random scores.
    """
    rng = np.random.default_rng(seed)
    labels = [f"class{c:02d}" for c in range(classes)]
    gt: GroundTruth = {}
    dets: Detections = {}
    for v in range(videos):
        vid = f"video_test_{v:07d}"
        duration = float(rng.uniform(60, 400))
        own = rng.choice(classes, size=int(rng.integers(1, 3)), replace=False)
        n = int(rng.poisson(instances_per_video - 1)) + 1
        length = np.exp(rng.normal(np.log(4.0), 1.0, n)).clip(0.3, 60)
        start = rng.uniform(0, duration - length)
        inst_label = rng.choice(own, size=n)
        anns = [
            Annotation(labels[c], float(s), float(s + ln))
            for c, s, ln in zip(inst_label, start, length, strict=True)
        ]
        gt[vid] = VideoInfo(vid, "test", duration, 30.0, anns)

        src = rng.integers(0, n, detections_per_video)
        jitter = rng.normal(0, 0.25, (detections_per_video, 2)) * length[src, None]
        seg = np.stack([start[src], start[src] + length[src]], axis=1) + jitter
        rand = rng.random(detections_per_video) < 0.5
        r_len = np.exp(rng.normal(np.log(4.0), 1.0, detections_per_video))
        r_start = rng.uniform(0, duration, detections_per_video)
        seg[rand] = np.stack([r_start, r_start + r_len], axis=1)[rand]
        seg = np.sort(seg, axis=1)
        label = np.where(
            rng.random(detections_per_video) < 0.7,
            inst_label[src],
            rng.integers(0, classes, detections_per_video),
        )
        score = rng.random(detections_per_video)
        dets[vid] = [
            Detection(labels[c], float(a), float(b), float(s))
            for c, (a, b), s in zip(label, seg, score, strict=True)
        ]
    return gt, dets


def straightforward_map(
    gt: GroundTruth, dets: Detections, tious: tuple[float, ...] = THUMOS_TIOUS
) -> np.ndarray:
    """mAP per threshold by the reference's loops, written plainly (the speed baseline)."""
    classes: dict[str, int] = {}
    gt_rows: list[tuple[str, int, float, float]] = []
    for vid, info in gt.items():
        for a in info.annotations:
            if a.label != "Ambiguous":
                classes.setdefault(a.label, len(classes))
                gt_rows.append((vid, classes[a.label], a.start, a.end))
    ap = np.zeros((len(tious), len(classes)))
    for c in range(len(classes)):
        class_gt = [r for r in gt_rows if r[1] == c]
        preds = [
            (vid, d.start, d.end, d.score)
            for vid, items in dets.items()
            if vid in gt
            for d in items
            if classes.get(d.label) == c
        ]
        if not preds:
            continue
        by_video: dict[str, list[int]] = {}
        for i, r in enumerate(class_gt):
            by_video.setdefault(r[0], []).append(i)
        order = np.array([p[3] for p in preds]).argsort()[::-1]
        locked = np.full((len(tious), len(class_gt)), False)
        tp = np.zeros((len(tious), len(preds)))
        for rank, j in enumerate(order):
            vid, start, end = preds[j][:3]
            local = by_video.get(vid, [])
            if not local:
                continue
            seg = np.array([class_gt[i][2:] for i in local])
            inter = (np.minimum(end, seg[:, 1]) - np.maximum(start, seg[:, 0])).clip(0)
            union = (seg[:, 1] - seg[:, 0]) + (end - start) - inter
            tiou = inter / union
            ranked = tiou.argsort()[::-1]
            for t, thr in enumerate(tious):
                for r in ranked:
                    if tiou[r] < thr:
                        break
                    if not locked[t, local[r]]:
                        locked[t, local[r]] = True
                        tp[t, rank] = 1
                        break
        tp_cum = np.cumsum(tp, axis=1)
        fp_cum = np.cumsum(1 - tp, axis=1)
        ap[:, c] = interpolated_ap(tp_cum / (tp_cum + fp_cum), tp_cum / len(class_gt))
    return ap.mean(axis=1)


def run(quick: bool = False) -> None:
    """Print times of the vectorized and straightforward mAP, their ratio, and proposal AR.

    Both wall and CPU (process) time: on a shared machine CPU time is the steadier of the two.
    """
    print(probe_line())
    gt, dets = thumos_sized_case()
    n_gt = sum(len(info.annotations) for info in gt.values())
    n_det = sum(len(items) for items in dets.values())
    print(f"case: {len(gt)} videos, 20 classes, {n_gt} ground truths, {n_det} detections")
    repeats = 3 if quick else 7
    fast = _times(lambda: evaluate_detection(gt, dets), repeats)
    slow = _times(lambda: straightforward_map(gt, dets), 1 if quick else 2)
    diff = np.abs(evaluate_detection(gt, dets).mAP - straightforward_map(gt, dets)).max()
    print(f"{'':36s} {'wall s':>8s} {'cpu s':>8s}")
    print(f"{'mAP, tIoU 0.1-0.7, vectorized':36s} {fast[0]:8.3f} {fast[1]:8.3f}")
    print(f"{'mAP, tIoU 0.1-0.7, straightforward':36s} {slow[0]:8.3f} {slow[1]:8.3f}")
    print(
        f"{'ratio':36s} {slow[0] / fast[0]:7.1f}x {slow[1] / fast[1]:7.1f}x"
        f"   (largest mAP difference {diff:.1e})"
    )
    prop = _times(lambda: evaluate_proposals(gt, dets), repeats)
    print(f"{'AR@AN, AN 1-1000, tIoU 0.5-1.0':36s} {prop[0]:8.3f} {prop[1]:8.3f}")
    print(probe_line())


def _times(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Best wall and best CPU time of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - w)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)
