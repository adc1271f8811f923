"""Time `talnet visualize` at 720p against a plain decode + re-encode of the same frame size,
and the per-frame panel drawing against redrawing the whole panel, with the matmul probe.

Run: .venv/bin/python benchmarks/bench_visualize.py [--quick]
(the same as `talnet bench --only visualize`).
"""

import sys

from talnet.bench.probe import probe_line
from talnet.bench.visualize import run

if __name__ == "__main__":
    print(probe_line())
    run(quick="--quick" in sys.argv[1:])
