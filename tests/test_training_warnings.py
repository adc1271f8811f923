"""`talnet train` warns when a run ends near chance (talnet.train.chance), and only then."""

import math
import warnings

import pytest
from model_factory import tiny_config, tiny_data

from talnet.cli.main import main
from talnet.config import Config, edit_config, load_config, save_config
from talnet.data.anet_profile import make_activitynet
from talnet.train.chance import near_chance, prior_loss_bound
from talnet.train.loop import FitOptions, train
from talnet.train.runfiles import read_log

LOSSES = ("video_cls", "spn_cls", "cls_cls")


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def anet_data(tmp_path_factory):
    """24 ActivityNet-shaped training videos of 3 classes (one class per video), 8-d."""
    return make_activitynet(
        tmp_path_factory.mktemp("anet"), videos_train=24, videos_test=2, classes=3, dim=8,
        progress=False,
    )  # fmt: skip


def _config(**train) -> Config:
    """tiny_config with the video-level classifier; crops hold whole videos (max_steps 512), so
    no crop misses its actions (a crop without one adds 0 to video_cls)."""
    return edit_config(
        tiny_config(), {"model": {"video_classifier": True}, "train": {"max_steps": 512, **train}}
    )


def _cli_train(data, run, config, subset, capsys):
    save_config(run.parent / f"{run.name}.yaml", config)
    argv = [
        "train", "--ground-truth", str(data / "annotations.json"), "--features",
        str(data / "features"), "--out", str(run), "--config", str(run.parent / f"{run.name}.yaml"),
        "--train-subset", subset, "--quiet", "--threads", "1",
    ]  # fmt: skip
    assert main(argv) == 0
    return capsys.readouterr()


def test_a_run_that_has_not_learned_warns_once_per_loss(demo_data, tmp_path, capsys):
    out = _cli_train(demo_data, tmp_path / "cold", _config(lr=1e-7, epochs=1), "validation", capsys)
    lines = [ln for ln in out.err.splitlines() if ln.startswith("talnet: warning: ")]
    assert sorted(ln.split()[2] for ln in lines) == sorted(LOSSES), out.err
    video = next(ln for ln in lines if "video_cls" in ln)
    assert f"ln(3) = {math.log(3):.3f}" in video and "train.lr" in video and "--epochs" in video
    assert "warning" not in out.out  # stdout keeps the epoch lines and the run's files


def test_a_run_that_has_learned_is_silent(anet_data, tmp_path, capsys):
    # 192 steps at cpu_fast's lr; seeds 0-3 all end 15 % or more below every threshold
    out = _cli_train(anet_data, tmp_path / "warm", _config(lr=1e-3, epochs=8), "training", capsys)
    log = read_log(tmp_path / "warm" / "log.jsonl")
    for name in LOSSES:  # each classification loss fell by a quarter or more
        assert log[-1][name] < 0.75 * log[0][name], (name, log)
    assert "warning" not in out.err, out.err


def test_train_as_a_library_stays_quiet(demo_data, tmp_path, capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would raise here
        result = train(
            demo_data / "annotations.json", demo_data / "features", tmp_path / "lib",
            _config(lr=1e-7, epochs=1), options=FitOptions(progress=False, log_fn=lambda _m: None),
        )  # fmt: skip
    assert capsys.readouterr() == ("", "")
    assert result.classes == ["action_00", "action_01", "action_02"]
    assert result.config is not None and result.config.train.lr == 1e-7
    # what the CLI would print, computed from what train returned
    assert len(near_chance(read_log(result.log), result.config, len(result.classes))) == 3


# The pure function on hand-made log records.


def _anet_like() -> Config:
    """anet13's sampler: up to 50 % positive anchors, up to 25 % foreground proposals."""
    config = load_config("anet13")
    assert config.train.spn_positive_fraction == 0.5
    assert config.train.cls_foreground_fraction == 0.25
    return config


def _record(epoch: int, **losses: float) -> dict:
    return {"epoch": epoch, "lr": 1e-4, "steps": 100, **losses}


def test_prior_loss_bound():
    assert prior_loss_bound(0.5, 1) == pytest.approx(math.log(2))  # a fair coin
    assert prior_loss_bound(1.0, 1) == pytest.approx(math.log(2))  # capped at the maximizer
    assert prior_loss_bound(1.0, 3) == pytest.approx(math.log(4))  # uniform over 4 labels
    quarter = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)) + 0.25 * math.log(40)
    assert prior_loss_bound(0.25, 40) == pytest.approx(quarter)


