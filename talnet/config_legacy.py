"""Configs saved by earlier versions (inside old checkpoints): their keys moved to where the
current config keeps them, so every checkpoint ever written still loads."""

from __future__ import annotations

from typing import Any

# Keys of configs saved before the proposal settings had their own section (old checkpoints).
_LEGACY_KEYS = {
    ("train", "proposals_pre_nms"): "pre_nms_train",
    ("train", "proposals_post_nms"): "post_nms_train",
    ("train", "proposal_nms"): "nms_train",
    ("detect", "proposals_pre_nms"): "pre_nms_test",
    ("detect", "max_proposals"): "post_nms_test",
    ("detect", "proposal_nms"): "nms_test",
}


def upgrade_legacy_keys(raw: Any) -> Any:
    """Move a saved config's old proposal keys into the `proposals` section."""
    if not isinstance(raw, dict) or not any(
        isinstance(raw.get(sec), dict) and key in raw[sec] for sec, key in _LEGACY_KEYS
    ):
        return raw
    raw = {name: dict(value) if isinstance(value, dict) else value for name, value in raw.items()}
    proposals = raw.setdefault("proposals", {})
    for (section, key), new in _LEGACY_KEYS.items():
        if isinstance(raw.get(section), dict) and key in raw[section]:
            proposals.setdefault(new, raw[section].pop(key))
    return raw
