"""Which files to extract: videos named explicitly, plus those directly inside given folders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from talnet.errors import TalnetError
from talnet.video.decode import VIDEO_EXTENSIONS


@dataclass
class VideoList:
    """The videos found, and the files in the folders that were not taken."""

    videos: list[Path]
    ignored: list[tuple[Path, str]] = field(default_factory=list)  # files not taken, and why


def collect_videos(inputs: Sequence[str | Path]) -> VideoList:
    """Files named explicitly, plus the files with video extensions directly inside folders.

    Refuses two inputs with the same file stem, since the stem is the video id.
    """
    found = VideoList([])
    for item in map(Path, inputs):
        if item.is_dir():
            for child in sorted(item.iterdir()):
                if child.name.startswith("."):
                    continue
                if child.is_file() and child.suffix.lower() in VIDEO_EXTENSIONS:
                    found.videos.append(child)
                else:
                    kind = "a folder (not searched)" if child.is_dir() else "not a video extension"
                    found.ignored.append((child, f"skipped: {kind}"))
        elif item.exists():
            found.videos.append(item)
        else:
            raise TalnetError("no such file or folder", item)
    seen: dict[str, Path] = {}
    for path in found.videos:
        if path.stem in seen:
            raise TalnetError(
                f"two videos share the id {path.stem!r}: {seen[path.stem]} and {path}"
            )
        seen[path.stem] = path
    if not found.videos:
        raise TalnetError(f"no videos found in {', '.join(map(str, inputs))}")
    return found


__all__ = ["VideoList", "collect_videos"]
