"""Speed measurements printed as ratios against a baseline timed in the same run."""
