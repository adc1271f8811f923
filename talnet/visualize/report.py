"""`talnet report`: a static HTML site of detection results that works offline from file://.

    REPORT_DIR/index.html        mAP table and curves, per-class AP, training curves, videos by AP
    REPORT_DIR/video/<id>.html   one timeline viewer per video (data inline, no fetch)
    REPORT_DIR/figures/*.svg     matplotlib figures
    REPORT_DIR/assets/           stylesheet and timeline script, copied from the package
    REPORT_DIR/media/            copies of the videos (only with copy_videos)

The site is built in a temporary folder beside REPORT_DIR and renamed onto it at the end, so a
failure never leaves a half-written report.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from talnet.errors import TalnetError
from talnet.evaluate.detection import THUMOS_TIOUS, evaluate_detection, precision_recall, video_ap
from talnet.io.annotations import DataWarning, load_ground_truth, select_subset
from talnet.io.atomic import safe_child
from talnet.io.results import load_detections
from talnet.io.types import Detection, Detections, GroundTruth, VideoInfo
from talnet.visualize import plots
from talnet.visualize.colors import class_color_hex, format_time

ASSETS = Path(__file__).with_name("assets")
# Present in every report folder; only folders carrying it (or empty ones) are replaced.
MARKER = ".talnet-report"
# tIoU of the per-class bars, the precision-recall curves and each video's AP.
PAGE_TIOU = 0.5
# Browser-playable containers first: the first match wins when a video exists in several forms.
VIDEO_EXTENSIONS = (".mp4", ".webm", ".m4v", ".ogv", ".mov", ".mkv", ".avi")
# Defence in depth beside escaping: only the report's own files may run or load; no network.
CSP = (
    "default-src 'none'; script-src 'self' file:; style-src 'self' file: 'unsafe-inline'; "
    "img-src 'self' file: data:; media-src 'self' file: blob:"
)

esc = html.escape


@dataclass
class VideoPage:
    """What one video page shows, and where its file and video live."""

    video_id: str
    page: str  # file name under REPORT_DIR/video/
    info: VideoInfo | None
    dets: list[Detection] = field(default_factory=list)
    ap: float | None = None
    source: Path | None = None  # the video file, when found in the video folder


def script_json(obj: object) -> str:
    """JSON safe inside <script type="application/json">: no "</script>", "<!--" or "&" left."""
    # ASCII only: also carries lone surrogates (legal in JSON input) that UTF-8 cannot encode.
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    # Inside JSON these characters only occur in strings, where \\uXXXX means the same thing.
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def page_names(video_ids: Iterable[str]) -> dict[str, str]:
    """A page file name per video id: the id itself when safe_child accepts it, else a sanitized
    stem plus a hash of the id. Names stay unique even on case-insensitive file systems."""
    names: dict[str, str] = {}
    taken: set[str] = set()
    for video_id in video_ids:
        try:
            name = safe_child("video", video_id, ".html").name
        except TalnetError:
            name = ""
        if not name or len(name) > 120 or name.lower() in taken:
            stem = re.sub(r"[^A-Za-z0-9._+=@-]+", "_", video_id)[:60].strip("._-") or "video"
            digest = hashlib.sha1(video_id.encode("utf-8", "surrogatepass")).hexdigest()[:10]
            name = f"{stem}-{digest}.html"
        names[video_id] = name
        taken.add(name.lower())
    return names


def find_videos(video_dir: str | Path) -> dict[str, Path]:
    """Map file stem -> video file for the videos directly in `video_dir` (one listing, no paths
    built from ids). ActivityNet files named "v_ID.mp4" also answer to "ID"."""
    video_dir = Path(video_dir)
    if not video_dir.is_dir():
        raise TalnetError("video folder not found", video_dir)
    rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
    found: dict[str, Path] = {}
    for entry in sorted(video_dir.iterdir(), key=lambda p: rank.get(p.suffix.lower(), 99)):
        if entry.suffix.lower() not in rank or not entry.is_file():
            continue
        found.setdefault(entry.stem, entry)
        if entry.stem.startswith("v_"):
            found.setdefault(entry.stem[2:], entry)
    return found


def read_training_log(path: str | Path) -> list[dict[str, float]]:
    """Read a JSON-lines training log: the finite numbers of each line's object.

    A broken last line is skipped (a run still writing, or killed mid-line); a broken line
    anywhere else is an error.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise TalnetError("training log not found", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TalnetError(f"cannot read training log: {exc}", path) from exc
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    rows: list[dict[str, float]] = []
    for i, (number, line) in enumerate(numbered):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            if i == len(numbered) - 1:
                break
            raise TalnetError(f"line {number}: malformed JSON: {exc.msg}", path) from None
        if not isinstance(obj, dict):
            raise TalnetError(f"line {number}: expected a JSON object", path)
        rows.append(
            {
                str(k): float(v)
                for k, v in obj.items()
                if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            }
        )
    return rows


# Numbers a training log carries beside its losses and metrics.
BOOKKEEPING_KEYS = frozenset(
    {"epoch", "step", "steps", "iter", "iteration", "lr", "learning_rate", "time", "time_s"}
)


def is_loss_key(key: str) -> bool:
    """Whether a training-log key is plotted as a loss: "loss*" and any other number that is not
    bookkeeping (epoch, lr, time, ...) or a metric (mAP, AR), e.g. the trainer's "spn_cls"."""
    if key.startswith("loss"):
        return True
    return key not in BOOKKEEPING_KEYS and "map" not in key.lower() and not key.startswith("AR")


def find_run_files(run_dir: str | Path) -> dict[str, Path]:
    """The files of a training run the report uses: "log", "predictions", "ground_truth".

    RUN_DIR is a training run (log.jsonl beside checkpoint.pt) or a `talnet demo` folder
    (run/log.jsonl, detections.json, data/annotations.json); the first name found wins.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise TalnetError("run folder not found", run_dir)
    candidates = {
        "log": ["log.jsonl", "run/log.jsonl"],
        "predictions": ["detections.json", "predictions.json", "results.json"],
        "ground_truth": ["ground_truth.json", "annotations.json", "data/annotations.json"],
    }
    found = {}
    for role, names in candidates.items():
        for name in names:
            if (run_dir / name).is_file():
                found[role] = run_dir / name
                break
    return found


def report_from_files(
    out_dir: str | Path,
    *,
    ground_truth: str | Path | None = None,
    predictions: str | Path | None = None,
    run_dir: str | Path | None = None,
    video_dir: str | Path | None = None,
    subset: str | None = None,
    tious: Sequence[float] | None = None,
    copy_videos: bool = False,
) -> Path:
    """Load the inputs (files given, else those found in `run_dir`) and write the report.

    Returns the path of index.html.
    """
    _check_replaceable(Path(out_dir))  # before any slow work
    run_files = find_run_files(run_dir) if run_dir is not None else {}
    ground_truth = ground_truth or run_files.get("ground_truth")
    predictions = predictions or run_files.get("predictions")
    if (ground_truth is None) != (predictions is None):
        missing = "--predictions" if predictions is None else "--ground-truth"
        raise TalnetError(f"the report needs both ground truth and predictions; give {missing}")
    if ground_truth is None and "log" not in run_files:
        raise TalnetError(
            "nothing to report: give --ground-truth and --predictions, or a --run folder "
            "holding log.jsonl"
        )
    for source in (ground_truth, predictions, run_dir, video_dir):
        if source is not None and Path(out_dir).resolve() in Path(source).resolve().parents:
            raise TalnetError(f"input {source} lies inside the report folder, which is replaced")
    gt = load_ground_truth(ground_truth) if ground_truth is not None else None
    dets = load_detections(predictions) if predictions is not None else None
    log = read_training_log(run_files["log"]) if "log" in run_files else None
    if subset is None and gt is not None and dets is not None:
        subset = _subset_of_predictions(gt, dets)
    sources = {
        "ground truth": ground_truth,
        "predictions": predictions,
        "training run": run_dir,
        "videos": video_dir,
    }
    return write_report(
        out_dir,
        gt,
        dets,
        subset=subset,
        tious=tious,
        video_dir=video_dir,
        copy_videos=copy_videos,
        training_log=log,
        sources={k: str(v) for k, v in sources.items() if v is not None},
    )


def _subset_of_predictions(gt: GroundTruth, dets: Detections) -> str | None:
    """The one subset the predictions cover when the ground truth has several, else None: test
    predictions scored against train+test ground truth would count every train video as missed."""
    covered = {gt[vid].subset for vid in dets if vid in gt}
    if len(covered) != 1 or len({info.subset for info in gt.values()}) < 2:
        return None
    subset = covered.pop()
    warnings.warn(
        f"evaluating subset {subset!r} only, the one the predictions cover; "
        "give --subset to choose another",
        DataWarning,
        stacklevel=2,
    )
    return subset


def write_report(
    out_dir: str | Path,
    gt: GroundTruth | None,
    dets: Detections | None,
    *,
    subset: str | None = None,
    tious: Sequence[float] | None = None,
    video_dir: str | Path | None = None,
    copy_videos: bool = False,
    training_log: Sequence[Mapping[str, float]] | None = None,
    sources: Mapping[str, str] | None = None,
) -> Path:
    """Evaluate `dets` against `gt` and write the whole site into `out_dir`; returns index.html.

    `subset` restricts evaluation and pages to one subset; `video_dir` is searched for each
    video's file (linked by a relative path, or copied with `copy_videos`).
    """
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    metrics = None
    pages: list[VideoPage] = []
    if gt is not None and dets is not None:
        metrics = _evaluate(gt, dets, subset, tious)
        pages = _video_pages(gt, dets, subset, metrics["video_ap"])
        if video_dir is not None:
            videos = find_videos(video_dir)
            for page in pages:
                page.source = videos.get(page.video_id)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        _write_site(tmp, out_dir, metrics, pages, training_log, sources or {}, copy_videos)
        _swap_in(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir / "index.html"


def _check_replaceable(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    if not out_dir.is_dir():
        raise TalnetError("report output exists and is not a folder", out_dir)
    if any(out_dir.iterdir()) and not (out_dir / MARKER).exists():
        raise TalnetError(
            f"report folder exists, is not empty and holds no {MARKER}; refusing to replace it",
            out_dir,
        )


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


def _evaluate(
    gt: GroundTruth, dets: Detections, subset: str | None, tious: Sequence[float] | None
) -> dict:
    """All the numbers the site shows: summary (to_json), PR curves, AP per video, counts."""
    selected = select_subset(gt, subset) if subset is not None else gt
    tious = list(THUMOS_TIOUS if tious is None else tious)
    if not any(math.isclose(t, PAGE_TIOU) for t in tious):
        tious = sorted([*tious, PAGE_TIOU])
    summary = evaluate_detection(gt, dets, tious=tious, subset=subset).to_json()
    page_index = next(i for i, t in enumerate(summary["tious"]) if math.isclose(t, PAGE_TIOU))
    # evaluate_detection already warned once about predictions outside the evaluated videos.
    own = {vid: items for vid, items in dets.items() if vid in selected}
    ap_at = {label: aps[page_index] for label, aps in summary["ap_per_class"].items()}
    curves = {  # only the classes the figure shows: one evaluation pass per class
        label: precision_recall(selected, own, label, PAGE_TIOU)
        for label in plots.pr_panel_classes(ap_at)
    }
    return {
        "summary": summary,
        "page_index": page_index,
        "curves": curves,
        "video_ap": video_ap(selected, own, tiou=PAGE_TIOU),
        "instances": _count_instances(selected),
    }


def _count_instances(gt: GroundTruth) -> dict[str, int]:
    counts: dict[str, int] = {}
    for info in gt.values():
        for ann in info.annotations:
            counts[ann.label] = counts.get(ann.label, 0) + 1
    return counts


def _video_pages(
    gt: GroundTruth, dets: Detections, subset: str | None, aps: Mapping[str, float]
) -> list[VideoPage]:
    """The videos of the (subset of the) ground truth, then prediction-only videos."""
    selected = select_subset(gt, subset) if subset is not None else gt
    ids = list(selected) + [vid for vid in dets if vid not in gt]
    names = page_names(ids)
    pages = []
    for vid in ids:
        ap = aps.get(vid)
        ap = None if ap is None or not math.isfinite(ap) else float(ap)
        pages.append(VideoPage(vid, names[vid], selected.get(vid), list(dets.get(vid, [])), ap))
    # Lowest AP first: the videos worth looking at; videos without an AP go last.
    pages.sort(key=lambda p: (p.ap is None, p.ap if p.ap is not None else 0.0, p.video_id))
    return pages


def _write_site(
    root: Path,
    final: Path,
    metrics: dict | None,
    pages: list[VideoPage],
    log: Sequence[Mapping[str, float]] | None,
    sources: Mapping[str, str],
    copy_videos: bool,
) -> None:
    (root / MARKER).write_text("written by talnet report; replaced by the next run\n")
    shutil.copytree(ASSETS, root / "assets", ignore=shutil.ignore_patterns("__pycache__"))
    (root / "figures").mkdir()
    figures = _write_figures(root / "figures", metrics, log)
    (root / "video").mkdir()
    for i, page in enumerate(pages):
        src = _video_src(page, root, final, copy_videos)
        neighbours = (pages[i - 1] if i > 0 else None, pages[i + 1] if i + 1 < len(pages) else None)
        html_text = _video_html(page, src, neighbours)
        _write_html(root / "video" / page.page, html_text)
    index = _index_html(metrics, pages, figures, sources)
    _write_html(root / "index.html", index)


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


def _write_figures(
    folder: Path, metrics: dict | None, log: Sequence[Mapping[str, float]] | None
) -> dict[str, str]:
    """Save every figure as SVG; returns name -> caption of those written."""
    written: dict[str, str] = {}
    if metrics is not None:
        summary = metrics["summary"]
        k = metrics["page_index"]
        ap_at = {label: float(aps[k]) for label, aps in summary["ap_per_class"].items()}
        plots.save_svg(
            plots.map_vs_tiou(summary["tious"], summary["mAP"], summary["average"]),
            folder / "map_vs_tiou.svg",
        )
        written["map_vs_tiou.svg"] = "mAP against the tIoU threshold"
        if ap_at:
            plots.save_svg(plots.class_ap_bars(ap_at, PAGE_TIOU), folder / "class_ap.svg")
            written["class_ap.svg"] = f"AP per class at tIoU {PAGE_TIOU:g}"
            plots.save_svg(
                plots.pr_curves(metrics["curves"], ap_at, PAGE_TIOU),
                folder / "precision_recall.svg",
            )
            drawn = len(metrics["curves"])
            note = "" if drawn == len(ap_at) else f" ({drawn} best and worst classes)"
            written["precision_recall.svg"] = f"Precision–recall at tIoU {PAGE_TIOU:g}{note}"
    if log:
        keys = sorted({k for row in log for k in row})
        maps = [k for k in keys if "map" in k.lower()]
        losses = [k for k in keys if is_loss_key(k)]
        if losses:
            fig = plots.log_curves(log, losses, "Training losses", "loss")
            plots.save_svg(fig, folder / "training_loss.svg")
            written["training_loss.svg"] = "Training losses per epoch"
        if maps:
            fig = plots.log_curves(log, maps, "Validation mAP", "mAP")
            plots.save_svg(fig, folder / "training_map.svg")
            written["training_map.svg"] = "mAP during training"
    return written


def _document(title: str, body: str, up: str = "") -> str:
    """A full HTML page; `up` is the relative path back to the report root ("" or "../")."""
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{esc(title)}</title>\n"
        f'<link rel="stylesheet" href="{up}assets/report.css">\n</head>\n<body>\n'
        f"{body}\n</body>\n</html>\n"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def _index_html(
    metrics: dict | None,
    pages: list[VideoPage],
    figures: Mapping[str, str],
    sources: Mapping[str, str],
) -> str:
    parts = ["<h1>talnet report</h1>"]
    if sources:
        items = "".join(
            f'<li>{esc(role)}: <span class="mono">{esc(path)}</span></li>'
            for role, path in sources.items()
        )
        parts.append(f'<ul class="muted">{items}</ul>')
    if metrics is not None:
        parts.append(_metrics_html(metrics, pages, figures))
    training = [n for n in ("training_loss.svg", "training_map.svg") if n in figures]
    if training:
        parts.append("<h2>Training</h2>")
        parts.append(_figures_html({n: figures[n] for n in training}))
    if metrics is not None:
        parts.append(_videos_html(pages))
    return _document("talnet report", "\n".join(parts))


def _figures_html(figures: Mapping[str, str]) -> str:
    items = "".join(
        f'<figure><img src="figures/{quote(name)}" alt="{esc(caption)}">'
        f"<figcaption>{esc(caption)}</figcaption></figure>"
        for name, caption in figures.items()
    )
    return f'<div class="figures">{items}</div>'


def _metrics_html(metrics: dict, pages: list[VideoPage], figures: Mapping[str, str]) -> str:
    summary = metrics["summary"]
    tious = summary["tious"]
    n_gt = sum(metrics["instances"].get(label, 0) for label in summary["ap_per_class"])
    n_pred = sum(len(p.dets) for p in pages)
    head = "".join(f'<th class="num">{t:g}</th>' for t in tious)
    row = "".join(f'<td class="num">{_pct(m)}</td>' for m in summary["mAP"])
    parts = [
        "<h2>Detection mAP (%)</h2>",
        f'<p class="muted">{_count(len(pages), "video")}, '
        f"{_count(n_gt, 'ground-truth instance')}, {_count(n_pred, 'prediction')}.</p>",
        f'<div class="table-wrap"><table id="map-table"><tr><th>tIoU</th>{head}'
        f'<th class="num">average</th></tr><tr><td>mAP</td>{row}'
        f'<td class="num">{_pct(summary["average"])}</td></tr></table></div>',
    ]
    parts.append(_figures_html({n: c for n, c in figures.items() if not n.startswith("training")}))
    class_rows = []
    for label in sorted(summary["ap_per_class"]):
        aps = "".join(f'<td class="num">{_pct(a)}</td>' for a in summary["ap_per_class"][label])
        class_rows.append(
            f'<tr><td><span class="swatch" style="background:{class_color_hex(label)}"></span> '
            f"{esc(label)}</td>"
            f'<td class="num">{metrics["instances"].get(label, 0)}</td>{aps}</tr>'
        )
    parts.append("<h2>AP per class (%)</h2>")
    parts.append(
        f'<div class="table-wrap"><table id="class-table"><tr><th>class</th>'
        f'<th class="num">instances</th>{head}</tr>{"".join(class_rows)}</table></div>'
    )
    return "\n".join(parts)


def _videos_html(pages: list[VideoPage]) -> str:
    rows = []
    for page in pages:
        duration = page.info.duration if page.info is not None else None
        n_gt = len(page.info.annotations) if page.info is not None else 0
        rows.append(
            f'<tr><td><a href="video/{quote(page.page)}">{esc(page.video_id)}</a></td>'
            f'<td class="num">{_pct(page.ap)}</td><td class="num">{n_gt}</td>'
            f'<td class="num">{len(page.dets)}</td>'
            f'<td class="num">{esc(format_time(duration)) if duration else "–"}</td>'
            f"<td>{'yes' if page.source is not None else 'no'}</td></tr>"
        )
    return (
        f"<h2>Videos, lowest AP@{PAGE_TIOU:g} first</h2>\n"
        '<div class="table-wrap"><table id="video-table"><tr><th>video</th>'
        f'<th class="num">AP@{PAGE_TIOU:g} (%)</th><th class="num">ground truth</th>'
        '<th class="num">predictions</th><th class="num">duration</th><th>video file</th></tr>'
        f"{''.join(rows)}</table></div>"
    )


def _page_data(page: VideoPage) -> dict:
    annotations = page.info.annotations if page.info is not None else []
    gt = sorted(annotations, key=lambda a: (a.start, a.end, a.label))
    preds = sorted(page.dets, key=lambda d: (-d.score, d.start, d.label))
    labels = sorted({a.label for a in gt} | {d.label for d in preds})
    duration = page.info.duration if page.info is not None and page.info.duration else 0.0
    return {
        "video_id": page.video_id,
        "duration": duration,
        "classes": [{"label": label, "color": class_color_hex(label)} for label in labels],
        "gt": [{"label": a.label, "start": a.start, "end": a.end} for a in gt],
        "pred": [
            {"label": d.label, "start": d.start, "end": d.end, "score": d.score} for d in preds
        ],
    }


def _video_html(
    page: VideoPage, src: str | None, neighbours: tuple[VideoPage | None, VideoPage | None]
) -> str:
    data = _page_data(page)
    prev_page, next_page = neighbours
    nav = ['<a href="../index.html">all videos</a>']
    if prev_page is not None:
        nav.append(f'<a href="{quote(prev_page.page)}">← {esc(prev_page.video_id)}</a>')
    if next_page is not None:
        nav.append(f'<a href="{quote(next_page.page)}">{esc(next_page.video_id)} →</a>')
    facts = [f"{len(data['gt'])} ground-truth segments", f"{len(data['pred'])} predictions"]
    if page.info is not None:
        facts.insert(0, f"subset {page.info.subset}")
    if data["duration"]:
        facts.append(f"duration {format_time(data['duration'])}")
    facts.append(f"AP@{PAGE_TIOU:g} {_pct(page.ap)}%")
    if src is not None:
        player = f'<video id="player" controls preload="metadata" src="{esc(src)}"></video>'
    else:
        player = (
            '<p class="novideo">No video file for this id; the timeline below still works '
            "(click it to move the cursor).</p>"
        )
    body = f"""<nav>{" ".join(nav)}</nav>
<h1>{esc(page.video_id)}</h1>
<p class="muted">{esc(" · ".join(facts))}</p>
<div class="player-row">{player}
<div class="side">
<div class="controls">
<span id="clock">00:00.0</span>
<span id="shown-count" class="muted"></span>
</div>
<div class="controls">
<label>minimum score <input id="score" type="range" min="0" max="1" step="0.01" value="0">
<output id="score-value">0.00</output></label>
<label>zoom <select id="zoom"><option value="1">1×</option><option value="2">2×</option>
<option value="4">4×</option><option value="8">8×</option><option value="16">16×</option>
<option value="32">32×</option></select></label>
</div>
<fieldset id="classes"><legend>classes shown</legend>
<button id="all-classes" type="button">all</button>
<button id="no-classes" type="button">none</button>
</fieldset>
<p id="info" class="muted">Click a segment to jump to its start; click the timeline to seek.</p>
</div>
</div>
<div class="timeline"><div id="scroller"><div id="canvas">
<div id="axis"></div>
<div class="lane-title"><span>ground truth</span></div>
<div class="lane" id="lane-gt"></div>
<div class="lane-title"><span>predictions, most confident on top</span></div>
<div class="lane" id="lane-pred"></div>
<div id="cursor"></div>
</div></div></div>
<script type="application/json" id="talnet-data">{script_json(data)}</script>
<script src="../assets/timeline.js"></script>"""
    return _document(f"{page.video_id} – talnet report", body, up="../")
