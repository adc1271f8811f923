"""Assembling the report folder: every file is written into a temporary folder beside
REPORT_DIR, which is then renamed onto it, so a failure never leaves a half-written report.

    REPORT_DIR/index.html        the summary page
    REPORT_DIR/diagnosis.html    the DETAD diagnosis (with ground truth and predictions)
    REPORT_DIR/video/<id>.html   one timeline viewer per video
    REPORT_DIR/figures/*.svg     matplotlib figures
    REPORT_DIR/assets/           stylesheet and timeline script, copied from the package
    REPORT_DIR/media/            copies of the videos (only with copy_videos)
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from urllib.parse import quote

from talnet.errors import TalnetError
from talnet.evaluate.diagnose import Diagnosis
from talnet.visualize.report_data import ReportMetrics, VideoPage
from talnet.visualize.report_figures import write_figures
from talnet.visualize.report_html import (
    DIAGNOSIS_PAGE,
    render_diagnosis,
    render_index,
    render_video,
)

ASSETS = Path(__file__).with_name("assets")
# Present in every report folder; only folders carrying it (or empty ones) are replaced.
MARKER = ".talnet-report"


def check_replaceable(out_dir: Path) -> None:
    """Refuse an `out_dir` that is a file, or a non-empty folder that no report wrote."""
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise TalnetError("report output exists and is not a folder", out_dir)
    if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise TalnetError(
            f"report folder exists, is not empty and holds no {MARKER}; refusing to replace it",
            out_dir,
        )


def build_site(
    out_dir: Path,
    metrics: ReportMetrics | None,
    pages: list[VideoPage],
    log: Sequence[Mapping[str, float]] | None,
    sources: Mapping[str, str],
    copy_videos: bool,
    diagnosis: Diagnosis | None = None,
) -> Path:
    """Write the whole site in a temporary folder and swap it onto `out_dir`; returns
    index.html. Links to the videos are relative to `out_dir`, the folder's final place."""
    check_replaceable(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_site(tmp, out_dir, metrics, pages, log, sources, copy_videos, diagnosis)
        _swap_in(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "index.html"


def _swap_in(tmp: Path, out_dir: Path) -> None:
    """Rename the finished site onto out_dir, moving an older report aside first."""
    old = None
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
        os.replace(out_dir, old / "report")
    tmp.chmod(0o755)
    os.replace(tmp, out_dir)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _write_site(
    root: Path,
    final: Path,
    metrics: ReportMetrics | None,
    pages: list[VideoPage],
    log: Sequence[Mapping[str, float]] | None,
    sources: Mapping[str, str],
    copy_videos: bool,
    diagnosis: Diagnosis | None,
) -> None:
    (root / MARKER).write_text("written by talnet report; replaced by the next run\n")
    shutil.copytree(ASSETS, root / "assets", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "figures").mkdir()
    figures = write_figures(root / "figures", metrics, log, diagnosis)
    (root / "video").mkdir()
    for i, page in enumerate(pages):
        src = _video_src(page, root, final, copy_videos)
        neighbours = (pages[i - 1] if i > 0 else None, pages[i + 1] if i + 1 < len(pages) else None)
        _write_html(root / "video" / page.page, render_video(page, src, neighbours))
    if diagnosis is not None:
        _write_html(root / DIAGNOSIS_PAGE, render_diagnosis(diagnosis, pages, figures))
    _write_html(
        root / "index.html",
        render_index(metrics, pages, figures, sources, diagnosis is not None),
    )


def _write_html(path: Path, text: str) -> None:
    # A lone surrogate in an id or label (JSON allows "\\ud800") becomes a character reference
    # instead of a UnicodeEncodeError.
    path.write_text(text, encoding="utf-8", errors="xmlcharrefreplace")


def _video_src(page: VideoPage, root: Path, final: Path, copy_videos: bool) -> str | None:
    """The <video> src of a page: a relative URL to the original file, or to a copy."""
    if page.source is None:
        return None
    if not copy_videos:
        try:
            rel = os.path.relpath(page.source.resolve(), (final / "video").resolve())
            return "/".join(quote(part) for part in Path(rel).parts)
        except ValueError:  # another drive on Windows: no relative path exists
            pass
    media = root / "media"
    media.mkdir(exist_ok=True)
    name = Path(page.page).stem + page.source.suffix.lower()
    shutil.copyfile(page.source, media / name)
    return f"../media/{quote(name)}"
