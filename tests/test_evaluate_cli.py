import json

import pytest

from talnet.cli.main import main


def write_files(tmp_path, results):
    gt = {
        "version": "test",
        "database": {
            "a": {
                "subset": "Test",
                "duration": 60.0,
                "annotations": [
                    {"label": "Jump", "segment": [1.0, 5.0]},
                    {"label": "Run", "segment": [10.0, 30.0]},
                    {"label": "Ambiguous", "segment": [40.0, 42.0]},
                ],
            },
            "b": {
                "subset": "Test",
                "duration": 60.0,
                "annotations": [{"label": "Jump", "segment": [2.5, 4.0]}],
            },
            "c": {"subset": "Validation", "duration": 60.0, "annotations": []},
        },
    }
    gt_path = tmp_path / "gt.json"
    gt_path.write_text(json.dumps(gt))
    det_path = tmp_path / "det.json"
    det_path.write_text(json.dumps({"version": "x", "results": results}))
    return gt_path, det_path, gt


def as_results(gt):
    return {
        vid: [
            {"label": a["label"], "score": 1.0, "segment": a["segment"]} for a in v["annotations"]
        ]
        for vid, v in gt["database"].items()
    }


def test_ground_truth_as_predictions_gives_one_everywhere(tmp_path, capsys):
    _, _, gt = write_files(tmp_path, {})
    gt_path, det_path, _ = write_files(tmp_path, as_results(gt))
    args = ["evaluate", "--ground-truth", str(gt_path), "--predictions", str(det_path)]
    assert main([*args, "--subset", "test", "--json"]) == 0
    captured = capsys.readouterr()
    out = json.loads(captured.out)  # exactly one JSON object on stdout
    assert out["tious"] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7]
    assert out["mAP"] == [1.0] * 7 and out["average"] == 1.0
    assert out["ap_per_class"] == {"Jump": [1.0] * 7, "Run": [1.0] * 7}
    # The Ambiguous "prediction" is not a class: reported once on stderr, ignored.
    assert captured.err.count("talnet: warning: ignored predictions") == 1

    assert main([*args, "--protocol", "activitynet", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["tious"]) == 10 and out["mAP"] == [1.0] * 10


def test_empty_predictions_give_zero_and_a_table(tmp_path, capsys):
    gt_path, det_path, _ = write_files(tmp_path, {})
    args = ["evaluate", "--ground-truth", str(gt_path), "--predictions", str(det_path)]
    assert main([*args, "--tious", "0.3,0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tious"] == [0.3, 0.5] and out["mAP"] == [0.0, 0.0] and out["average"] == 0.0
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "mAP (%)" in table and "Jump" in table and "Run" in table


def test_proposals(tmp_path, capsys):
    _, _, gt = write_files(tmp_path, {})
    gt_path, det_path, _ = write_files(tmp_path, as_results(gt))
    args = ["evaluate", "--ground-truth", str(gt_path), "--predictions", str(det_path)]
    assert main([*args, "--proposals", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["an"] == [1, 5, 10, 50, 100, 200, 500, 1000]
    assert out["ar100"] == 1.0
    assert main([*args, "--proposals"]) == 0
    assert "AR@100 (%): 100.00" in capsys.readouterr().out


def test_proposal_thresholds_are_the_papers_or_activitynets(tmp_path, capsys):
    _, _, gt = write_files(tmp_path, {})
    results = as_results(gt)
    for props in results.values():  # each 1 % of its length short: tIoU 0.99, below 1 only
        for p in props:
            start, end = p["segment"]
            p["segment"] = [start, end - 0.01 * (end - start)]
    gt_path, det_path, _ = write_files(tmp_path, results)
    args = ["evaluate", "--ground-truth", str(gt_path), "--predictions", str(det_path)]
    assert main([*args, "--proposals", "--json"]) == 0
    paper = json.loads(capsys.readouterr().out)
    assert paper["tious"][-1] == 1.0 and paper["ar100"] == pytest.approx(10 / 11)
    assert main([*args, "--proposals", "--protocol", "activitynet", "--json"]) == 0
    anet = json.loads(capsys.readouterr().out)
    assert anet["tious"] == [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
    assert anet["ar100"] == 1.0


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    gt_path, det_path, _ = write_files(tmp_path, {})
    args = ["evaluate", "--ground-truth", str(gt_path), "--predictions", str(det_path)]
    assert main([*args, "--subset", "train"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("talnet: error: ") and "train" in err and err.count("\n") == 1
    missing = ["evaluate", "--ground-truth", str(gt_path), "--predictions", "nope.json"]
    assert main(missing) == 2
    assert "nope.json" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main([*args, "--tious", "0.5,1.5"])
    assert exc.value.code == 2
    assert "(0, 1]" in capsys.readouterr().err
