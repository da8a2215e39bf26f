"""Synthetic HBN-like releases: layout, events, offline loading (mne / eegdash), truth, oracle."""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegattn.data import montage
from eegattn.data import synthetic as S
from eegattn.data.synthetic.tasks import C2_TASK_STRENGTH, availability_column

TINY = dict(n_subjects=6, trials_per_run=(14, 18), max_runs=2, rest_seconds=20, task_seconds=20,
            n_jobs=1)
PRESSES = {"left_buttonPress", "right_buttonPress"}
TARGETS = {"left_target", "right_target"}


def _nrmse(y, p):
    y, p = np.asarray(y, float), np.asarray(p, float)
    return float(np.sqrt(np.mean((y - p) ** 2)) / np.std(y))


def _snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Path:
    """6 subjects (2 of them excluded by the challenge), 1-2 short CCD runs, 20 s of rest."""
    return S.make_release(tmp_path_factory.mktemp("tiny"), **TINY)


@pytest.fixture(scope="session")
def tiny_mini(tmp_path_factory) -> Path:
    """The mini layout: the 20 real R5 mini subjects, one very short CCD run each."""
    return S.make_release(
        tmp_path_factory.mktemp("mini"), mini=True, tasks=("contrastChangeDetection",),
        trials_per_run=(3, 4), max_runs=1, n_jobs=1,
    )


@pytest.fixture(scope="session")
def truth(tiny) -> dict:
    return S.load_truth(tiny)


def _events(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype=str)


# ---------------------------------------------------------------------------------------------
# Montage
# ---------------------------------------------------------------------------------------------
def test_montage_names_match_mne_hydrocel():
    import mne

    assert len(montage.HBN_CHANNELS) == 129 and montage.HBN_CHANNELS[-1] == "Cz"
    names = mne.channels.make_standard_montage("GSN-HydroCel-129").ch_names
    assert tuple(names) == montage.HBN_CHANNELS
    assert montage.channel_positions().shape == (129, 3)
    assert montage.HBN_CHANNELS[montage.channel_index("Pz")] == "E62"


def test_scalp_pattern_is_referenced_and_local():
    p = montage.scalp_pattern("Pz", 0.04)
    assert p[montage.channel_index("Cz")] == 0.0
    assert np.argmax(p) == montage.channel_index("E62")
    raw_p = montage.scalp_pattern("Oz", 0.05, referenced=False)
    assert raw_p.max() == pytest.approx(1.0) and raw_p.min() >= 0.0
    with pytest.raises(ValueError, match="unknown channel"):
        montage.channel_index("E200")
    with pytest.raises(ValueError, match="width"):
        montage.scalp_pattern("Pz", 0.0)


def test_set_hydrocel_montage_places_channels():
    import mne

    raw = mne.io.RawArray(np.zeros((129, 10)), mne.create_info(list(montage.HBN_CHANNELS), 100.0,
                                                              "eeg"), verbose=False)
    montage.set_hydrocel_montage(raw)
    positions = np.array([ch["loc"][:3] for ch in raw.info["chs"]])
    # MNE moves the montage to head coordinates: a rigid move keeps all the distances.
    def distances(p):
        return np.linalg.norm(p[:, None] - p[None], axis=-1)

    assert np.allclose(distances(positions), distances(montage.channel_positions()), atol=1e-6)
    bad = mne.io.RawArray(np.zeros((1, 10)), mne.create_info(["Fp1"], 100.0, "eeg"),
                          verbose=False)
    with pytest.raises(ValueError, match="HydroCel"):
        montage.set_hydrocel_montage(bad)


# ---------------------------------------------------------------------------------------------
# Layout and files
# ---------------------------------------------------------------------------------------------
def test_default_cache_dir_follows_env(monkeypatch, tmp_path):
    monkeypatch.setenv("EEGATTN_CACHE", str(tmp_path / "c"))
    assert S.default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("EEGATTN_CACHE")
    monkeypatch.chdir(tmp_path)
    assert S.default_cache_dir() == tmp_path / "cache"


