"""The window cache's manifest, damaged entries (detected, reported, rebuilt), NaN / Inf windows,
and `eegattn cache`: the listing, leftovers of killed runs, stale entries and the cleaning."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from eegattn.cli import main
from eegattn.data import cache as cache_module
from eegattn.data import hbn
from eegattn.data.cache import (
    CacheWarning,
    DamagedEntryError,
    load_challenge_windows,
    read_entry,
    scan_cache,
    verify_entry,
)

QUIET = dict(progress=False)


@pytest.fixture(scope="module")
def built(tiny_root, tmp_path_factory):
    """A pristine challenge-1 cache (copied by the tests that damage it)."""
    cache_dir = tmp_path_factory.mktemp("pristine")
    windows = load_challenge_windows(1, root=tiny_root, cache_dir=cache_dir, **QUIET)
    return cache_dir, windows.cache_key, np.array(windows.X), np.array(windows.y)


@pytest.fixture
def cache_copy(built, tmp_path):
    cache_dir, key, X, y = built
    shutil.copytree(cache_dir, tmp_path / "cache")
    return tmp_path / "cache", key, X, y


def _cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(["cache", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _no_temporary(cache_dir) -> bool:
    return not any(p.name.startswith(".tmp-") for p in cache_dir.iterdir())


# --------------------------------------------------------------------------------------------
# Manifest and damage
# --------------------------------------------------------------------------------------------
def test_entry_has_a_manifest_of_sizes_shapes_and_checksums(cache_copy):
    cache_dir, key, X, y = cache_copy
    entry = cache_dir / key
    manifest = json.loads((entry / "manifest.json").read_text())
    files = manifest["files"]
    assert manifest["key"] == key
    assert files["X.npy"]["shape"] == list(X.shape) and files["X.npy"]["dtype"] == "<f4"
    assert files["X.npy"]["bytes"] == (entry / "X.npy").stat().st_size
    assert files["y.npy"]["shape"] == [len(y)]
    for name in ("y.npy", "metadata.csv", "info.json"):
        assert len(files[name]["sha256"]) == 64
    assert verify_entry(entry) == [] and verify_entry(entry, deep=True) == []
    assert not (entry / ".building").exists()


def _truncate_x(entry):
    path = entry / "X.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _zero_y(entry):
    path = entry / "y.npy"
    data = bytearray(path.read_bytes())
    data[128:] = bytes(len(data) - 128)  # header kept, every target 0.0
    path.write_bytes(bytes(data))


def _garble_info(entry):
    (entry / "info.json").write_text("{not json")


def _edit_info(entry):  # valid JSON, wrong content
    info = json.loads((entry / "info.json").read_text())
    info["n_windows"] += 1
    (entry / "info.json").write_text(json.dumps(info))


DAMAGE = {
    "truncated X.npy": (_truncate_x, r"X\.npy has \d+ bytes, the manifest says \d+ \(truncated\)"),
    "zeroed y.npy": (_zero_y, r"y\.npy does not match its checksum"),
    "bad info.json": (_garble_info, r"info\.json (does not match its checksum|has \d+ bytes)"),
    "edited info.json": (_edit_info, r"info\.json (does not match its checksum|has \d+ bytes)"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_reported_with_path_and_fix(cache_copy, damage):
    cache_dir, key, _, _ = cache_copy
    entry = cache_dir / key
    spoil, expected = DAMAGE[damage]
    spoil(entry)
    with pytest.raises(DamagedEntryError, match=expected) as caught:
        read_entry(entry)
    message = str(caught.value)
    assert str(entry) in message and "\n" not in message
    assert f"eegattn cache --remove {key} --yes" in message and "rebuilds it" in message
    item = cache_module.inspect_entry(entry)
    assert item.state == "damaged" and item.removable


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_rebuilt_when_loaded(tiny_root, cache_copy, damage):
    cache_dir, key, X, y = cache_copy
    DAMAGE[damage][0](cache_dir / key)
    with pytest.warns(CacheWarning, match=f"{key} is damaged .*; rebuilding it"):
        windows = load_challenge_windows(1, root=tiny_root, cache_dir=cache_dir, **QUIET)
    assert windows.cache_key == key
    np.testing.assert_array_equal(windows.X, X)
    np.testing.assert_array_equal(windows.y, y)
    assert verify_entry(cache_dir / key, deep=True) == []
    assert sorted(p.name for p in cache_dir.iterdir()) == [key]  # nothing left aside


def test_deep_verify_sees_changed_windows(cache_copy):
    cache_dir, key, _, _ = cache_copy
    path = cache_dir / key / "X.npy"
    with open(path, "r+b") as fh:  # flip a few bytes inside the data, size unchanged
        fh.seek(2048)
        fh.write(b"\xff\xff\xff\xff")
    assert verify_entry(cache_dir / key) == []  # the fast check cannot see it
    assert verify_entry(cache_dir / key, deep=True) == [
        "X.npy does not match its checksum (the windows were changed)"]


def test_entry_without_manifest_still_loads(cache_copy):
    """Entries of an eegattn without manifests: read, with the older consistency checks."""
    cache_dir, key, X, _ = cache_copy
    (cache_dir / key / "manifest.json").unlink()
    np.testing.assert_array_equal(read_entry(cache_dir / key).X, X)
    _truncate_x(cache_dir / key)
    with pytest.raises(DamagedEntryError, match="X.npy has .* its header needs"):
        read_entry(cache_dir / key)


# --------------------------------------------------------------------------------------------
# NaN / Inf windows
# --------------------------------------------------------------------------------------------
def test_non_finite_window_is_named_and_dropped(tiny_root, tmp_path, monkeypatch):
    clean = load_challenge_windows(1, root=tiny_root, use_cache=False, **QUIET)
    real = cache_module.recording_windows
    spoiled = {}

    def with_nan(job):
        result = real(job)
        if not spoiled and len(result.X) > 3:
            result.X = result.X.copy()
            result.X[2, 7, 11] = np.nan
            result.X[3, 0, 0] = np.inf
            spoiled.update(recording=job[0].name, i_start=int(result.metadata["i_start"][2]))
        return result

    monkeypatch.setattr(cache_module, "recording_windows", with_nan)
    with pytest.warns(hbn.SkippedRecordingsWarning) as record:
        windows = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    text = " ".join(str(w.message) for w in record)
    name, start = spoiled["recording"], spoiled["i_start"]
    assert ("2 of " in text and f"the first is window 2 of {name} (samples {start}.." in text
            and f"channel E8, sample {start + 11})" in text and "dropped" in text), text
    assert len(windows) == len(clean) - 2
    assert np.isfinite(windows.X).all()
    assert windows.info["dropped"]["windows_with_nan_or_inf"] == 2
    # a cache hit repeats the warning; strict refuses
    with pytest.warns(hbn.SkippedRecordingsWarning, match=f"window 2 of {name}"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    spoiled.clear()
    with pytest.raises(ValueError, match=f"the first is window 2 of {name}.*strict=True"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path / "s", strict=True,
                               **QUIET)


# --------------------------------------------------------------------------------------------
# eegattn cache
# --------------------------------------------------------------------------------------------
def _leftover(cache_dir, key, suffix="dead0001", lock=True):
    folder = cache_dir / f".tmp-{key}-{suffix}"
    folder.mkdir()
    (folder / "X.npy").write_bytes(b"\0" * 5000)
    if lock:
        (folder / ".building").touch()  # the lock file of a run the kernel no longer holds
    return folder


def test_listing_shows_entries_sizes_and_states(cache_copy, capsys):
    cache_dir, key, _, _ = cache_copy
    _leftover(cache_dir, key)
    (cache_dir / "notes.txt").write_text("mine")
    code, out, err = _cli(capsys, "--cache-dir", str(cache_dir))
    assert code == 0 and err == ""
    size = sum(p.stat().st_size for p in (cache_dir / key).iterdir())
    lines = out.splitlines()
    assert lines[0].startswith(f"window cache {cache_dir}: 1 entry (")
    entry_line = next(line for line in lines if line.endswith(key))
    assert entry_line.split()[0] == "ok"
    assert cache_module_size(size) in entry_line and f" {len(read_entry(cache_dir / key))} " \
        in entry_line
    assert any(line.startswith("leftover") and ".tmp-" in line for line in lines)
    assert f"eegattn cache --cache-dir {cache_dir} --clean --yes" in out
    assert "notes.txt" not in out


def cache_module_size(n):
    from eegattn.commands.cache import human_size

    return human_size(n)


def test_listing_names_a_damaged_entry_and_its_fix(cache_copy, capsys):
    cache_dir, key, _, _ = cache_copy
    _zero_y(cache_dir / key)
    code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir))
    assert code == 0
    assert (f"damaged: {cache_dir / key}: y.npy does not match its checksum" in out
            and f"--remove {key} --yes" in out)


def test_clean_is_a_dry_run_until_yes(tiny_root, tmp_path, capsys):
    """--clean removes leftovers, damaged and stale entries; nothing without --yes, never a
    build in progress, a sound entry or anything else in the folder."""
    import fcntl

    data = tmp_path / "data"
    shutil.copytree(tiny_root / "EEG2025r5", data / "EEG2025r5")
    cache_dir = tmp_path / "cache"
    stale = load_challenge_windows(1, root=data, cache_dir=cache_dir, **QUIET).cache_key
    damaged = load_challenge_windows(1, root=data, cache_dir=cache_dir, window_s=1.0,
                                     **QUIET).cache_key
    _zero_y(cache_dir / damaged)
    rec = hbn.discover_recordings(data, tasks="contrastChangeDetection")[0]
    st = rec.path.stat()
    os.utime(rec.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # rewritten since
    good = load_challenge_windows(1, root=data, cache_dir=cache_dir, **QUIET).cache_key
    assert good != stale
    leftover = _leftover(cache_dir, good)
    busy = _leftover(cache_dir, good, suffix="busy0001")
    fd = os.open(busy / ".building", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a run building right now
    (cache_dir / "mine").mkdir()
    try:
        states = {item.name: item.state for item in scan_cache(cache_dir)}
        assert states == {good: "ok", stale: "stale", damaged: "damaged",
                          leftover.name: "leftover", busy.name: "in use"}
        before = sorted(p.name for p in cache_dir.iterdir())
        code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--clean")
        assert code == 0 and "would remove 3 folder(s)" in out and "nothing removed" in out
        assert "1 of its 8 recordings under" in " ".join(
            item.detail for item in scan_cache(cache_dir) if item.name == stale)
        assert sorted(p.name for p in cache_dir.iterdir()) == before
        code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--clean", "--yes")
        assert code == 0 and "removed 3 folder(s)" in out
        assert sorted(p.name for p in cache_dir.iterdir()) == sorted([good, busy.name, "mine"])
    finally:
        os.close(fd)
    assert scan_cache(cache_dir)[1].state == "leftover"  # the lock went with its holder


def test_remove_named_entry(cache_copy, capsys):
    cache_dir, key, _, _ = cache_copy
    code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--remove", key[:10])
    assert code == 0 and "would remove 1 folder(s)" in out and (cache_dir / key).is_dir()
    code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--remove", key[:10], "--yes")
    assert code == 0 and f"removed {cache_dir / key}" in out and not (cache_dir / key).exists()
    code, out, err = _cli(capsys, "--cache-dir", str(cache_dir), "--remove", "c1-nope")
    assert code == 2 and err.count("\n") == 1 and "no cache entry 'c1-nope'" in err


def test_cache_command_bad_options(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    code, _, err = _cli(capsys, "--cache-dir", str(afile))
    assert code == 2 and "is a file" in err and err.count("\n") == 1
    code, out, _ = _cli(capsys, "--cache-dir", str(tmp_path / "none"))
    assert code == 0 and "does not exist yet" in out
    code, _, err = _cli(capsys, "--cache-dir", str(tmp_path), "--yes")
    assert code == 2 and "--yes confirms --clean or --remove" in err
