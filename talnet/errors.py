"""The one exception type the CLI turns into a single line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class TalnetError(Exception):
    """A problem the user can act on: bad input, missing file, inconsistent data."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