def test_full_layout_files(tiny, truth):
    assert tiny.name == "EEG2025r5"
    assert (tiny / "dataset_description.json").is_file() and (tiny / "README").is_file()
    part = pd.read_csv(tiny / "participants.tsv", sep="\t")
    assert list(part.columns) == [
        "participant_id", "release_number", "sex", "age", "ehq_total", "commercial_use",
        "full_pheno", *S.FACTOR_COLUMNS, *S.HBN_TASK_COLUMNS,
    ]
    ids = [p.removeprefix("sub-") for p in part.participant_id]
    assert len(ids) == 6 and all(re.fullmatch(r"NDAR[A-Z]{2}\d{3}[A-Z0-9]{3}", i) for i in ids)
    assert sorted(p.name for p in tiny.glob("sub-*")) == sorted(f"sub-{i}" for i in ids)
    assert len(set(ids) & set(S.EXCLUDED_SUBJECTS)) == 2  # exclusion gets exercised
    assert part.externalizing.isna().sum() == 1 and (part.release_number == "R5").all()
    assert not list(tiny.rglob("*_scans.tsv"))
    for rec in truth["recordings"]:
        bdf = tiny / rec["path"]
        stem = bdf.name[: -len("_eeg.bdf")]
        for suffix in ("_eeg.json", "_channels.tsv", "_events.tsv", "_events.json"):
            assert (bdf.parent / f"{stem}{suffix}").is_file(), stem + suffix
        column = availability_column(rec["task"], rec["run"])
        row = part[part.participant_id == f"sub-{rec['subject']}"].iloc[0]
        assert row[column] == "available"
    n_available = (part[list(S.HBN_TASK_COLUMNS)] == "available").to_numpy().sum()
    assert n_available == len(truth["recordings"])  # flags say exactly what is on disk
    sidecar = json.loads(next(tiny.rglob("*RestingState_eeg.json")).read_text())
    assert sidecar["EEGReference"] == "Cz" and sidecar["PowerLineFrequency"] == 60.0


def test_events_tsv_has_hbn_format_and_irregularities(tiny):
    ccd = sorted(tiny.rglob("*task-contrastChangeDetection_run-*_events.tsv"))
    allowed = {"9999", "contrastTrial_start", "end_experiment", *TARGETS, *PRESSES}
    unsorted, without_end, off_grid = 0, 0, 0
    for path in ccd:
        ev = _events(path)
        assert list(ev.columns) == ["onset", "duration", "value", "event_code", "feedback"]
        values = set(ev.value)
        blocks = {v for v in values if re.fullmatch(r"contrastChangeB\d+_start", v)}
        assert values - allowed <= blocks
        assert "contrastChangeB1_start" in values
        onsets = ev.onset.astype(float).to_numpy()
        unsorted += bool(np.any(np.diff(onsets) < 0))
        without_end += "end_experiment" not in values
        off_grid += int(np.sum(np.abs(onsets * 100 - np.round(onsets * 100)) > 1e-6))
        press = ev.value.isin(PRESSES)
        assert set(ev.feedback[press]) <= {"smiley_face", "sad_face", "non_target"}
        assert set(ev.feedback[~press]) == {"n/a"}
        assert set(ev.duration) == {"n/a"}
    assert unsorted >= 1 and without_end == 1 and off_grid > 0
    rest = _events(next(tiny.rglob("*RestingState_events.tsv")))
    assert {"resting_start", "instructed_toOpenEyes", "instructed_toCloseEyes"} <= set(rest.value)


def test_trial_table_matches_truth(tiny, truth):
    """eegdash's reference trial table recovers the planted RTs from the events files."""
    from eegdash.hbn import build_trial_table

    trials = [t for t in truth["challenge1"]["trials"] if t["latency"] is not None]
    kinds = {t["kind"] for t in truth["challenge1"]["trials"]}
    assert {"normal", "wrong", "no_response"} <= kinds
    assert kinds & {"double", "double_premature"}
    checked = 0
    for path in sorted(tiny.rglob("*task-contrastChangeDetection_run-*_events.tsv")):
        subject = path.name.split("_")[0][4:]
        run = int(re.search(r"run-(\d)", path.name).group(1))
        table = build_trial_table(pd.read_csv(path, sep="\t"))
        table = table[table.stimulus_onset.notna() & table.response_onset.notna()]
        planted = {round(t["stimulus_onset"], 3): t for t in trials
                   if t["subject"] == subject and t["run"] == run}
        for row in table.itertuples():
            t = planted[round(row.stimulus_onset, 3)]
            assert row.rt_from_stimulus == pytest.approx(t["rt_from_stimulus"], abs=1e-9)
            assert bool(row.correct) == t["correct"]
            checked += 1
    assert checked > 50


