"""`render_video` on small generated videos: timing kept, panel drawn where the layout says."""

from __future__ import annotations

import av
import numpy as np
import pytest
from visualize_video_helpers import BACKGROUND, decode_frames, make_video

from talnet.errors import TalnetError
from talnet.io.types import Annotation, Detection
from talnet.visualize.colors import class_color
from talnet.visualize.timeline import CURSOR, HIGHLIGHT, build_lanes, panel_layout
from talnet.visualize.video import pick_encoder, render_video

FPS, SECONDS, WIDTH, HEIGHT = 10, 3.0, 160, 120
# Boundaries fall between frames (every 0.1 s), so "inside" is unambiguous for every frame.
GT = [Annotation("CliffDiving", 0.85, 1.75)]
DETS = [
    Detection("Shotput", 0.15, 0.35, 0.1),
    Detection("Diving", 0.25, 2.05, 0.8),
    Detection("CliffDiving", 1.55, 2.65, 0.6),
]
# What the encoder must preserve is checked on the decoded file; exact pixels are checked on the
# frames as composed before encoding (`on_frame`), so no verdict depends on the codec or the CPU.
# H.264 at crf 18 with 4:2:0 chroma moves a flat colour by a few levels away from edges (3-5
# measured); next to an edge, chroma is shared over 2x2 pixels and the 4x4 transform and deblocking
# filter reach 3 pixels across block edges (16 measured one column inside a bar on an AVX2 EPYC).
# So encoded colours are read only EDGE_MARGIN pixels away from every edge and from the cursor.
EDGE_MARGIN = 4
TOLERANCE = 12  # 7 measured at EDGE_MARGIN on an AVX-512 Xeon


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = tmp_path_factory.mktemp("render")
    source = make_video(folder / "clip.mp4", WIDTH, HEIGHT, FPS, SECONDS, audio="aac")
    drawn: list[tuple[float, np.ndarray]] = []
    result = render_video(
        source, folder / "clip_talnet.mp4", DETS, GT, progress=False,
        on_frame=lambda t, rgb: drawn.append((t, rgb.copy())),
    )  # fmt: skip
    images, times = decode_frames(result.path)
    return source, result, images, times, drawn


