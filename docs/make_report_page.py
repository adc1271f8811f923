"""Make docs/report_page.png (a video page of `talnet report`) and docs/report_index.png.

Run from the repository root: .venv/bin/python docs/make_report_page.py
A synthetic 720p clip with ground truth and predictions goes through `talnet report`; headless
Chromium (Debian's /usr/bin/chromium) opens the pages at 1280x720 and screenshots them.
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
from playwright.sync_api import sync_playwright

FPS, SECONDS, WIDTH, HEIGHT = 10, 40.0, 1280, 720
GT = [
    ("PoleVault", 2.0, 7.5),
    ("LongJump", 10.0, 13.2),
    ("HighJump", 12.5, 16.0),
    ("PoleVault", 19.0, 25.0),
    ("Diving", 27.5, 29.0),
    ("CliffDiving", 31.0, 36.5),
]
PREDICTIONS = [
    ("PoleVault", 0.93, 2.3, 7.1),
    ("PoleVault", 0.88, 18.6, 25.4),
    ("LongJump", 0.81, 9.7, 13.0),
    ("CliffDiving", 0.74, 30.2, 35.9),
    ("HighJump", 0.52, 13.1, 15.7),
    ("Diving", 0.47, 27.0, 29.6),
    ("LongJump", 0.33, 12.0, 16.2),
    ("Diving", 0.21, 31.5, 35.0),
    ("HighJump", 0.12, 20.0, 23.0),
    ("PoleVault", 0.06, 0.0, 12.0),
]
SEEK_TO = "PoleVault"  # the screenshot shows the page after clicking this class's second segment


def make_clip(path: Path) -> None:
    """A gradient with a moving disc and the clip time written on each frame."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    background = np.stack([30 + 50 * xx / WIDTH, 60 + 60 * yy / HEIGHT, 100 + 0 * xx], -1)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.bit_rate = 2_000_000
        stream.options = {"deadline": "realtime", "cpu-used": "8"}  # speed over compression
        for i in range(round(FPS * SECONDS)):
            t = i / FPS
            image = background.astype(np.uint8)
            center = (int(WIDTH * (0.5 + 0.4 * np.sin(0.5 * t))), int(HEIGHT * 0.55))
            cv2.circle(image, center, 70, (240, 190, 40), -1)
            cv2.putText(image, f"t = {t:5.1f} s", (40, 90), cv2.FONT_HERSHEY_SIMPLEX, 2.2,
                        (255, 255, 255), 4, cv2.LINE_AA)  # fmt: skip
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))


def main() -> None:
    docs = Path(__file__).resolve().parent
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "videos").mkdir()
        make_clip(tmp / "videos" / "video_test_0000042.webm")
        gt = {
            "database": {
                "video_test_0000042": {
                    "subset": "test",
                    "duration": SECONDS,
                    "fps": FPS,
                    "annotations": [{"label": c, "segment": [s, e]} for c, s, e in GT],
                }
            }
        }
        dets = {
            "results": {
                "video_test_0000042": [
                    {"label": c, "score": p, "segment": [s, e]} for c, p, s, e in PREDICTIONS
                ]
            }
        }
        (tmp / "gt.json").write_text(json.dumps(gt))
        (tmp / "det.json").write_text(json.dumps(dets))
        command = [
            sys.executable, "-m", "talnet.cli.main", "report", "--ground-truth",
            str(tmp / "gt.json"), "--predictions", str(tmp / "det.json"), "--video-dir",
            str(tmp / "videos"), "--out", str(tmp / "report"),
        ]  # fmt: skip
        subprocess.run(command, check=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto((tmp / "report/video/video_test_0000042.html").as_uri())
            page.wait_for_selector("body[data-ready='1']", state="attached")
            page.evaluate("document.getElementById('player').muted = true")
            page.fill("#score", "0.1")
            page.evaluate(  # a function, so evaluate does not wait for the promise itself
                "() => { window.seeked = new Promise(r => document.getElementById('player')"
                ".addEventListener('seeked', r, {once: true})); }"
            )
            page.click(f".seg.gt[data-label='{SEEK_TO}'] >> nth=1")
            page.evaluate("window.seeked")
            page.wait_for_timeout(300)
            page.screenshot(path=str(docs / "report_page.png"))
            page.goto((tmp / "report/index.html").as_uri())
            page.screenshot(path=str(docs / "report_index.png"))
            browser.close()
    print(f"wrote {docs / 'report_page.png'} and {docs / 'report_index.png'}")


if __name__ == "__main__":
    main()
