"""Challenge windows: the CCD trial table against eegdash, window geometry, WindowSet, and the
challenge-1 / challenge-2 windows against the starter kit (eegdash + braindecode) on a tiny
synthetic release."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from eegattn.data.windows import (
    WindowSet,
    WindowSpec,
    ccd_trial_table,
    challenge1_window_starts,
    challenge1_windows,
    challenge2_window_starts,
    challenge2_windows,
    read_events,
)

EEGDASH_COLUMNS = (
    "trial_start_onset", "trial_stop_onset", "stimulus_onset", "response_onset",
    "rt_from_stimulus", "rt_from_trialstart", "response_type", "correct",
)  # fmt: skip


def eegdash_trials(events: pd.DataFrame, trial_rule: str = "current") -> pd.DataFrame:
    """eegdash's trial table: the installed 0.9 code ("current"), or the competition-era one
    ("challenge"; see ``hbn.eegdash_trial_rule``)."""
    from eegdash.hbn import windows

    from eegattn.data.hbn import eegdash_trial_rule

    with eegdash_trial_rule(trial_rule):
        return windows.build_trial_table(events)


def assert_same_trials(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    if theirs.empty and not len(theirs.columns):  # eegdash returns a bare frame
        assert len(ours) == 0
        return
    assert len(ours) == len(theirs)
    for column in EEGDASH_COLUMNS[:6]:
        np.testing.assert_array_equal(
            ours[column].to_numpy(float), theirs[column].to_numpy(float), err_msg=column
        )
    for column in ("response_type", "correct"):
        assert [None if v is None else v for v in ours[column]] == [
            None if v is None or (isinstance(v, float) and np.isnan(v)) else v
            for v in theirs[column]
        ], column


def irregular_events(rng: np.random.Generator) -> pd.DataFrame:
    """A CCD events table with the irregularities of HBN files, drawn at random."""
    rows = [(0.0, "9999", "n/a")]
    t = rng.uniform(0.5, 3.0)
    for _ in range(rng.integers(0, 9)):
        rows.append((t, "contrastTrial_start", "n/a"))
        stim = t + rng.choice([0.0, rng.uniform(0.5, 2.5)])  # sometimes at the trial start
        side = rng.choice(["left", "right"])
        if rng.random() > 0.15:
            rows.append((stim, f"{side}_target", "n/a"))
        for _ in range(rng.choice([0, 1, 1, 1, 2, 3])):  # none, one, double or triple press
            press = stim + rng.choice([0.0, rng.uniform(-0.3, 2.5)])  # even before stimulus
            rows.append((press, f"{rng.choice(['left', 'right'])}_buttonPress",
                         rng.choice(["smiley_face", "sad_face", "non_target", "n/a"])))
        t = stim + rng.uniform(0.2, 3.0) if rng.random() > 0.1 else t  # repeated onsets
    if rng.random() > 0.3:
        rows.append((t + rng.uniform(-1.0, 3.0), "end_experiment", "n/a"))
    frame = pd.DataFrame(rows, columns=["onset", "value", "feedback"])
    frame["onset"] = np.round(frame["onset"], rng.choice([3, 6, 9]))  # off the 10 ms grid
    if rng.random() > 0.5:
        frame = frame.sample(frac=1.0, random_state=int(rng.integers(1 << 30)))  # unsorted
    if rng.random() > 0.8:
        frame = frame.drop(columns="feedback")
    if rng.random() > 0.8 and len(frame) > 2:
        frame.loc[frame.index[1], "onset"] = np.nan
    return frame.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Trial table
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("trial_rule", ["challenge", "current"])
def test_trial_table_matches_eegdash_on_irregular_events(trial_rule):
    rng = np.random.default_rng(0)
    n_trials = 0
    for _ in range(60):
        events = irregular_events(rng)
        ours = ccd_trial_table(events, trial_rule)
        assert_same_trials(ours, eegdash_trials(events, trial_rule))
        n_trials += len(ours)
    assert n_trials > 120  # the draws did exercise trials


def test_trial_rules_differ_only_in_the_last_trial_closed_by_end_experiment():
    """"challenge" drops the run's last trial (no next trial), as the competition-era eegdash
    did; "current" (eegdash 0.9) ends it at end_experiment. The default is the challenge's."""
    rows = [(1.0, "contrastTrial_start", "n/a"), (2.0, "left_target", "n/a"),
            (2.6, "left_buttonPress", "smiley_face"), (5.0, "contrastTrial_start", "n/a"),
            (6.0, "right_target", "n/a"), (6.4, "right_buttonPress", "smiley_face"),
            (9.0, "end_experiment", "n/a")]  # fmt: skip
    events = pd.DataFrame(rows, columns=["onset", "value", "feedback"])
    challenge = ccd_trial_table(events, "challenge")
    current = ccd_trial_table(events, "current")
    assert challenge["trial_start_onset"].tolist() == [1.0]
    assert current["trial_start_onset"].tolist() == [1.0, 5.0]
    assert current["trial_stop_onset"].tolist() == [5.0, 9.0]
    np.testing.assert_allclose(current["rt_from_stimulus"], [0.6, 0.4])
    pd.testing.assert_frame_equal(ccd_trial_table(events), challenge)  # the default
    # the same run without end_experiment: both rules drop the last trial
    no_end = events[events["value"] != "end_experiment"]
    pd.testing.assert_frame_equal(ccd_trial_table(no_end, "current"), challenge)
    with pytest.raises(ValueError, match="trial_rule"):
        ccd_trial_table(events, "newest")


