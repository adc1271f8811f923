"""Fixtures shared across test modules."""

from __future__ import annotations

import os

# As talnet/__init__.py does, before torch loads OpenMP: the test workers share 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture
def one_torch_thread():
    """Run a test on one torch thread: tiny clips and models run faster so, and the I3D runs of
    parallel test workers do not fight over the cores. Restores the count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session", autouse=True)
def talnet_cache(tmp_path_factory):
    """talnet's user cache (converted weights, compiled kernels) in a folder of the test session,
    so tests neither read nor leave files in ~/.cache; subprocesses inherit it."""
    import os

    folder = tmp_path_factory.mktemp("talnet_cache")
    before = os.environ.get("TALNET_CACHE")
    os.environ["TALNET_CACHE"] = str(folder)
    yield folder
    if before is None:
        os.environ.pop("TALNET_CACHE", None)
    else:
        os.environ["TALNET_CACHE"] = before