# ---------------------------------------------------------------------------------------------
# Loading: mne and eegdash offline
# ---------------------------------------------------------------------------------------------
def test_bdf_signal_properties(tiny, truth):
    import mne

    rec = next(r for r in truth["recordings"] if r["task"] == "contrastChangeDetection")
    raw = mne.io.read_raw_bdf(tiny / rec["path"], preload=True, verbose=False)
    assert raw.ch_names == list(montage.HBN_CHANNELS) and raw.info["sfreq"] == 100.0
    data = raw.get_data()
    assert np.all(data[montage.channel_index("Cz")] == 0.0)
    rms = data[:-1].std(axis=1)
    assert 5e-6 < np.median(rms) < 30e-6  # EEG scale: tens of microvolts, in volts
    eye = [montage.channel_index(c) for c in montage.EYE_CHANNELS]
    assert np.abs(data[eye]).max() > 60e-6  # blinks
    assert raw.n_times == rec["duration"] * 100  # whole seconds: no BDF padding


def test_eegdash_offline_full_layout_loads(tiny, truth):
    from eegdash.dataset import EEGChallengeDataset

    before = _snapshot(tiny)
    ds = EEGChallengeDataset(release="R5", cache_dir=tiny.parent, mini=False, download=False,
                             task="contrastChangeDetection")
    n_ccd = sum(r["task"] == "contrastChangeDetection" for r in truth["recordings"])
    assert len(ds.datasets) == n_ccd
    subjects = {d.description["subject"] for d in ds.datasets}
    assert subjects == {r["subject"] for r in truth["recordings"]
                        if r["task"] == "contrastChangeDetection"}
    raw = ds.datasets[0].raw
    assert len(raw.ch_names) == 129 and raw.info["sfreq"] == 100.0
    described = set(raw.annotations.description)
    assert {"contrastTrial_start", "left_target", "right_target"} <= described
    assert "externalizing" in ds.datasets[0].description.index
    assert _snapshot(tiny) == before  # eegdash found nothing to repair


def test_eegdash_offline_mini_layout_loads(tiny_mini):
    from eegdash.dataset import EEGChallengeDataset

    assert tiny_mini.name == "EEG2025r5mini"
    ds = EEGChallengeDataset(release="R5", cache_dir=tiny_mini.parent, mini=True,
                             download=False, task="contrastChangeDetection")
    assert sorted({d.description["subject"] for d in ds.datasets}) == sorted(S.R5_MINI_SUBJECTS)
    raw = ds.datasets[-1].raw
    assert len(raw.ch_names) == 129 and raw.info["sfreq"] == 100.0


# ---------------------------------------------------------------------------------------------
# Reuse, force, determinism, bad input
# ---------------------------------------------------------------------------------------------
SMALL = dict(n_subjects=1, tasks=("RestingState",), rest_seconds=10, n_jobs=1)


def test_reuse_force_and_atomic_swap(tmp_path):
    first = S.make_release(tmp_path, **SMALL)
    marker = first / S.MARKER_NAME
    stamp = marker.stat().st_mtime_ns
    assert S.make_release(tmp_path, **SMALL) == first
    assert marker.stat().st_mtime_ns == stamp  # reused, not regenerated
    with pytest.raises(FileExistsError, match="other parameters"):
        S.make_release(tmp_path, **{**SMALL, "seed": 1})
    S.make_release(tmp_path, **{**SMALL, "seed": 1}, force=True)
    assert S.read_marker(first)["params"]["seed"] == 1
    stale = S.read_marker(first)
    stale["params"]["generator_version"] = S.GENERATOR_VERSION - 1
    marker.write_text(json.dumps(stale))
    S.make_release(tmp_path, **{**SMALL, "seed": 1})  # an older generator's output: rebuilt
    assert S.read_marker(first)["params"]["generator_version"] == S.GENERATOR_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["EEG2025r5"]  # no temp folders left


def test_never_replaces_a_folder_it_did_not_write(tmp_path):
    foreign = tmp_path / "EEG2025r5"
    (foreign / "sub-NDARAA000AAA").mkdir(parents=True)
    for force in (False, True):
        with pytest.raises(FileExistsError, match="not written by eegattn"):
            S.make_release(tmp_path, force=force, **SMALL)
    assert (foreign / "sub-NDARAA000AAA").is_dir()


