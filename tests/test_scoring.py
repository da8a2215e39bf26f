"""Scoring as the challenge's scoring ingestion did (issue 17).

The reference is built here, directly on eegdash + braindecode, the way the ingestion (the
local scoring script published with the starter kit) reads a release: CCD recordings of every
subject, challenge-1 trial windows, challenge-2 4 s windows of recordings with >= 400 samples
and a target, each recording wrapped with its own ``random.Random(42)`` drawing
``randint(0, 200)`` per window in order. The project's :mod:`eegattn.data.scoring` and
``validate_submission(release_root=...)`` must give the same windows, crops and scores.
"""

from __future__ import annotations

import math
import random
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest

CCD = "contrastChangeDetection"

# a submission whose outputs depend on where the crop starts (the mean of the first 50
# samples of 8 channels), so different crops would give different scores
SUBMISSION = '''
import torch
from torch import nn


class _Model(nn.Module):
    def __init__(self, scale: float, offset: float):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return (x[:, :8, :50].mean(dim=(1, 2)) * self.scale + self.offset).reshape(-1, 1)


class Submission:
    def __init__(self, SFREQ, DEVICE):
        self.device = DEVICE

    def get_model_challenge_1(self):
        return _Model(2e4, 1.2).to(self.device)

    def get_model_challenge_2(self):
        return _Model(5e3, 0.1).to(self.device)
'''


def _predict(X: np.ndarray, challenge: int) -> np.ndarray:
    scale, offset = {1: (2e4, 1.2), 2: (5e3, 0.1)}[challenge]
    return X[:, :8, :50].astype(np.float64).mean(axis=(1, 2)) * scale + offset


def _nrmse(y, pred) -> float:
    y, pred = np.asarray(y, float), np.asarray(pred, float)
    return float(np.sqrt(np.mean((y - pred) ** 2)) / np.std(y))  # population std


def _ingestion_reference(root, challenge: int):
    """(X (n, 129, 200) float32, y, keys) the way the scoring ingestion builds them, with the
    competition's trial table (eegdash 0.9's with end_experiment rows removed: 0.9 reads them
    only to close a run's last trial, which the competition-era code dropped)."""
    from braindecode.datasets import BaseConcatDataset
    from braindecode.preprocessing import (
        Preprocessor,
        create_fixed_length_windows,
        create_windows_from_events,
        preprocess,
    )
    from eegdash import EEGChallengeDataset
    from eegdash.hbn import windows as hbn_windows

    dataset = EEGChallengeDataset(release="R5", cache_dir=str(root), mini=False, download=False,
                                  query=dict(task=CCD),
                                  description_fields=["subject", "session", "run", "task",
                                                      "externalizing"])
    rows = []
    if challenge == 1:
        original = hbn_windows.build_trial_table
        hbn_windows.build_trial_table = lambda events: original(
            events[events["value"] != "end_experiment"])
        try:
            preprocess(dataset, [
                Preprocessor(hbn_windows.annotate_trials_with_target,
                             target_field="rt_from_stimulus", epoch_length=2.0,
                             require_stimulus=True, require_response=True,
                             apply_on_array=False),
                Preprocessor(hbn_windows.add_aux_anchors, apply_on_array=False),
            ], n_jobs=1)  # fmt: skip
        finally:
            hbn_windows.build_trial_table = original
        dataset = hbn_windows.keep_only_recordings_with("stimulus_anchor", dataset)
        windows = create_windows_from_events(
            dataset, mapping={"stimulus_anchor": 0}, trial_start_offset_samples=50,
            trial_stop_offset_samples=250, window_size_samples=200, window_stride_samples=100,
            preload=True,
        )  # fmt: skip
        windows = hbn_windows.add_extras_columns(windows, dataset, desc="stimulus_anchor",
                                                 keys=("target", "rt_from_stimulus"))
        for ds in windows.datasets:
            for i in range(len(ds)):
                X, y, inds = ds[i]
                rows.append((X, float(np.ravel(y)[0]),
                             (ds.description["subject"], int(ds.description["run"]),
                              int(inds[1]))))
    else:
        dataset = BaseConcatDataset([
            ds for ds in dataset.datasets
            if ds.raw.n_times >= 400 and not math.isnan(float(ds.description["externalizing"]))
        ])  # fmt: skip
        windows = create_fixed_length_windows(dataset, window_size_samples=400,
                                              window_stride_samples=200, drop_last_window=True)
        for ds in windows.datasets:
            rng = random.Random(42)  # the ingestion's wrapper, one per recording
            target = float(ds.description["externalizing"])
            for i in range(len(ds)):
                X, _, inds = ds[i]
                start = rng.randint(0, inds[2] - inds[1] - 200)
                rows.append((X[:, start : start + 200], target,
                             (ds.description["subject"], int(ds.description["run"]),
                              int(inds[1]))))
    X = np.stack([r[0] for r in rows]).astype(np.float32)
    return X, np.array([r[1] for r in rows]), [r[2] for r in rows]


@pytest.fixture(scope="module")
def reference(tiny_root):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: _ingestion_reference(tiny_root, k) for k in (1, 2)}


