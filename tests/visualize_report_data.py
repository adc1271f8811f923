"""Inputs for the report tests: ground truth, predictions and a small real WebM video."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np

XSS = "<script>alert(1)</script>"
UNSAFE_ID = "../<img src=x onerror=alert(2)>"
VIDEO_SECONDS = 12.0

GROUND_TRUTH = {
    "database": {
        "vid_a": {
            "subset": "test",
            "duration": VIDEO_SECONDS,
            "fps": 10.0,
            "annotations": [
                {"label": "LongJump", "segment": [1.0, 3.0]},
                {"label": XSS, "segment": [4.0, 6.0]},
                {"label": "HighJump", "segment": [2.5, 5.0]},
                {"label": "LongJump", "segment": [8.0, 10.0]},
            ],
        },
        "vid_b": {
            "subset": "Test",
            "duration": 40.0,
            "annotations": [{"label": "HighJump", "segment": [10.0, 30.0]}],
        },
        UNSAFE_ID: {
            "subset": "test",
            "duration": 20.0,
            "annotations": [{"label": "LongJump", "segment": [5.0, 9.0]}],
        },
        "train_only": {
            "subset": "validation",
            "duration": 30.0,
            "annotations": [{"label": "LongJump", "segment": [1.0, 2.0]}],
        },
    }
}

PREDICTIONS = {
    "results": {
        "vid_a": [
            {"label": "LongJump", "score": 0.9, "segment": [1.2, 3.1]},
            {"label": XSS, "score": 0.55, "segment": [4.1, 6.5]},
            {"label": "HighJump", "score": 0.3, "segment": [2.0, 5.0]},
            {"label": "LongJump", "score": 0.12, "segment": [7.0, 9.5]},
            {"label": "HighJump", "score": 0.05, "segment": [9.0, 11.0]},
        ],
        "vid_b": [
            {"label": "HighJump", "score": 0.7, "segment": [12.0, 28.0]},
            {"label": "LongJump", "score": 0.2, "segment": [1.0, 4.0]},
        ],
        UNSAFE_ID: [{"label": "LongJump", "score": 0.4, "segment": [5.5, 8.0]}],
        "no_gt_video": [{"label": "LongJump", "score": 0.5, "segment": [1.0, 2.0]}],
    }
}


def make_webm(path: Path, seconds: float = VIDEO_SECONDS, fps: int = 10) -> Path:
    """A VP8 WebM (which Chromium always plays) whose brightness ramps with time."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        for i in range(round(seconds * fps)):
            frame = np.zeros((96, 160, 3), np.uint8)
            frame[..., 1] = 255 * i // round(seconds * fps)
            frame[:, (4 * i) % 150 : (4 * i) % 150 + 10, 0] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_inputs(folder: Path) -> tuple[Path, Path, Path]:
    """Write gt.json, det.json and videos/vid_a.webm under `folder`; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    gt_path = folder / "gt.json"
    det_path = folder / "det.json"
    gt_path.write_text(json.dumps(GROUND_TRUTH))
    det_path.write_text(json.dumps(PREDICTIONS))
    videos = folder / "videos"
    videos.mkdir(exist_ok=True)
    make_webm(videos / "vid_a.webm")
    return gt_path, det_path, videos
