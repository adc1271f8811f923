"""ActivityNet's two spellings of a video id: "ID" in the official ground truth, "v_ID" in
feature files and CUHK's video-level scores. Lookups try both, the id as given first."""

from __future__ import annotations

from collections.abc import Container


def video_id_aliases(video_id: str) -> list[str]:
    """The id, then its twin with the "v_" prefix added or removed."""
    twin = video_id[2:] if video_id.startswith("v_") else f"v_{video_id}"
    return [video_id, twin] if twin else [video_id]


def match_video_id(video_id: str, known: Container[str]) -> str | None:
    """The id itself, or its "v_" twin, whichever `known` holds (None if neither)."""
    for alias in video_id_aliases(video_id):
        if alias in known:
            return alias
    return None


def some_ids(video_ids: list[str], shown: int = 3) -> str:
    """Describe many videos in one line: "N video(s) ('a', 'b', 'c', …)"."""
    names = ", ".join(repr(v) for v in video_ids[:shown])
    more = ", …" if len(video_ids) > shown else ""
    return f"{len(video_ids)} video(s) ({names}{more})"
