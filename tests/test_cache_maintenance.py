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
def _first_recording(entry):
    return entry.parent / json.loads((entry / "info.json").read_text())["recordings"][0]


def test_entry_has_a_manifest_of_sizes_shapes_and_checksums(cache_copy):
    cache_dir, key, X, y = cache_copy
    entry = cache_dir / key
    manifest = json.loads((entry / "manifest.json").read_text())
    files = manifest["files"]
    assert manifest["key"] == key
    assert files["index.npy"]["shape"] == [len(X), 2] and files["index.npy"]["dtype"] == "<i8"
    assert files["y.npy"]["shape"] == [len(y)]
    for name in ("index.npy", "y.npy", "metadata.csv", "info.json"):
        assert len(files[name]["sha256"]) == 64
        assert files[name]["bytes"] == (entry / name).stat().st_size
    # every recording it reads, with the checksum of the data it was built on
    recordings = json.loads((entry / "info.json").read_text())["recordings"]
    assert sorted(manifest["recordings"]) == sorted(recordings)
    rec = _first_recording(entry)
    rec_files = json.loads((rec / "manifest.json").read_text())["files"]
    assert rec_files["data.npy"]["dtype"] == "<f4" and rec_files["data.npy"]["shape"][0] == 129
    assert rec_files["data.npy"]["data_sha256"] == manifest["recordings"][rec.name]
    assert verify_entry(entry) == [] and verify_entry(entry, deep=True) == []
    assert not (entry / ".building").exists() and not (rec / ".building").exists()


def _truncate_x(entry):
    """Truncate the first recording the entry reads; returns the damaged folder."""
    path = _first_recording(entry) / "data.npy"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path.parent


def _zero_y(entry):
    path = entry / "y.npy"
    data = bytearray(path.read_bytes())
    data[128:] = bytes(len(data) - 128)  # header kept, every target 0.0
    path.write_bytes(bytes(data))
    return entry


def _garble_info(entry):
    (entry / "info.json").write_text("{not json")
    return entry


def _edit_info(entry):  # valid JSON, wrong content
    info = json.loads((entry / "info.json").read_text())
    info["n_windows"] += 1
    (entry / "info.json").write_text(json.dumps(info))
    return entry


def _remove_recording(entry):
    folder = _first_recording(entry)
    shutil.rmtree(folder)
    return folder


