"""Flow, decoding and extraction speed: `python benchmarks/bench_video.py [--quick]`."""

from __future__ import annotations

import argparse

from talnet.bench.video import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one 4 s extraction (dis, stride 16)")
    run(quick=parser.parse_args().quick)
