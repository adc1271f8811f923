// talnet report: the timeline viewer of one video page. Works from file:// with no server:
// the page carries its data in <script type="application/json" id="talnet-data">.
// Data only ever reaches the page through textContent, dataset and style, never innerHTML.
"use strict";

(() => {
  const data = JSON.parse(document.getElementById("talnet-data").textContent);
  const video = document.getElementById("player");
  const canvas = document.getElementById("canvas");
  const scroller = document.getElementById("scroller");
  const gtLane = document.getElementById("lane-gt");
  const predLane = document.getElementById("lane-pred");
  const axis = document.getElementById("axis");
  const cursor = document.getElementById("cursor");
  const clock = document.getElementById("clock");
  const info = document.getElementById("info");
  const slider = document.getElementById("score");
  const sliderValue = document.getElementById("score-value");
  const shownCount = document.getElementById("shown-count");
  const zoomSelect = document.getElementById("zoom");
  const classBox = document.getElementById("classes");

  const ROW_HEIGHT = 24; // px per row of segments; matches .seg height + gap in report.css
  const colors = new Map(data.classes.map((c) => [c.label, c.color]));
  const hiddenClasses = new Set();
  let minScore = 0;
  let now = 0; // current time (s); the video's when there is one

  // Same output as talnet.visualize.colors.format_time (mm:ss.s; a test compares the two).
  function fmtTime(seconds) {
    if (!Number.isFinite(seconds)) return "--:--.-";
    const sign = seconds < 0 ? "-" : "";
    let tenths = Math.floor(Math.abs(seconds) * 10 + 0.5);
    const minutes = Math.floor(tenths / 600);
    tenths %= 600;
    const secs = String(Math.floor(tenths / 10)).padStart(2, "0");
    return `${sign}${String(minutes).padStart(2, "0")}:${secs}.${tenths % 10}`;
  }
  window.talnetFormatTime = fmtTime;

  function textColorOn(hex) {
    const v = parseInt(hex.slice(1), 16);
    const luma = 0.299 * (v >> 16) + 0.587 * ((v >> 8) & 255) + 0.114 * (v & 255);
    return luma > 140 ? "#000" : "#fff";
  }

  function rgba(hex, alpha) {
    const v = parseInt(hex.slice(1), 16);
    return `rgba(${v >> 16}, ${(v >> 8) & 255}, ${v & 255}, ${alpha})`;
  }

  // The time span the timeline shows: the video's duration once known, else the data's.
  let duration = data.duration > 0 ? data.duration : 0;
  for (const s of data.gt.concat(data.pred)) duration = Math.max(duration, s.end);
  if (!(duration > 0)) duration = 1;

  const segments = [];

  function describe(seg) {
    const span = `${fmtTime(seg.start)} – ${fmtTime(seg.end)}`;
    const length = `${(seg.end - seg.start).toFixed(1)} s`;
    if (seg.kind === "gt") return `ground truth: ${seg.label}, ${span} (${length})`;
    return `prediction: ${seg.label}, score ${seg.score.toFixed(3)}, ${span} (${length})`;
  }

  function makeSegment(kind, d) {
    const seg = { kind, label: d.label, start: d.start, end: d.end, score: d.score ?? null };
    const el = document.createElement("div");
    el.className = `seg ${kind}`;
    el.tabIndex = 0;
    el.dataset.kind = kind;
    el.dataset.label = d.label;
    el.dataset.start = String(d.start);
    el.dataset.end = String(d.end);
    const color = colors.get(d.label) || "#888888";
    if (kind === "gt") {
      el.style.background = color;
      el.style.color = textColorOn(color);
    } else {
      el.dataset.score = String(d.score);
      el.style.background = rgba(color, 0.25 + 0.55 * Math.min(Math.max(d.score, 0), 1));
      el.style.borderColor = color;
    }
    const text = document.createElement("span");
    text.className = "seg-label";
    text.textContent = kind === "gt" ? d.label : `${d.label} ${d.score.toFixed(2)}`;
    el.appendChild(text);
    el.title = describe(seg);
    const choose = (event) => {
      event.stopPropagation();
      seek(seg.start);
      info.textContent = describe(seg);
    };
    el.addEventListener("click", choose);
    el.addEventListener("keydown", (event) => {
      if (event.key === "Enter" || event.key === " ") {
        event.preventDefault();
        choose(event);
      }
    });
    seg.el = el;
    segments.push(seg);
    return seg;
  }

  // First-fit packing into rows, in the given order: predictions come sorted by score, so the
  // first row holds the most confident ones, as in the paper's supplement figures.
  function pack(items, lane) {
    const rows = [];
    for (const seg of items) {
      let row = rows.findIndex((spans) => spans.every(([a, b]) => seg.end <= a || seg.start >= b));
      if (row < 0) {
        row = rows.length;
        rows.push([]);
      }
      rows[row].push([seg.start, seg.end]);
      seg.el.style.top = `${row * ROW_HEIGHT}px`;
    }
    lane.style.height = `${Math.max(rows.length, 1) * ROW_HEIGHT}px`;
  }

  function visible(seg) {
    if (hiddenClasses.has(seg.label)) return false;
    return seg.kind === "gt" || seg.score >= minScore;
  }

  function layout() {
    for (const seg of segments) {
      seg.el.style.left = `${(100 * seg.start) / duration}%`;
      seg.el.style.width = `${(100 * Math.max(seg.end - seg.start, 0)) / duration}%`;
      seg.el.hidden = !visible(seg);
    }
    pack(segments.filter((s) => s.kind === "gt" && !s.el.hidden), gtLane);
    pack(segments.filter((s) => s.kind === "pred" && !s.el.hidden), predLane);
    const preds = segments.filter((s) => s.kind === "pred");
    const shown = preds.filter((s) => !s.el.hidden).length;
    shownCount.textContent = `${shown} of ${preds.length} predictions shown`;
    drawAxis();
    drawCursor();
  }

  function drawAxis() {
    axis.replaceChildren();
    const width = canvas.getBoundingClientRect().width || 1;
    const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    const step = steps.find((s) => (s / duration) * width >= 90) || steps[steps.length - 1];
    // No tick so close to the end that its label would stick out of the timeline.
    for (let t = 0; ((duration - t) / duration) * width >= 64; t += step) {
      const tick = document.createElement("div");
      tick.className = "tick";
      tick.style.left = `${(100 * t) / duration}%`;
      tick.textContent = fmtTime(t);
      axis.appendChild(tick);
    }
  }

  function drawCursor() {
    cursor.style.left = `${(100 * Math.min(Math.max(now, 0), duration)) / duration}%`;
    clock.textContent = `${fmtTime(now)} / ${fmtTime(duration)}`;
    for (const seg of segments) {
      seg.el.classList.toggle("active", seg.start <= now && now < seg.end);
    }
  }

  // Keep the cursor in view while playing when zoomed in.
  function follow() {
    const x = (now / duration) * canvas.getBoundingClientRect().width;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth) {
      scroller.scrollLeft = Math.max(0, x - scroller.clientWidth / 4);
    }
  }

  function seek(t) {
    now = Math.min(Math.max(t, 0), duration);
    if (video) video.currentTime = now;
    drawCursor();
  }

  function buildClassFilter() {
    for (const c of data.classes) {
      const label = document.createElement("label");
      label.className = "class-toggle";
      const box = document.createElement("input");
      box.type = "checkbox";
      box.checked = true;
      box.dataset.label = c.label;
      box.addEventListener("change", () => {
        if (box.checked) hiddenClasses.delete(c.label);
        else hiddenClasses.add(c.label);
        layout();
      });
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = c.color;
      const name = document.createElement("span");
      name.textContent = c.label;
      label.append(box, swatch, name);
      classBox.appendChild(label);
    }
    for (const [id, checked] of [["all-classes", true], ["no-classes", false]]) {
      document.getElementById(id).addEventListener("click", () => {
        for (const box of classBox.querySelectorAll("input[type=checkbox]")) {
          box.checked = checked;
          if (checked) hiddenClasses.delete(box.dataset.label);
          else hiddenClasses.add(box.dataset.label);
        }
        layout();
      });
    }
  }

  for (const d of data.gt) gtLane.appendChild(makeSegment("gt", d).el);
  for (const d of data.pred) predLane.appendChild(makeSegment("pred", d).el);
  buildClassFilter();

  slider.addEventListener("input", () => {
    minScore = Number(slider.value);
    sliderValue.textContent = minScore.toFixed(2);
    layout();
  });
  zoomSelect.addEventListener("change", () => {
    canvas.style.width = `${100 * Number(zoomSelect.value)}%`;
    drawAxis();
    follow();
  });
  canvas.addEventListener("click", (event) => {
    const box = canvas.getBoundingClientRect();
    seek(((event.clientX - box.left) / box.width) * duration);
  });
  window.addEventListener("resize", drawAxis);

  if (video) {
    video.addEventListener("loadedmetadata", () => {
      if (Number.isFinite(video.duration) && video.duration > duration) {
        duration = video.duration;
        layout();
      }
    });
    const tick = () => {
      now = video.currentTime;
      drawCursor();
      follow();
      if (!video.paused && !video.ended) requestAnimationFrame(tick);
    };
    video.addEventListener("play", () => requestAnimationFrame(tick));
    video.addEventListener("timeupdate", tick);
    video.addEventListener("seeked", tick);
    const sayUnplayable = () => {
      info.textContent =
        "This browser cannot play the video file (its codec or container); the timeline still works.";
    };
    video.addEventListener("error", sayUnplayable);
    // The media error may have fired before this script attached its listener.
    if (video.error) sayUnplayable();
  }

  // A link to "ID.html#t=SECONDS" (the Diagnosis page's worst cases) opens the page there.
  function seekToHash() {
    const match = /^#t=(\d+(?:\.\d*)?)$/.exec(window.location.hash);
    if (!match) return;
    seek(Number(match[1]));
    follow();
    info.textContent = `Opened at ${fmtTime(now)} from a link.`;
  }
  window.addEventListener("hashchange", seekToHash);

  layout();
  seekToHash();
  document.body.dataset.ready = "1";
})();