def _distance(pixels: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.abs(pixels.astype(int) - np.array(rgb)).max(axis=-1)


def _columns_of_colour(row: np.ndarray, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.flatnonzero((row == np.array(rgb, np.uint8)).all(axis=-1))


def test_same_frame_count_rate_and_duration(rendered):
    source, result, images, times, drawn = rendered
    source_images, source_times = decode_frames(source)
    assert result.frames == len(images) == len(source_images) == len(drawn) == FPS * SECONDS
    assert times == pytest.approx(source_times, abs=1e-6)
    assert [t for t, _ in drawn] == pytest.approx(source_times, abs=1e-6)
    with av.open(str(source)) as a, av.open(str(result.path)) as b:
        assert b.streams.video[0].average_rate == a.streams.video[0].average_rate
        assert b.duration == pytest.approx(a.duration, abs=1e6 / FPS)  # microseconds
        assert b.streams.video[0].codec_context.name == "h264"


def test_panel_under_the_picture(rendered):
    _, result, images, _, drawn = rendered
    layout = panel_layout(WIDTH, HEIGHT, SECONDS, build_lanes(DETS, GT))
    assert result.layout == layout
    assert images[0].shape == drawn[0][1].shape == (HEIGHT + layout.height, WIDTH, 3)
    assert layout.height > 0 and layout.n_lanes == 1 + len(DETS)
    picture, panel = images[0][:HEIGHT], images[0][HEIGHT:]
    # The picture keeps its content; the panel is the dark timeline, not stretched picture.
    assert np.median(_distance(picture[HEIGHT // 2 :], BACKGROUND)) < TOLERANCE
    assert np.median(_distance(panel, BACKGROUND)) > 30


def test_ground_truth_lane_in_class_colour_exactly_inside_the_segment(rendered):
    _, result, _, _, drawn = rendered
    layout = result.layout
    color = class_color("CliffDiving")
    first, last = layout.bar_rows(0)
    x0, x1 = layout.x_of(GT[0].start), layout.x_of(GT[0].end)
    for t, image in drawn:
        c0, c1 = layout.cursor_cols(t)
        expected = [x for x in range(x0, x1 + 1) if not c0 <= x <= c1]
        for row in range(first, last + 1):
            assert _columns_of_colour(image[row], color).tolist() == expected, (t, row)


def test_ground_truth_lane_colour_survives_encoding_away_from_edges(rendered):
    _, result, images, times, _ = rendered
    layout = result.layout
    color = class_color("CliffDiving")
    first, last = layout.bar_rows(0)
    x0, x1 = layout.x_of(GT[0].start), layout.x_of(GT[0].end)
    track = np.arange(layout.track_left, layout.track_right + 1)
    rows = slice(first + EDGE_MARGIN, last - EDGE_MARGIN + 1)
    assert last - first + 1 - 2 * EDGE_MARGIN >= 1
    for image, t in zip(images, times, strict=True):
        c0, c1 = layout.cursor_cols(t)
        away = (track < c0 - EDGE_MARGIN) | (track > c1 + EDGE_MARGIN)
        inside = track[(track >= x0 + EDGE_MARGIN) & (track <= x1 - EDGE_MARGIN) & away]
        outside = track[((track <= x0 - EDGE_MARGIN) | (track >= x1 + EDGE_MARGIN)) & away]
        assert len(inside) > 10 and len(outside) > 10
        assert _distance(image[rows][:, inside], color).max() <= TOLERANCE, t
        assert _distance(image[rows][:, outside], color).min() > 60, t


def test_segments_under_the_cursor_are_outlined_only_while_active(rendered):
    _, result, _, _, drawn = rendered
    layout = result.layout
    outline_row = layout.bar_rows(0)[0] - 1
    probe = (layout.x_of(GT[0].start) + layout.x_of(GT[0].end)) // 2
    active = []
    for t, image in drawn:
        c0, c1 = layout.cursor_cols(t)
        if c0 <= probe <= c1:
            continue  # the cursor itself is white too
        active.append(
            (bool((image[outline_row, probe] == HIGHLIGHT).all()), GT[0].start <= t <= GT[0].end)
        )
    assert any(inside for _, inside in active) and not all(inside for _, inside in active)
    assert [white for white, _ in active] == [inside for _, inside in active]


def test_labels_over_the_picture_follow_the_cursor(rendered):
    source, result, _, _, drawn = rendered
    source_images, _ = decode_frames(source)
    layout = result.layout
    # The first label line's colour swatch: ground truth first, when it is active.
    y = layout.lane_pad + layout.lane_pad + (layout.lane_height - 2 * layout.lane_pad) // 2
    x = layout.lane_pad + (layout.lane_height - 2 * layout.lane_pad) // 2
    gt_color, diving = class_color("CliffDiving"), class_color("Diving")
    seen = set()
    for (t, image), picture in zip(drawn, source_images, strict=True):
        swatch = tuple(int(v) for v in image[y, x])
        if GT[0].start <= t <= GT[0].end:
            assert swatch == gt_color, t
            seen.add("gt")
        elif DETS[1].start <= t <= DETS[1].end:  # the best detection leads when GT is not active
            assert swatch == diving, t
            seen.add("diving")
        elif not any(d.start <= t <= d.end for d in DETS):
            assert (image[:HEIGHT] == picture).all(), t  # no label box: the picture as it was
            seen.add("none")
    assert seen == {"gt", "diving", "none"}


def test_cursor_moves_with_time(rendered):
    _, result, images, times, drawn = rendered
    layout = result.layout
    row = HEIGHT + layout.height - 2  # bottom margin: nothing but the cursor is drawn there
    for t, image in drawn:
        c0, c1 = layout.cursor_cols(t)
        assert _columns_of_colour(image[row], CURSOR).tolist() == list(range(c0, c1 + 1)), t
    # In the encoded file: the bright cursor sweeps the track in order.
    found = []
    for index in (3, 15, 27):
        columns = np.flatnonzero(images[index][row].min(axis=-1) > 200)
        assert len(columns) > 0
        found.append(columns.mean())
        assert abs(columns.mean() - np.mean(layout.cursor_cols(times[index]))) <= EDGE_MARGIN
    assert found[0] < found[1] < found[2]
    assert found[2] - found[0] > 0.6 * (layout.track_right - layout.track_left)


def test_audio_is_copied(rendered):
    source, result, *_ = rendered
    assert result.audio == "copied aac"
    with av.open(str(source)) as a, av.open(str(result.path)) as b:
        assert len(b.streams.audio) == 1
        assert b.streams.audio[0].codec_context.name == "aac"
        source_audio = sum(p.size for p in a.demux(audio=0) if p.size)
        copied_audio = sum(p.size for p in b.demux(audio=0) if p.size)
        assert copied_audio == source_audio


def test_pcm_audio_in_mkv_is_reencoded_and_mpeg4_fallback_works(tmp_path):
    source = make_video(tmp_path / "clip.mkv", 96, 64, 8, 1.5, audio="pcm_s16le")
    result = render_video(source, tmp_path / "out.mp4", DETS, None, codec="mpeg4", progress=False)
    assert result.audio == "re-encoded pcm_s16le to aac"
    assert result.layout.n_lanes == len(DETS)  # no ground truth: no ground-truth lane
    with av.open(str(result.path)) as out:
        assert out.streams.video[0].codec_context.name == "mpeg4"
        assert out.streams.audio[0].codec_context.name == "aac"
        assert out.duration == pytest.approx(1.5e6, abs=0.2e6)
    assert len(decode_frames(result.path)[0]) == 12


def test_pick_encoder_falls_back_to_mpeg4():
    assert pick_encoder({"libx264", "mpeg4"}) == "libx264"
    assert pick_encoder({"mpeg4", "aac"}) == "mpeg4"


def test_bad_inputs_raise_naming_the_file_and_leave_no_output(tmp_path):
    out = tmp_path / "out.mp4"
    with pytest.raises(TalnetError, match="missing.mp4: video not found"):
        render_video(tmp_path / "missing.mp4", out, DETS, progress=False)
    junk = tmp_path / "junk.mp4"
    junk.write_text("not a video")
    with pytest.raises(TalnetError, match="junk.mp4"):
        render_video(junk, out, DETS, progress=False)
    with pytest.raises(TalnetError, match="must end in"):
        render_video(junk, tmp_path / "out.gif", DETS, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.mp4"]
