"""Model forward / training speed and memory; the same as `talnet bench --only model`."""

import sys

from talnet.bench.model import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
