"""Feature files (SPEC §6): FEAT_DIR/VIDEO_ID.npy (T, 2048) or FEAT_DIR/STREAM/VIDEO_ID.npy."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_path, safe_child, write_json

META_FILE = "meta.json"


@dataclass
class FeatureMeta:
    """How feature steps map to time, and which streams the arrays hold.

    Step i covers frames [i*stride, i*stride + window) at `fps`; its time is the window's centre.
    """

    fps: float = 30.0
    stride: int = 4
    window: int = 16
    streams: list[str] = field(default_factory=lambda: ["rgb", "flow"])
    # "concat": one (T, sum(dims)) array per video; "folders": one (T, C) array per stream folder.
    layout: str = "concat"
    dims: list[int] | None = None
    extra: dict = field(default_factory=dict)

    def step_to_seconds(self, step: np.ndarray | float) -> np.ndarray | float:
        """Feature step (may be fractional) -> seconds; the one place this conversion lives."""
        return (np.asarray(step) * self.stride + self.window / 2.0) / self.fps

    def seconds_to_step(self, seconds: np.ndarray | float) -> np.ndarray | float:
        """Seconds -> fractional feature step, the inverse of `step_to_seconds`."""
        return (np.asarray(seconds) * self.fps - self.window / 2.0) / self.stride

    @property
    def seconds_per_step(self) -> float:
        return self.stride / self.fps


def write_meta(feat_dir: str | Path, meta: FeatureMeta) -> None:
    """Write FEAT_DIR/meta.json atomically."""
    write_json(Path(feat_dir) / META_FILE, asdict(meta))


def read_meta_file(feat_dir: str | Path) -> FeatureMeta | None:
    """Read FEAT_DIR/meta.json, or None when there is none."""
    path = Path(feat_dir) / META_FILE
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TalnetError(f"cannot read feature meta: {exc}", path) from exc
    known = {k: raw.pop(k) for k in list(raw) if k in FeatureMeta.__dataclass_fields__}
    try:
        meta = FeatureMeta(**known)
    except TypeError as exc:
        raise TalnetError(f"bad feature meta: {exc}", path) from exc
    meta.extra.update(raw)
    return meta


def save_array(
    feat_dir: str | Path, video_id: str, array: np.ndarray, stream: str | None = None
) -> Path:
    """Save one video's features atomically as float32 .npy (in a stream folder if given)."""
    folder = Path(feat_dir) / stream if stream else Path(feat_dir)
    path = safe_child(folder, video_id, ".npy")
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, np.ascontiguousarray(array, dtype=np.float32))
    return path
