"""The report's timeline viewer in real headless Chromium, opened from file:// URLs."""

from __future__ import annotations

import shutil
import warnings

import pytest
from playwright.sync_api import sync_playwright
from visualize_report_data import PREDICTIONS, UNSAFE_ID, VIDEO_SECONDS, XSS, write_inputs

from talnet.visualize.colors import format_time
from talnet.visualize.report import page_names, report_from_files

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    gt, det, videos = write_inputs(tmp_path_factory.mktemp("inputs"))
    out = tmp_path_factory.mktemp("site") / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report_from_files(out, ground_truth=gt, predictions=det, video_dir=videos, subset="test")
    return out


def chromium_path() -> str:
    """Debian's Chromium wherever it is on PATH, as scripts/install_browser.sh looks for it."""
    found = shutil.which("chromium")
    if found is None:
        pytest.fail("chromium is not on PATH: run scripts/install_browser.sh (make test does)")
    return found


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


class Opened:
    """A page plus what it did: dialogs opened, script errors, URLs requested."""

    def __init__(self, browser, url: str) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.requests: list[str] = []
        # CSP off: escaping alone must keep injected markup inert (the page's CSP would otherwise
        # hide an escaping bug), and Playwright's wait_for_function needs eval.
        self.page = browser.new_page(viewport={"width": 1280, "height": 720}, bypass_csp=True)
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(url)
        if "/video/" in url:  # the timeline script marks the body when it has drawn everything
            self.page.wait_for_selector("body[data-ready='1']", state="attached")


@pytest.fixture
def open_page(browser, report):
    opened: list[Opened] = []

    def _open(relative: str) -> Opened:
        opened.append(Opened(browser, (report / relative).as_uri()))
        return opened[-1]

    yield _open
    for item in opened:
        assert item.errors == []
        item.page.close()


PROBE = "talnet-test-probe"


def settle(opened: Opened) -> None:
    """Wait until the page has handled everything it started: load a missing image whose error
    handler opens a dialog, and wait for that dialog. An injected `<img onerror>` or script
    would have fired (its dialog, its request) before this one, so afterwards `dialogs` and
    `requests` are complete up to the probe."""
    with opened.page.expect_event("dialog", predicate=lambda d: d.message == PROBE):
        opened.page.evaluate(
            "probe => { const img = document.createElement('img');"
            " img.onerror = () => alert(probe); img.src = probe + '.png';"
            " document.body.append(img); }",
            PROBE,
        )


def count(page, selector: str) -> int:
    return page.evaluate(f"document.querySelectorAll({selector!r}).length")


def visible_scores(page) -> list[float]:
    """Scores of the predictions actually laid out on screen (not merely flagged hidden)."""
    return page.evaluate(
        "[...document.querySelectorAll('.seg.pred')].filter(e => e.getClientRects().length)"
        ".map(e => Number(e.dataset.score))"
    )


def test_drawn_segments_equal_the_files(open_page):
    for video_id, gt_count in (("vid_a", 4), ("vid_b", 1), (UNSAFE_ID, 1), ("no_gt_video", 0)):
        name = page_names([video_id])[video_id]
        page = open_page(f"video/{name}").page
        assert count(page, ".seg.gt") == gt_count
        assert count(page, ".seg.pred") == len(PREDICTIONS["results"][video_id])
        assert page.evaluate("[...document.querySelectorAll('.seg')].every(e => !e.hidden)")


def test_clicking_a_segment_seeks_the_video_to_its_start(open_page):
    page = open_page("video/vid_a.html").page
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert page.evaluate("document.getElementById('player').duration") == pytest.approx(12, abs=0.2)
    for selector, start in ((".seg.pred[data-score='0.3']", 2.0), (".seg.gt >> nth=3", 8.0)):
        page.click(selector)
        current = page.evaluate("document.getElementById('player').currentTime")
        assert current == pytest.approx(start, abs=1e-3)
    # The cursor follows the video: seeking elsewhere moves it and highlights what is under it.
    page.evaluate("document.getElementById('player').currentTime = 4.5")
    page.wait_for_function("document.getElementById('cursor').style.left === '37.5%'")
    active = page.evaluate(
        "[...document.querySelectorAll('.seg.active')].map(e => e.dataset.kind + e.dataset.label)"
    )
    # At 4.5 s: ground truth HighJump [2.5, 5] and XSS [4, 6]; predictions XSS [4.1, 6.5] and
    # HighJump [2, 5].
    assert sorted(active) == sorted(["gtHighJump", f"gt{XSS}", f"pred{XSS}", "predHighJump"])
    assert page.text_content("#clock") == f"{format_time(4.5)} / {format_time(12.0)}"


