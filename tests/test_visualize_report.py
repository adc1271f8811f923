"""`talnet report` without a browser: files written, numbers, escaping, paths, errors."""

from __future__ import annotations

import html
import json
import re
import warnings
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from visualize_report_data import GROUND_TRUTH, PREDICTIONS, UNSAFE_ID, XSS, write_inputs

from talnet.cli.main import main
from talnet.errors import TalnetError
from talnet.evaluate.detection import evaluate_detection, video_ap
from talnet.evaluate.diagnose import diagnose
from talnet.io.annotations import load_ground_truth
from talnet.io.atomic import safe_child
from talnet.io.results import load_detections
from talnet.io.types import Annotation, Detection, VideoInfo
from talnet.visualize.plots import pr_panel_classes
from talnet.visualize.report import (
    MARKER,
    find_run_files,
    find_videos,
    is_loss_key,
    page_names,
    read_training_log,
    report_from_files,
    script_json,
)
from talnet.visualize.report_data import diagnose_report, evaluate_report


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return write_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory):
    gt, det, videos = inputs
    out = tmp_path_factory.mktemp("site") / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # predictions for a video without ground truth
        rc = main(
            ["report", "--ground-truth", str(gt), "--predictions", str(det), "--video-dir",
             str(videos), "--subset", "test", "--out", str(out)]
        )  # fmt: skip
    assert rc == 0
    return out


def page_data(page: Path) -> dict:
    """The JSON a video page embeds for its timeline script."""
    text = page.read_text()
    match = re.search(
        r'<script type="application/json" id="talnet-data">(.*?)</script>', text, re.S
    )
    assert match, page
    return json.loads(match.group(1))


def test_script_json_cannot_close_the_script_and_round_trips():
    obj = {"label": "</script><!-- x --> & <b>", "n": [1.5, 2], "line": "a\u2028b"}
    text = script_json(obj)
    assert "</" not in text and "<!--" not in text and "<" not in text and "\u2028" not in text
    assert json.loads(text) == obj


def test_page_names_are_safe_unique_and_keep_plain_ids():
    ids = ["video_test_0000004", "Video_Test_0000004", "../etc/passwd", "a/b", XSS, "a" * 300, ""]
    names = page_names(ids)
    assert names["video_test_0000004"] == "video_test_0000004.html"
    assert len({n.lower() for n in names.values()}) == len(ids)
    for name in names.values():
        assert name.endswith(".html")
        safe_child("folder", name[: -len(".html")], ".html")  # raises if the name could escape
        assert len(name) <= 120