def test_video_classifier_near_chance_and_not():
    config = _anet_like()
    chance = math.log(40)
    above = [_record(1, video_cls=3.84), _record(6, video_cls=3.55)]  # the run
    (line,) = near_chance(above, config, 40)
    assert line.startswith("video_cls 3.550 after 6 epochs is near chance")
    assert f"ln(40) = {chance:.3f}" in line and "this run: 0.0001" in line
    assert near_chance([_record(6, video_cls=0.91 * chance)], config, 40)
    assert near_chance([_record(6, video_cls=0.89 * chance)], config, 40) == []
    config.train.video_cls_weight = 2.0  # the logged loss is weighted: so is chance
    assert near_chance([_record(6, video_cls=1.2 * chance)], config, 40) == []
    assert "2 x ln(40)" in near_chance([_record(6, video_cls=1.9 * chance)], config, 40)[0]
    assert near_chance([_record(1, video_cls=0.0)], config, 1) == []  # one class: nothing to say


def test_a_refitted_video_classifier_is_judged_by_its_own_loss():
    config = _anet_like()
    chance = math.log(40)
    fixed = [_record(6, video_cls=0.95 * chance, video_refit_loss=0.3 * chance)]
    assert near_chance(fixed, config, 40) == []  # the joint head's loss no longer matters
    config.train.video_cls_weight = 2.0  # the refit's loss is unweighted: chance is ln(K)
    stuck = [_record(6, video_cls=0.1, video_refit_loss=0.95 * chance)]
    (line,) = near_chance(stuck, config, 40)
    assert line.startswith(f"video_refit_loss {0.95 * chance:.3f} after 6 epochs is near chance")
    assert f": ln(40) = {chance:.3f}" in line


def test_stage_classifiers_near_chance_and_not():
    config = _anet_like()
    spn, cls = math.log(2), prior_loss_bound(0.25, 40)
    # above 90 % of the prior's bound: near chance even after one epoch
    lines = near_chance([_record(1, spn_cls=0.92 * spn, cls_cls=0.92 * cls)], config, 40)
    assert [ln.split()[0] for ln in lines] == ["spn_cls", "cls_cls"]
    assert "up to 25% foreground over 40 classes" in lines[1]
    # below it, one epoch: nothing to compare with, no warning
    assert near_chance([_record(1, spn_cls=0.5, cls_cls=1.2)], config, 40) == []
    # below it, but fell by less than 10 % since epoch 1: a stall
    stalled = [_record(1, spn_cls=0.36, cls_cls=1.2), _record(6, spn_cls=0.34, cls_cls=0.9)]
    (line,) = near_chance(stalled, config, 40)
    assert line.startswith("spn_cls 0.340 after 6 epochs fell only 6% from epoch 1's 0.360 ")
    rose = [_record(1, spn_cls=0.30), _record(2, spn_cls=0.32)]
    assert near_chance(rose, config, 40)[0].startswith("spn_cls 0.320 after 2 epochs rose from")
    # the calibration run (anet13, 40 classes, 4 epochs): both stages learned
    learned = [_record(1, spn_cls=0.360, cls_cls=1.199), _record(4, spn_cls=0.237, cls_cls=0.923)]
    assert near_chance(learned, config, 40) == []
    assert near_chance([], config, 40) == []
