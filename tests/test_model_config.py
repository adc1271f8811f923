import dataclasses

import pytest

from talnet.config import Config, load_config, preset_names, save_config
from talnet.errors import TalnetError


def test_paper_preset_equals_the_dataclass_defaults():
    assert load_config("thumos14_i3d").to_dict() == Config().to_dict()
    cfg = load_config(None)
    assert cfg.train.lr == 1e-4 and cfg.train.spn_batch == 256 and cfg.train.cls_batch == 64
    assert cfg.train.spn_positive_fraction == 0.5 and cfg.train.cls_foreground_fraction == 0.25
    assert (cfg.train.spn_positive_iou, cfg.train.spn_negative_iou) == (0.7, 0.3)


def test_presets_load_and_the_repo_copies_match(tmp_path):
    assert {"thumos14_i3d", "cpu_fast", "thumos14_cpu"} <= set(preset_names())
    thumos = load_config("thumos14_cpu")
    assert thumos.proposals.post_nms_per_step_test > 0 and thumos.detect.detections_per_step > 0
    assert load_config("configs/thumos14_cpu.yaml").to_dict() == thumos.to_dict()
    fast = load_config("cpu_fast")
    assert fast.model.tower_dim <= 256 and fast.model.soi_reduce_dim <= 128
    assert load_config("configs/cpu_fast.yaml").to_dict() == fast.to_dict()


def test_round_trip_through_yaml(tmp_path):
    cfg = load_config("cpu_fast")
    cfg.model.fusion = "early"
    save_config(tmp_path / "c.yaml", cfg)
    assert load_config(tmp_path / "c.yaml") == cfg
    assert dataclasses.asdict(cfg) == cfg.to_dict()


@pytest.mark.parametrize(
    "text, match",
    [
        ("model: {anchor: [1]}", "unknown key"),
        ("modle: {}", "unknown config section"),
        ("model: {fusion: middle}", "model.fusion"),
        ("model: [1, 2]", "must be a mapping"),
        ("model: {anchors: [8]\n", "cannot parse YAML"),
    ],
)
def test_bad_configs_name_the_file_and_key(tmp_path, text, match):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(TalnetError, match=match) as err:
        load_config(path)
    assert "bad.yaml" in str(err.value)


def test_missing_file_and_unknown_preset(tmp_path):
    with pytest.raises(TalnetError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(TalnetError, match="no such config preset"):
        load_config("nope")


def test_configs_saved_before_the_proposals_section_still_load():
    old = Config().to_dict()
    old.pop("proposals")
    old["train"].update(proposals_pre_nms=1500, proposals_post_nms=250, proposal_nms=0.6)
    old["detect"].update(proposals_pre_nms=700, max_proposals=90, proposal_nms=0.65)
    cfg = Config.from_dict(old)
    p = cfg.proposals
    assert (p.pre_nms_train, p.post_nms_train, p.nms_train) == (1500, 250, 0.6)
    assert (p.pre_nms_test, p.post_nms_test, p.nms_test) == (700, 90, 0.65)
    assert "max_proposals" in old["detect"]  # the caller's dict is left as it was