def test_trial_table_edge_cases_match_eegdash():
    cases = {
        "last trial closed by end_experiment": [
            (1.0, "contrastTrial_start", "n/a"), (2.0, "left_target", "n/a"),
            (2.5, "left_buttonPress", "smiley_face"), (4.0, "end_experiment", "n/a")],
        "end before the last trial": [
            (1.0, "contrastTrial_start", "n/a"), (0.5, "end_experiment", "n/a"),
            (2.0, "left_target", "n/a"), (2.5, "right_buttonPress", "sad_face")],
        "response exactly at the next trial start is outside": [
            (1.0, "contrastTrial_start", "n/a"), (2.0, "left_target", "n/a"),
            (3.0, "left_buttonPress", "smiley_face"), (3.0, "contrastTrial_start", "n/a"),
            (3.5, "right_target", "n/a"), (4.0, "right_buttonPress", "smiley_face"),
            (5.0, "contrastTrial_start", "n/a")],
        "press without stimulus": [
            (1.0, "contrastTrial_start", "n/a"), (1.5, "left_buttonPress", "non_target"),
            (3.0, "contrastTrial_start", "n/a")],
        "no trials": [(1.0, "left_target", "n/a")],
    }  # fmt: skip
    for name, rows in cases.items():
        events = pd.DataFrame(rows, columns=["onset", "value", "feedback"])
        for rule in ("challenge", "current"):
            ours = ccd_trial_table(events, rule)
            assert_same_trials(ours, eegdash_trials(events, rule))
            assert list(ours.columns)[:8] == list(EEGDASH_COLUMNS), name
    closing = ccd_trial_table(pd.DataFrame(cases["last trial closed by end_experiment"],
                                           columns=["onset", "value", "feedback"]), "current")
    assert closing["trial_stop_onset"].tolist() == [4.0]
    assert closing["rt_from_stimulus"].tolist() == [0.5]
    assert closing["correct"].tolist() == [True]
    assert closing["response_side"].tolist() == ["left"]
    boundary = ccd_trial_table(pd.DataFrame(cases["response exactly at the next trial start "
                                                  "is outside"],
                                            columns=["onset", "value", "feedback"]))
    assert np.isnan(boundary["response_onset"].iloc[0])


def test_trial_table_matches_eegdash_on_every_synthetic_events_file(tiny_root):
    files = sorted(tiny_root.glob("EEG2025r5/sub-*/eeg/*contrastChangeDetection*_events.tsv"))
    assert len(files) >= 6
    for path in files:
        events = read_events(path)
        for rule in ("challenge", "current"):
            assert_same_trials(ccd_trial_table(events, rule), eegdash_trials(events, rule))


def test_trial_table_rejects_bad_events():
    with pytest.raises(ValueError, match="lacks the column"):
        ccd_trial_table(pd.DataFrame({"onset": [1.0], "trial_type": ["x"]}))
    with pytest.raises(ValueError, match="non-numeric"):
        ccd_trial_table(pd.DataFrame({"onset": ["soon"], "value": ["contrastTrial_start"]}))
    with pytest.raises(ValueError, match="DataFrame"):
        ccd_trial_table([("1.0", "x")])


def test_read_events_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_events(tmp_path / "missing_events.tsv")
    path = tmp_path / "bad_events.tsv"
    path.write_text("time\tlabel\n1.0\tcontrastTrial_start\n")
    with pytest.raises(ValueError, match="'onset'"):
        read_events(path)


