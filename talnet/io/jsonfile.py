"""Reading JSON inputs with errors that name the file, the entry and the problem."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from talnet.errors import TalnetError


def read_json(path: str | Path, what: str) -> Any:
    """Parse a JSON file; a missing file, bad JSON or a repeated key becomes a TalnetError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TalnetError(f"{what} file not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TalnetError(f"cannot read {what} file: {exc}", path) from exc

    def no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        # json.loads silently keeps the last of two equal keys; a repeated video id loses data.
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise TalnetError(f"malformed JSON: key {key!r} appears twice", path)
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=no_duplicates)
    except json.JSONDecodeError as exc:
        raise TalnetError(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", path
        ) from None


def need_dict(value: Any, where: str, path: str | Path) -> dict[str, Any]:
    """`value` as a JSON object, or a TalnetError saying what `where` should have been."""
    if not isinstance(value, dict):
        raise TalnetError(f"{where}: expected a JSON object, got {type_name(value)}", path)
    return value


def need_key(entry: dict[str, Any], key: str, where: str, path: str | Path) -> Any:
    """entry[key], or a TalnetError naming the missing key."""
    if key not in entry:
        raise TalnetError(f"{where}: missing key {key!r}", path)
    return entry[key]


def finite_number(value: Any, where: str, path: str | Path) -> float:
    """`value` as a finite float; booleans, strings, NaN and infinity are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TalnetError(f"{where}: expected a number, got {value!r}", path)
    if not math.isfinite(value):
        raise TalnetError(f"{where}: expected a finite number, got {value!r}", path)
    return float(value)


def segment_of(value: Any, where: str, path: str | Path) -> tuple[float, float]:
    """A `[start, end]` pair of finite numbers (order is checked by the caller)."""
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise TalnetError(f"{where}: segment must be [start, end], got {value!r}", path)
    return (
        finite_number(value[0], f"{where} segment start", path),
        finite_number(value[1], f"{where} segment end", path),
    )


def type_name(value: Any) -> str:
    """JSON's name for the type of a parsed value, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"
