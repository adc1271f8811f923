import json

import pytest

from talnet.errors import TalnetError
from talnet.io.results import load_detections, save_detections
from talnet.io.types import Detection


def test_save_sorts_caps_and_round_trips(tmp_path):
    dets = {
        "v": [
            Detection("A", 0.0, 1.0, 0.2),
            Detection("B", 1.0, 2.0, 0.9),
            Detection("A", 3, 4, 0.5),
        ],
        "w": [],
    }
    path = tmp_path / "det.json"
    save_detections(path, dets, max_per_video=2)
    raw = json.loads(path.read_text())
    assert [d["score"] for d in raw["results"]["v"]] == [0.9, 0.5]
    loaded = load_detections(path)
    assert loaded == {"v": [Detection("B", 1.0, 2.0, 0.9), Detection("A", 3.0, 4.0, 0.5)], "w": []}


def test_load_activitynet_results(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(
        json.dumps(
            {
                "version": "VERSION 1.3",
                "results": {"v": [{"label": "A", "score": 1, "segment": [0.5, 2]}]},
                "external_data": {"used": False},
            }
        )
    )
    assert load_detections(path) == {"v": [Detection("A", 0.5, 2.0, 1.0)]}


def test_bad_score_names_file_and_video(tmp_path):
    path = tmp_path / "r.json"
    path.write_text('{"results": {"v": [{"label": "A", "score": "high", "segment": [0, 1]}]}}')
    with pytest.raises(TalnetError) as err:
        load_detections(path)
    assert str(err.value) == f"{path}: video 'v' detection 0 score: expected a number, got 'high'"
