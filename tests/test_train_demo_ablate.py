import json

import pytest
from model_factory import tiny_config, tiny_data

from talnet.cli.main import main
from talnet.config import edit_config, save_config
from talnet.errors import TalnetError
from talnet.io.results import load_detections
from talnet.pipelines.ablate import VARIANTS, format_ablation, run_ablation


def test_demo_end_to_end_prints_table_and_paths(tmp_path, capsys):
    cfg = tmp_path / "tiny.yaml"
    save_config(cfg, tiny_config(1))
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--config", str(cfg), "--videos-train", "3",
            "--videos-test", "2", "--quiet"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "mAP (%)" in printed and "mAP@0.5 on the synthetic test subset" in printed
    assert str(out / "detections.json") in printed
    dets = load_detections(out / "detections.json")
    assert set(dets) == {"synth_test_0000", "synth_test_0001"}
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["mAP"]) == 7 and (out / "run" / "checkpoint.pt").exists()
    index = out / "report" / "index.html"
    assert str(index) in printed
    pages = list((out / "report" / "video").glob("*.html"))
    assert len(pages) == 2 and "synth_test_0000" in index.read_text()


def test_variants_change_only_their_keys():
    base = tiny_config(1)
    single = edit_config(base, VARIANTS["single shared receptive field"])
    assert single.model.multi_tower is False and base.model.multi_tower is True
    assert single.train == base.train
    both = edit_config(base, VARIANTS["no context at all"])
    assert not both.model.spn_context and not both.model.cls_context


def test_a_misspelled_variant_key_is_an_error_not_the_baseline():
    base = tiny_config(1)
    with pytest.raises(TalnetError, match="multi_towers.*its fields:.*multi_tower"):
        edit_config(base, {"model": {"multi_towers": False}})
    with pytest.raises(TalnetError, match="unknown config section 'modle'"):
        edit_config(base, {"modle": {"multi_tower": False}})
    with pytest.raises(TalnetError, match="bad config value: model.fusion"):
        edit_config(base, {"model": {"fusion": "middle"}})
    assert base == tiny_config(1)  # the base is never edited in place
    for edits in VARIANTS.values():  # every shipped variant names real fields
        edit_config(base, edits)


def test_ablation_runs_variants_and_proposal_counts(tmp_path):
    data = tiny_data(tmp_path / "data")
    rows = run_ablation(
        data / "annotations.json", data / "features", tmp_path / "ab", tiny_config(1),
        names=["flow only", "early fusion"], progress=False, log_fn=lambda _m: None,
    )  # fmt: skip
    names = [r.name for r in rows]
    assert names[0] == "flow only" and names[-1] == "early fusion"
    assert any("proposals" in n for n in names)
    assert all(0 <= r.map_at_half <= 1 for r in rows)
    table = format_ablation(rows)
    assert "flow only" in table and "mAP@0.5" in table
    assert json.loads((tmp_path / "ab" / "ablation.json").read_text())[0]["name"] == "flow only"


def test_ablation_with_seeds_reports_mean_spread_and_each_seed(tmp_path):
    data = tiny_data(tmp_path / "data")
    rows = run_ablation(
        data / "annotations.json", data / "features", tmp_path / "ab", tiny_config(1),
        names=["flow only"], progress=False, log_fn=lambda _m: None, seeds=[3, 4],
    )  # fmt: skip
    trained = [r for r in rows if r.name == "flow only"]
    assert [r.seed for r in trained] == [3, 4]
    assert (tmp_path / "ab" / "variant_00_seed3").is_dir()
    assert (tmp_path / "ab" / "variant_00_seed4").is_dir()
    line = next(ln for ln in format_ablation(rows).splitlines() if ln.startswith("flow only "))
    values = [100 * r.map_at_half for r in trained]
    assert f"{sum(values) / 2:7.1f}" in line  # the mean over the two seeds
    assert " ".join(f"{v:.1f}" for v in values) in line  # and each seed's value
