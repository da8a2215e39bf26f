"""Preprocessing: settings checks, the braindecode Preprocessor chain, resampling of 500 Hz
recordings, filters, re-referencing, flat channels and the joblib parallel map."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from eegattn.data import hbn
from eegattn.data.montage import HBN_CHANNELS
from eegattn.data.preprocess import (
    PreprocessConfig,
    build_preprocessors,
    check_channels,
    check_filter_settings,
    map_recordings,
    preprocess_recording,
)
from eegattn.data.windows import WindowSpec, recording_windows


def _raw(n_channels=129, names=None, sfreq=100.0, n_times=1000, seed=0):
    import mne

    names = list(names or HBN_CHANNELS[:n_channels])
    data = np.random.default_rng(seed).normal(scale=1e-5, size=(len(names), n_times))
    return mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"), verbose="error")


def test_config_validation():
    assert PreprocessConfig().as_dict()["sfreq"] == 100.0
    assert PreprocessConfig(notch=60).notch == (60.0,)
    with pytest.raises(ValueError, match="below h_freq"):
        PreprocessConfig(l_freq=30.0, h_freq=10.0)
    with pytest.raises(ValueError, match="positive frequency"):
        PreprocessConfig(l_freq=-1.0)
    with pytest.raises(ValueError, match="positive rate"):
        PreprocessConfig(sfreq=0)
    with pytest.raises(ValueError, match="reference must be"):
        PreprocessConfig(reference="mastoids")
    assert not PreprocessConfig().needs_mne(100.0)
    assert PreprocessConfig().needs_mne(500.0)
    assert PreprocessConfig(reference="average").needs_mne(100.0)


def test_filters_at_or_above_nyquist_are_refused():
    with pytest.raises(ValueError, match=r"h_freq=50.0 Hz is at or above the Nyquist"):
        check_filter_settings(PreprocessConfig(h_freq=50.0), 100.0)
    with pytest.raises(ValueError, match=r"notch at \[60.0\] Hz"):
        check_filter_settings(PreprocessConfig(notch=60.0), 100.0)
    check_filter_settings(PreprocessConfig(l_freq=0.5, h_freq=45.0), 100.0)
    check_filter_settings(PreprocessConfig(notch=(60.0, 120.0), h_freq=100.0), 500.0)


def test_wrong_filter_stops_loading_before_any_work(tiny_root, tmp_path):
    from eegattn.data.cache import load_challenge_windows

    with pytest.raises(ValueError, match="Nyquist"):
        load_challenge_windows(1, root=tiny_root, cache_dir=tmp_path, h_freq=50.0,
                               progress=False)
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_check_channels_orders_and_rejects():
    shuffled = list(reversed(HBN_CHANNELS))
    raw = _raw(names=shuffled)
    before = raw.get_data(picks=["E7"])
    check_channels(raw)
    assert raw.ch_names == list(HBN_CHANNELS)
    np.testing.assert_array_equal(raw.get_data(picks=["E7"]), before)
    with pytest.raises(ValueError, match="has 128 channels"):
        check_channels(_raw(n_channels=128))
    renamed = list(HBN_CHANNELS[:-1]) + ["E129"]
    with pytest.raises(ValueError, match=r"missing \['Cz'\]"):
        check_channels(_raw(names=renamed))


def test_preprocessor_chain_order():
    full = PreprocessConfig(l_freq=1.0, h_freq=40.0, notch=60.0, reference="average")
    chain = build_preprocessors(full, 500.0)
    names = [p.fn if isinstance(p.fn, str) else p.fn.__name__ for p in chain]
    assert names == ["check_channels", "notch_filter", "filter", "resample",
                     "set_eeg_reference"]
    assert chain[3].kwargs["sfreq"] == 100.0 and chain[4].kwargs["projection"] is False
    only_check = build_preprocessors(PreprocessConfig(), 100.0)
    assert [p.fn.__name__ for p in only_check] == ["check_channels"]
    with pytest.raises(ValueError, match="Nyquist"):
        build_preprocessors(PreprocessConfig(notch=60.0), 100.0)


def test_fast_path_puts_channels_in_hbn_order(tiny_root, tmp_path):
    """A file with the channels in another order gives the same rows as MNE + check_channels
    (the default chain reads 100 Hz files without MNE)."""
    import mne

    rec = hbn.discover_recordings(tiny_root, tasks="RestingState")[0]
    raw = mne.io.read_raw_bdf(rec.path, preload=True, verbose="error")
    raw.reorder_channels(list(reversed(raw.ch_names)))
    shuffled = tmp_path / "sub-X_task-RestingState_eeg.bdf"
    mne.export.export_raw(shuffled, raw, fmt="bdf", verbose="error")
    data, sfreq = preprocess_recording(shuffled)
    expected = check_channels(mne.io.read_raw_bdf(shuffled, preload=True, verbose="error"))
    assert sfreq == 100.0 and expected.ch_names == list(HBN_CHANNELS)
    np.testing.assert_array_equal(data, expected.get_data())
    raw.drop_channels(["E3"])
    short = tmp_path / "sub-Y_task-RestingState_eeg.bdf"
    mne.export.export_raw(short, raw, fmt="bdf", verbose="error")
    with pytest.raises(ValueError, match=r"has 128 channels.*missing \['E3'\]"):
        preprocess_recording(short)


def test_500hz_recording_is_resampled_like_mne(raw_root):
    import mne

    rec = hbn.discover_recordings(raw_root, tasks="RestingState")[0]
    data, sfreq = preprocess_recording(rec.path)
    raw = mne.io.read_raw_bdf(rec.path, preload=True, verbose="error")
    assert raw.info["sfreq"] == 500.0 and sfreq == 100.0
    expected = raw.resample(100.0, verbose="error").get_data()
    assert data.shape == (129, raw.n_times)
    np.testing.assert_array_equal(data, expected)


def test_notch_bandpass_and_average_reference(raw_root):
    rec = hbn.discover_recordings(raw_root, tasks="RestingState")[0]
    config = PreprocessConfig(sfreq=500.0, notch=(60.0,), l_freq=1.0, h_freq=45.0,
                              reference="average")
    filtered, _ = preprocess_recording(rec.path, config)
    plain, _ = preprocess_recording(rec.path, PreprocessConfig(sfreq=500.0))

    def line_power(x):
        spectrum = np.abs(np.fft.rfft(x[:, 1000:-1000], axis=1)) ** 2
        freqs = np.fft.rfftfreq(x.shape[1] - 2000, 1 / 500.0)
        return spectrum[:, np.abs(freqs - 60.0) < 0.5].mean()

    assert line_power(filtered) < 1e-3 * line_power(plain)
    assert np.isfinite(filtered).all()
    np.testing.assert_allclose(filtered.mean(axis=0), 0.0, atol=1e-12)  # average reference


def test_flat_channels_are_fine(tiny_root):
    """Cz is the flat HBN reference; a second flat channel must not break anything."""
    rec = hbn.discover_recordings(tiny_root, tasks="RestingState")[0]
    data, _ = preprocess_recording(rec.path)
    cz = HBN_CHANNELS.index("Cz")
    assert np.all(data[cz] == 0.0) and data[:cz].std() > 0
    raw = _raw()
    raw._data[10] = 0.0
    raw._data[-1] = 0.0
    for step in build_preprocessors(PreprocessConfig(sfreq=100.0, l_freq=1.0,
                                                     reference="average"), 100.0):
        raw = step.apply(raw)
    assert np.isfinite(raw.get_data()).all()


def test_parallel_equals_sequential(tiny_root):
    recordings = hbn.discover_recordings(tiny_root, tasks="contrastChangeDetection")[:3]
    spec, config = WindowSpec(1), PreprocessConfig()
    jobs = [(rec, spec, config, None) for rec in recordings]
    one = list(map_recordings(recording_windows, jobs, n_jobs=1, progress=False))
    two = list(map_recordings(recording_windows, jobs, n_jobs=2, backend="loky",
                              progress=False))
    assert len(one) == len(two) == 3
    for a, b in zip(one, two):
        assert a.skipped is None and b.skipped is None and len(a.X) > 0
        np.testing.assert_array_equal(a.X, b.X)
        assert a.metadata.equals(b.metadata)
    with pytest.raises(ValueError, match="n_jobs"):
        list(map_recordings(recording_windows, jobs, n_jobs=0))


def test_map_recordings_keeps_order_with_threads():
    out = list(map_recordings(abs, [-3, 1, -2], n_jobs=2, backend="threading", progress=False))
    assert out == [3, 1, 2]


# --------------------------------------------------------------------------------------------
# A killed run leaves no worker processes behind
# --------------------------------------------------------------------------------------------
def _proc_table() -> dict[int, int]:
    """pid -> parent pid of every process (Linux /proc)."""
    import os

    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
        except OSError:
            continue
        table[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    return table


def _descendants(pid: int) -> set[int]:
    table, found, frontier = _proc_table(), set(), {pid}
    while frontier:
        frontier = {child for child, parent in table.items() if parent in frontier} - found
        found |= frontier
    return found


def _running(pid: int) -> bool:
    """Alive and not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _working_workers(pid: int) -> list[int]:
    """The loky workers of ``pid`` that run a task: SciPy is loaded (by MNE, which the tasks
    import with --l-freq; joblib's own start-up loads NumPy but not SciPy)."""
    workers = []
    for child in _descendants(pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{child}/maps") as fh:
                maps = fh.read()
        except OSError:
            continue
        if b"LokyProcess" in cmdline and "/scipy/" in maps:
            workers.append(child)
    return workers


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigkill_of_preprocess_leaves_no_workers(tiny_root, tmp_path):
    """`kill -9` of `eegattn preprocess --n-jobs 2` while its workers run: every process it
    started is gone within seconds (loky's workers used to live on, idle, for 5 minutes), and
    its half-built entry is listed as a leftover."""
    import os
    import signal
    import subprocess
    import time

    # --l-freq makes each worker import MNE and braindecode (seconds), so the run is surely
    # still going when the workers are killed mid-task.
    cmd = [sys.executable, "-m", "eegattn", "preprocess", "--challenge", "1", "--root",
           str(tiny_root), "--n-jobs", "2", "--l-freq", "1", "--no-progress",
           "--cache-dir", str(tmp_path / "cache")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = set()
    try:
        deadline = time.monotonic() + 60
        while len(_working_workers(proc.pid)) < 2 and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "preprocessing ended before its workers were seen"
        assert len(_working_workers(proc.pid)) == 2, "no two loky workers within 60 s"
        started = _descendants(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 5
        while any(_running(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = sorted(p for p in started if _running(p))
        assert not alive, f"processes left behind by the killed run: {alive}"
        # what it was writing is a leftover for `eegattn cache --clean` (its lock died too)
        from eegattn.data.cache import scan_cache

        assert [item.state for item in scan_cache(tmp_path / "cache")] == ["leftover"]
    finally:
        for pid in [proc.pid, *started]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_ctrl_c_of_preprocess_is_one_line_and_leaves_nothing(tiny_root, tmp_path):
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) while the workers
    run: one line on stderr, exit code 130, no worker left, no half-built entry."""
    import os
    import signal
    import subprocess
    import time

    cmd = [sys.executable, "-m", "eegattn", "preprocess", "--challenge", "1", "--root",
           str(tiny_root), "--n-jobs", "2", "--l-freq", "1", "--no-progress",
           "--cache-dir", str(tmp_path / "cache")]
    # a terminal's Ctrl-C, whatever started pytest: a shell's background job ('&') ignores
    # SIGINT, children inherit that, and Python then installs no KeyboardInterrupt handler
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    started = set()
    try:
        deadline = time.monotonic() + 60
        while len(_working_workers(proc.pid)) < 2 and proc.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None and len(_working_workers(proc.pid)) == 2
        started = _descendants(proc.pid)
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert err == "eegattn preprocess: interrupted\n"
        deadline = time.monotonic() + 5
        while any(_running(p) for p in started) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [p for p in started if _running(p)]
        assert list((tmp_path / "cache").iterdir()) == []
    finally:
        for pid in [proc.pid, *started]:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