def test_same_seed_same_bytes(tmp_path):
    a = S.make_release(tmp_path / "a", **SMALL)
    b = S.make_release(tmp_path / "b", **SMALL)
    assert _snapshot(a) == _snapshot(b)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_subjects": 0}, "at least 1"),
        ({"release": "R13"}, "unknown release"),
        ({"release": "r5"}, "unknown release"),
        ({"mini": True, "n_subjects": 5}, "exactly 20"),
        ({"tasks": ("symbolsearch",)}, "tasks"),
        ({"task_seconds": 5}, "task_seconds"),
        ({"sfreq": 99.5}, "whole number"),
        ({"raw_like": True, "sfreq": 100}, "raw_like"),
        ({"seed": -1}, "seed"),
        ({"n_jobs": 0}, "n_jobs"),
    ],
)
def test_bad_options_raise_clear_errors(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        S.make_release(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # nothing written


def test_unwritable_root_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        S.make_release(blocker, **SMALL)
    with pytest.raises(ValueError, match="cannot create"):
        S.make_release(blocker / "below", **SMALL)


def test_raw_like_has_line_noise_and_high_frequencies(tmp_path):
    import mne

    rel = S.make_release(tmp_path, raw_like=True, **SMALL)
    raw = mne.io.read_raw_bdf(next(rel.rglob("*_eeg.bdf")), preload=True, verbose=False)
    assert raw.info["sfreq"] == 500.0
    spectrum = raw.compute_psd(fmax=250.0, picks=raw.ch_names[:-1], verbose=False)  # not Cz
    psd, freqs = spectrum.get_data().mean(axis=0), spectrum.freqs
    at = lambda f: psd[np.argmin(np.abs(freqs - f))]  # noqa: E731
    assert at(60.0) > 20 * at(55.0)  # US line noise
    assert psd[freqs > 70].sum() > 0.1 * psd[(freqs > 1) & (freqs < 45)].sum()
    raw.filter(0.5, 50.0, verbose=False).resample(100.0, verbose=False)  # the challenge path
    assert raw.info["sfreq"] == 100.0


def test_cli_synth(tmp_path, capsys):
    from eegattn.cli import main

    assert main(["synth", "--root", str(tmp_path), "--subjects", "1", "--tasks", "RestingState",
                 "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "EEG2025r5")
    assert main(["synth", "--root", str(tmp_path), "--mini", "--subjects", "5"]) == 2
    assert "exactly 20" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Planted truth and oracle
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def c1_windows(tiny):
    """Starter-kit challenge-1 windows of the tiny release (excluded subjects dropped)."""
    import mne
    from eegdash.hbn import build_trial_table

    rows, windows = [], []
    for path in sorted(tiny.rglob("*task-contrastChangeDetection_run-*_events.tsv")):
        subject = path.name.split("_")[0][4:]
        if subject in S.EXCLUDED_SUBJECTS:
            continue
        table = build_trial_table(pd.read_csv(path, sep="\t"))
        table = table[table.stimulus_onset.notna() & table.response_onset.notna()]
        bdf = path.with_name(path.name.replace("_events.tsv", "_eeg.bdf"))
        data = mne.io.read_raw_bdf(bdf, verbose=False).get_data()
        run = int(re.search(r"run-(\d)", path.name).group(1))
        for row in table.itertuples():
            start = int(round((row.stimulus_onset + 0.5) * 100))
            windows.append(data[:, start: start + 200])
            rows.append({"subject": subject, "run": run, "stimulus_onset": row.stimulus_onset,
                         "target": row.rt_from_stimulus})
    return pd.DataFrame(rows), np.stack(windows)


def test_oracle_challenge1_recovers_rt(tiny, c1_windows):
    metadata, X = c1_windows
    y = metadata.target.to_numpy()
    assert len(y) > 80 and metadata.subject.nunique() == 4
    floor = _nrmse(y, S.oracle_predict(tiny, 1, metadata=metadata))
    from_eeg = _nrmse(y, S.oracle_predict(tiny, 1, X=X, sfreq=100.0))
    # The default release (generator 4): wave latency alone 0.60, EEG oracle 0.67.
    assert 0.4 < floor < 0.8
    assert 0.45 < from_eeg < 0.85 and from_eeg > floor - 0.05
    shuffled = S.oracle_predict(tiny, 1, X=X[np.random.default_rng(0).permutation(len(X))])
    assert _nrmse(y, shuffled) > 1.0  # the prediction comes from each window's own EEG
    planted = pd.DataFrame([t for t in S.load_truth(tiny)["challenge1"]["trials"]
                            if t["latency"] is not None])
    by_onset = S.oracle_predict(tiny, 1, metadata=planted[["subject", "run", "stimulus_onset"]])
    by_trial = S.oracle_predict(tiny, 1, metadata=planted[["subject", "run", "trial"]])
    np.testing.assert_allclose(by_onset, by_trial)
    unknown = planted[["subject", "run", "trial"]].assign(run=9)
    assert np.isnan(S.oracle_predict(tiny, 1, metadata=unknown)).all()


def test_button_press_waves_are_lateralised_and_time_locked():
    """200 right-hand presses 3 s apart, averaged around the press: a negative readiness
    potential over C3 (contralateral) and not C4, a positivity 0.3 s later over CPz-Pz, and the
    sensorimotor beta rhythm desynchronised around the press."""
    from eegattn.data.synthetic import params as P
    from eegattn.data.synthetic.signals import _motor_activity, _topographies
    from eegattn.data.synthetic.subjects import _presses

    rows = [(3000 * (k + 1), "right_buttonPress", "smiley_face") for k in range(200)]
    rng = np.random.default_rng(0)
    presses = _presses(rng, rows)
    assert [p.hand for p in presses] == ["right"] * 200 and not any(p.error for p in presses)
    sfreq, n_times = 100.0, 603 * 100
    times = np.arange(n_times) / sfreq
    out = _motor_activity(rng, _topographies(), presses, times, np.ones(n_times // 2 + 1))
    c3, c4, pz = (montage.channel_index(c) for c in ("C3", "C4", "Pz"))
    at = np.array([int(round(p.time * sfreq)) for p in presses])
    average = np.mean([out[:, a - 100: a + 101] for a in at], axis=0) / P.UV  # -1..+1 s

    lrp = average[c3, 100 + int(P.LRP_PEAK * sfreq)]
    assert lrp < 0.6 * P.LRP_AMPLITUDE / P.UV  # about -3 microvolts (lognormal mean ~1.06)
    assert abs(average[c4, 95]) < 0.3 * abs(lrp)  # lateralised
    positivity = average[:, 100 + int(P.PRESS_POSITIVITY_LATENCY * sfreq)]
    assert positivity[pz] > 1.5 and positivity[pz] > 3 * abs(positivity[c4])

    # the beta band: C3 minus its 50 ms moving average (which removes the slow waves)
    beta = out[c3] - np.convolve(out[c3], np.ones(5) / 5, mode="same")

    def beta_power(lo, hi):  # mean square in [lo, hi) s around every press
        return np.mean([beta[a + int(lo * sfreq): a + int(hi * sfreq)] ** 2 for a in at])

    # amplitude 1 - 0.45 at the trough: power about 0.3x the baseline 1.5-2.5 s after
    assert beta_power(-0.2, 0.0) < 0.5 * beta_power(1.5, 2.5)


def test_presses_come_from_the_events_with_their_own_stream():
    from eegattn.data.synthetic.subjects import _presses

    rows = [(2500, "right_target", "n/a"), (3300, "left_buttonPress", "sad_face"),
            (1000, "contrastTrial_start", "n/a")]
    first = _presses(np.random.default_rng(1), rows)
    assert [(p.time, p.hand, p.error) for p in first] == [(3.3, "left", True)]
    assert first == _presses(np.random.default_rng(1), rows)  # a function of its stream


def test_oracle_challenge2_uses_the_planted_feature(tiny, truth):
    c2 = truth["challenge2"]
    assert c2["population_best_nrmse"] == pytest.approx(
        math.sqrt(1 - c2["beta"] ** 2 / (c2["beta"] ** 2 + c2["noise_sd"] ** 2)))
    subjects = [s for s, v in c2["subjects"].items() if v["externalizing"] is not None]
    pred = S.oracle_predict(tiny, 2, metadata=pd.DataFrame({"subject": subjects}))
    y = [c2["subjects"][s]["externalizing"] for s in subjects]
    assert 0.7 < _nrmse(y, pred) < 1.0  # measured 0.92 (5 subjects; default release: 0.90)
    features = [c2["subjects"][s]["feature"] for s in subjects]
    assert np.all(np.diff(np.array(pred)[np.argsort(features)]) > 0)
    unknown = S.oracle_predict(tiny, 2, metadata=pd.DataFrame({"subject": ["sub-NDARXX000XXX"]}))
    assert np.isnan(unknown).all()
    # every task shows the same subject feature: the oracle does not depend on the task
    per_task = S.oracle_predict(tiny, 2, metadata=pd.DataFrame(
        {"subject": subjects[:2] * 2, "task": ["DespicableMe"] * 2 + ["RestingState"] * 2}))
    np.testing.assert_array_equal(per_task[:2], per_task[2:])
    with pytest.raises(ValueError, match="holds no \\['symbolSearch'\\]"):
        S.oracle_predict(tiny, 2, metadata=pd.DataFrame({"subject": subjects[:1],
                                                         "task": ["symbolSearch"]}))


def test_challenge2_feature_is_visible_in_the_eeg(tiny, truth):
    """Log beta power of the frontal projection tracks the planted subject feature."""
    import mne
    from scipy.signal import welch

    c2 = truth["challenge2"]
    pattern = np.array(c2["pattern"])
    features, log_power = [], []
    for subject, info in c2["subjects"].items():
        bdf = next(tiny.glob(f"sub-{subject}/eeg/*RestingState_eeg.bdf"))
        x = pattern @ mne.io.read_raw_bdf(bdf, verbose=False).get_data()
        freqs, psd = welch(x, fs=100.0, nperseg=256)
        log_power.append(np.log(psd[(freqs >= 15) & (freqs <= 25)].mean()))
        features.append(info["feature"])
    assert np.corrcoef(features, log_power)[0, 1] > 0.8  # measured 0.99


def test_challenge2_feature_strength_depends_on_the_task(tiny, truth):
    """The frontal beta power follows the feature in every task, half as steeply in the
    passive movie as at rest (strengths 0.5 and 1: the log-power slope scales with them)."""
    import mne
    from scipy.signal import welch

    c2 = truth["challenge2"]
    assert c2["task_strength"] == {t: C2_TASK_STRENGTH[t] for t in truth["params"]["tasks"]}
    assert c2["task_strength"]["DespicableMe"] == 0.5 and c2["task_strength"]["RestingState"] == 1
    pattern = np.array(c2["pattern"])
    slopes = {}
    for task in ("RestingState", "DespicableMe", "surroundSupp"):
        features, log_power = [], []
        for rec in truth["recordings"]:
            if rec["task"] != task or rec["run"] not in (None, 1):
                continue
            x = pattern @ mne.io.read_raw_bdf(tiny / rec["path"], verbose=False).get_data()
            freqs, psd = welch(x, fs=100.0, nperseg=256)
            log_power.append(np.log(psd[(freqs >= 15) & (freqs <= 25)].mean()))
            features.append(c2["subjects"][rec["subject"]]["feature"])
        assert len(features) >= 4
        slopes[task] = np.polyfit(features, log_power, 1)[0]
    # the planted log-power slope is 2 * 0.35 * strength (0.7 at rest, 0.35 in the movie),
    # flattened by the background's own beta power: measured 0.47 at rest, 0.29 in the
    # movie, 0.24 in surroundSupp (6 subjects)
    assert 0.35 < slopes["RestingState"] < 0.8
    for task in ("DespicableMe", "surroundSupp"):
        assert 0.12 < slopes[task] < 0.45 and slopes[task] < 0.75 * slopes["RestingState"]


def test_adding_tasks_keeps_the_ccd_and_rest_files(tmp_path):
    """The other tasks draw from their own random streams: CCD and RestingState files are
    byte for byte those of a release without them (old figures stay valid)."""
    small = dict(n_subjects=3, trials_per_run=(4, 5), max_runs=1, rest_seconds=10,
                 task_seconds=10, n_jobs=1)
    two = S.make_release(tmp_path / "two", tasks=("contrastChangeDetection", "RestingState"),
                         **small)
    every = S.make_release(tmp_path / "all", tasks=S.SUPPORTED_TASKS, **small)
    before, after = _snapshot(two), _snapshot(every)
    kept = {k: v for k, v in before.items() if k.startswith("sub-")}
    assert kept and all(after[k] == v for k, v in kept.items())
    tasks = {re.search(r"task-([A-Za-z0-9]+)", k).group(1) for k in after if "_eeg.bdf" in k}
    assert len(tasks) >= 9  # every task written (availability 0.9 per subject and run)


def test_oracle_bad_input(tiny, tmp_path):
    with pytest.raises(FileNotFoundError, match="not a synthetic"):
        S.oracle_predict(tmp_path, 1, metadata=pd.DataFrame())
    with pytest.raises(ValueError, match="challenge must be 1 or 2"):
        S.oracle_predict(tiny, 3, metadata=pd.DataFrame())
    with pytest.raises(ValueError, match="needs X"):
        S.oracle_predict(tiny, 1)
    with pytest.raises(ValueError, match="subject"):
        S.oracle_predict(tiny, 2, metadata=pd.DataFrame({"run": [1]}))
    with pytest.raises(ValueError, match="shape"):
        S.oracle_predict(tiny, 1, X=np.zeros((2, 128, 200)))
