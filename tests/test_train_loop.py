import json
import os
import signal
import subprocess
import sys
from dataclasses import replace

import pytest
import torch
from model_factory import tiny_config, tiny_data

from talnet.config import load_config
from talnet.data.dataset import TrainingData
from talnet.errors import TalnetError
from talnet.io.annotations import clip_for_training, load_ground_truth
from talnet.io.features import read_meta
from talnet.model.checkpoint import load_checkpoint
from talnet.model.talnet import TalNet
from talnet.pipelines.evaluation import held_out_validator
from talnet.train.epoch import learning_rate
from talnet.train.loop import FitOptions, fit, train

QUIET = FitOptions(progress=False, log_fn=lambda _m: None)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_data(tmp_path_factory.mktemp("tiny"))


def _log(run):
    return [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]


def test_train_writes_checkpoint_config_and_log(data, tmp_path):
    validate = held_out_validator(
        data / "features", load_ground_truth(data / "annotations.json", "test")
    )
    result = train(
        data / "annotations.json", data / "features", tmp_path / "run", tiny_config(2),
        options=FitOptions(progress=False, log_fn=lambda _m: None, validate=validate),
    )  # fmt: skip
    log = _log(tmp_path / "run")
    assert [r["epoch"] for r in log] == [1, 2]
    for key in ("spn_cls", "spn_reg", "cls_cls", "cls_reg", "loss", "lr", "time_s", "val_mAP@0.5"):
        assert key in log[-1]
    assert 0 <= log[-1]["val_mAP@0.5"] <= 1
    assert load_config(tmp_path / "run" / "config.yaml").model.anchors == [2, 4, 8, 16, 32]
    ckpt = torch.load(result.checkpoint, weights_only=True)  # plain data only
    assert ckpt["epoch"] == 2 and ckpt["classes"] == ["action_00", "action_01", "action_02"]


def test_fit_trains_in_memory_and_writes_nothing(data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    meta = read_meta(data / "features")
    gt = clip_for_training(load_ground_truth(data / "annotations.json", "validation"))
    training = TrainingData(gt, data / "features", meta)
    config = tiny_config(2)
    torch.manual_seed(0)
    model = TalNet(dict(zip(meta.streams, meta.dims, strict=True)), 3, config)
    before = [p.detach().clone() for p in model.parameters()]
    epochs = []
    torch.set_flush_denormal(False)  # (made after it: a flushing CPU zeroes it on creation)
    subnormal = torch.tensor([1e-39])
    assert (subnormal * 1.0).item() != 0.0  # the CPU's default: slow subnormal arithmetic
    last = fit(model, training, config, replace(QUIET, on_epoch=lambda r, *_: epochs.append(r)))
    assert [r["epoch"] for r in epochs] == [1, 2] and last is epochs[-1]
    assert (subnormal * 1.0).item() == 0.0  # training flushed subnormals to zero
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))
    assert list(tmp_path.iterdir()) == []


def test_same_seed_same_losses_and_resume_continues_exactly(data, tmp_path):
    config = tiny_config(1)
    config.train.schedule = "constant"  # so a 1-epoch run is a prefix of a 3-epoch run

    def run(folder, epochs, resume=False):
        train(
            data / "annotations.json", data / "features", folder, config,
            resume=resume, epochs=epochs, options=QUIET,
        )  # fmt: skip
        return _log(folder)

    straight = run(tmp_path / "a", 3)
    again = run(tmp_path / "b", 3)
    assert [r["loss"] for r in straight] == [r["loss"] for r in again]
    run(tmp_path / "c", 1)
    resumed = run(tmp_path / "c", 3, resume=True)
    assert [r["epoch"] for r in resumed] == [1, 2, 3]
    assert [r["loss"] for r in resumed] == [r["loss"] for r in straight]


