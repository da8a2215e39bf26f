"""Challenge constants (eegattn.challenge): one home, used everywhere, cheap to import."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from eegattn import challenge as C


def test_importing_challenge_is_cheap():
    code = "import sys, eegattn.challenge; print('numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_other_modules_use_the_same_objects():
    from eegattn.data import hbn, synthetic, windows
    from eegattn.submission import package, validate
    from eegattn.training import metrics, pipeline

    assert hbn.EXCLUDED_SUBJECTS is synthetic.EXCLUDED_SUBJECTS is C.EXCLUDED_SUBJECTS
    assert hbn.RELEASES is synthetic.RELEASES is C.RELEASES
    assert hbn.release_folder_name is synthetic.release_folder_name is C.release_folder_name
    assert synthetic.default_cache_dir is C.default_cache_dir
    assert windows.C1_WINDOW_S == 2.0 and windows.C2_STRIDE_S is C.C2_STRIDE_S
    assert validate.CHALLENGE_WEIGHTS is metrics.CHALLENGE_WEIGHTS is C.CHALLENGE_WEIGHTS
    assert pipeline.C2_CROP_N_TIMES == package.CHALLENGE_N_TIMES == C.N_TIMES == 200
    assert validate.crop_starts is C.crop_starts


def test_release_names_round_trip():
    assert [C.normalize_release(r) for r in ("R5", "r5", 5, " 5 ")] == ["R5"] * 4
    with pytest.raises(ValueError, match="unknown HBN release"):
        C.normalize_release("R12")
    for release in C.RELEASES:
        for mini in (False, True):
            assert C.parse_release_folder(C.release_folder_name(release, mini)) == (release, mini)
    assert C.release_folder_name(11, mini=True) == "EEG2025r11mini"
    for bad in ("EEG2025r12", "EEG2025r05", "EEG2025r5-mini", "R5", ""):
        assert C.parse_release_folder(bad) is None


def test_window_geometry_gives_200_sample_inputs():
    assert C.C1_WINDOW_S * C.SFREQ == C.N_TIMES == C.C2_CROP_N_TIMES
    assert (C.C1_SHIFT_AFTER_STIMULUS_S, C.C1_SHIFT_AFTER_STIMULUS_S + C.C1_WINDOW_S) == (0.5, 2.5)
    assert C.C2_WINDOW_S * C.SFREQ == 400 and C.C2_STRIDE_S * C.SFREQ == 200
    assert len(C.EXCLUDED_SUBJECTS) == len(set(C.EXCLUDED_SUBJECTS)) == 9
    assert len(C.R5_MINI_SUBJECTS) == C.MINI_SIZE == 20


def test_scoring_weights_and_overall_score():
    from eegattn.training.metrics import overall_score

    assert C.CHALLENGE_WEIGHTS == {1: 0.3, 2: 0.7}
    assert overall_score(1.0, 2.0) == pytest.approx(0.3 + 1.4)


def test_check_challenge():
    assert C.check_challenge(1) == 1 and C.check_challenge(np.int64(2)) == 2
    for bad in (0, 3, "1", True, None):
        with pytest.raises(ValueError, match="challenge must be 1 or 2"):
            C.check_challenge(bad)


def test_crop_starts_match_the_training_loop():
    """Validation scores the same crops as the training loop's seeded test crops."""
    from eegattn.training.loop import seeded_crop_offsets

    starts = C.crop_starts(50, 400, 200, seed=3)
    assert starts.min() >= 0 and starts.max() <= 200
    np.testing.assert_array_equal(starts, seeded_crop_offsets(50, 400, 200, 3))
    np.testing.assert_array_equal(C.crop_starts(4, 200), np.zeros(4))
    with pytest.raises(ValueError, match="shorter than the 200-sample crop"):
        C.crop_starts(2, 150)