@pytest.mark.parametrize("challenge", [1, 2])
def test_scoring_windows_and_crops_equal_the_ingestion(tiny_root, reference, challenge,
                                                        capsys):
    from eegattn.challenge import EXCLUDED_SUBJECTS
    from eegattn.data.scoring import crop_scoring_windows, scoring_windows

    X_ref, y_ref, keys_ref = reference[challenge]
    ours = scoring_windows(challenge, tiny_root / "EEG2025r5", use_cache=False)
    m = ours.metadata
    keys = [(s, int(r), int(i)) for s, r, i in zip(m["subject"], m["run"], m["i_start"])]
    assert len(ours) == len(X_ref) and keys == keys_ref
    X = crop_scoring_windows(ours)
    assert X.shape == X_ref.shape and X.dtype == np.float32
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(ours.y, y_ref.astype(np.float32))
    # what sets scoring apart from training: the excluded subject is scored, CCD only
    assert set(m["subject"]) & set(EXCLUDED_SUBJECTS)
    assert set(m["task"]) == {CCD}
    if challenge == 2:
        assert len(set(m["crop_start"])) > 3  # crops do vary
        first = m.groupby("recording", sort=False)["crop_start"].apply(list)
        assert all(s[:3] == [163, 28, 6][: len(s)] for s in first)  # Random(42), per recording
    capsys.readouterr()


def test_scoring_selection_differs_from_training(tiny_root):
    """Training keeps the starter kit's nine exclusions; scoring keeps every subject."""
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.scoring import scoring_windows

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        training = load_challenge_windows(1, root=tiny_root, use_cache=False, progress=False)
        scoring = scoring_windows(1, tiny_root / "EEG2025r5", use_cache=False)
        current = scoring_windows(1, tiny_root / "EEG2025r5", use_cache=False,
                                  trial_rule="current")
    assert len(scoring) > len(training)
    assert set(training.groups) < set(scoring.groups)
    assert len(current) > len(scoring)  # the last trial of runs closed by end_experiment


def test_validate_submission_scores_equal_the_ingestion(tiny_root, reference, tmp_path):
    from eegattn.submission import validate_submission

    zip_path = tmp_path / "sub.zip"
    with zipfile.ZipFile(zip_path, "w") as zf:
        zf.writestr("submission.py", SUBMISSION)
    report = validate_submission(zip_path, release_root=tiny_root / "EEG2025r5",
                                 batch_sizes=(1, 2), timing_batch=None)
    assert report.ok, report.format()
    want = {k: _nrmse(reference[k][1], _predict(reference[k][0], k)) for k in (1, 2)}
    for k in (1, 2):
        got = report.scores[f"challenge_{k}"]
        assert got["n"] == len(reference[k][0])
        assert got["nrmse"] == pytest.approx(want[k], rel=1e-5)
    assert report.scores["overall"] == pytest.approx(0.3 * want[1] + 0.7 * want[2], rel=1e-5)
    text = report.format()
    for k in (1, 2):
        assert f"challenge {k}: {len(reference[k][0])} windows: " in text
    assert "random.Random(42)" in text and "no exclusion" in text


def test_participants_columns_are_matched_as_eegdash_matches_them(tmp_path):
    from eegdash.bids_metadata import normalize_key

    from eegattn.data.hbn import normalize_column, participant_value, read_participants

    for name in ("Externalizing", "p-factor", " P_Factor ", "EHQ Total", "age(years)"):
        assert normalize_column(name) == normalize_key(name)
    (tmp_path / "participants.tsv").write_text(
        "Participant_ID\tP-Factor\tExternalizing\n"
        "sub-NDARAA000AA1\t0.5\t-0.25\nsub-NDARAA000AA2\tn/a\t1.5\n")
    participants = read_participants(tmp_path)
    assert set(participants) == {"NDARAA000AA1", "NDARAA000AA2"}
    assert participant_value(participants, "NDARAA000AA1", "externalizing") == -0.25
    assert participant_value(participants, "NDARAA000AA1", "p_factor") == 0.5
    assert math.isnan(participant_value(participants, "NDARAA000AA2", "p_factor"))
    with pytest.raises(ValueError, match="no column 'attention'.*case and punctuation"):
        participant_value(participants, "NDARAA000AA1", "attention")


def test_legacy_release_folders_are_read_or_named(tiny_root, tmp_path):
    """Folders older eegdash versions wrote (ds005509-bdf for R5) are read as the release;
    a missing release names both folder names."""
    from eegattn.challenge import legacy_release_folder_name, parse_release_folder
    from eegattn.data import hbn

    assert legacy_release_folder_name("R5") == "ds005509-bdf"
    assert legacy_release_folder_name("R11", mini=True) == "ds005516-bdf-mini"
    assert parse_release_folder("ds005509-bdf-mini") == ("R5", True)
    assert parse_release_folder("ds005513-bdf") is None  # no release has that id
    legacy = tmp_path / "old-cache" / "ds005509-bdf"
    legacy.parent.mkdir()
    legacy.symlink_to(tiny_root / "EEG2025r5", target_is_directory=True)
    assert hbn.find_release_dir(legacy.parent, "R5") == legacy
    found = hbn.discover_recordings(legacy.parent, tasks=CCD)
    direct = hbn.discover_recordings(tiny_root, tasks=CCD)
    assert [r.path.name for r in found] == [r.path.name for r in direct]
    with pytest.raises(FileNotFoundError, match="ds005509-bdf-mini.*pass mini=False"):
        hbn.find_release_dir(legacy.parent, "R5", mini=True)
    with pytest.raises(FileNotFoundError, match="nor ds005507-bdf, the name older eegdash"):
        hbn.find_release_dir(legacy.parent, "R3")
    with pytest.raises(ValueError, match="rename it"):
        hbn.open_releases(legacy.parent, tasks=CCD, source="eegdash")


def test_scoring_crops_follow_the_recording_order():
    from eegattn.data.scoring import ingestion_crops

    meta = pd.DataFrame({"recording": ["b"] * 3 + ["a"] * 2, "i_window": [0, 1, 2, 1, 0]})
    starts = ingestion_crops(meta, 400)
    draws = random.Random(42)
    first = [draws.randint(0, 200) for _ in range(3)]
    assert starts[:3].tolist() == first
    assert starts[[4, 3]].tolist() == first[:2]  # window 0 of "a" gets the first draw
