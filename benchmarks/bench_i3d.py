"""I3D feature speed on this machine: `python benchmarks/bench_i3d.py [--quick]`."""

from __future__ import annotations

import argparse

from talnet.bench.i3d import run

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the ~1 minute compile")
    run(quick=parser.parse_args().quick)
