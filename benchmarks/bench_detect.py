"""End-to-end detection speed on real-length videos; the same as `talnet bench --only detect`."""

import sys

from talnet.bench.detect import run

if __name__ == "__main__":
    run(quick="--quick" in sys.argv)