# --------------------------------------------------------------------------------------------
# Window geometry
# --------------------------------------------------------------------------------------------
def test_challenge1_starts_follow_mne_annotations():
    """Onsets off the sample grid land on the sample MNE + braindecode give them."""
    import mne

    onsets = np.array([0.125, 1.005, 2.0049999, 3.0050000004, 4.015, 5.0000005, 7.995])
    info = mne.create_info(["a"], 100.0, "eeg")
    raw = mne.io.RawArray(np.zeros((1, 1000)), info, verbose="error")
    raw.set_meas_date(1_600_000_000.0)
    raw.set_annotations(mne.Annotations(onsets, 0.0, "stim", orig_time=raw.info["meas_date"]))
    events, _ = mne.events_from_annotations(raw, {"stim": 0}, verbose="error")
    np.testing.assert_array_equal(challenge1_window_starts(onsets, 100.0), events[:, 0] + 50)
    np.testing.assert_array_equal(challenge1_window_starts(onsets, 100.0, 0.0), events[:, 0])


def test_challenge1_windows_content_and_bounds():
    sfreq, n_times = 100.0, 1000
    data = np.arange(2 * n_times, dtype=float).reshape(2, n_times)
    trials = ccd_trial_table(pd.DataFrame({
        "onset": [1.0, 2.0, 2.4, 3.0, 6.0, 7.0, 7.3, 9.9],
        "value": ["contrastTrial_start", "left_target", "left_buttonPress",
                  "contrastTrial_start", "contrastTrial_start", "right_target",
                  "right_buttonPress", "end_experiment"],
        "feedback": ["n/a", "n/a", "smiley_face", "n/a", "n/a", "n/a", "sad_face", "n/a"]}),
        trial_rule="current")  # the last trial ends at end_experiment
    X, meta, n_outside = challenge1_windows(data, sfreq, trials)
    # trial 0: stimulus 2.0 s -> window 250..450; trial 1 has no stimulus; trial 2's window
    # (7.5..9.5 s) fits; nothing falls outside.
    assert X.shape == (2, 2, 200) and X.dtype == np.float32 and n_outside == 0
    assert meta["trial"].tolist() == [0, 2]
    assert meta["i_start"].tolist() == [250, 750]
    np.testing.assert_array_equal(X[0, 1], data[1, 250:450].astype(np.float32))
    np.testing.assert_allclose(meta["target"], [0.4, 0.3])
    assert meta["correct"].tolist() == [1.0, 0.0]
    # a recording that ends at 9 s loses the second window, counted
    X, meta, n_outside = challenge1_windows(data[:, :900], sfreq, trials)
    assert len(X) == 1 and n_outside == 1


def test_challenge2_window_starts_and_windows():
    np.testing.assert_array_equal(challenge2_window_starts(1000, 100.0), [0, 200, 400, 600])
    np.testing.assert_array_equal(challenge2_window_starts(1199, 100.0), [0, 200, 400, 600])
    assert challenge2_window_starts(399, 100.0).size == 0
    data = np.random.default_rng(0).normal(size=(3, 1000))
    X, meta = challenge2_windows(data, 100.0, target=0.7)
    assert X.shape == (4, 3, 400)
    np.testing.assert_array_equal(X[2], data[:, 400:800].astype(np.float32))
    assert meta["i_window"].tolist() == [0, 1, 2, 3] and set(meta["target"]) == {0.7}
    X, meta = challenge2_windows(data[:, :300], 100.0, target=0.7)
    assert X.shape == (0, 3, 400) and len(meta) == 0


def test_window_spec_defaults_and_errors():
    assert WindowSpec(1).as_dict() == {"challenge": 1, "window_s": 2.0, "stride_s": None,
                                       "shift_after_stimulus_s": 0.5,
                                       "target": "rt_from_stimulus", "trial_rule": "challenge"}
    assert WindowSpec(2).window_s == 4.0 and WindowSpec(2).stride_s == 2.0
    assert "trial_rule" not in WindowSpec(2).as_dict()  # challenge-2 cache keys unchanged
    with pytest.raises(ValueError, match="challenge 1 only"):
        WindowSpec(2, trial_rule="current")
    with pytest.raises(ValueError, match="'trial_rule' parameter"):
        WindowSpec(1, trial_rule="latest")
    with pytest.raises(ValueError, match="challenge must be 1 or 2"):
        WindowSpec(3)
    with pytest.raises(ValueError, match="challenge 2 only"):
        WindowSpec(1, stride_s=1.0)
    with pytest.raises(ValueError, match="'target' parameter for challenge 1"):
        WindowSpec(1, target="externalizing")
    with pytest.raises(ValueError, match="positive number of seconds"):
        WindowSpec(2, window_s=0.0)


