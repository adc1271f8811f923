import subprocess
import sys

from talnet.cli.main import main


def test_help_lists_program(capsys):
    try:
        main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    assert "talnet" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "talnet.cli.main", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0
    assert out.stdout.startswith("talnet ")


def test_allocator_tuning_applies_on_glibc_and_yields_to_the_users_setting(monkeypatch):
    from talnet.allocator import keep_freed_memory

    assert keep_freed_memory() is True  # this project's machines run glibc Linux
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    assert keep_freed_memory() is False


def test_bench_cuda_says_so_and_succeeds_without_a_gpu(capsys):
    import pytest
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is present: this checks the message printed without one")
    assert main(["bench", "--only", "cuda", "--quick"]) == 0
    assert "no CUDA device" in capsys.readouterr().out


def _subcommands():
    import argparse

    from talnet.cli.main import build_parser

    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices


def test_one_vocabulary_across_commands():
    # --ground-truth names the annotation file everywhere (--annotations is an alias), --quiet
    # turns progress bars off everywhere, and --videos no longer means two things.
    commands = _subcommands()
    for name, parser in commands.items():
        flags = {s for a in parser._actions for s in a.option_strings}
        assert "--videos" not in flags, name
        if "--annotations" in flags or "--ground-truth" in flags:
            assert {"--annotations", "--ground-truth"} <= flags, name
            for flag in ("--annotations", "--ground-truth"):
                action = next(a for a in parser._actions if flag in a.option_strings)
                assert action.dest == "ground_truth", name
        long_work = ("train", "ablate", "demo", "detect", "extract", "visualize")
        if name in long_work:
            assert "--quiet" in flags, name
    assert {"train", "detect", "evaluate", "report", "visualize", "check", "ablate"} <= set(
        name for name, p in commands.items()
        if "--ground-truth" in {s for a in p._actions for s in a.option_strings}
    )