def test_diagnosis_link_opens_the_video_at_the_case(open_page):
    page = open_page("diagnosis.html").page
    link = page.locator("#worst-false-positives a", has_text="vid_a").first
    start = float(link.get_attribute("href").split("#t=")[1])
    link.click()
    page.wait_for_selector("body[data-ready='1']", state="attached")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    assert page.evaluate("document.getElementById('player').currentTime") == pytest.approx(start)
    assert page.text_content("#clock").startswith(format_time(start))


# Resolves at the player's next `event` that `ready(v, before)` accepts (after calling
# `start(v)`), with the video's time read before the page's own handlers ran (a capturing
# listener on the document runs first) and after them (a listener added now runs after the
# page's), and what the cursor and clock show in between: no wall-clock timing, whatever the
# machine's load. A stuck player resolves {timedOut: true} after 30 s instead of hanging.
AT_NEXT_EVENT = """([event, startCode, readyCode]) => new Promise(resolve => {
  const v = document.getElementById('player');
  const start = new Function('v', startCode), ready = new Function('v', 'before', readyCode);
  let before = null;
  const first = () => { before = v.currentTime; };
  const last = () => {
    if (!ready(v, before)) return;
    done({
      before, after: v.currentTime, paused: v.paused,
      duration: v.duration, clock: document.getElementById('clock').textContent,
      left: parseFloat(document.getElementById('cursor').style.left),
    });
  };
  const done = value => {
    document.removeEventListener(event, first, true);
    v.removeEventListener(event, last);
    clearTimeout(timer);
    resolve(value);
  };
  const timer = setTimeout(() => done({timedOut: true}), 30000);
  document.addEventListener(event, first, true);
  v.addEventListener(event, last);
  start(v);
})"""


def at_next_event(page, event: str, start: str, ready: str = "return true") -> dict:
    """What the page shows when the player's next `event` that `ready` accepts is handled."""
    seen = page.evaluate(AT_NEXT_EVENT, [event, start, ready])
    assert not seen.get("timedOut"), f"no {event} event came"
    return seen


def test_cursor_moves_while_playing(open_page):
    """The cursor stands where the video is: after each seek, and at timeupdates while playing."""
    page = open_page("video/vid_a.html").page
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    # Percentages come back rounded to about 6 significant digits: 1e-3 % is 0.12 ms of video.
    slack = 1e-3
    for t in (3.0, 7.5, 0.6, 11.25, 1.0):  # seeked: the cursor stands at the new time
        seen = at_next_event(page, "seeked", f"v.currentTime = {t}")
        duration = max(VIDEO_SECONDS, seen["duration"])  # the page takes the longer of the two
        assert seen["before"] == seen["after"] == pytest.approx(t, abs=1e-9)
        assert seen["left"] == pytest.approx(100 * t / duration, abs=slack)
        assert seen["clock"] == f"{format_time(t)} / {format_time(duration)}"
    # Playing: at a timeupdate the cursor shows the time the video had while the page handled
    # the event, and at a later timeupdate it has moved on.
    page.evaluate("document.getElementById('player').muted = true")

    def playing_past(t: float) -> dict:
        seen = at_next_event(
            page, "timeupdate", "if (v.paused) v.play()", f"return !v.paused && before > {t!r}"
        )
        duration = max(VIDEO_SECONDS, seen["duration"])
        assert not seen["paused"] and t < seen["before"] <= seen["after"]
        lowest, highest = (100 * seen[k] / duration for k in ("before", "after"))
        assert lowest - slack <= seen["left"] <= highest + slack
        return seen

    first = playing_past(1.0)
    later = playing_past(first["after"])
    page.evaluate("document.getElementById('player').pause()")
    assert later["left"] > first["left"] > 100 * 1.0 / VIDEO_SECONDS


def test_slider_hides_low_scores_and_class_filter_hides_classes(open_page):
    page = open_page("video/vid_a.html").page
    scores = [d["score"] for d in PREDICTIONS["results"]["vid_a"]]
    page.fill("#score", "0.5")
    assert sorted(visible_scores(page)) == sorted(s for s in scores if s >= 0.5)
    assert page.text_content("#score-value") == "0.50"
    page.fill("#score", "0")
    assert len(visible_scores(page)) == len(scores)

    page.uncheck("#classes input[data-label='LongJump']")
    hidden = page.evaluate(
        "[...document.querySelectorAll('.seg')].filter(e => !e.getClientRects().length)"
        ".map(e => e.dataset.label)"
    )
    assert set(hidden) == {"LongJump"} and len(hidden) == 4  # 2 ground truth + 2 predictions
    page.click("#no-classes")
    assert page.evaluate("[...document.querySelectorAll('.seg')].every(e => !e.offsetParent)")
    page.click("#all-classes")
    assert count(page, ".seg[hidden]") == 0


