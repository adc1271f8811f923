"""GPU checks and timings (I3D, TAL-Net forward, CUDA training with and without AMP); the same
as `talnet bench --only cuda`. Prints a note and exits where no CUDA device exists."""

import sys

from talnet.bench.cuda import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
