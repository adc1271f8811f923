"""Kinetics-400 labels for a video with the RGB I3D: the quickest proof that decoding,
preprocessing and weights are right (a wrong colour order or scale shows in the labels).

The video is decoded at 25 fps (Kinetics' rate), shorter side 256, centre crop 224, pixels in
[-1, 1]; cut into clips of `clip_frames`; each clip's logits are averaged over time as the
public model does, and the clips' logits are averaged, weighted by their frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from talnet.errors import TalnetError
from talnet.video.decode import DecodeOptions, VideoReader
from talnet.video.i3d import InceptionI3d
from talnet.video.windows import scaled_rgb

KINETICS_FPS = 25.0
MIN_CLIP = 16  # frames: the temporal pooling of the logits needs at least 9; 16 as in training


def kinetics400_labels() -> list[str]:
    """The 400 Kinetics class names in the order of the model's logits (alphabetical)."""
    text = resources.files("talnet.video").joinpath("kinetics400.txt").read_text("utf-8")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    assert len(labels) == 400, "talnet/video/kinetics400.txt must hold 400 names"
    return labels


@dataclass(frozen=True)
class Classification:
    """Class probabilities of one video (or time range) and the frames they come from."""

    probabilities: np.ndarray  # (400,), softmax of the averaged logits
    labels: list[str]
    frames: int  # frames at 25 fps that went through the model
    clips: int

    def top(self, k: int = 5) -> list[tuple[str, float]]:
        """The k most probable labels, best first."""
        order = np.argsort(-self.probabilities, kind="stable")[:k]
        return [(self.labels[i], float(self.probabilities[i])) for i in order]


def clip_logits(model: InceptionI3d, frames: np.ndarray) -> np.ndarray:
    """(T, 224, 224, 3) uint8 RGB frames -> (400,) logits averaged over time."""
    x = scaled_rgb(torch.from_numpy(frames).permute(3, 0, 1, 2)[None])
    with torch.inference_mode():
        return model(x).mean(dim=2)[0].float().numpy()


def classify_video(
    path: str | Path,
    model: InceptionI3d,
    start: float = 0.0,
    end: float | None = None,
    clip_frames: int = 64,
    progress: bool = True,
) -> Classification:
    """Kinetics-400 probabilities of `path` between `start` and `end` seconds (default: all)."""
    if clip_frames < MIN_CLIP:
        raise TalnetError(f"clips need at least {MIN_CLIP} frames, got {clip_frames}")
    if start < 0 or (end is not None and end <= start):
        raise TalnetError(f"bad time range: start {start}, end {end}")
    first = int(np.ceil(start * KINETICS_FPS - 1e-9))
    last = None if end is None else int(np.ceil(end * KINETICS_FPS - 1e-9))  # exclusive
    model = model.eval()
    total, weights, logits = 0, [], []
    pending: list[np.ndarray] = []
    seen = 0
    with VideoReader(path, DecodeOptions(fps=KINETICS_FPS, size=224, short_side=256)) as reader:
        expected = reader.info.expected_frames(KINETICS_FPS)
        bar = tqdm(total=expected, desc="classify", unit="frame", disable=not progress)
        for chunk in reader.chunks():
            lo, hi = max(first - seen, 0), len(chunk) if last is None else last - seen
            seen += len(chunk)
            bar.update(len(chunk))
            if hi > lo:
                pending.extend(chunk[lo:hi])
            while len(pending) >= clip_frames:
                logits.append(clip_logits(model, np.stack(pending[:clip_frames])))
                weights.append(clip_frames)
                total += clip_frames
                del pending[:clip_frames]
            if last is not None and seen >= last:
                break
        bar.close()
    if pending and (len(pending) >= MIN_CLIP or not logits):
        # a short tail (or a short video) is padded by repeating its last frame
        used = len(pending)
        pending.extend([pending[-1]] * max(0, MIN_CLIP - used))
        logits.append(clip_logits(model, np.stack(pending)))
        weights.append(used)
        total += used
    if not logits:
        raise TalnetError(f"no frames between {start} s and {end} s", path)
    mean = np.average(np.stack(logits), axis=0, weights=np.asarray(weights, dtype=np.float64))
    probs = np.exp(mean - mean.max())
    probs /= probs.sum()
    labels = kinetics400_labels()
    if len(probs) != len(labels):
        raise TalnetError(f"the model has {len(probs)} classes, Kinetics-400 has {len(labels)}")
    return Classification(probs, labels, total, len(logits))


__all__ = ["Classification", "classify_video", "clip_logits", "kinetics400_labels"]
