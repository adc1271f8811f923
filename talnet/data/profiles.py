"""Dataset profiles for the synthetic benchmark: the public statistics a synthetic set must
match so that measurements on it speak for the real dataset (docs/design.md §7).

THUMOS'14 test set (213 videos, 3,358 instances, 20 classes), as published.
"""

from __future__ import annotations

# quantile (0..1) -> value; 0 and 1 are the observed minimum and maximum.
THUMOS14_INSTANCES_PER_VIDEO = {0.0: 0, 0.5: 9, 0.75: 20, 0.9: 36, 0.95: 50, 0.99: 83, 1.0: 218}
THUMOS14_VIDEO_SECONDS = {
    0.0: 9.0, 0.1: 48.0, 0.25: 97.0, 0.5: 164.0, 0.75: 230.0, 0.9: 413.0, 0.95: 686.0,
    1.0: 1673.0,
}  # fmt: skip
THUMOS14_ACTION_SECONDS = {
    0.0: 0.2, 0.01: 0.5, 0.1: 1.1, 0.25: 1.7, 0.5: 3.2, 0.75: 6.2, 0.9: 9.1, 0.99: 18.2,
    1.0: 86.6,
}  # fmt: skip
THUMOS14_ACTION_COVERAGE = 0.33  # fraction of all video time inside actions
THUMOS14_VIDEOS = 213
THUMOS14_INSTANCES = 3358