def test_script_in_labels_and_ids_shows_as_text_and_runs_nothing(open_page):
    for relative in (
        "video/vid_a.html",
        "index.html",
        f"video/{page_names([UNSAFE_ID])[UNSAFE_ID]}",
    ):
        opened = open_page(relative)
        page = opened.page
        if relative == "video/vid_a.html":
            page.click(f".seg.gt[data-label='{XSS}']")
            assert page.text_content("#info").startswith(f"ground truth: {XSS}, ")
            labels = page.evaluate(
                "[...document.querySelectorAll('.seg-label')].map(e => e.textContent)"
            )
            assert XSS in labels and f"{XSS} 0.55" in labels
            assert XSS in page.text_content("#classes")
        elif relative == "index.html":
            assert XSS in page.text_content("#class-table")
            assert UNSAFE_ID in page.text_content("#video-table")
        else:
            assert page.text_content("h1") == UNSAFE_ID
        settle(opened)
        assert opened.dialogs == [PROBE]
        # Only the report's own scripts exist: the JSON data block and timeline.js.
        assert page.evaluate("document.querySelectorAll('script:not([type])').length") <= 1
        assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0


def test_site_loads_only_local_files(open_page):
    for relative in ("index.html", "video/vid_a.html"):
        opened = open_page(relative)
        settle(opened)
        *own, probe = opened.requests
        assert probe.endswith(f"/{PROBE}.png")  # the probe's request came last
        assert own and all(u.startswith("file://") for u in own)


def test_javascript_times_match_format_time(open_page):
    page = open_page("video/vid_b.html").page
    values = [0, 0.04, 0.05, 0.25, 59.95, 59.96, 75.25, 3599.99, 5000.5, -1.26, 1e-9]
    js = page.evaluate(f"{values}.map(window.talnetFormatTime)")
    assert js == [format_time(v) for v in values]


def test_zoom_widens_the_timeline_and_playback_keeps_the_cursor_in_view(open_page):
    page = open_page("video/vid_a.html").page
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    page.select_option("#zoom", "4")
    widths = page.evaluate(
        "[document.getElementById('canvas').getBoundingClientRect().width, "
        "document.getElementById('scroller').clientWidth]"
    )
    assert widths[0] == pytest.approx(4 * widths[1], rel=0.01)
    page.evaluate("document.getElementById('player').currentTime = 11")
    page.wait_for_function("document.getElementById('scroller').scrollLeft > 0")
    box = page.evaluate(
        "(() => { const c = document.getElementById('cursor').getBoundingClientRect(),"
        " s = document.getElementById('scroller').getBoundingClientRect();"
        " return [c.left, s.left, s.right]; })()"
    )
    assert box[1] <= box[0] <= box[2]  # the cursor is inside the visible part


def test_feature_only_page_has_a_working_timeline(open_page):
    page = open_page("video/vid_b.html").page
    assert count(page, "video") == 0
    page.click(".seg.gt")  # HighJump [10, 30] of a 40 s video
    assert page.evaluate("document.getElementById('cursor').style.left") == "25%"
    assert page.text_content("#clock").startswith(format_time(10.0))
    # Clicking the timeline itself seeks too: at 3/4 of its width is 30 s.
    box = page.locator("#axis").bounding_box()
    page.mouse.click(box["x"] + 0.75 * box["width"], box["y"] + 5)
    assert float(page.evaluate("document.getElementById('cursor').style.left")[:-1]) == (
        pytest.approx(75, abs=0.5)
    )


def test_pages_work_under_their_own_content_security_policy(browser, report):
    # The other tests bypass the CSP; here it is enforced, and must not break the viewer.
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((report / "video" / "vid_a.html").as_uri())
    page.wait_for_selector("body[data-ready='1']", state="attached")
    assert count(page, ".seg.pred") == len(PREDICTIONS["results"]["vid_a"])
    csp = page.get_attribute("meta[http-equiv='Content-Security-Policy']", "content")
    assert "script-src 'self' file:;" in csp and "unsafe-eval" not in csp
    assert errors == []
    page.close()


def test_unplayable_video_says_so_and_keeps_the_timeline(browser, tmp_path):
    gt, det, videos = write_inputs(tmp_path / "inputs")
    (videos / "vid_b.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report_from_files(tmp_path / "r", ground_truth=gt, predictions=det, video_dir=videos)
    opened = Opened(browser, (tmp_path / "r" / "video" / "vid_b.html").as_uri())
    page = opened.page
    page.wait_for_function("document.getElementById('player').error !== null")
    # The message is set by the page's error handler, which may run just after .error is set.
    page.wait_for_function(
        "document.getElementById('info').textContent.includes('cannot play')", timeout=5000
    )
    assert "cannot play the video file" in page.text_content("#info")
    page.click(".seg.gt")
    assert page.evaluate("document.getElementById('cursor').style.left") == "25%"
    assert opened.errors == []
    page.close()
