"""The timeline panel before any encoding: exact pixels where the layout says."""

from __future__ import annotations

import numpy as np
import pytest

from talnet.io.types import Annotation, Detection
from talnet.visualize.colors import class_color
from talnet.visualize.timeline import (
    CURSOR,
    GT_LANE_LABEL,
    HIGHLIGHT,
    LANE_BACKGROUND,
    TimelineRenderer,
    _fit,
    build_lanes,
    panel_layout,
)

GT = [Annotation("HighJump", 2.0, 5.0), Annotation("LongJump", 12.0, 14.5)]
DETS = [
    Detection("HighJump", 1.5, 5.5, 0.4),
    Detection("LongJump", 11.0, 15.0, 0.9),
    Detection("PoleVault", 7.0, 8.0, 0.02),
    Detection("HighJump", 3.0, 4.0, 0.4),
]


def _renderer(width=640, height=360, duration=20.0, top_k=5, min_score=0.0):
    lanes = build_lanes(DETS, GT, top_k=top_k, min_score=min_score)
    return TimelineRenderer(panel_layout(width, height, duration, lanes), lanes)


def test_lanes_ground_truth_first_then_by_score_with_filters():
    lanes = build_lanes(DETS, GT, top_k=3, min_score=0.1)
    assert [lane.caption for lane in lanes] == [
        GT_LANE_LABEL,
        "LongJump 0.90",
        "HighJump 0.40",
        "HighJump 0.40",
    ]
    assert lanes[0].is_ground_truth and lanes[0].segments == tuple(GT)
    assert lanes[2].segments == (DETS[0],)  # equal scores keep file order
    assert [lane.caption for lane in build_lanes(DETS, None, top_k=0)] == []


def test_static_panel_bars_are_exactly_the_class_colour_over_their_time_span():
    renderer = _renderer()
    layout = renderer.layout
    for index, lane in enumerate(renderer.lanes):
        first, last = (r - layout.top for r in layout.bar_rows(index))
        row = renderer.static[(first + last) // 2]
        covered = np.zeros(layout.width, bool)
        for seg in lane.segments:
            x0, x1 = layout.x_of(seg.start), layout.x_of(seg.end)
            assert (row[x0 : x1 + 1] == class_color(seg.label)).all()
            covered[x0 : x1 + 1] = True
        track = np.zeros(layout.width, bool)
        track[layout.track_left : layout.track_right + 1] = True
        background = row[track & ~covered]
        # Outside the bars: lane background or the faint grid, never a class colour.
        assert np.isin(background, [*LANE_BACKGROUND[index % 2], 62]).all()


def test_panel_at_a_time_outlines_active_segments_and_draws_the_cursor():
    renderer = _renderer()
    layout = renderer.layout
    panel = np.zeros_like(renderer.static)
    renderer.draw_panel(panel, 3.5)
    active = renderer.active(3.5)
    # Ground truth HighJump, the two HighJump detections; not LongJump or PoleVault.
    assert sorted(index for index, _ in active) == [0, 2, 3]
    for index, lane in enumerate(renderer.lanes):
        seg = lane.segments[0]
        above = layout.bar_rows(index)[0] - 1 - layout.top
        probe = (layout.x_of(seg.start) + layout.x_of(seg.end)) // 2
        c0, c1 = layout.cursor_cols(3.5)
        if c0 <= probe <= c1:
            probe = layout.x_of(seg.start) + 1
        outlined = tuple(panel[above, probe]) == HIGHLIGHT
        assert outlined == (index in {0, 2, 3}), index
    c0, c1 = layout.cursor_cols(3.5)
    assert (panel[:, c0 : c1 + 1] == CURSOR).all()
    assert not (panel[-2, : c0 - 1] == CURSOR).all(axis=-1).any()
    # Drawing again at another time starts from the static panel: nothing left behind.
    renderer.draw_panel(panel, 7.5)
    assert (panel[-2, c0 : c1 + 1] != CURSOR).any()


def test_labels_drawn_only_when_something_is_active():
    renderer = _renderer()
    picture = np.full((360, 640, 3), 200, np.uint8)
    renderer.draw_labels(picture, 10.0)  # nothing active at 10 s
    assert (picture == 200).all()
    renderer.draw_labels(picture, 12.5)
    assert (picture[:40, :40] != 200).any()
    assert (picture[200:] == 200).all()  # only the corner is touched


@pytest.mark.parametrize(("height", "lanes"), [(120, 0), (121, 3), (720, 4), (1080, 2)])
def test_layout_is_even_and_grows_with_lanes_and_resolution(height, lanes):
    layout = panel_layout(1280, height, 60.0, build_lanes(DETS[:lanes], None, top_k=lanes))
    assert layout.n_lanes == lanes and (height + layout.height) % 2 == 0
    assert layout.height >= layout.axis_height + lanes * layout.lane_height
    assert layout.x_of(0.0) == layout.track_left and layout.x_of(60.0) == layout.track_right
    assert layout.x_of(-5.0) == layout.track_left and layout.x_of(99.0) == layout.track_right
    if height >= 720:
        assert layout.font_scale >= 0.5  # cap height >= 13 px: readable at 720p


def test_long_captions_are_shortened_but_keep_the_score():
    layout = _renderer().layout
    text = _fit("AVeryLongClassNameThatCannotFitInTheColumn 0.87", 90, layout)
    assert text.endswith(".. 0.87") and len(text) < 30
    with pytest.raises(ValueError):
        panel_layout(100, 100, 0.0, [])