DAMAGE = {
    "truncated recording": (_truncate_x,
                            r"data\.npy has \d+ bytes, the manifest says \d+ \(truncated\)"),
    "zeroed y.npy": (_zero_y, r"y\.npy does not match its checksum"),
    "bad info.json": (_garble_info, r"info\.json (does not match its checksum|has \d+ bytes)"),
    "edited info.json": (_edit_info, r"info\.json (does not match its checksum|has \d+ bytes)"),
    "recording removed": (_remove_recording, r"is missing \(removed\?\)"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_reported_with_path_and_fix(cache_copy, damage):
    cache_dir, key, _, _ = cache_copy
    entry = cache_dir / key
    spoil, expected = DAMAGE[damage]
    damaged = spoil(entry)  # the window entry or a recording it reads
    with pytest.raises(DamagedEntryError, match=expected) as caught:
        read_entry(entry)
    message = str(caught.value)
    assert str(damaged) in message and "\n" not in message
    assert f"eegattn cache --remove {damaged.name} --yes" in message and "rebuilds it" in message
    item = cache_module.inspect_entry(entry)
    assert item.state == "damaged" and item.removable


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_entry_is_rebuilt_when_loaded(tiny_root, cache_copy, damage):
    cache_dir, key, X, y = cache_copy
    damaged = DAMAGE[damage][0](cache_dir / key)
    with pytest.warns(CacheWarning, match=f"{damaged.name} is damaged .*; rebuilding it") as rec:
        windows = load_challenge_windows(1, root=tiny_root, cache_dir=cache_dir, **QUIET)
    assert windows.cache_key == key
    np.testing.assert_array_equal(windows.X, X)
    np.testing.assert_array_equal(windows.y, y)
    assert verify_entry(cache_dir / key, deep=True) == []
    assert len(rec) == 1  # one warning per damaged folder
    # nothing left aside: the entry and the recordings it reads, all sound
    assert sorted(p.name for p in cache_dir.iterdir() if not p.name.startswith("r-")) == [key]
    assert all(item.state == "ok" for item in scan_cache(cache_dir))


def test_deep_verify_sees_changed_windows(cache_copy):
    cache_dir, key, _, _ = cache_copy
    rec = _first_recording(cache_dir / key)
    with open(rec / "data.npy", "r+b") as fh:  # flip a few bytes inside the data, size kept
        fh.seek(2048)
        fh.write(b"\xff\xff\xff\xff")
    assert verify_entry(cache_dir / key) == []  # the fast check cannot see it
    assert verify_entry(cache_dir / key, deep=True) == [
        f"recording {rec.name}: data.npy does not match its checksum (the recording was "
        "changed)"]
    states = {item.name: item.state for item in scan_cache(cache_dir, deep=True)}
    assert states[rec.name] == "damaged" and states[key] == "damaged"


def test_old_layout_is_stale_and_never_read(cache_copy):
    """An entry of cache format 1 (every window in X.npy) is listed stale, never read; an
    entry without a manifest is damaged."""
    cache_dir, key, X, _ = cache_copy
    old = cache_dir / "c1-0123456789abcdef0123456789abcdef"
    old.mkdir()
    np.save(old / "X.npy", X)
    info = {"challenge": 1, "n_windows": len(X), "sfreq": 100.0,
            "inputs": {"format": "eegattn-window-cache-1"}}
    (old / "info.json").write_text(json.dumps(info))
    item = cache_module.inspect_entry(old)
    assert item.state == "stale" and "cache format eegattn-window-cache-1" in item.detail
    (cache_dir / key / "manifest.json").unlink()
    with pytest.raises(DamagedEntryError, match="manifest.json is missing"):
        read_entry(cache_dir / key)


# --------------------------------------------------------------------------------------------
# NaN / Inf windows
# --------------------------------------------------------------------------------------------
def test_non_finite_window_is_named_and_dropped(tiny_root, tmp_path, monkeypatch):
    clean = load_challenge_windows(1, root=tiny_root, use_cache=False, **QUIET)
    real = cache_module.recording_table
    spoiled = {}

    def with_nan(job):
        result = real(job)
        starts = result.metadata["i_start"] if result.skipped is None else ()
        if not spoiled and result.signal is not None and len(starts) > 3:
            result.signal = result.signal.copy()
            result.signal[7, starts[2] + 11] = np.nan
            result.signal[0, starts[3]] = np.inf
            spoiled.update(recording=job[0].name, i_start=int(starts[2]))
        return result

    monkeypatch.setattr(cache_module, "recording_table", with_nan)
    with pytest.warns(hbn.SkippedRecordingsWarning) as record:
        windows = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    text = " ".join(str(w.message) for w in record)
    name, start = spoiled["recording"], spoiled["i_start"]
    assert ("2 of " in text and f"the first is window 2 of {name} (samples {start}.." in text
            and f"channel E8, sample {start + 11})" in text and "dropped" in text), text
    assert len(windows) == len(clean) - 2
    assert np.isfinite(windows.X).all()
    assert windows.info["dropped"]["windows_with_nan_or_inf"] == 2
    # a cache hit repeats the warning; another window spec over the stored recording drops
    # the windows over those samples without reading it again; strict refuses
    with pytest.warns(hbn.SkippedRecordingsWarning, match=f"window 2 of {name}"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    with pytest.warns(hbn.SkippedRecordingsWarning, match=f"channel E8, sample {start + 11}"):
        wide = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path,
                                      shift_after_stimulus_s=0.3, window_s=2.4, **QUIET)
    assert np.isfinite(wide.X).all() and len(wide) == len(clean) - 2
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
        items = scan_cache(cache_dir)
        states = {item.name: item.state for item in items if item.kind != "recording"}
        assert states == {good: "ok", stale: "stale", damaged: "damaged",
                          leftover.name: "leftover", busy.name: "in use"}
        # the rewritten recording's old stored copy is stale too; the others serve `good`
        recordings = [item.state for item in items if item.kind == "recording"]
        assert recordings.count("stale") == 1 and recordings.count("ok") == len(recordings) - 1
        before = sorted(p.name for p in cache_dir.iterdir())
        code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--clean")
        assert code == 0 and "would remove 4 folder(s)" in out and "nothing removed" in out
        assert "1 of its 8 recordings under" in " ".join(
            item.detail for item in scan_cache(cache_dir) if item.name == stale)
        assert sorted(p.name for p in cache_dir.iterdir()) == before
        code, out, _ = _cli(capsys, "--cache-dir", str(cache_dir), "--clean", "--yes")
        assert code == 0 and "removed 4 folder(s)" in out
        assert sorted(p.name for p in cache_dir.iterdir() if not p.name.startswith("r-")) \
            == sorted([good, busy.name, "mine"])
        assert verify_entry(cache_dir / good) == []  # its recordings were all kept
    finally:
        os.close(fd)
    assert scan_cache(cache_dir)[-1].state == "leftover"  # the lock went with its holder


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
