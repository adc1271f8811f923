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
