"""Make docs/visualize_frame.png: one frame of `talnet visualize` on a synthetic 720p clip.

Run from the repository root: .venv/bin/python docs/make_visualize_frame.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

FPS, SECONDS, WIDTH, HEIGHT = 25, 12.0, 1280, 720
FRAME_TIME = 6.8  # seconds: two ground-truth/prediction pairs overlap here
GT = {"CliffDiving": [[1.2, 3.4], [6.0, 8.1]], "Diving": [[9.0, 10.5]]}
PREDICTIONS = [
    ("CliffDiving", 0.91, [1.0, 3.6]),
    ("CliffDiving", 0.84, [5.8, 8.4]),
    ("Diving", 0.55, [6.2, 8.0]),
    ("Diving", 0.47, [8.8, 10.9]),
    ("VolleyballSpiking", 0.12, [2.0, 4.1]),
    ("CliffDiving", 0.05, [0.2, 1.0]),
]


def make_clip(path: Path) -> None:
    """A gradient with a circle and a square moving across it."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([40 + 60 * xx / WIDTH, 70 + 50 * yy / HEIGHT, 110 + 0 * xx], -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for i in range(round(FPS * SECONDS)):
            t = i / FPS
            image = background.astype(np.uint8)
            center = (
                int(WIDTH * (0.5 + 0.35 * np.sin(0.8 * t))),
                int(HEIGHT * (0.55 + 0.2 * np.cos(1.3 * t))),
            )
            cv2.circle(image, center, 60, (240, 190, 40), -1)
            cv2.rectangle(
                image, (int(100 + 40 * t), 500), (int(220 + 40 * t), 620), (200, 60, 80), -1
            )
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def main() -> None:
    out_png = Path(__file__).resolve().parent / "visualize_frame.png"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        make_clip(tmp / "clip.mp4")
        gt = {
            "database": {
                "clip": {
                    "subset": "test",
                    "duration": SECONDS,
                    "annotations": [
                        {"label": label, "segment": seg}
                        for label, segs in GT.items()
                        for seg in segs
                    ],
                }
            }
        }
        dets = {
            "results": {"clip": [{"label": c, "score": s, "segment": g} for c, s, g in PREDICTIONS]}
        }
        (tmp / "gt.json").write_text(json.dumps(gt))
        (tmp / "det.json").write_text(json.dumps(dets))
        command = [
            sys.executable, "-m", "talnet.cli.main", "visualize", "--video", str(tmp / "clip.mp4"),
            "--predictions", str(tmp / "det.json"), "--ground-truth", str(tmp / "gt.json"),
            "--top-k", "5", "--out", str(tmp / "clip_talnet.mp4"),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        with av.open(str(tmp / "clip_talnet.mp4")) as container:
            for frame in container.decode(video=0):
                if frame.time >= FRAME_TIME - 1e-6:
                    cv2.imwrite(str(out_png), frame.to_ndarray(format="bgr24"))
                    break
    print(f"wrote {out_png}")


if __name__ == "__main__":
    main()
