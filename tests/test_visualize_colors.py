import subprocess
import sys

import pytest

from talnet.visualize.colors import (
    AMBIGUOUS_COLOR,
    class_color,
    class_color_hex,
    format_time,
    text_color_on,
)

THUMOS_CLASSES = [
    "BaseballPitch", "BasketballDunk", "Billiards", "CleanAndJerk", "CliffDiving",
    "CricketBowling", "CricketShot", "Diving", "FrisbeeCatch", "GolfSwing",
    "HammerThrow", "HighJump", "JavelinThrow", "LongJump", "PoleVault",
    "Shotput", "SoccerPenalty", "TennisSwing", "ThrowDiscus", "VolleyballSpiking",
]  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.0, "00:00.0"),
        (3.14, "00:03.1"),
        (75.25, "01:15.3"),  # half up, not banker's rounding
        (75.24, "01:15.2"),
        (59.96, "01:00.0"),
        (599.9, "09:59.9"),
        (3723.0, "62:03.0"),
        (-1.5, "-00:01.5"),
        (float("nan"), "--:--.-"),
    ],
)
def test_format_time_hand_cases(seconds, text):
    assert format_time(seconds) == text


def test_class_color_is_stable_across_processes():
    # Python's own str hash is salted per process; the colour must not be.
    code = "from talnet.visualize.colors import class_color; print(class_color('CliffDiving'))"
    other = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert other == str(class_color("CliffDiving"))


def test_class_colors_are_valid_and_distinct_for_thumos():
    colors = [class_color(label) for label in THUMOS_CLASSES]
    for rgb in colors:
        assert all(isinstance(c, int) and 0 <= c <= 255 for c in rgb)
        assert max(rgb) >= 200  # bright enough to read on the dark panel
    assert len(set(colors)) == len(colors)
    assert class_color_hex("Diving") == "#{:02x}{:02x}{:02x}".format(*class_color("Diving"))
    assert class_color("ambiguous") == AMBIGUOUS_COLOR


def test_text_color_contrasts():
    assert text_color_on((255, 255, 0)) == (0, 0, 0)
    assert text_color_on((0, 0, 128)) == (255, 255, 255)