def test_index_numbers_equal_the_evaluator(report, inputs):
    gt_path, det_path, _ = inputs
    gt = load_ground_truth(gt_path)
    dets = load_detections(det_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = evaluate_detection(gt, dets, subset="test")
    index = (report / "index.html").read_text()
    table = re.search(r'<table id="map-table">(.*?)</table>', index, re.S).group(1)
    cells = re.findall(r'<td class="num">([^<]*)</td>', table)
    assert cells == [f"{100 * m:.1f}" for m in expected.mAP] + [f"{100 * expected.average:.1f}"]
    for name in ("map_vs_tiou", "class_ap", "precision_recall"):
        assert (report / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")
        assert f'src="figures/{name}.svg"' in index


def test_videos_listed_by_their_own_ap_with_a_page_each(report, inputs):
    gt_path, det_path, _ = inputs
    test_gt = load_ground_truth(gt_path, subset="test")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        aps = video_ap(test_gt, load_detections(det_path))
    index = (report / "index.html").read_text()
    table = re.search(r'<table id="video-table">(.*?)</table>', index, re.S).group(1)
    links = re.findall(r'<a href="video/([^"]+)">([^<]*)</a>', table)
    shown = [html.unescape(text) for _, text in links]
    # Only the test subset, lowest AP first, then the video that has no ground truth.
    assert shown == sorted(test_gt, key=lambda v: (aps[v], v)) + ["no_gt_video"]
    assert "train_only" not in index
    pages = sorted(p.name for p in (report / "video").iterdir())
    assert sorted(unquote(href) for href, _ in links) == pages
    assert (report / "video" / "vid_a.html").is_file()


def test_unsafe_id_gets_a_page_inside_the_report(report):
    name = page_names([UNSAFE_ID])[UNSAFE_ID]
    page = report / "video" / name
    assert page.resolve().parent == (report / "video").resolve()
    assert page_data(page)["video_id"] == UNSAFE_ID


def test_diagnosis_page_links_worst_cases_to_their_video_at_that_time(report, inputs):
    assert 'href="diagnosis.html"' in (report / "index.html").read_text()
    page = (report / "diagnosis.html").read_text()
    for name in ("fp_profile", "removal_gain", "sensitivity"):
        assert f'src="figures/diagnosis_{name}.svg"' in page
        assert (report / "figures" / f"diagnosis_{name}.svg").read_text().lstrip()[:5] == "<?xml"
    gt_path, det_path, _ = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        d = diagnose(load_ground_truth(gt_path), load_detections(det_path), subset="test")
    expected = [
        (case.video_id, case.detection.start)
        for cases in d.worst_false_positives.values()
        for case in cases
    ] + [(m.video_id, m.instance.start) for m in d.longest_missed]
    links = re.findall(r'<a href="video/([^"#]+)#t=([0-9.]+)">([^<]*)</a>', page)
    assert expected and [(html.unescape(text), float(t)) for _, t, text in links] == expected
    for href, _, _ in links:
        assert (report / "video" / unquote(href)).is_file()


def test_diagnosis_page_escapes_ids_and_labels(tmp_path):
    # A prediction of LongJump on an instance labelled XSS: a wrong label; both instances missed.
    gt = {
        "database": {
            UNSAFE_ID: {
                "subset": "test",
                "duration": 20.0,
                "annotations": [
                    {"label": XSS, "segment": [1.0, 5.0]},
                    {"label": "LongJump", "segment": [10.0, 12.0]},
                ],
            }
        }
    }
    det = {"results": {UNSAFE_ID: [{"label": "LongJump", "score": 0.9, "segment": [1.0, 5.0]}]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "det.json").write_text(json.dumps(det))  # fmt: skip
    report_from_files(
        tmp_path / "r", ground_truth=tmp_path / "gt.json", predictions=tmp_path / "det.json"
    )
    page = (tmp_path / "r" / "diagnosis.html").read_text()
    assert XSS not in page and "<img src=x" not in page
    assert html.escape(XSS) in page and html.escape(UNSAFE_ID) in page
    name = page_names([UNSAFE_ID])[UNSAFE_ID]
    for seconds in ("1.00", "10.00"):  # the wrong label, and the longest miss (2 s, then 4 s)
        assert f'href="video/{quote(name)}#t={seconds}"' in page


def test_no_diagnosis_when_every_instance_has_zero_length():
    gt = {"v": VideoInfo("v", "test", 10.0, None, [Annotation("A", 2.0, 2.0)])}
    dets = {"v": [Detection("A", 1.0, 3.0, 0.5)]}
    assert evaluate_report(gt, dets, None, None).map_per_tiou[0] == 0.0
    assert diagnose_report(gt, dets, None, None) is None


def test_every_string_is_escaped(report):
    for page in [report / "index.html", report / "diagnosis.html", *(report / "video").iterdir()]:
        text = page.read_text()
        assert XSS not in text and "<img src=x" not in text, page
    assert html.escape(XSS) in (report / "index.html").read_text()
    data = page_data(report / "video" / "vid_a.html")
    assert XSS in {seg["label"] for seg in data["gt"]}


def test_pages_embed_every_segment_of_the_files(report):
    for video_id in ("vid_a", "vid_b"):
        data = page_data(report / "video" / f"{video_id}.html")
        assert len(data["gt"]) == len(GROUND_TRUTH["database"][video_id]["annotations"])
        assert len(data["pred"]) == len(PREDICTIONS["results"][video_id])
        scores = [p["score"] for p in data["pred"]]
        assert scores == sorted(scores, reverse=True)


def test_site_is_offline(report):
    for path in report.rglob("*"):
        if path.suffix in (".html", ".js", ".css"):
            text = path.read_text()
            assert "http://" not in text and "https://" not in text, path
            assert "fetch(" not in text and "XMLHttpRequest" not in text, path


def test_video_linked_by_relative_path_or_copied(report, inputs, tmp_path):
    _, _, videos = inputs
    src = re.search(
        r'<video id="player"[^>]* src="([^"]+)"', (report / "video/vid_a.html").read_text()
    )
    assert (report / "video" / src.group(1)).resolve() == (videos / "vid_a.webm").resolve()
    assert '<video id="player"' not in (report / "video/vid_b.html").read_text()

    gt, det, _ = inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report_from_files(
            tmp_path / "copied", ground_truth=gt, predictions=det, video_dir=videos,
            subset="test", copy_videos=True,
        )  # fmt: skip
    page = (tmp_path / "copied/video/vid_a.html").read_text()
    assert 'src="../media/vid_a.webm"' in page
    copied = tmp_path / "copied/media/vid_a.webm"
    assert copied.read_bytes() == (videos / "vid_a.webm").read_bytes()


def test_find_videos_prefers_playable_files_and_activitynet_names(tmp_path):
    for name in ("a.avi", "a.mp4", "v_XYZ.webm", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    found = find_videos(tmp_path)
    assert found["a"].name == "a.mp4"
    assert found["XYZ"].name == "v_XYZ.webm" and found["v_XYZ"].name == "v_XYZ.webm"
    assert "notes" not in found
    with pytest.raises(TalnetError, match="video folder not found"):
        find_videos(tmp_path / "missing")


def test_refuses_to_replace_a_folder_it_did_not_write(inputs, tmp_path):
    gt, det, _ = inputs
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.tex").write_text("precious")
    with pytest.raises(TalnetError, match="refusing to replace"):
        report_from_files(out, ground_truth=gt, predictions=det)
    assert (out / "thesis.tex").read_text() == "precious"


@pytest.mark.filterwarnings("ignore:ignored predictions")
def test_rerun_replaces_an_earlier_report_and_leaves_no_temporaries(inputs, tmp_path):
    gt, det, _ = inputs
    out = tmp_path / "site"
    # No --subset: the ground truth has two, the predictions cover only "test".
    with pytest.warns(UserWarning, match="evaluating subset 'test' only"):
        report_from_files(out, ground_truth=gt, predictions=det)
    assert "train_only" not in (out / "index.html").read_text()
    (out / "video" / "stale.html").write_text("from an older run")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report_from_files(out, ground_truth=gt, predictions=det, subset="test")
    assert (out / MARKER).is_file()
    assert not (out / "video" / "stale.html").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_bad_input_leaves_no_output(inputs, tmp_path, capsys):
    gt, _, _ = inputs
    bad = tmp_path / "det.json"
    bad.write_text('{"results": {"vid_a": [{"label": "LongJump", "score": "high"}]}}')
    out = tmp_path / "report"
    rc = main(["report", "--ground-truth", str(gt), "--predictions", str(bad), "--out", str(out)])
    assert rc == 2
    err = capsys.readouterr().err
    assert err.startswith("talnet: error: ") and str(bad) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["det.json"]


def test_cli_needs_both_files_or_a_run(inputs, tmp_path, capsys):
    gt, _, _ = inputs
    assert main(["report", "--ground-truth", str(gt), "--out", str(tmp_path / "r")]) == 2
    assert "--predictions" in capsys.readouterr().err
    assert main(["report", "--out", str(tmp_path / "r")]) == 2
    assert "nothing to report" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


LOG_ROWS = [  # the keys talnet.train writes, a string it may add, a cut last line
    {"epoch": 1, "lr": 1e-4, "steps": 50, "spn_cls": 0.69, "spn_reg": 0.4, "cls_cls": 3.0,
     "cls_reg": 0.5, "loss": 4.6, "time_s": 3.2, "note": "warm-up"},
    {"epoch": 2, "lr": 1e-4, "steps": 50, "spn_cls": 0.5, "spn_reg": 0.3, "cls_cls": 2.1,
     "cls_reg": 0.4, "loss": 3.3, "val_mAP@0.5": 0.21, "val_mAP_avg": 0.15, "time_s": 3.1},
]  # fmt: skip


def write_log(run: Path) -> None:
    run.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(LOG_ROWS[0]), "", json.dumps(LOG_ROWS[1]), '{"epoch": 3, "loss_sp']
    (run / "log.jsonl").write_text("\n".join(lines))


def test_training_log_reads_numbers_and_tolerates_a_cut_last_line(tmp_path):
    write_log(tmp_path)
    rows = read_training_log(tmp_path / "log.jsonl")
    assert rows == [{k: v for k, v in row.items() if k != "note"} for row in LOG_ROWS]
    (tmp_path / "bad.jsonl").write_text('{"epoch": 1}\n{oops\n{"epoch": 3}\n')
    with pytest.raises(TalnetError, match="line 2: malformed JSON"):
        read_training_log(tmp_path / "bad.jsonl")


def test_loss_keys_are_losses_not_bookkeeping_or_metrics():
    keys = [k for row in LOG_ROWS for k in row if k != "note"]
    assert sorted({k for k in keys if is_loss_key(k)}) == sorted(
        ["spn_cls", "spn_reg", "cls_cls", "cls_reg", "loss"]
    )
    assert is_loss_key("loss_total") and not is_loss_key("AR@100")


def test_run_files_found_in_a_run_or_a_demo_folder(tmp_path):
    write_log(tmp_path / "plain")
    assert find_run_files(tmp_path / "plain") == {"log": tmp_path / "plain" / "log.jsonl"}
    with pytest.raises(TalnetError, match="run folder not found"):
        find_run_files(tmp_path / "missing")


def test_demo_folder_report_adds_training_curves(inputs, tmp_path):
    # `talnet demo --out D` writes D/run/log.jsonl, D/detections.json, D/data/annotations.json.
    gt, det, _ = inputs
    demo = tmp_path / "demo"
    write_log(demo / "run")
    (demo / "data").mkdir()
    (demo / "data" / "annotations.json").write_bytes(Path(gt).read_bytes())
    (demo / "detections.json").write_bytes(Path(det).read_bytes())
    out = demo / "report"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert main(["report", "--run", str(demo), "--out", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert 'id="map-table"' in index  # predictions and ground truth came from the folder
    assert str(demo / "data" / "annotations.json") in index  # inputs are named on the page
    assert 'src="figures/training_loss.svg"' in index and 'src="figures/training_map.svg"' in index
    # matplotlib writes each legend label into the SVG as a comment
    loss_svg = (out / "figures/training_loss.svg").read_text()
    assert "<!-- spn_cls -->" in loss_svg and "<!-- loss -->" in loss_svg
    assert "<!-- lr -->" not in loss_svg and "<!-- time_s -->" not in loss_svg
    map_svg = (out / "figures/training_map.svg").read_text()
    assert "<!-- val_mAP@0.5 -->" in map_svg and "<!-- spn_cls -->" not in map_svg

    (demo / "data" / "annotations.json").unlink()
    assert main(["report", "--run", str(demo), "--out", str(out)]) == 2  # GT missing
    (demo / "detections.json").unlink()
    assert main(["report", "--run", str(demo), "--out", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert "training_loss.svg" in index and 'id="map-table"' not in index


def test_precision_recall_panels_are_the_best_and_worst_classes():
    ap = {f"c{i:02d}": i / 100 for i in range(30)}
    chosen = pr_panel_classes(ap)
    assert chosen == [f"c{i:02d}" for i in range(29, 17, -1)] + [
        f"c{i:02d}" for i in range(11, -1, -1)
    ]
    assert pr_panel_classes({"b": 0.5, "a": 0.5}) == ["a", "b"]


def test_odd_unicode_ids_and_labels_do_not_crash(tmp_path):
    # JSON may hold a lone surrogate ("\ud800"), which UTF-8 cannot encode; labels may be any text.
    (tmp_path / "gt.json").write_text(
        '{"database": {"bad\\ud800id": {"subset": "test", "duration": 10, "annotations":'
        ' [{"label": "Saut \\u00e0 la perche \\u2028", "segment": [1, 2]}]}}}'
    )
    (tmp_path / "det.json").write_text(
        '{"results": {"bad\\ud800id": [{"label": "Saut \\u00e0 la perche \\u2028",'
        ' "score": 0.5, "segment": [1, 2]}]}}'
    )
    index = report_from_files(
        tmp_path / "r", ground_truth=tmp_path / "gt.json", predictions=tmp_path / "det.json"
    )
    [page] = (tmp_path / "r" / "video").iterdir()
    assert page_data(page)["gt"][0]["label"] == "Saut \u00e0 la perche \u2028"
    assert "Saut \u00e0 la perche" in index.read_text(encoding="utf-8")
