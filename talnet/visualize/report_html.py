"""The report's HTML pages, rendered from the Jinja2 templates in talnet/visualize/templates.

Autoescaping is on for every template: ids, labels and paths come from user files. The one
unescaped value is each video page's inline JSON, which script_json makes safe instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from talnet.visualize.colors import class_color_hex, format_time
from talnet.visualize.report_data import PAGE_TIOU, ReportMetrics, VideoPage
from talnet.visualize.report_figures import Figures

TEMPLATES = Path(__file__).with_name("templates")


def script_json(obj: object) -> str:
    """JSON safe inside <script type="application/json">: no "</script>", "<!--" or "&" left."""
    # ASCII only: also carries lone surrogates (legal in JSON input) that UTF-8 cannot encode.
    text = json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    # Inside JSON these characters only occur in strings, where \\uXXXX means the same thing.
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{100 * value:.1f}"


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=StrictUndefined,  # a misspelt name fails the build instead of rendering ""
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(
        pct=_pct,
        plural=_plural,
        tiou=lambda t: f"{t:g}",
        url=quote,
        time=format_time,
        color=class_color_hex,
        # Markup: autoescaping would turn its quotes into entities, which a <script> never
        # decodes; script_json has already removed everything that could end the element.
        script_json=lambda obj: Markup(script_json(obj)),
    )
    return env


_ENV = _environment()


def render_index(
    metrics: ReportMetrics | None,
    pages: list[VideoPage],
    figures: Figures,
    sources: Mapping[str, str],
) -> str:
    """index.html: the inputs, mAP table, figures, AP per class, training curves, video list."""
    return _ENV.get_template("index.html").render(
        up="",
        metrics=metrics,
        pages=pages,
        n_predictions=sum(len(p.dets) for p in pages),
        figures=figures,
        sources=sources,
        page_tiou=PAGE_TIOU,
    )


def render_video(
    page: VideoPage, src: str | None, neighbours: tuple[VideoPage | None, VideoPage | None]
) -> str:
    """video/<page>.html: one video's player and timeline, its segments inline as JSON; `src`
    is the <video> URL (None: no video file) and `neighbours` the pages before and after it."""
    data = page_data(page)
    facts = [f"{len(data['gt'])} ground-truth segments", f"{len(data['pred'])} predictions"]
    if page.info is not None:
        facts.insert(0, f"subset {page.info.subset}")
    if data["duration"]:
        facts.append(f"duration {format_time(data['duration'])}")
    facts.append(f"AP@{PAGE_TIOU:g} {_pct(page.ap)}%")
    prev_page, next_page = neighbours
    return _ENV.get_template("video.html").render(
        up="../",
        page=page,
        src=src,
        prev_page=prev_page,
        next_page=next_page,
        facts=facts,
        data=data,
    )


def page_data(page: VideoPage) -> dict:
    """What the timeline script draws: the video's classes with their colours, ground truth by
    start, predictions most confident first."""
    gt = sorted(page.ground_truth, key=lambda a: (a.start, a.end, a.label))
    preds = sorted(page.dets, key=lambda d: (-d.score, d.start, d.label))
    labels = sorted({a.label for a in gt} | {d.label for d in preds})
    return {
        "video_id": page.video_id,
        "duration": page.duration or 0.0,
        "classes": [{"label": label, "color": class_color_hex(label)} for label in labels],
        "gt": [{"label": a.label, "start": a.start, "end": a.end} for a in gt],
        "pred": [
            {"label": d.label, "start": d.start, "end": d.end, "score": d.score} for d in preds
        ],
    }
