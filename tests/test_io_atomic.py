import pytest

from talnet.errors import TalnetError
from talnet.io.atomic import atomic_open, safe_child


def test_atomic_open_leaves_nothing_on_error(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError), atomic_open(target) as handle:
        handle.write("partial")
        raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_open_writes_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_open(target) as handle:
        handle.write("done")
    assert target.read_text() == "done"


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", "", "..", ".hidden", "a\x00b"])
def test_safe_child_refuses_escapes(tmp_path, name):
    with pytest.raises(TalnetError):
        safe_child(tmp_path, name, ".npy")


def test_safe_child_accepts_video_ids(tmp_path):
    assert safe_child(tmp_path, "video_test_0000270", ".npy") == tmp_path / "video_test_0000270.npy"
