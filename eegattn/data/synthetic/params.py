"""Constants of the synthetic releases (planted truth, signal model, event codes), helpers."""

from __future__ import annotations

import numpy as np

from eegattn.challenge import (
    C1_SHIFT_AFTER_STIMULUS_S,
    C1_WINDOW_S,
    R5_MINI_SUBJECTS,
    RELEASES,
    TASKS,
)

# ----------------------------------------------------------------------------------------------
# Facts about the challenge data
# ----------------------------------------------------------------------------------------------
# Releases, tasks, subjects and participants.tsv columns: eegattn.challenge.
SUPPORTED_TASKS: tuple[str, ...] = TASKS  # every HBN task (the others: synthetic/tasks.py)
DEFAULT_N_SUBJECTS = 24

MARKER_NAME = ".eegattn_synthetic.json"
TRUTH_NAME = ".eegattn_truth.json"
GENERATOR_VERSION = 4  # bump when the output changes: older releases are rebuilt

# Illustrative event codes (HBN's own codes are not reproduced).
EVENT_CODES: dict[str, int] = {
    "9999": 9999,
    "contrastTrial_start": 5,
    "left_target": 8,
    "right_target": 9,
    "left_buttonPress": 12,
    "right_buttonPress": 13,
    "end_experiment": 99,
    "resting_start": 90,
    "instructed_toOpenEyes": 20,
    "instructed_toCloseEyes": 30,
    "break cnt": 91,
    # the other tasks (synthetic/tasks.py)
    "video_start": 81,
    "video_stop": 82,
    "stim_ON": 83,
    "fixpoint_ON": 84,
    "task_start": 85,
    "task_stop": 86,
    "buttonPress": 87,
}
BLOCK_CODE_BASE = 40  # contrastChangeB<k>_start -> 40 + k

# ----------------------------------------------------------------------------------------------
# Planted truth and signal constants (see the module docstring)
# ----------------------------------------------------------------------------------------------
UV = 1e-6
C1_PATTERN_CENTER = "Pz"
C1_PATTERN_WIDTH = 0.04  # m
C1_AMPLITUDE = 16.0 * UV  # peak at Pz before gains
C1_WIDTH = 0.12  # s, temporal sd of the wave
C1_LATENCY_OFFSET = 0.6  # s
C1_LATENCY_SLOPE = 0.8
C1_JITTER = 0.16  # s, latency noise the EEG cannot explain
RT_MIN, RT_MAX = 0.3, 2.0

# Button-press physiology, locked to every press in a CCD run (first, repeated, wrong and
# non-target presses alike). Amplitudes are at the peak electrode, before the Cz reference and
# the channel gains; chosen from the literature's typical values (docs/challenge.md, "The
# synthetic release's button press"), not fitted to any model.
MOTOR_CENTER = {"left": "C4", "right": "C3"}  # the hemisphere contralateral to the hand
MOTOR_WIDTH = 0.035  # m
LRP_AMPLITUDE = -3.0 * UV  # lateralised readiness potential: a few microvolts, negative
LRP_PEAK = -0.05  # s from the press (peaks near EMG onset, just before the button closes)
LRP_RISE_SD = 0.10  # s, half-Gaussian rise: visible from about 0.25 s before the press
LRP_DECAY = 0.15  # s, exponential return after the peak
LRP_PEAK_JITTER = 0.04  # s, trial-to-trial sd of the peak relative to the press
MU_BETA_RMS = 3.0 * UV  # sensorimotor beta rhythm over each hemisphere (CCD recordings)
MU_BETA_FREQ, MU_BETA_SD = 22.0, 3.0  # Hz
ERD_CENTER, ERD_SD = -0.1, 0.30  # s from the press: desynchronisation around the press
ERD_DEPTH = {"contra": 0.45, "ipsi": 0.25}  # fraction of the rhythm's amplitude removed
ERS_CENTER, ERS_SD, ERS_GAIN = 0.75, 0.25, 0.30  # post-movement beta rebound (contralateral)
PRESS_POSITIVITY_CENTER = "CPz-Pz"  # centro-parietal, midway between CPz (E55) and Pz (E62)
PRESS_POSITIVITY_WIDTH = 0.05  # m
PRESS_POSITIVITY_AMPLITUDE = {"correct": 3.0 * UV, "error": 6.0 * UV}  # larger after errors
PRESS_POSITIVITY_LATENCY = 0.30  # s after the press
PRESS_POSITIVITY_SD = 0.10  # s, temporal sd of the wave
PRESS_POSITIVITY_JITTER = 0.08  # s, trial-to-trial sd of its latency
PRESS_AMPLITUDE_LOG_SD = 0.35  # lognormal trial-to-trial amplitude variation of both waves
RT_LOG_SD_WITHIN = 0.30
# s after the stimulus: the challenge-1 window (starter kit)
WINDOW_START = C1_SHIFT_AFTER_STIMULUS_S
WINDOW_STOP = C1_SHIFT_AFTER_STIMULUS_S + C1_WINDOW_S

C2_PATTERN_CENTER = "Fz"
C2_PATTERN_WIDTH = 0.05
C2_BETA = 0.6
C2_NOISE = 1.0
C2_LOG_AMPLITUDE_SCALE = 0.35
C2_BETA_RMS = 6.0 * UV  # beta rhythm RMS at f = 0
C2_BETA_FREQ, C2_BETA_SD = 20.0, 3.0  # Hz
EXTERNALIZING_MEAN, EXTERNALIZING_SD = 0.0, 0.8

N_LATENT_SOURCES = 20
LATENT_RMS = 9.0 * UV
SENSOR_RMS = 3.0 * UV
ALPHA_RMS = 4.0 * UV
ALPHA_CLOSED_GAIN = 2.5
BLINK_RATE = 1.0 / 6.0  # per second with eyes open
HIGHPASS = 0.5  # Hz, challenge band-pass lower edge (100 Hz releases)
LINE_FREQ = 60.0  # HBN is in the US
PHYSICAL_RANGE_UV = (-3200.0, 3200.0)

_TRIAL_P = {"no_stimulus": 0.02, "no_response": 0.04, "wrong": 0.08, "double": 0.08}


# ----------------------------------------------------------------------------------------------
# Small helpers
# ----------------------------------------------------------------------------------------------
def _check_release(release) -> str:
    if not isinstance(release, str) or release not in RELEASES:
        raise ValueError(
            f"unknown release {release!r}: use one of {', '.join(RELEASES)} (R5 is the "
            "challenge's warm-up release)"
        )
    return release


def mini_subjects(release: str = "R5") -> tuple[str, ...]:
    """The 20 real subject IDs of a release's mini version (eegdash keeps only those)."""
    release = _check_release(release)
    if release == "R5":
        return R5_MINI_SUBJECTS
    from eegdash.const import SUBJECT_MINI_RELEASE_MAP  # the facts for other releases

    return tuple(sorted(SUBJECT_MINI_RELEASE_MAP[release]))


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, keys)]))


def _ndar_id(rng: np.random.Generator) -> str:
    letters = "ABCDEFGHJKLMNPRSTUVWXYZ"
    alnum = letters + "0123456789"
    return (
        "NDAR"
        + "".join(rng.choice(list(letters), 2))
        + "".join(rng.choice(list("0123456789"), 3))
        + "".join(rng.choice(list(alnum), 3))
    )


