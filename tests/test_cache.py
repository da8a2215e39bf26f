"""The window cache: reuse, keys, atomic writes, untouched sources, and bad inputs through the
public entry point ``load_challenge_windows``."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from eegattn.data import cache as cache_module
from eegattn.data import hbn
from eegattn.data.cache import load_challenge_windows, read_entry
from eegattn.data.indexed import IndexedWindows

QUIET = dict(progress=False)
# tiny_root and raw_root (the 500 Hz release): tests/conftest.py, shared with the data tests


@pytest.fixture
def tiny_copy(tiny_root, tmp_path):
    shutil.copytree(tiny_root / "EEG2025r5", tmp_path / "data" / "EEG2025r5")
    return tmp_path / "data"


def _hashes(folder) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }  # fmt: skip


def _entries(cache_dir) -> list[str]:
    """Window entries and temporary folders (recording entries: ``_recordings``)."""
    return sorted(p.name for p in cache_dir.iterdir()
                  if not p.name.startswith("r-")) if cache_dir.exists() else []


def _recordings(cache_dir) -> list[str]:
    return sorted(p.name for p in cache_dir.glob("r-*"))


def test_second_call_reads_the_cache_without_redoing_work(tiny_root, tmp_path, monkeypatch):
    first = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    assert first.cache_key and _entries(tmp_path) == [first.cache_key]
    # windows cut on the fly from the stored recordings, which are read-only memory maps
    assert isinstance(first.X, IndexedWindows) and first.X.shape == (len(first), 129, 200)
    assert not first.X._array(0).flags.writeable

    def no_work(job):
        raise AssertionError("the cache was not used")

    monkeypatch.setattr(cache_module, "recording_windows", no_work)
    second = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    assert second.cache_key == first.cache_key
    np.testing.assert_array_equal(second.X, first.X)
    np.testing.assert_array_equal(second.y, first.y)
    pd.testing.assert_frame_equal(second.metadata, first.metadata)
    # the same windows as a build in memory, metadata dtypes included
    monkeypatch.undo()
    memory = load_challenge_windows(1, root=tiny_root, use_cache=False, **QUIET)
    np.testing.assert_array_equal(memory.X, first.X)
    pd.testing.assert_frame_equal(memory.metadata, first.metadata)
    assert memory.cache_key is None and memory.info["n_windows"] == len(first)
    assert set(first.metadata.columns) >= {"release", "subject", "task", "run", "trial",
                                           "target", "stimulus_onset", "i_start"}


def test_key_changes_with_parameters_and_inputs(tiny_copy, tmp_path):
    cache_dir = tmp_path / "cache"
    base = load_challenge_windows(2, root=tiny_copy, cache_dir=cache_dir, **QUIET)
    other_stride = load_challenge_windows(2, root=tiny_copy, cache_dir=cache_dir,
                                          stride_s=4.0, **QUIET)
    assert other_stride.cache_key != base.cache_key and len(other_stride) < len(base)
    filtered = load_challenge_windows(2, root=tiny_copy, cache_dir=cache_dir, l_freq=1.0,
                                      **QUIET)
    assert filtered.cache_key != base.cache_key
    assert not np.array_equal(filtered.X, base.X)
    # an input file rewritten (new mtime) -> new key
    rec = hbn.discover_recordings(tiny_copy, tasks="contrastChangeDetection")[0]
    stat = rec.path.stat()
    os.utime(rec.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    touched = load_challenge_windows(2, root=tiny_copy, cache_dir=cache_dir, **QUIET)
    assert touched.cache_key != base.cache_key
    np.testing.assert_array_equal(touched.X, base.X)
    # participants.tsv (the targets) edited -> new key, new targets
    participants = tiny_copy / "EEG2025r5" / "participants.tsv"
    table = pd.read_csv(participants, sep="\t")
    table["externalizing"] = table["externalizing"] + 1.0
    table.to_csv(participants, sep="\t", index=False, na_rep="n/a")
    shifted = load_challenge_windows(2, root=tiny_copy, cache_dir=cache_dir, **QUIET)
    assert shifted.cache_key != touched.cache_key
    np.testing.assert_allclose(shifted.y, touched.y + 1.0, rtol=1e-6)
    assert len(_entries(cache_dir)) == 5
    # stride 4 s shares base's recordings; l_freq and the rewritten file add their own
    assert len(_recordings(cache_dir)) == 2 * len(base.info["recordings"]) + 1


def test_failure_mid_write_leaves_no_trusted_entry(tiny_root, tmp_path, monkeypatch):
    real_write = cache_module.write_recording_entry
    calls = {"n": 0}

    def failing_write(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("simulated crash while writing a recording")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(cache_module, "write_recording_entry", failing_write)
    with pytest.raises(RuntimeError, match="simulated crash"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    assert _entries(tmp_path) == []  # neither a window entry nor a temporary folder
    # the two recordings finished before the crash are complete entries of their own
    assert len(_recordings(tmp_path)) == 2
    assert all(cache_module.verify_entry(tmp_path / r, deep=True) == []
               for r in _recordings(tmp_path))
    monkeypatch.undo()

    # a killed run (no clean-up at all) leaves a .tmp-* folder: it is never read
    key = load_challenge_windows(1, root=tiny_root, use_cache=False, **QUIET).info["key"]
    stale = tmp_path / f".tmp-{key}-deadbeef"
    stale.mkdir()
    (stale / "index.npy").write_bytes(b"half")
    windows = load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, **QUIET)
    assert windows.cache_key == key and len(windows) > 0
    assert (tmp_path / key / "info.json").is_file()
    assert cache_module.clear_temporary(tmp_path) == 1 and _entries(tmp_path) == [key]


def test_inconsistent_entry_is_reported(tiny_root, tmp_path):
    windows = load_challenge_windows(2, root=tiny_root, cache_dir=tmp_path, **QUIET)
    entry = tmp_path / windows.cache_key
    np.save(entry / "y.npy", np.zeros(3, np.float32))
    with pytest.raises(ValueError, match=r"is damaged: y\.npy has \d+ bytes, the manifest says"):
        read_entry(entry)


def test_sources_are_never_modified(tiny_copy, tmp_path):
    before = _hashes(tiny_copy)
    load_challenge_windows(1, root=tiny_copy, cache_dir=tmp_path / "c", **QUIET)
    load_challenge_windows(2, root=tiny_copy, cache_dir=tmp_path / "c", l_freq=1.0,
                           reference="average", **QUIET)
    assert _hashes(tiny_copy) == before


# --------------------------------------------------------------------------------------------
# Bad inputs through the public entry point
# --------------------------------------------------------------------------------------------
def test_corrupt_bdf_and_bad_events_are_skipped_and_counted(tiny_copy, tmp_path):
    ccd = hbn.discover_recordings(tiny_copy, tasks="contrastChangeDetection")
    ccd[0].path.write_bytes(ccd[0].path.read_bytes()[:5000])  # truncated
    events = pd.read_csv(ccd[1].events_path, sep="\t")
    events.drop(columns="value").to_csv(ccd[1].events_path, sep="\t", index=False)
    with pytest.warns(hbn.SkippedRecordingsWarning) as record:
        windows = load_challenge_windows(1, root=tiny_copy, cache_dir=tmp_path, **QUIET)
    text = " ".join(str(w.message) for w in record)
    assert ccd[0].path.name in text and "truncated" in text
    assert ccd[1].events_path.name in text and "lacks the column(s) ['value']" in text
    assert windows.info["n_skipped"] == {"corrupt or truncated .bdf": 1,
                                         "unusable events.tsv": 1}
    assert not {ccd[0].name, ccd[1].name} & set(windows.metadata["recording"])
    # a cache hit repeats the warnings; strict turns them into an error
    with pytest.warns(hbn.SkippedRecordingsWarning, match="from the cache"):
        load_challenge_windows(1, root=tiny_copy, cache_dir=tmp_path, **QUIET)
    with pytest.raises(ValueError, match="strict=True"):
        load_challenge_windows(1, root=tiny_copy, cache_dir=tmp_path / "s", strict=True,
                               **QUIET)
    assert _entries(tmp_path / "s") == []


def test_nan_targets_and_short_recordings_are_dropped_and_counted(tiny_root, tmp_path):
    participants = hbn.read_participants(tiny_root / "EEG2025r5")
    nan_subjects = {s for s in participants
                    if not np.isfinite(hbn.participant_value(participants, s, "externalizing"))}
    assert nan_subjects
    with pytest.warns(hbn.SkippedRecordingsWarning, match="no externalizing target"):
        windows = load_challenge_windows(2, root=tiny_root, cache_dir=tmp_path,
                                         tasks=["contrastChangeDetection", "RestingState"],
                                         **QUIET)
    assert not nan_subjects & set(windows.metadata["subject"])
    assert np.isfinite(windows.y).all() and windows.X.shape[1:] == (129, 400)
    assert set(windows.metadata["task"]) == {"contrastChangeDetection", "RestingState"}
    assert windows.info["n_skipped"]["no externalizing target"] >= 1
    # windows longer than the resting recordings (16-18 s): those are dropped as too short
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="no windows"):
            load_challenge_windows(2, root=tiny_root, use_cache=False, tasks="RestingState",
                                   window_s=20.0, stride_s=20.0, **QUIET)
    assert any("shorter than 20 s" in str(w.message) for w in record)


def test_wrong_sampling_rate_is_resampled(raw_root, tmp_path):
    windows = load_challenge_windows(1, root=raw_root, cache_dir=tmp_path, **QUIET)
    assert windows.sfreq == 100.0 and windows.X.shape[1:] == (129, 200)
    trials = windows.metadata
    np.testing.assert_array_equal(
        trials["i_start"], np.round(trials["stimulus_onset"] * 100).astype(int) + 50)


def test_empty_query_and_wrong_task(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="no recordings match"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path,
                               subjects=["NDARXX000XX0"], **QUIET)
    with pytest.raises(ValueError, match="contrastChangeDetection task only"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, tasks="RestingState",
                               **QUIET)
    with pytest.raises(FileNotFoundError, match="HBN release folder not found"):
        load_challenge_windows(2, root=tmp_path / "nothing", cache_dir=tmp_path, **QUIET)
