"""Write files so that a crash never leaves a partial output, and keep names inside a folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from talnet.errors import TalnetError


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{path.name}.", suffix=suffix or path.suffix or ".tmp", dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file for writing that replaces `path` when closed without error."""
    with atomic_path(path) as tmp, open(tmp, mode) as handle:
        yield handle


def write_json(path: str | Path, obj: Any, indent: int | None = 1) -> None:
    """Write JSON atomically."""
    with atomic_open(path) as handle:
        json.dump(obj, handle, indent=indent)
        handle.write("\n")


_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+\-=@ ]*$")


def safe_child(folder: str | Path, name: str, suffix: str = "") -> Path:
    """Return folder/name+suffix, refusing names that could escape `folder` (/, .., NUL, …)."""
    if not name or not _SAFE_NAME.match(name) or ".." in name:
        raise TalnetError(f"refusing unsafe file name {name!r} (video id or label)", folder)
    return Path(folder) / f"{name}{suffix}"
