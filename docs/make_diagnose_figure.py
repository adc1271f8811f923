"""Make docs/diagnose.png: the plots of `talnet diagnose` on a small synthetic run.

Run from the repository root: .venv/bin/python docs/make_diagnose_figure.py [WORK_DIR]
Writes a synthetic benchmark (40 training, 20 test videos), trains `cpu_fast` for 3 epochs on one
thread, detects the test videos and diagnoses them (a few minutes on 2 cores); steps whose output
already exists in WORK_DIR are skipped. Prints the diagnosis table it drew.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from talnet.evaluate.diagnose import diagnose
from talnet.io.annotations import load_ground_truth
from talnet.io.results import load_detections
from talnet.visualize.diagnose_plots import overview
from talnet.visualize.plots import save_png

OUT = Path(__file__).with_name("diagnose.png")


def talnet(*args: str) -> None:
    subprocess.run([str(Path(sys.executable).with_name("talnet")), *args], check=True)


def main() -> None:
    work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp())
    gt, det = work / "annotations.json", work / "det.json"
    if not gt.exists():
        talnet("synth", "--out", str(work), "--videos-train", "40", "--videos-test", "20")
    if not (work / "run" / "checkpoint.pt").exists():
        talnet("train", "--ground-truth", str(gt), "--features", str(work / "features"),
               "--out", str(work / "run"), "--config", "cpu_fast", "--epochs", "3",
               "--threads", "1", "--quiet")  # fmt: skip
    if not det.exists():
        talnet("detect", "--checkpoint", str(work / "run" / "checkpoint.pt"), "--features",
               str(work / "features"), "--ground-truth", str(gt), "--subset", "test",
               "--out", str(det), "--quiet")  # fmt: skip
    diagnosis = diagnose(load_ground_truth(gt, subset="test"), load_detections(det))
    print(diagnosis.format_table())
    save_png(overview(diagnosis), OUT, dpi=80)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
