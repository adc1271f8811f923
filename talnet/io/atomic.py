"""Write files so that a crash never leaves a partial output, and keep names inside a folder."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
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


def check_new_folder(out_dir: str | Path) -> None:
    """Refuse an output folder that exists and holds files (nothing is ever overwritten)."""
    out_dir = Path(out_dir)
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise TalnetError("output folder exists and is not empty; remove it or choose another",
                          out_dir)  # fmt: skip


@contextlib.contextmanager
def atomic_folder(out_dir: str | Path) -> Iterator[Path]:
    """Yield a new temporary folder beside `out_dir` (which must be new or empty); rename it onto
    `out_dir` only if the block succeeds, so a failure leaves no partial output."""
    out_dir = Path(out_dir)
    check_new_folder(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield tmp
        if out_dir.exists():
            out_dir.rmdir()  # empty, checked above
        os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


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
