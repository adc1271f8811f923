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

from talnet.evaluate.diagnose import (
    ERROR_NAMES,
    ERROR_TYPES,
    LIMIT_FACTOR,
    MIN_NORMALIZED_PRECISION,
    Diagnosis,
    FalsePositiveProfile,
)
from talnet.visualize.colors import class_color_hex, format_time
from talnet.visualize.report_data import PAGE_TIOU, ReportMetrics, VideoPage
from talnet.visualize.report_figures import Figures

TEMPLATES = Path(__file__).with_name("templates")
DIAGNOSIS_PAGE = "diagnosis.html"


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
        seconds=lambda t: f"{t:.2f}",
        gain=lambda g: f"{100 * g:+.2f}",
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
    has_diagnosis: bool = False,
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
        diagnosis_page=DIAGNOSIS_PAGE if has_diagnosis else None,
    )


def video_link(page: str, seconds: float) -> str:
    """URL of a video page (relative to the report root) that opens at `seconds`: the timeline
    script seeks to the time in its fragment, #t=SECONDS."""
    return f"video/{quote(page)}#t={max(seconds, 0.0):.2f}"


def render_diagnosis(diagnosis: Diagnosis, pages: list[VideoPage], figures: Figures) -> str:
    """diagnosis.html: DETAD's analyses as tables and figures, each worst case linked to its
    video page at its start time."""
    page_of = {p.video_id: p.page for p in pages}

    def link(video_id: str, seconds: float) -> str | None:
        page = page_of.get(video_id)
        return None if page is None else video_link(page, seconds)

    false_positives = [
        {"error": ERROR_NAMES[name], "case": case,
         "href": link(case.video_id, case.detection.start)}
        for name, cases in diagnosis.worst_false_positives.items()
        for case in cases
    ]  # fmt: skip
    missed = [
        {"case": case, "href": link(case.video_id, case.instance.start)}
        for case in diagnosis.longest_missed
    ]
    profile = [
        (f"{k}G", FalsePositiveProfile.shares(counts), sum(counts))
        for k, counts in enumerate(diagnosis.profile.bands, 1)
    ]
    return _ENV.get_template("diagnosis.html").render(
        up="",
        d=diagnosis,
        figures=figures.diagnosis,
        profile=profile,
        types=[ERROR_NAMES[t] for t in ERROR_TYPES],
        gains=[(ERROR_NAMES[t], g, gn) for t, (g, gn) in diagnosis.gain.items()],
        false_positives=false_positives,
        missed=missed,
        limit_factor=LIMIT_FACTOR,
        min_precision=MIN_NORMALIZED_PRECISION,
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
