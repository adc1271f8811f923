"""Visual conventions shared by the annotated video and the HTML report: class colours, times."""

from __future__ import annotations

import colorsys
import hashlib
import math

# Instances marked "Ambiguous" (THUMOS'14) are not a class; show them in a neutral grey.
AMBIGUOUS_COLOR: tuple[int, int, int] = (150, 150, 150)


def class_color(label: str) -> tuple[int, int, int]:
    """Return the (r, g, b) colour of a class, derived from a hash of its name.

    A hash (not an index into the sorted labels) keeps a class the same colour on every page and
    in every video, whatever other classes appear. Saturation and value stay high enough to read
    on both a dark panel and white pages.
    """
    if label.lower() == "ambiguous":
        return AMBIGUOUS_COLOR
    # md5 rather than hash(): Python's str hash changes between processes.
    digest = hashlib.md5(label.encode("utf-8")).digest()
    hue = int.from_bytes(digest[:4], "big") / 2**32
    saturation = 0.60 + 0.30 * digest[4] / 255
    value = 0.80 + 0.18 * digest[5] / 255
    r, g, b = colorsys.hsv_to_rgb(hue, saturation, value)
    return round(r * 255), round(g * 255), round(b * 255)


def class_color_hex(label: str) -> str:
    """Return the class colour as a CSS hex string `#rrggbb`."""
    r, g, b = class_color(label)
    return f"#{r:02x}{g:02x}{b:02x}"


def text_color_on(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever reads better on a background of colour `rgb`."""
    r, g, b = rgb
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    return (0, 0, 0) if luma > 140 else (255, 255, 255)


def format_time(seconds: float) -> str:
    """Format seconds as `mm:ss.s`, e.g. 75.25 -> "01:15.3"; minutes grow past 59 (no hours)."""
    if not math.isfinite(seconds):
        return "--:--.-"
    sign = "-" if seconds < 0 else ""
    # Round half up to tenths first so 59.96 s becomes 01:00.0, never 00:60.0.
    tenths = math.floor(abs(seconds) * 10 + 0.5)
    minutes, tenths = divmod(tenths, 600)
    return f"{sign}{minutes:02d}:{tenths // 10:02d}.{tenths % 10}"