def test_resume_after_killing_a_training_process(data, tmp_path):
    run = tmp_path / "killed"
    cmd = [
        sys.executable, "-m", "talnet.cli.main", "train", "--annotations",
        str(data / "annotations.json"), "--features", str(data / "features"), "--out", str(run),
        "--config", str(_tiny_yaml(tmp_path, 200)), "--quiet", "--threads", "1",
    ]  # fmt: skip
    # Unbuffered, so each epoch's line arrives when the trainer prints it (after its checkpoint).
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    seen: list[str] = []
    try:
        for line in proc.stdout:  # blocks until the next line; ends if the trainer exits
            seen.append(line)
            if line.startswith("epoch 2/"):
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    assert seen and seen[-1].startswith("epoch 2/"), "trainer ended early:\n" + "".join(seen)
    done = load_checkpoint(run / "checkpoint.pt")["epoch"]
    assert 2 <= done < 200  # killed mid-run, after some epochs
    out = subprocess.run(
        [*cmd, "--resume", "--epochs", str(done + 1)], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0, out.stderr
    assert [r["epoch"] for r in _log(run)] == list(range(1, done + 2))
    assert load_checkpoint(run / "checkpoint.pt")["epoch"] == done + 1


def _tiny_yaml(folder, epochs):
    from talnet.config import save_config

    path = folder / "tiny.yaml"
    save_config(path, tiny_config(epochs))
    return path


def test_two_process_ddp_on_cpu(data, tmp_path):
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    run = tmp_path / "ddp"
    cmd = [
        torchrun, "--standalone", "--nproc_per_node=2", "-m", "talnet.cli.main", "train",
        "--ground-truth", str(data / "annotations.json"), "--features", str(data / "features"),
        "--out", str(run), "--config", str(_tiny_yaml(tmp_path, 2)), "--quiet", "--threads", "1",
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr  # whole: each rank's traceback comes first
    log = _log(run)
    assert [r["epoch"] for r in log] == [1, 2]
    assert log[0]["steps"] == 2  # 4 videos shared by 2 processes
    ckpt = load_checkpoint(run / "checkpoint.pt")
    assert len(ckpt["rng"]["sampler"]) == 2


# Run by each of two torchrun processes: train, let the run's objects go, and exit 3 if gloo's
# threads outlived the group. Threads left running race the interpreter's exit and may abort a
# run that finished (SIGABRT, "terminate called without an active exception").
_THREADS_LEFT = """
import gc, os, sys
from talnet.config import load_config
from talnet.train.loop import FitOptions, train
data, out, config = sys.argv[1:4]
train(data + "/annotations.json", data + "/features", out + os.environ["RANK"],
      load_config(config), options=FitOptions(progress=False, log_fn=lambda _m: None))
gc.collect()
names = [open(f"/proc/self/task/{t}/comm").read().strip() for t in os.listdir("/proc/self/task")]
left = [n for n in names if "gloo" in n]
print("rank", os.environ["RANK"], "threads left:", left, file=sys.stderr)
sys.exit(3 if left else 0)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads Linux's /proc")
def test_two_process_training_leaves_no_group_threads_behind(data, tmp_path):
    script = tmp_path / "threads_left.py"
    script.write_text(_THREADS_LEFT)
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    cmd = [
        torchrun, "--standalone", "--nproc_per_node=2", str(script),
        str(data), str(tmp_path / "run"), str(_tiny_yaml(tmp_path, 1)),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("threads left: []") == 2


def test_learning_rate_schedules():
    cfg = load_config("cpu_fast")
    cfg.train.epochs, cfg.train.warmup_epochs, cfg.train.lr = 10, 1.0, 1.0
    assert learning_rate(cfg, 0.0) == pytest.approx(0.1)
    assert learning_rate(cfg, 1.0) == pytest.approx(1.0)
    assert learning_rate(cfg, 10.0) == pytest.approx(cfg.train.min_lr_ratio)
    cfg.train.schedule, cfg.train.warmup_epochs, cfg.train.step_epochs = "step", 0, [5]
    assert learning_rate(cfg, 4.9) == 1.0 and learning_rate(cfg, 5.0) == pytest.approx(0.1)
    assert learning_rate(load_config("thumos14_i3d"), 3.0) == 1e-4  # the supplement: constant


def test_training_on_missing_features_is_a_clear_error(data, tmp_path):
    (tmp_path / "feats").mkdir()
    with pytest.raises(TalnetError, match="feature"):
        train(data / "annotations.json", tmp_path / "feats", tmp_path / "r", tiny_config(1),
              options=QUIET)  # fmt: skip
