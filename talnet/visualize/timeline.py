"""The timeline panel drawn under each video frame: time axis, ground-truth lane, top-k lanes.

Everything static (axis, lanes, segment bars, labels) is drawn once; per frame only the cursor,
the outlines of the segments under it and the labels over the picture are added, so rendering
cost does not depend on how many segments there are. Arrays are RGB uint8, (rows, cols, 3).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from talnet.io.types import Annotation, Detection
from talnet.visualize.colors import class_color, format_time, text_color_on

FONT = cv2.FONT_HERSHEY_SIMPLEX
BACKGROUND = (18, 18, 18)
LANE_BACKGROUND = ((34, 34, 34), (42, 42, 42))  # alternating, so lanes read as rows
GRID = (62, 62, 62)
AXIS = (170, 170, 170)
CURSOR = (255, 255, 255)
HIGHLIGHT = (255, 255, 255)
GT_LANE_LABEL = "ground truth"
# Steps between time-axis ticks, seconds; the smallest one whose labels do not collide is used.
TICK_STEPS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)


@dataclass(frozen=True)
class Lane:
    """One row of the panel: a caption and the segments drawn in it."""

    caption: str
    segments: tuple[Annotation | Detection, ...]
    is_ground_truth: bool = False


@dataclass(frozen=True)
class PanelLayout:
    """Pixel geometry of the panel; the single source of every position, tests included.

    Rows are in output-frame coordinates (the panel starts at row `picture_height`).
    """

    width: int  # output frame width
    picture_height: int
    height: int  # panel rows under the picture
    duration: float  # seconds spanned by the time axis
    label_width: int  # left column with lane captions
    track_left: int  # x of time 0
    track_right: int  # x of time `duration`
    axis_height: int
    lane_height: int
    lane_pad: int  # rows above and below each bar, where its highlight outline goes
    n_lanes: int
    font_scale: float
    thickness: int
    cursor_width: int

    @property
    def top(self) -> int:
        """First row of the panel in the output frame."""
        return self.picture_height

    def x_of(self, seconds: float) -> int:
        """Column of time `seconds` on the track (clipped to the axis)."""
        fraction = min(max(seconds / self.duration, 0.0), 1.0)
        return self.track_left + round(fraction * (self.track_right - self.track_left))

    def cursor_cols(self, seconds: float) -> tuple[int, int]:
        """Columns [first, last] of the cursor at time `seconds`."""
        x = self.x_of(seconds)
        first = x - (self.cursor_width - 1) // 2
        return first, first + self.cursor_width - 1

    def lane_rows(self, index: int) -> tuple[int, int]:
        """Rows [first, last] of lane `index`, outline padding included."""
        first = self.top + self.axis_height + index * self.lane_height
        return first, first + self.lane_height - 1

    def bar_rows(self, index: int) -> tuple[int, int]:
        """Rows [first, last] of the segment bars of lane `index`."""
        first, last = self.lane_rows(index)
        return first + self.lane_pad, last - self.lane_pad


def panel_layout(
    width: int, picture_height: int, duration: float, lanes: Sequence[Lane]
) -> PanelLayout:
    """Size the panel for a frame of `width` x `picture_height` so text reads at 720p and up."""
    if duration <= 0 or not math.isfinite(duration):
        raise ValueError(f"timeline duration must be positive, got {duration}")
    unit = max(picture_height, 270) / 720  # 1.0 at 720p; small videos keep a legible minimum
    lane_height = max(14, round(32 * unit))
    lane_pad = max(2, lane_height // 7)
    axis_height = max(18, round(40 * unit))
    # Text about half a lane tall (Hershey cap height is ~27 px at scale 1).
    font_scale = 0.5 * lane_height / 27
    thickness = max(1, round(1.4 * unit))
    margin = max(3, round(10 * unit))
    widest = max(
        [_text_width(format_time(duration), font_scale, thickness)]
        + [_text_width(lane.caption, font_scale, thickness) for lane in lanes]
    )
    label_width = min(widest + 2 * margin, max(width * 3 // 10, 1))
    height = axis_height + len(lanes) * lane_height + margin
    height += (picture_height + height) % 2  # yuv420p needs an even frame height
    return PanelLayout(
        width=width,
        picture_height=picture_height,
        height=height,
        duration=float(duration),
        label_width=label_width,
        track_left=label_width + margin,
        track_right=max(width - margin - 1, label_width + margin + 1),
        axis_height=axis_height,
        lane_height=lane_height,
        lane_pad=lane_pad,
        n_lanes=len(lanes),
        font_scale=font_scale,
        thickness=thickness,
        cursor_width=max(1, round(3 * unit)),
    )


def build_lanes(
    detections: Sequence[Detection],
    ground_truth: Sequence[Annotation] | None,
    top_k: int = 5,
    min_score: float = 0.0,
) -> list[Lane]:
    """The ground-truth lane (if any ground truth was given), then one lane per top-k detection."""
    lanes = []
    if ground_truth is not None:
        lanes.append(Lane(GT_LANE_LABEL, tuple(ground_truth), is_ground_truth=True))
    kept = [d for d in detections if d.score >= min_score]
    kept.sort(key=lambda d: -d.score)  # stable: ties keep file order
    for det in kept[:top_k]:
        lanes.append(Lane(f"{det.label} {det.score:.2f}", (det,)))
    return lanes


class TimelineRenderer:
    """Draws the panel and the over-picture labels for any time, from a once-drawn static panel."""

    def __init__(self, layout: PanelLayout, lanes: Sequence[Lane]) -> None:
        self.layout = layout
        self.lanes = list(lanes)
        self.static = self._draw_static()  # (height, width, 3)

    def _draw_static(self) -> np.ndarray:
        lay = self.layout
        panel = np.empty((lay.height, lay.width, 3), np.uint8)
        panel[:] = BACKGROUND
        top = lay.top  # static panel rows are output rows minus `top`
        step = _tick_step(lay)
        ticks = np.arange(0.0, lay.duration + 1e-9, step)
        baseline = lay.axis_height - 1 - max(2, lay.lane_pad)
        for index in range(len(self.lanes)):
            first, last = (r - top for r in lay.lane_rows(index))
            cv2.rectangle(
                panel, (lay.track_left, first), (lay.track_right, last),
                LANE_BACKGROUND[index % 2], -1,
            )  # fmt: skip
        for t in ticks:  # faint grid through the lanes, so segment ends can be read off the axis
            x = lay.x_of(float(t))
            cv2.line(panel, (x, baseline), (x, lay.height - 1), GRID, 1)
        cv2.line(panel, (lay.track_left, baseline), (lay.track_right, baseline), AXIS, 1)
        tick_len = max(3, lay.lane_pad * 2)
        for t in ticks:
            x = lay.x_of(float(t))
            cv2.line(panel, (x, baseline - tick_len), (x, baseline), AXIS, 1)
            text = format_time(float(t))
            w = _text_width(text, lay.font_scale, lay.thickness)
            # Kept on the track: the first label must not run into the clock in the caption column.
            left = max(min(x - w // 2, lay.width - w - 1), lay.track_left)
            _put_text(panel, text, (left, baseline - tick_len - 2), lay, AXIS)
        for index, lane in enumerate(self.lanes):
            first, last = (r - top for r in lay.bar_rows(index))
            for seg in lane.segments:
                x0, x1 = lay.x_of(seg.start), lay.x_of(seg.end)
                cv2.rectangle(panel, (x0, first), (max(x1, x0), last), class_color(seg.label), -1)
            self._caption(panel, index, highlighted=False)
        return panel

    def _caption(self, panel: np.ndarray, index: int, highlighted: bool) -> None:
        """Lane caption in the left column; a highlighted one sits on its class colour."""
        lay, lane = self.layout, self.lanes[index]
        first, last = (r - lay.top for r in lay.lane_rows(index))
        color = AXIS if lane.is_ground_truth else (225, 225, 225)
        if highlighted:
            fill = class_color(lane.segments[0].label) if not lane.is_ground_truth else (90, 90, 90)
            cv2.rectangle(panel, (0, first + 1), (lay.label_width - 1, last - 1), fill, -1)
            color = text_color_on(fill)
        text = _fit(lane.caption, lay.label_width - 2 * lay.lane_pad, lay)
        height = cv2.getTextSize("A", FONT, lay.font_scale, lay.thickness)[0][1]
        _put_text(panel, text, (lay.lane_pad, (first + last + height) // 2), lay, color)

    def active(self, seconds: float) -> list[tuple[int, Annotation | Detection]]:
        """(lane index, segment) of every segment under time `seconds`, in lane order."""
        return [
            (index, seg)
            for index, lane in enumerate(self.lanes)
            for seg in lane.segments
            if seg.start <= seconds <= seg.end
        ]

    def draw_panel(self, panel: np.ndarray, seconds: float) -> None:
        """Write the panel for time `seconds` into `panel` (height, width, 3), in place."""
        lay = self.layout
        panel[:] = self.static
        highlighted_lanes = set()
        for index, seg in self.active(seconds):
            first, last = (r - lay.top for r in lay.bar_rows(index))
            x0, x1 = lay.x_of(seg.start), lay.x_of(seg.end)
            # Outline drawn in the lane padding, outside the bar, so the bar keeps its colour.
            thick = max(1, lay.lane_pad - 1)
            off = thick // 2 + 1
            cv2.rectangle(
                panel, (x0 - off, first - off), (max(x1, x0) + off, last + off),
                HIGHLIGHT, thick,
            )  # fmt: skip
            if index not in highlighted_lanes:
                highlighted_lanes.add(index)
                self._caption(panel, index, highlighted=True)
        first, last = lay.cursor_cols(seconds)
        panel[:, first : last + 1] = CURSOR
        # The current time in the axis row's caption column.
        clock = format_time(seconds)
        height = cv2.getTextSize(clock, FONT, lay.font_scale, lay.thickness)[0][1]
        _put_text(panel, clock, (lay.lane_pad, (lay.axis_height + height) // 2), lay, CURSOR)

    def draw_labels(self, picture: np.ndarray, seconds: float) -> None:
        """Write the labels of the segments under `seconds` over the top-left of `picture`."""
        lay = self.layout
        lines = []
        for index, seg in self.active(seconds):
            lane = self.lanes[index]
            text = f"GT {seg.label}" if lane.is_ground_truth else lane.caption
            lines.append((text, class_color(seg.label)))
        if not lines:
            return
        line_h = lay.lane_height
        swatch = line_h - 2 * lay.lane_pad
        max_lines = max(1, (picture.shape[0] - lay.lane_pad) // line_h)
        lines = lines[:max_lines]
        text_room = picture.shape[1] - 3 * lay.lane_pad - swatch
        texts = [_fit(text, text_room, lay) for text, _ in lines]
        widest = max(_text_width(t, lay.font_scale, lay.thickness) for t in texts)
        width = min(picture.shape[1], 4 * lay.lane_pad + swatch + widest)
        height = len(lines) * line_h + lay.lane_pad
        box = picture[:height, :width]
        box[:] = box // 3  # darken rather than hide the picture under the labels
        cap = cv2.getTextSize("A", FONT, lay.font_scale, lay.thickness)[0][1]
        for row, (text, (_, color)) in enumerate(zip(texts, lines, strict=True)):
            y0 = lay.lane_pad + row * line_h
            cv2.rectangle(
                picture, (lay.lane_pad, y0 + lay.lane_pad),
                (lay.lane_pad + swatch, y0 + lay.lane_pad + swatch), color, -1,
            )  # fmt: skip
            _put_text(
                picture, text, (2 * lay.lane_pad + swatch + 2, y0 + (line_h + cap) // 2), lay,
                (255, 255, 255),
            )  # fmt: skip


def _tick_step(lay: PanelLayout) -> float:
    """Smallest tick step whose labels fit side by side on the track."""
    label = _text_width(format_time(lay.duration), lay.font_scale, lay.thickness) * 1.6
    room = max(lay.track_right - lay.track_left, 1)
    for step in TICK_STEPS:
        if lay.duration / step * label <= room:
            return float(step)
    return float(math.ceil(lay.duration / max(room / label, 1)))


def _text_width(text: str, scale: float, thickness: int) -> int:
    return cv2.getTextSize(text, FONT, scale, thickness)[0][0]


def _fit(text: str, room: int, lay: PanelLayout) -> str:
    """Shorten `text` with '..' until it fits `room` pixels; the score at the end is kept."""
    if _text_width(text, lay.font_scale, lay.thickness) <= room:
        return text
    head, sep, score = text.rpartition(" ")
    if not sep or not score.replace(".", "").isdigit():
        head, score = text, ""
    tail = f".. {score}" if score else ".."
    while head and _text_width(head + tail, lay.font_scale, lay.thickness) > room:
        head = head[:-1]
    return head + tail


def _put_text(
    image: np.ndarray, text: str, origin: tuple[int, int], lay: PanelLayout, color
) -> None:
    cv2.putText(image, text, origin, FONT, lay.font_scale, color, lay.thickness, cv2.LINE_AA)