# --------------------------------------------------------------------------------------------
# WindowSet
# --------------------------------------------------------------------------------------------
def _window_set(n=6, memmap_path=None) -> WindowSet:
    X = np.arange(n * 2 * 3, dtype=np.float32).reshape(n, 2, 3)
    if memmap_path is not None:
        np.save(memmap_path, X)
        X = np.load(memmap_path, mmap_mode="r")
    meta = pd.DataFrame({"release": "R5", "subject": [f"S{i // 2}" for i in range(n)],
                         "task": "contrastChangeDetection", "run": 1, "target": np.arange(n),
                         "trial": np.arange(n)})
    return WindowSet(X=X, y=np.arange(n, dtype=np.float32), metadata=meta, sfreq=100.0,
                     challenge=1)


def test_windowset_groups_len_and_subset(tmp_path):
    ws = _window_set(memmap_path=tmp_path / "X.npy")
    assert len(ws) == 6 and ws.n_chans == 2 and ws.n_times == 3
    assert ws.groups.tolist() == ["S0", "S0", "S1", "S1", "S2", "S2"]
    part = ws.subset([4, 1])
    assert part.y.tolist() == [4.0, 1.0] and part.metadata["trial"].tolist() == [4, 1]
    np.testing.assert_array_equal(part.X, np.asarray(ws.X)[[4, 1]])
    view = ws.subset(slice(2, 5))
    assert isinstance(view.X, np.memmap) and len(view) == 3
    mask = ws.groups == "S1"
    assert ws.subset(mask).groups.tolist() == ["S1", "S1"]
    with pytest.raises(ValueError, match="out of range"):
        ws.subset([6])
    with pytest.raises(ValueError, match="boolean mask"):
        ws.subset(np.ones(3, bool))


def test_windowset_rejects_mismatched_parts():
    ws = _window_set()
    with pytest.raises(ValueError, match="must match"):
        WindowSet(X=ws.X, y=ws.y[:3], metadata=ws.metadata, sfreq=100.0, challenge=1)
    with pytest.raises(ValueError, match="challenge"):
        WindowSet(X=ws.X, y=ws.y, metadata=ws.metadata, sfreq=100.0, challenge=3)


# --------------------------------------------------------------------------------------------
# Against the starter kit (eegdash + braindecode), on the tiny synthetic release
# --------------------------------------------------------------------------------------------
def _starter_kit(challenge, root, trial_rule="challenge"):
    from eegattn.data.hbn import iter_starter_kit_windows, starter_kit_windows

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        windows = starter_kit_windows(challenge, root, trial_rule=trial_rule)
        rows = list(iter_starter_kit_windows(windows, challenge))
    X = np.stack([r[0] for r in rows])
    y = np.array([r[1] for r in rows], dtype=np.float32)
    keys = [(r[2]["subject"], r[2]["task"], r[2]["run"], r[2]["i_start"]) for r in rows]
    return X, y, keys


@pytest.mark.parametrize("challenge, trial_rule", [(1, "challenge"), (1, "current"), (2, None)])
def test_windows_identical_to_starter_kit(tiny_root, challenge, trial_rule, capsys):
    """Same windows (bit for bit), same targets and same order as the starter-kit path
    (slower than the other tests: it runs eegdash and braindecode), under each trial rule:
    "challenge" against eegdash as the competition ran it, "current" against eegdash 0.9."""
    from eegattn.data.cache import load_challenge_windows

    X_ref, y_ref, keys_ref = _starter_kit(challenge, tiny_root, trial_rule or "challenge")
    ours = load_challenge_windows(challenge, root=tiny_root, use_cache=False, progress=False,
                                  trial_rule=trial_rule)
    m = ours.metadata
    keys = [(s, t, None if pd.isna(r) else int(r), int(i))
            for s, t, r, i in zip(m["subject"], m["task"], m["run"], m["i_start"])]
    assert keys == keys_ref
    assert X_ref.dtype == ours.X.dtype == np.float32
    np.testing.assert_array_equal(ours.X, X_ref)
    np.testing.assert_array_equal(ours.y, y_ref)
    assert "NDARBA381JGH" not in set(m["subject"])  # an excluded subject of this release
    capsys.readouterr()  # eegdash prints a banner
