"""Atomic writes (eegattn.utils.io): permissions follow the umask, failures leave the old file."""

from __future__ import annotations

import json
import os
import stat

import pytest

from eegattn.utils.io import atomic_path, write_bytes_atomic, write_json_atomic, write_text_atomic


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    saved = os.umask(0o022)
    os.umask(saved)

    def set_umask(value: int) -> None:
        os.umask(value)

    yield set_umask
    os.umask(saved)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def _write_each(folder):
    """One file through each helper; returns their paths."""
    write_bytes_atomic(folder / "a.bin", b"\x00\x01")
    write_text_atomic(folder / "b.txt", "text")
    write_json_atomic(folder / "c.json", {"a": 1})
    with atomic_path(folder / "d.bin") as tmp:
        tmp.write_bytes(b"by name")
    return [folder / n for n in ("a.bin", "b.txt", "c.json", "d.bin")]


@pytest.mark.parametrize(("mask", "expected"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_files_get_the_umask_permissions(tmp_path, umask, mask, expected):
    umask(mask)
    for path in _write_each(tmp_path):
        assert _mode(path) == expected, path.name
    # replacing a file gives the new file the umask's permissions too
    os.chmod(tmp_path / "a.bin", 0o600)
    write_bytes_atomic(tmp_path / "a.bin", b"new")
    assert _mode(tmp_path / "a.bin") == expected


def test_contents_and_no_leftovers(tmp_path):
    paths = _write_each(tmp_path)
    assert paths[0].read_bytes() == b"\x00\x01"
    assert paths[1].read_text() == "text"
    assert paths[2].read_text() == '{\n  "a": 1\n}\n'
    assert paths[3].read_bytes() == b"by name"
    assert sorted(p.name for p in tmp_path.iterdir()) == [p.name for p in paths]


def test_failing_write_keeps_the_old_file_and_removes_the_temp(tmp_path):
    target = tmp_path / "weights.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json_atomic(tmp_path / "weights.bin", {"x": float("nan")})
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "text, not bytes")  # fails after the temp file exists
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.bin"]


def test_interrupt_leaves_no_temp(tmp_path):
    target = tmp_path / "x.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_overwrite_false_never_replaces(tmp_path):
    target = tmp_path / "out.zip"
    write_bytes_atomic(target, b"first", overwrite=False)
    with pytest.raises(FileExistsError, match="already exists"):
        write_bytes_atomic(target, b"second", overwrite=False)
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["out.zip"]
    write_bytes_atomic(target, b"third")
    assert target.read_bytes() == b"third"


def test_json_options(tmp_path):
    path = write_json_atomic(tmp_path / "x.json", {"b": float("inf"), "a": 1}, indent=None,
                             sort_keys=True, allow_nan=True)
    assert path.read_text() == '{"a": 1, "b": Infinity}\n'


def test_run_folder_files_follow_the_umask(tmp_path, umask):
    """config.json, metrics.json and weights.pt were 0600 when written through mkstemp."""
    from eegattn.models import build_model
    from eegattn.training.runs import create_run_dir, save_run

    umask(0o022)
    module = build_model("lightweight_noattn", n_chans=4, n_times=200, conv_channels=(4, 8),
                         head_hidden=(4,))
    run_dir = save_run(create_run_dir(tmp_path, "m"), module,
                       {"model": "lightweight_noattn"}, {"nrmse": 1.0})
    names = sorted(p.name for p in run_dir.iterdir())
    assert names == ["config.json", "metrics.json", "weights.pt"]
    for name in names:
        assert _mode(run_dir / name) == 0o644, name
    assert json.loads((run_dir / "metrics.json").read_text()) == {"nrmse": 1.0}
