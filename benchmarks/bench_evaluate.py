"""Time talnet's mAP against a straightforward loop on a THUMOS-sized case (213 videos, 20
classes, ~3,400 instances, 200 detections per video), with the matmul probe.

Run: .venv/bin/python benchmarks/bench_evaluate.py [--quick]
(the same as `talnet bench --only evaluate`).
"""

import sys

from talnet.bench.evaluate import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv[1:])
