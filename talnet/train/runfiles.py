"""The files of a training run and the key names of its log: one owner, read by the report.

    RUN_DIR/checkpoint.pt   weights, config, classes, feature meta (and optimizer state)
    RUN_DIR/config.yaml     the config the run trained with
    RUN_DIR/log.jsonl       one JSON object per epoch, keys below
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from talnet.io.atomic import atomic_open
from talnet.model.losses import LOSS_NAMES, TOTAL_LOSS

__all__ = ["LOSS_NAMES", "TOTAL_LOSS"]  # the loss keys of the log, owned by the model

CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "log.jsonl"
CONFIG_FILE = "config.yaml"

# Held-out metrics, present on the epochs that evaluated a validation subset.
VAL_MAP_AT_HALF = "val_mAP@0.5"
VAL_MAP_AVERAGE = "val_mAP_avg"
# Bookkeeping numbers of each epoch's line (neither losses nor metrics).
BOOKKEEPING_KEYS = ("epoch", "lr", "steps", "time_s")


def trim_log(path: Path, epochs: int) -> None:
    """Keep only the log lines of epochs <= `epochs` (a resumed run rewrites the rest)."""
    lines = path.read_text().splitlines() if path.exists() else []
    kept = [ln for ln in lines if ln.strip() and json.loads(ln).get("epoch", 0) <= epochs]
    with atomic_open(path) as handle:
        handle.write("".join(ln + "\n" for ln in kept))


def append_log(path: Path, record: dict[str, Any]) -> None:
    """Append one epoch's record, rewriting the file atomically (a reader never sees half)."""
    existing = path.read_text() if path.exists() else ""
    with atomic_open(path) as handle:
        handle.write(existing + json.dumps(record) + "\n")


def read_log(path: Path) -> list[dict[str, Any]]:
    """The records of a run's log.jsonl, epoch order (empty when there is no log yet)."""
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(ln) for ln in lines if ln.strip()]
