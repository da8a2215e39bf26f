"""Synthetic HBN-like challenge releases with planted ground truth, and their oracle.

``make_release`` writes a folder that the real loading path reads exactly like a downloaded
EEG Foundation Challenge 2025 release:

- ``<root>/EEG2025r5`` (full layout: generated NDAR-style IDs such as ``NDARAB793GL3``, plus 2-3
  of the nine subjects the challenge-1 starter kit excludes, so exclusion is exercised), or
  ``<root>/EEG2025r5mini`` (mini layout: exactly the 20 real subject IDs of the R5 mini release,
  because eegdash keeps only those in mini mode). Both load offline with
  ``EEGChallengeDataset(release="R5", cache_dir=<root>, mini=..., download=False, task=...)``.
- BIDS files as the challenge: ``dataset_description.json``, ``participants.tsv`` (HBN columns,
  externalizing and the other factors NaN for some subjects, per-task availability flags),
  ``participants.json``, ``README`` and per recording
  ``sub-<ID>/eeg/sub-<ID>_task-<task>[_run-<n>]_eeg.bdf`` with ``_eeg.json``, ``_channels.tsv``,
  ``_events.tsv`` (columns ``onset, duration, value, event_code, feedback``; string values) and
  ``_events.json``. Written with mne-bids (BDF through edfio), events rewritten in HBN's format.
- 129 channels ``E1..E128, Cz`` (GSN-HydroCel-129), Cz flat (all zeros: the reference). 100 Hz by
  default (the challenge data are 0.5-50 Hz at 100 Hz); ``raw_like=True`` writes 500 Hz files
  with 60 Hz line noise (+ harmonics), slow drifts and broadband muscle noise above 50 Hz so that
  resampling, notch and band-pass filters have work to do. BDF physical range is fixed at
  +-3.2 mV (24 bit: 0.38 nV steps, negligible against microvolt signals).

Signal model (all amplitudes are RMS at a typical channel, volts in the files)
-------------------------------------------------------------------------------
- Background: 20 spatially smooth latent sources per subject with 1/f^alpha spectra
  (alpha in [0.9, 1.5] per subject, knee 1 Hz) plus white sensor noise (3 microvolts): about
  10-13 microvolts median channel RMS after referencing to Cz (less next to Cz). 100 Hz
  releases are shaped by a 0.5 Hz high-pass response like the challenge's band-pass.
- Alpha rhythm: narrow band around each subject's alpha frequency (9-11.5 Hz), occipital
  topography (Oz = E75), about 2.5x stronger while the eyes are closed in RestingState.
- Blinks: about one per 6 s while the eyes are open, 80-200 microvolts over the eye channels.
- Per-subject channel gains (lognormal, 10 %).

Planted ground truth
--------------------
Challenge 1 (response time from a +0.5..+2.5 s post-stimulus window): every CCD trial with a
stimulus and a response carries a positive centro-parietal "P300-like" Gaussian wave
(topography centred on Pz = E62, width 4 cm, referenced to Cz; temporal sd ``C1_WIDTH`` =
0.12 s; peak ``C1_AMPLITUDE`` = 16 microvolts at Pz, lognormal subject (20 %) and trial (20 %)
variation) peaking ``C1_LATENCY_OFFSET + C1_LATENCY_SLOPE * rt_decision + N(0, C1_JITTER)``
= 0.6 s + 0.8 rt + N(0, 0.16 s) after the stimulus, i.e. 0.84-2.2 s, inside the window.
``rt_decision`` is the first press, except in "premature" double presses (about half of the
~8 % double presses) where the wave follows the second, intended press: the target (the first
press) is then label noise. RTs are lognormal (subject medians about 0.55-1.1 s, slower when
younger; within-subject log-sd 0.3) truncated to 0.3-2.0 s. SNR: the jitter is 0.2 s of RT
against an RT sd of about 0.29 s; the wave's peak at Pz (13.5 microvolts after the Cz
reference) is about 1.5x the channel's RMS (about 9 microvolts).
Measured on the default release (24 subjects, seed 0, excluded subjects dropped, 1928
windows): NRMSE 0.60 for the planted latency itself (the floor: jitter + label noise) and 0.72
for the EEG oracle (matched filter on the minimum-variance spatial filter of the wave, then
E[target | estimate]) -- the best achievable from the data.

Challenge 2 (externalizing): a frontal beta rhythm (centre 20 Hz, sd 3 Hz, topography centred
on Fz = E11, ``C2_BETA_RMS`` = 6 microvolts at f = 0) in every recording of the subject, with
log amplitude ``C2_LOG_AMPLITUDE_SCALE * f`` = 0.35 f, where the subject feature is
``f = C2_BETA * z + N(0, C2_NOISE)`` = 0.6 z + N(0, 1), ``z`` the standardised externalizing
score. R^2 = 0.36 / 1.36 = 0.26, so the best achievable NRMSE is sqrt(1 - 0.26) = 0.86 in the
population; on the default release it is 0.90 over the 4 s / 2 s-stride CCD windows of the 22
subjects with a target. The log beta power of the Fz projection correlates 0.93 with ``f``
across subjects, so the feature is visible in the EEG. Subjects whose externalizing is NaN in
participants.tsv still get a feature from the same model.

The truth is written to ``<release>/.eegattn_truth.json`` (a hidden file that BIDS tools and
eegdash ignore): constants, topographies, per-subject features and one row per CCD trial.
``oracle_predict`` turns it into the best prediction (see its docstring); ``load_truth`` reads it.

Deliberate irregularities (the real data have them too): onsets off the 10 ms grid (millisecond
resolution), trials without stimulus (2 %, some with a ``non_target`` press), trials without
response (4 %), wrong presses (8 %), double presses (8 %), a few swapped rows in events.tsv
(unsorted onsets), one CCD run in the release without ``end_experiment``, a ``9999`` first row.
Event codes in ``event_code`` are illustrative, not HBN's.

Size and time: the default release (24 subjects, 100 Hz, 65 CCD runs + 24 RestingState) is
about 510 MB and takes about 15 s of CPU (2 worker processes by default; the bytes written do
not depend on the number of workers).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from eegattn.challenge import (
    CCD_TASK,
    EXCLUDED_SUBJECTS,
    FACTOR_COLUMNS,
    HBN_TASK_COLUMNS,
    MINI_SIZE,
    R5_MINI_SUBJECTS,
    RELEASES,
    REST_TASK,
    check_challenge,
    default_cache_dir,
    release_folder_name,
)
from eegattn.data.montage import (
    EYE_CHANNELS,
    HBN_CHANNELS,
    N_CHANNELS,
    REFERENCE_CHANNEL,
    channel_index,
    channel_positions,
    scalp_pattern,
)

# ----------------------------------------------------------------------------------------------
# Facts about the challenge data
# ----------------------------------------------------------------------------------------------
# Releases, tasks, subjects and participants.tsv columns: eegattn.challenge.
SUPPORTED_TASKS: tuple[str, ...] = (CCD_TASK, REST_TASK)
DEFAULT_N_SUBJECTS = 24

MARKER_NAME = ".eegattn_synthetic.json"
TRUTH_NAME = ".eegattn_truth.json"
GENERATOR_VERSION = 2  # bump when the output changes: older releases are rebuilt

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
RT_LOG_SD_WITHIN = 0.30
WINDOW_START, WINDOW_STOP = 0.5, 2.5  # s after the stimulus (starter kit)

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


# ----------------------------------------------------------------------------------------------
# Subjects
# ----------------------------------------------------------------------------------------------
@dataclass
class _Subject:
    subject_id: str
    index: int
    sex: str
    age: float
    ehq_total: float
    factors: dict[str, float]  # NaN where missing in participants.tsv
    externalizing_latent: float  # used for the feature even when the tsv says NaN
    c2_feature: float
    rt_median: float
    n_ccd_runs: int
    alpha_freq: float
    alpha_rms: float
    spectral_exponent: float
    c1_amplitude: float
    layout_seed: int
    channel_gain: np.ndarray = field(repr=False)


def _subject_ids(release: str, mini: bool, n_subjects: int, seed: int) -> list[str]:
    if mini:
        return list(mini_subjects(release))
    rng = _rng(seed, 1)
    n_excluded = min(3, n_subjects // 3)
    chosen = list(rng.choice(EXCLUDED_SUBJECTS, size=n_excluded, replace=False))
    reserved = set(EXCLUDED_SUBJECTS) | set(R5_MINI_SUBJECTS)
    ids: list[str] = [str(s) for s in chosen]
    while len(ids) < n_subjects:
        candidate = _ndar_id(rng)
        if candidate not in reserved and candidate not in ids:
            ids.append(candidate)
    return sorted(ids)


def _make_subjects(ids: list[str], seed: int, has_ccd: bool) -> list[_Subject]:
    rng = _rng(seed, 2)
    n = len(ids)
    # A few subjects without phenotype (all four factors NaN), as in HBN.
    n_missing = max(1, round(0.08 * n)) if n >= 4 else 0
    missing = set(rng.choice(n, size=n_missing, replace=False).tolist()) if n_missing else set()
    subjects = []
    for i, sid in enumerate(ids):
        age = 5.0 + 16.0 * rng.beta(2.0, 3.0)
        ext = rng.normal(EXTERNALIZING_MEAN, EXTERNALIZING_SD)
        factors = {
            "p_factor": rng.normal(0.0, 0.9),
            "attention": rng.normal(0.0, 0.9),
            "internalizing": rng.normal(0.0, 0.8),
            "externalizing": ext,
        }
        if i in missing:
            factors = {k: float("nan") for k in factors}
        z = (ext - EXTERNALIZING_MEAN) / EXTERNALIZING_SD
        feature = C2_BETA * z + rng.normal(0.0, C2_NOISE)
        # Younger children answer more slowly.
        rt_median = math.exp(math.log(0.8) - 0.03 * (age - 11.0) + rng.normal(0.0, 0.15))
        n_runs = int(rng.choice([3, 2, 1], p=[0.75, 0.15, 0.10])) if has_ccd else 0
        subjects.append(
            _Subject(
                subject_id=sid,
                index=i,
                sex=str(rng.choice(["M", "F"], p=[0.62, 0.38])),
                age=round(float(age), 4),
                ehq_total=round(float(np.clip(rng.normal(60.0, 45.0), -100.0, 100.0)), 2),
                factors={k: (round(float(v), 3) if np.isfinite(v) else v) for k, v in
                         factors.items()},
                externalizing_latent=float(ext),
                c2_feature=float(feature),
                rt_median=float(rt_median),
                n_ccd_runs=n_runs,
                alpha_freq=float(rng.uniform(9.0, 11.5)),
                alpha_rms=float(ALPHA_RMS * math.exp(rng.normal(0.0, 0.35))),
                spectral_exponent=float(rng.uniform(0.9, 1.5)),
                c1_amplitude=float(C1_AMPLITUDE * math.exp(rng.normal(0.0, 0.2))),
                layout_seed=int(rng.integers(2**31)),
                channel_gain=np.exp(rng.normal(0.0, 0.1, size=N_CHANNELS)),
            )
        )
    return subjects


# ----------------------------------------------------------------------------------------------
# Event timelines (onsets in integer milliseconds so events.tsv and truth agree exactly)
# ----------------------------------------------------------------------------------------------
def _draw_rt(rng: np.random.Generator, median: float) -> float:
    for _ in range(1000):
        rt = median * math.exp(rng.normal(0.0, RT_LOG_SD_WITHIN))
        if RT_MIN <= rt <= RT_MAX:
            return rt
    return float(np.clip(median, RT_MIN, RT_MAX))


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000.0))


def _ccd_run(rng: np.random.Generator, subj: _Subject, run: int, n_trials: int,
             with_end: bool, n_swaps: int):
    """One CCD run: (event rows, trial truth rows, component list, duration in s)."""
    rows: list[tuple[int, str, str]] = []  # (onset_ms, value, feedback)
    trials: list[dict] = []
    components: list[tuple[float, float]] = []  # (peak time s, amplitude V)
    t = _ms(rng.uniform(0.05, 0.4))
    rows.append((t, "9999", "n/a"))
    t += _ms(rng.uniform(1.5, 3.0))
    block, next_block_at = 1, 0
    for i in range(n_trials):
        if i == next_block_at:
            rows.append((t, f"contrastChangeB{block}_start", "n/a"))
            t += _ms(rng.uniform(0.8, 1.6))
            block += 1
            next_block_at = i + int(rng.integers(8, 15))
        start = t
        rows.append((start, "contrastTrial_start", "n/a"))
        kind = "normal"
        u = rng.random()
        if u < _TRIAL_P["no_stimulus"]:
            kind = "no_stimulus"
        elif u < _TRIAL_P["no_stimulus"] + _TRIAL_P["no_response"]:
            kind = "no_response"
        side = str(rng.choice(["left", "right"]))
        trial = {
            "subject": subj.subject_id, "run": run, "trial": i, "trial_start": start / 1000.0,
            "stimulus_onset": float("nan"), "side": side, "response_onset": float("nan"),
            "rt_from_stimulus": float("nan"), "rt_decision": float("nan"),
            "latency": float("nan"), "amplitude": float("nan"), "n_presses": 0,
            "correct": None, "kind": kind,
        }
        if kind == "no_stimulus":
            end = start + _ms(rng.uniform(3.2, 4.2))
            if rng.random() < 0.5:  # a press without any target
                press = start + _ms(rng.uniform(1.0, 2.8))
                rows.append((press, f"{rng.choice(['left', 'right'])}_buttonPress", "non_target"))
                trial["n_presses"] = 1
            trials.append(trial)
            t = end
            continue
        stim = start + _ms(rng.uniform(0.8, 2.0))
        rows.append((stim, f"{side}_target", "n/a"))
        trial["stimulus_onset"] = stim / 1000.0
        last = stim
        if kind != "no_response":
            rt_d = _draw_rt(rng, subj.rt_median)
            presses: list[tuple[int, str]] = []
            other = "right" if side == "left" else "left"
            v = rng.random()
            if v < _TRIAL_P["double"]:
                kind = "double"
                delta = rng.uniform(0.15, 0.45)
                if rt_d - delta >= 0.25 and rng.random() < 0.5:  # premature press, then intended
                    kind = "double_premature"
                    first_side = side if rng.random() < 0.5 else other
                    presses = [(stim + _ms(rt_d - delta), first_side), (stim + _ms(rt_d), side)]
                else:  # intended press, then a repeat
                    presses = [(stim + _ms(rt_d), side), (stim + _ms(rt_d + delta), side)]
            elif v < _TRIAL_P["double"] + _TRIAL_P["wrong"]:
                kind = "wrong"
                presses = [(stim + _ms(rt_d), other)]
            else:
                presses = [(stim + _ms(rt_d), side)]
            for onset, press_side in presses:
                feedback = "smiley_face" if press_side == side else "sad_face"
                rows.append((onset, f"{press_side}_buttonPress", feedback))
            # the decision RT in ms, as the files will show it
            decision_ms = presses[-1][0] if kind == "double_premature" else presses[0][0]
            rt_decision = (decision_ms - stim) / 1000.0
            latency = C1_LATENCY_OFFSET + C1_LATENCY_SLOPE * rt_decision + rng.normal(
                0.0, C1_JITTER
            )
            amplitude = subj.c1_amplitude * math.exp(rng.normal(0.0, 0.2))
            components.append((stim / 1000.0 + latency, amplitude))
            trial.update(
                response_onset=presses[0][0] / 1000.0,
                rt_from_stimulus=(presses[0][0] - stim) / 1000.0,
                rt_decision=rt_decision, latency=float(latency), amplitude=float(amplitude),
                n_presses=len(presses), correct=bool(presses[0][1] == side), kind=kind,
            )
            last = presses[-1][0]
        trials.append(trial)
        t = max(stim + _ms(WINDOW_STOP + 0.1), last + _ms(0.3)) + _ms(rng.uniform(0.2, 0.6))
    if with_end:
        rows.append((t, "end_experiment", "n/a"))
    duration = math.ceil(t / 1000.0 + rng.uniform(1.0, 2.5))
    # Swap a few adjacent rows: events.tsv rows are not guaranteed sorted.
    for _ in range(n_swaps):
        k = int(rng.integers(1, len(rows) - 1))
        rows[k], rows[k + 1] = rows[k + 1], rows[k]
    return rows, trials, components, duration


def _rest_run(rng: np.random.Generator, rest_seconds: float):
    """RestingState: (event rows, eyes-closed intervals in s, duration in s)."""
    rows: list[tuple[int, str, str]] = []
    t = _ms(rng.uniform(0.05, 0.4))
    rows.append((t, "9999", "n/a"))
    t += _ms(rng.uniform(0.8, 1.5))
    rows.append((t, "resting_start", "n/a"))
    n_cycles = max(1, int(round(rest_seconds / 40.0)))
    cycle = rest_seconds / n_cycles  # HBN: 1/4 eyes open, 3/4 eyes closed (20 s / 40 s)
    closed: list[tuple[float, float]] = []
    for _ in range(n_cycles):
        t += _ms(rng.uniform(0.5, 1.0))
        rows.append((t, "instructed_toOpenEyes", "n/a"))
        t += _ms(cycle / 4.0 + rng.uniform(-0.3, 0.3))
        rows.append((t, "instructed_toCloseEyes", "n/a"))
        close_start = t
        t += _ms(3.0 * cycle / 4.0 + rng.uniform(-0.3, 0.3))
        closed.append((close_start / 1000.0 + 0.5, t / 1000.0))  # eyes shut ~0.5 s later
    rows.append((t + _ms(0.5), "break cnt", "n/a"))
    duration = math.ceil(t / 1000.0 + rng.uniform(1.5, 3.0))
    return rows, closed, duration


# ----------------------------------------------------------------------------------------------
# Signals
# ----------------------------------------------------------------------------------------------
def _shaped_noise(rng: np.random.Generator, n_rows: int, n_times: int, amplitude: np.ndarray):
    """Gaussian noise with amplitude spectrum ``amplitude`` (n_freqs or (n_rows, n_freqs)),
    normalised to unit RMS per row. Returns (n_rows, n_times)."""
    white = rng.standard_normal((n_rows, n_times), dtype=np.float32)  # float32: 2x faster
    spectrum = np.fft.rfft(white, axis=-1)
    spectrum *= amplitude.astype(np.float32)
    out = np.fft.irfft(spectrum, n=n_times, axis=-1).astype(np.float64)
    out /= np.maximum(out.std(axis=-1, keepdims=True), 1e-30)
    return out


def _bump(times: np.ndarray, center: float, sd: float) -> tuple[slice, np.ndarray]:
    sfreq = 1.0 / (times[1] - times[0])
    lo = max(0, int((center - 4 * sd) * sfreq))
    hi = min(times.size, int((center + 4 * sd) * sfreq) + 2)
    seg = times[lo:hi]
    return slice(lo, hi), np.exp(-0.5 * ((seg - center) / sd) ** 2)


@dataclass(frozen=True)
class _Topographies:
    """Unreferenced patterns (129,) and the referenced truth patterns."""

    c1: np.ndarray
    c2: np.ndarray
    alpha: np.ndarray
    blink: np.ndarray
    positions: np.ndarray


def _topographies() -> _Topographies:
    positions = channel_positions()
    alpha = scalp_pattern("Oz", 0.05, referenced=False)
    blink_center = positions[[channel_index(c) for c in EYE_CHANNELS]].mean(axis=0)
    blink_center = blink_center + np.array([0.0, 0.02, 0.0])  # in front of the eyes
    blink = scalp_pattern(blink_center, 0.045, referenced=False)
    blink = blink / blink.max()
    return _Topographies(
        c1=scalp_pattern(C1_PATTERN_CENTER, C1_PATTERN_WIDTH, referenced=False),
        c2=scalp_pattern(C2_PATTERN_CENTER, C2_PATTERN_WIDTH, referenced=False),
        alpha=alpha,
        blink=blink,
        positions=positions,
    )


def _source_mixing(subj: _Subject, topo: _Topographies) -> np.ndarray:
    """(129, K) unreferenced volume conduction of the subject's latent background sources
    (the same layout in every recording of the subject), in volts per unit source."""
    src_rng = _rng(subj.layout_seed)
    centers = topo.positions[src_rng.choice(N_CHANNELS, N_LATENT_SOURCES, replace=False)]
    widths = src_rng.uniform(0.03, 0.06, N_LATENT_SOURCES)
    src_amp = LATENT_RMS * src_rng.uniform(0.5, 1.5, N_LATENT_SOURCES)
    patterns = [scalp_pattern(c, w, referenced=False) for c, w in zip(centers, widths)]
    return np.stack(patterns, axis=1) * src_amp


def _background_covariance(subj: _Subject, topo: _Topographies) -> np.ndarray:
    """Model covariance (129, 129) in V^2 of a CCD recording without the planted wave:
    latent sources, alpha, beta and blinks, referenced to Cz, times gains, plus sensor noise."""
    mixing = _source_mixing(subj, topo)
    cov = mixing @ mixing.T
    cov += subj.alpha_rms**2 * np.outer(topo.alpha, topo.alpha)
    beta_rms = C2_BETA_RMS * math.exp(C2_LOG_AMPLITUDE_SCALE * subj.c2_feature)
    cov += beta_rms**2 * np.outer(topo.c2, topo.c2)
    blink_power = BLINK_RATE * (80**2 + 80 * 200 + 200**2) / 3 * UV**2 * 0.09 * math.sqrt(math.pi)
    cov += blink_power * np.outer(topo.blink, topo.blink)
    ref = np.eye(N_CHANNELS)
    ref[:, channel_index(REFERENCE_CHANNEL)] -= 1.0  # x - x[Cz]
    cov = ref @ cov @ ref.T
    cov *= np.outer(subj.channel_gain, subj.channel_gain)
    cov += SENSOR_RMS**2 * np.eye(N_CHANNELS)
    cz = channel_index(REFERENCE_CHANNEL)
    cov[cz, :] = 0.0
    cov[:, cz] = 0.0
    return cov


def _optimal_spatial_filter(cov: np.ndarray, pattern: np.ndarray) -> np.ndarray:
    """``cov^-1 pattern`` on the non-reference channels, scaled so ``filter @ pattern = 1``
    (the minimum-variance unit-gain filter); 0 on Cz."""
    keep = np.arange(N_CHANNELS) != channel_index(REFERENCE_CHANNEL)
    w = np.zeros(N_CHANNELS)
    w[keep] = np.linalg.solve(cov[np.ix_(keep, keep)], pattern[keep])
    return w / np.dot(w, pattern)


def _simulate(rng: np.random.Generator, subj: _Subject, topo: _Topographies, n_times: int,
              sfreq: float, *, eyes_closed=(), components=(), raw_like=False) -> np.ndarray:
    """Brain signal + sensor noise of one recording in volts, shape (129, n_times), referenced
    to Cz (row Cz = 0). ``raw_like`` only drops the 0.5 Hz high-pass; see ``_raw_artifacts``."""
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    times = np.arange(n_times) / sfreq
    pink = (freqs**2 + 1.0) ** (-subj.spectral_exponent / 4.0)
    if not raw_like:  # the challenge's 0.5 Hz high-pass
        with np.errstate(divide="ignore"):
            pink = pink / np.sqrt(1.0 + (HIGHPASS / np.maximum(freqs, 1e-9)) ** 4)
        pink[0] = 0.0

    # Background: latent smooth sources + sensor noise.
    latent = _shaped_noise(rng, N_LATENT_SOURCES, n_times, pink)
    eeg = _source_mixing(subj, topo) @ latent

    # Alpha (stronger with eyes closed) and the challenge-2 frontal beta.
    alpha_shape = np.exp(-0.5 * ((freqs - subj.alpha_freq) / 0.6) ** 2)
    beta_shape = np.exp(-0.5 * ((freqs - C2_BETA_FREQ) / C2_BETA_SD) ** 2)
    rhythms = _shaped_noise(rng, 2, n_times, np.stack([alpha_shape, beta_shape]))
    alpha_gain = np.ones(n_times)
    for t0, t1 in eyes_closed:
        alpha_gain[int(t0 * sfreq): int(t1 * sfreq)] = ALPHA_CLOSED_GAIN
    eeg += np.outer(topo.alpha, subj.alpha_rms * alpha_gain * rhythms[0])
    beta_rms = C2_BETA_RMS * math.exp(C2_LOG_AMPLITUDE_SCALE * subj.c2_feature)
    eeg += np.outer(topo.c2, beta_rms * rhythms[1])

    # Challenge-1 component.
    for peak, amplitude in components:
        sl, shape = _bump(times, peak, C1_WIDTH)
        eeg[:, sl] += np.outer(topo.c1 * amplitude, shape)

    # Blinks while the eyes are open.
    duration = n_times / sfreq
    n_blinks = rng.poisson(BLINK_RATE * duration)
    for onset in np.sort(rng.uniform(0.5, max(duration - 0.5, 0.6), n_blinks)):
        if any(t0 <= onset < t1 for t0, t1 in eyes_closed):
            continue
        sl, shape = _bump(times, onset, 0.09)
        eeg[:, sl] += np.outer(topo.blink * rng.uniform(80, 200) * UV, shape)

    eeg -= eeg[channel_index(REFERENCE_CHANNEL)]  # Cz reference
    eeg *= subj.channel_gain[:, None]
    eeg += SENSOR_RMS * rng.standard_normal((N_CHANNELS, n_times), dtype=np.float32)
    eeg[channel_index(REFERENCE_CHANNEL)] = 0.0
    return eeg


def _raw_artifacts(rng, topo, n_times, sfreq) -> np.ndarray:
    """Line noise (60 Hz + harmonics), slow drifts and muscle noise, (129, n_times) volts, zero
    on Cz. The muscle noise is white (flat up to Nyquist: the content above 50 Hz)."""
    times = np.arange(n_times) / sfreq
    line_amp = 8.0 * UV * np.exp(rng.normal(0.0, 0.5, N_CHANNELS))
    phase = rng.uniform(0, 2 * np.pi) + rng.normal(0.0, 0.2, N_CHANNELS)
    # white muscle noise, stronger on the lower ring (neck, jaw)
    lower_ring = np.clip(-topo.positions[:, 2] / 0.05, 0.2, 2.0)
    out = rng.standard_normal((N_CHANNELS, n_times), dtype=np.float32).astype(np.float64)
    out *= (5.0 * UV * lower_ring)[:, None]
    for harmonic, weight in ((1, 1.0), (2, 0.2), (3, 0.1)):
        f = LINE_FREQ * harmonic
        if f < sfreq / 2:  # sin(wt + p) = sin(wt) cos(p) + cos(wt) sin(p): two outer products
            amp = weight * line_amp
            out += np.outer(amp * np.cos(harmonic * phase), np.sin(2 * np.pi * f * times))
            out += np.outer(amp * np.sin(harmonic * phase), np.cos(2 * np.pi * f * times))
    # slow electrode drifts below 0.5 Hz: a few smooth sources plus a per-channel offset
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    drift_shape = np.where((freqs > 0) & (freqs < 0.5), 1.0 / np.maximum(freqs, 1e-3), 0.0)
    drift_mix = np.stack([scalp_pattern(topo.positions[i], 0.05, referenced=False)
                          for i in rng.choice(N_CHANNELS, 6, replace=False)], axis=1)
    out += (15.0 * UV * drift_mix) @ _shaped_noise(rng, 6, n_times, drift_shape)
    out += rng.normal(0.0, 20.0 * UV, (N_CHANNELS, 1))
    out[channel_index(REFERENCE_CHANNEL)] = 0.0
    return out


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------
def _write_events(path_tsv: Path, rows: list[tuple[int, str, str]]) -> None:
    lines = ["onset\tduration\tvalue\tevent_code\tfeedback"]
    for onset_ms, value, feedback in rows:
        code = EVENT_CODES.get(value)
        if code is None and value.startswith("contrastChangeB"):
            code = BLOCK_CODE_BASE + int(value[len("contrastChangeB"): -len("_start")])
        lines.append(f"{onset_ms / 1000.0:.3f}\tn/a\t{value}\t{code}\t{feedback}")
    path_tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    levels = {
        "9999": "Recording start marker (no experimental meaning).",
        "contrastChangeB<k>_start": "Start of block k of contrast-change trials.",
        "contrastTrial_start": "Start of a trial: two flickering gratings appear.",
        "left_target": "Contrast change of the left grating (the stimulus).",
        "right_target": "Contrast change of the right grating (the stimulus).",
        "left_buttonPress": "Left button press.",
        "right_buttonPress": "Right button press.",
        "end_experiment": "End of the run.",
        "resting_start": "Start of the resting-state block.",
        "instructed_toOpenEyes": "Instruction to open the eyes.",
        "instructed_toCloseEyes": "Instruction to close the eyes.",
        "break cnt": "Break counter.",
    }
    sidecar = {
        "onset": {"Description": "Event onset from the start of the recording.", "Units": "s"},
        "duration": {"Description": "Event duration (not recorded).", "Units": "s"},
        "value": {"Description": "Event name.", "Levels": levels},
        "event_code": {"Description": "Numeric event code (illustrative in this synthetic "
                                      "release)."},
        "feedback": {
            "Description": "Feedback shown after a button press.",
            "Levels": {
                "smiley_face": "Correct press (side of the target).",
                "sad_face": "Wrong press.",
                "non_target": "Press with no target on screen.",
                "n/a": "Not a press.",
            },
        },
    }
    _write_json(path_tsv.with_suffix(".json"), sidecar)


def _write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _write_recording(root: Path, subject_id: str, task: str, run: int | None,
                     data: np.ndarray, sfreq: float, rows, raw_like: bool) -> Path:
    import mne
    import mne_bids

    info = mne.create_info(list(HBN_CHANNELS), sfreq, "eeg")
    with info._unlock():
        info["line_freq"] = LINE_FREQ
        info["highpass"] = 0.0 if raw_like else HIGHPASS
        info["lowpass"] = sfreq / 2.0
    raw = mne.io.RawArray(data, info, verbose=False)
    bids_path = mne_bids.BIDSPath(subject=subject_id, task=task, run=run, datatype="eeg",
                                  root=root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mne_bids.write_raw_bids(raw, bids_path, format="BDF", allow_preload=True,
                                overwrite=True, physical_range=PHYSICAL_RANGE_UV,
                                verbose=False)
    fpath = Path(bids_path.fpath)
    stem = fpath.name[: -len("_eeg.bdf")]
    _write_events(fpath.parent / f"{stem}_events.tsv", rows)
    eeg_json = fpath.parent / f"{stem}_eeg.json"
    meta = json.loads(eeg_json.read_text(encoding="utf-8"))
    meta.update(
        Manufacturer="Electrical Geodesics (EGI)",
        EEGReference="Cz",
        PowerLineFrequency=LINE_FREQ,
        EEGPlacementScheme="EGI GSN-HydroCel-129",
        SoftwareFilters=(
            "n/a" if raw_like else {"BandPass": {"LowCutoff": HIGHPASS, "HighCutoff": 50.0}}
        ),
    )
    _write_json(eeg_json, meta)
    return fpath


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return str(value)


def _write_participants(root: Path, release: str, subjects: list[_Subject],
                        available: dict[str, set[str]]) -> None:
    header = ["participant_id", "release_number", "sex", "age", "ehq_total", "commercial_use",
              "full_pheno", *FACTOR_COLUMNS, *HBN_TASK_COLUMNS]
    lines = ["\t".join(header)]
    for s in subjects:
        has_pheno = np.isfinite(s.factors["externalizing"])
        row = [f"sub-{s.subject_id}", release, s.sex, _fmt(s.age), _fmt(s.ehq_total), "Yes",
               "Yes" if has_pheno else "No", *(_fmt(s.factors[c]) for c in FACTOR_COLUMNS)]
        row += ["available" if col in available[s.subject_id] else "unavailable"
                for col in HBN_TASK_COLUMNS]
        lines.append("\t".join(row))
    (root / "participants.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    desc = {
        "participant_id": {"Description": "Participant identifier (sub-<NDAR GUID>)."},
        "release_number": {"Description": "HBN release the participant belongs to."},
        "sex": {"Description": "Sex.", "Levels": {"M": "male", "F": "female"}},
        "age": {"Description": "Age at recording.", "Units": "years"},
        "ehq_total": {"Description": "Edinburgh Handedness Questionnaire score (-100..100)."},
        "commercial_use": {"Description": "Data may be used commercially."},
        "full_pheno": {"Description": "Full phenotype available."},
        "p_factor": {"Description": "General psychopathology factor (CBCL bifactor model)."},
        "attention": {"Description": "Attention factor (CBCL bifactor model)."},
        "internalizing": {"Description": "Internalizing factor (CBCL bifactor model)."},
        "externalizing": {"Description": "Externalizing factor (CBCL bifactor model)."},
    }
    for col in HBN_TASK_COLUMNS:
        desc[col] = {"Description": f"Availability of the {col} recording.",
                     "Levels": {"available": "present", "unavailable": "absent"}}
    _write_json(root / "participants.json", desc)


def _write_dataset_files(root: Path, release: str, mini: bool) -> None:
    _write_json(
        root / "dataset_description.json",
        {
            "Name": f"Synthetic HBN-EEG {release}{' mini' if mini else ''} (eegattn)",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["eegattn synthetic generator"],
            "GeneratedBy": [{"Name": "eegattn synth", "Version": str(GENERATOR_VERSION)}],
        },
    )
    (root / "README").write_text(
        "Synthetic data shaped like the EEG Foundation Challenge 2025 HBN releases.\n"
        "No real participant data. Generated by `eegattn synth`; the planted ground truth is\n"
        f"in {TRUTH_NAME}.\n",
        encoding="utf-8",
    )


# ----------------------------------------------------------------------------------------------
# The release
# ----------------------------------------------------------------------------------------------
def _check_options(release, mini, n_subjects, seed, sfreq, raw_like, tasks, trials_per_run,
                   max_runs, rest_seconds) -> dict:
    release = _check_release(release)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if n_subjects is None:
        n_subjects = MINI_SIZE if mini else DEFAULT_N_SUBJECTS
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)):
        raise ValueError(f"n_subjects must be an integer, got {n_subjects!r}")
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    if n_subjects > 2000:
        raise ValueError(f"n_subjects={n_subjects} is too many for a synthetic release (max 2000)")
    if mini and n_subjects != MINI_SIZE:
        raise ValueError(
            f"a mini release has exactly {MINI_SIZE} subjects (the real mini IDs: eegdash keeps "
            f"only those in mini mode), got n_subjects={n_subjects}; drop n_subjects / "
            "--subjects, or use the full layout (mini=False) for other sizes"
        )
    if sfreq is None:
        sfreq = 500.0 if raw_like else 100.0
    sfreq = float(sfreq)
    if not sfreq.is_integer() or not 50.0 <= sfreq <= 2000.0:
        raise ValueError(f"sfreq must be a whole number of Hz in [50, 2000], got {sfreq}")
    if raw_like and sfreq < 250.0:
        raise ValueError(
            f"raw_like needs sfreq >= 250 Hz to hold 60 Hz line noise and content above 50 Hz, "
            f"got {sfreq}; leave sfreq unset (500 Hz)"
        )
    if isinstance(tasks, str):
        tasks = (tasks,)
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in SUPPORTED_TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise ValueError(
            f"tasks must be distinct names among {SUPPORTED_TASKS}, got {tasks!r}"
        )
    lo_hi = tuple(int(v) for v in trials_per_run)
    if len(lo_hi) != 2 or not 1 <= lo_hi[0] <= lo_hi[1] <= 200:
        raise ValueError(f"trials_per_run must be (low, high) with 1 <= low <= high <= 200, got "
                         f"{trials_per_run!r}")
    if isinstance(max_runs, bool) or max_runs not in (1, 2, 3):
        raise ValueError(f"max_runs must be 1, 2 or 3 (CCD has runs 1-3), got {max_runs!r}")
    if not 10.0 <= float(rest_seconds) <= 600.0:
        raise ValueError(f"rest_seconds must be in [10, 600], got {rest_seconds!r}")
    return {
        "release": release, "mini": bool(mini), "n_subjects": int(n_subjects), "seed": int(seed),
        "sfreq": sfreq, "raw_like": bool(raw_like), "tasks": sorted(tasks),
        "trials_per_run": list(lo_hi), "max_runs": int(max_runs),
        "rest_seconds": float(rest_seconds), "generator_version": GENERATOR_VERSION,
    }


def _prepare_root(root) -> Path:
    root = Path(default_cache_dir() if root is None else root).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"root {root} is a file, not a folder; pass a folder path")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the root folder {root} ({err}); choose a writable "
                         "--root or set EEGATTN_CACHE") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"root folder {root} is not writable; choose a writable --root or set "
                         "EEGATTN_CACHE")
    return root


def read_marker(release_dir: str | Path) -> dict | None:
    """The generation parameters of a synthetic release, or None if it has no marker."""
    path = Path(release_dir) / MARKER_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _clean_stale_partials(root: Path, name: str) -> None:
    for path in [*root.glob(f".{name}.partial-*"), *root.glob(f".{name}.old-*")]:
        try:
            pid = int(path.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def make_release(
    root: str | Path | None = None,
    *,
    release: str = "R5",
    mini: bool = False,
    n_subjects: int | None = None,
    seed: int = 0,
    sfreq: float | None = None,
    raw_like: bool = False,
    tasks: tuple[str, ...] = (CCD_TASK, REST_TASK),
    force: bool = False,
    trials_per_run: tuple[int, int] = (30, 40),
    max_runs: int = 3,
    rest_seconds: float = 120.0,
    n_jobs: int | None = None,
    verbose: bool = False,
) -> Path:
    """Write a synthetic release and return its folder ``<root>/EEG2025r<N>[mini]``.

    Parameters
    ----------
    root : folder that plays eegdash's ``cache_dir`` (default ``default_cache_dir()``).
    release : ``"R1"`` .. ``"R11"`` (only names the folder, IDs of mini releases and
        ``release_number``).
    mini : mini layout: the 20 real mini subject IDs (then ``n_subjects`` must be 20 or None).
    n_subjects : subjects in the full layout (default 24; 20 for mini).
    seed : everything is deterministic given the parameters.
    sfreq : sampling rate (default 100 Hz, or 500 Hz with ``raw_like``).
    raw_like : 500 Hz with line noise, drifts and muscle noise (not yet band-passed).
    tasks : subset of ``("contrastChangeDetection", "RestingState")``.
    force : rebuild an existing synthetic release (same or other parameters).
    trials_per_run : (low, high) CCD trials per run (drawn uniformly; ~4.5 s per trial).
    max_runs : CCD runs per subject are drawn from 1..3 (75 % have 3) and capped at this.
    rest_seconds : RestingState length in s (cycles of about 40 s: 1/4 eyes open, 3/4 closed).
    n_jobs : worker processes (subjects in parallel); default 1 below 8 subjects, else up to 2.
        The output does not depend on it.
    verbose : print one line per subject.

    An existing release with the same parameters (and a complete marker) is returned as is;
    one written by an older generator version is rebuilt.
    The release is generated in a hidden temporary folder next to it and renamed at the end,
    so an interrupted run never leaves a half-written release. A folder without the marker
    (not written here, e.g. a real download) is never replaced, even with ``force``.

    Size and time: the default (24 subjects, 100 Hz) is about 510 MB and 15 s of CPU; 6
    subjects with ``trials_per_run=(14, 18), max_runs=2, rest_seconds=20`` are 38 MB and about
    2.5 s of CPU. ``raw_like`` files are 5x larger.
    """
    params = _check_options(release, mini, n_subjects, seed, sfreq, raw_like, tasks,
                            trials_per_run, max_runs, rest_seconds)
    jobs = _resolve_jobs(n_jobs, params["n_subjects"])
    root = _prepare_root(root)
    name = release_folder_name(params["release"], params["mini"])
    final = root / name
    if final.exists():
        marker = read_marker(final)
        if marker is None:
            raise FileExistsError(
                f"{final} exists but was not written by eegattn (no {MARKER_NAME}); it may be "
                "a real download. Move it away or choose another --root"
            )
        old_params = marker.get("params", {})
        if old_params == params and not force:
            return final
        diff = {k: (old_params.get(k), v) for k, v in params.items() if old_params.get(k) != v}
        # An older generator's output is a stale cache of ours: rebuilt without force.
        if not force and set(diff) != {"generator_version"}:
            raise FileExistsError(
                f"{final} holds a synthetic release with other parameters "
                f"(existing -> requested: {diff}); pass force=True / --force to rebuild it, or "
                "choose another --root"
            )
    _clean_stale_partials(root, name)
    tmp = root / f".{name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
    except OSError as err:
        raise ValueError(f"cannot write into {root} ({err}); choose a writable --root or set "
                         "EEGATTN_CACHE") from None
    try:
        _generate(tmp, params, n_jobs=jobs, verbose=verbose)
        _write_json(tmp / MARKER_NAME, {"params": params, "complete": True})
        if final.exists():  # force: move the old release aside, then swap
            old = root / f".{name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, final)
            except OSError:
                # Another process finished the same release first.
                marker = read_marker(final)
                if marker is None or marker.get("params") != params:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _resolve_jobs(n_jobs, n_subjects: int) -> int:
    if n_jobs is None:
        return 1 if n_subjects < 8 else min(2, os.cpu_count() or 1)
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"n_jobs must be a positive integer or None, got {n_jobs!r}")
    return n_jobs


def _generate(out: Path, params: dict, *, n_jobs: int = 1, verbose: bool = False) -> None:
    has_ccd = CCD_TASK in params["tasks"]
    seed = params["seed"]
    ids = _subject_ids(params["release"], params["mini"], params["n_subjects"], seed)
    subjects = _make_subjects(ids, seed, has_ccd)
    for s in subjects:
        s.n_ccd_runs = min(s.n_ccd_runs, params["max_runs"])
    topo = _topographies()
    pooled = np.mean([_background_covariance(s, topo) for s in subjects], axis=0)
    c1_filter = _optimal_spatial_filter(pooled, _referenced(topo.c1))

    # Release-wide irregularities: one CCD run without end_experiment, at least one unsorted.
    plan_rng = _rng(seed, 3)
    ccd_runs = [(s.index, r) for s in subjects for r in range(1, s.n_ccd_runs + 1)]
    no_end = tuple(ccd_runs[int(plan_rng.integers(len(ccd_runs)))]) if ccd_runs else None
    forced_swap = ccd_runs[0] if ccd_runs else None

    jobs = [(out, s, topo, params, c1_filter, no_end, forced_swap) for s in subjects]
    if n_jobs > 1 and len(subjects) > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_generate_subject)(*job) for job in jobs)
    else:
        results = [_generate_subject(*job) for job in jobs]

    trials_all: list[dict] = []
    recordings: list[dict] = []
    available: dict[str, set[str]] = {}
    for s, (trials, recs, avail) in zip(subjects, results):
        trials_all += trials
        recordings += recs
        available[s.subject_id] = avail
        if verbose:
            print(f"  sub-{s.subject_id}: {len(recs)} recordings", flush=True)
    _write_participants(out, params["release"], subjects, available)
    _write_dataset_files(out, params["release"], params["mini"])
    _write_json(out / TRUTH_NAME,
                _truth(params, subjects, trials_all, recordings, topo, c1_filter))


def _generate_subject(out: Path, s: _Subject, topo: _Topographies, params: dict,
                      c1_filter: np.ndarray, no_end, forced_swap):
    """All recordings of one subject: (trial truth rows, recording rows, available columns).

    mne-bids writes into a private staging root (it rewrites participants.tsv and friends on
    every call), whose ``sub-<ID>`` folder is then moved into ``out``.
    """
    seed, sfreq, raw_like = params["seed"], params["sfreq"], params["raw_like"]
    stage = out / f".stage-{s.subject_id}"
    trials_all: list[dict] = []
    recordings: list[dict] = []
    available: set[str] = set()
    if CCD_TASK in params["tasks"]:
        for run in range(1, s.n_ccd_runs + 1):
            rng = _rng(seed, 10, s.index, run)
            lo, hi = params["trials_per_run"]
            n_trials = int(rng.integers(lo, hi + 1))
            n_swaps = int(rng.integers(0, 3))
            if (s.index, run) == forced_swap:
                n_swaps = max(n_swaps, 1)
            has_end = (s.index, run) != no_end
            rows, trials, comps, duration = _ccd_run(rng, s, run, n_trials, has_end, n_swaps)
            data = _simulate(rng, s, topo, int(duration * sfreq), sfreq, components=comps,
                             raw_like=raw_like)
            _measure_latencies(data, sfreq, trials, c1_filter)
            if raw_like:
                data += _raw_artifacts(rng, topo, data.shape[1], sfreq)
            path = _write_recording(stage, s.subject_id, CCD_TASK, run, data, sfreq, rows,
                                    raw_like)
            for tr in trials:
                tr["has_end_experiment"] = has_end
            trials_all += trials
            available.add(f"{CCD_TASK}_{run}")
            recordings.append({"subject": s.subject_id, "task": CCD_TASK, "run": run,
                               "path": path.relative_to(stage).as_posix(),
                               "duration": duration})
    if REST_TASK in params["tasks"]:
        rng = _rng(seed, 20, s.index)
        rows, closed, duration = _rest_run(rng, params["rest_seconds"])
        data = _simulate(rng, s, topo, int(duration * sfreq), sfreq, eyes_closed=closed,
                         raw_like=raw_like)
        if raw_like:
            data += _raw_artifacts(rng, topo, data.shape[1], sfreq)
        path = _write_recording(stage, s.subject_id, REST_TASK, None, data, sfreq, rows,
                                raw_like)
        available.add(REST_TASK)
        recordings.append({"subject": s.subject_id, "task": REST_TASK, "run": None,
                           "path": path.relative_to(stage).as_posix(), "duration": duration})
    subject_dir = stage / f"sub-{s.subject_id}"
    for scans in subject_dir.glob("*_scans.tsv"):
        scans.unlink()  # HBN releases carry no scans.tsv
    os.replace(subject_dir, out / subject_dir.name)
    shutil.rmtree(stage)
    return trials_all, recordings, available


# ----------------------------------------------------------------------------------------------
# Truth and oracle
# ----------------------------------------------------------------------------------------------
def _referenced(pattern: np.ndarray) -> np.ndarray:
    return pattern - pattern[channel_index(REFERENCE_CHANNEL)]


def _clean(value):
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _clean(value.item())
    return value


def _measure_latencies(data: np.ndarray, sfreq: float, trials: list[dict],
                       spatial_filter: np.ndarray) -> None:
    """Store in each trial the wave latency the EEG oracle measures in its window (before
    raw-like artifacts), to calibrate the EEG route of ``oracle_predict``."""
    rows = [t for t in trials if np.isfinite(t["latency"])]
    if not rows:
        return
    n = int(round((WINDOW_STOP - WINDOW_START) * sfreq))
    starts = [int(round((t["stimulus_onset"] + WINDOW_START) * sfreq)) for t in rows]
    X = np.stack([data[:, a: a + n] for a in starts])
    measured = c1_latency_from_windows(X, sfreq, spatial_filter)
    for t, lat in zip(rows, measured):
        t["latency_measured"] = float(lat)


def _fit_binned(x: np.ndarray, y: np.ndarray, *, per_bin: int = 40, max_bins: int = 20) -> dict:
    """E[y | x] as a piecewise-linear curve through (median x, mean y) of quantile bins, for
    ``np.interp``. Bins with the same median x (ties: estimates stuck at a window edge) merge."""
    if x.size == 0:
        return {"knots": [0.0], "values": [0.0]}
    order = np.argsort(x, kind="stable")
    chunks = np.array_split(order, int(np.clip(x.size // per_bin, 1, max_bins)))
    merged: dict[float, list[np.ndarray]] = {}
    for chunk in chunks:
        merged.setdefault(float(np.median(x[chunk])), []).append(chunk)
    knots = sorted(merged)
    values = [float(np.mean(y[np.concatenate(merged[k])])) for k in knots]
    return {"knots": knots, "values": values}


def _fit_line(x: np.ndarray, y: np.ndarray) -> list[float]:
    """[intercept, slope] of the least-squares line (identity if too few points)."""
    if x.size < 3 or np.ptp(x) == 0:
        return [0.0, 1.0]
    slope, intercept = np.polyfit(x, y, 1)
    return [float(intercept), float(slope)]


def _truth(params, subjects, trials, recordings, topo, c1_filter) -> dict:
    c1_pattern = _referenced(topo.c1)
    # The truth-route calibration: E[target | planted latency], fitted by least squares on the
    # release's own trials (an oracle may use the truth).
    rows = [t for t in trials if np.isfinite(t["latency"])]
    target = np.array([t["rt_from_stimulus"] for t in rows])

    def to_rt(key):
        return np.array([(t[key] - C1_LATENCY_OFFSET) / C1_LATENCY_SLOPE for t in rows])

    truth_cal = _fit_line(to_rt("latency"), target)
    eeg_cal = _fit_binned(to_rt("latency_measured"), target)
    r2 = C2_BETA**2 / (C2_BETA**2 + C2_NOISE**2)
    return {
        "generator_version": GENERATOR_VERSION,
        "params": params,
        "channels": list(HBN_CHANNELS),
        "challenge1": {
            "description": "P300-like wave at stimulus + offset + slope * rt_decision + jitter",
            "pattern": [round(float(v), 6) for v in c1_pattern],
            "spatial_filter": [float(f"{v:.6g}") for v in c1_filter],
            "amplitude_volts": C1_AMPLITUDE,
            "width_s": C1_WIDTH,
            "latency_offset_s": C1_LATENCY_OFFSET,
            "latency_slope": C1_LATENCY_SLOPE,
            "latency_jitter_s": C1_JITTER,
            "rt_range_s": [RT_MIN, RT_MAX],
            "window_s": [WINDOW_START, WINDOW_STOP],
            "truth_calibration": truth_cal,
            "eeg_calibration": eeg_cal,
            "trials": [{k: _clean(v) for k, v in t.items()} for t in trials],
        },
        "challenge2": {
            "description": "frontal beta log-amplitude = scale * feature; "
                           "feature = beta * z(externalizing) + N(0, noise)",
            "pattern": [round(float(v), 6) for v in _referenced(topo.c2)],
            "beta": C2_BETA,
            "noise_sd": C2_NOISE,
            "log_amplitude_scale": C2_LOG_AMPLITUDE_SCALE,
            "band_hz": [C2_BETA_FREQ - 2 * C2_BETA_SD, C2_BETA_FREQ + 2 * C2_BETA_SD],
            "externalizing_mean": EXTERNALIZING_MEAN,
            "externalizing_sd": EXTERNALIZING_SD,
            "population_r2": r2,
            "population_best_nrmse": math.sqrt(1.0 - r2),
            "subjects": {
                s.subject_id: {
                    "feature": s.c2_feature,
                    "externalizing": _clean(s.factors["externalizing"]),
                    "externalizing_latent": s.externalizing_latent,
                    "beta_rms_volts": C2_BETA_RMS * math.exp(C2_LOG_AMPLITUDE_SCALE *
                                                             s.c2_feature),
                }
                for s in subjects
            },
        },
        "recordings": recordings,
    }


def load_truth(release_dir: str | Path) -> dict:
    """The planted truth of a synthetic release (``<release_dir>/.eegattn_truth.json``)."""
    path = Path(release_dir) / TRUTH_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: {release_dir} is not a synthetic eegattn release (make one "
            "with `eegattn synth` / make_release)"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def c1_latency_from_windows(X: np.ndarray, sfreq: float, spatial_filter: np.ndarray, *,
                            window_start: float = WINDOW_START,
                            width: float = C1_WIDTH) -> np.ndarray:
    """Peak latency (s after the stimulus) of the planted wave in each window, (n_windows,).

    ``X`` (n_windows, 129, n_times) volts, starting ``window_start`` s after the stimulus;
    ``spatial_filter`` (129,) channel weights (the truth's minimum-variance filter for the
    wave's topography). The filtered signal is matched, at every sample of the window, with a
    Gaussian template of sd ``width`` made zero-mean (so a constant offset does not count);
    the latency with the largest score is returned. (A linear-trend regressor was tried and
    hurts: it absorbs waves near the window edges.)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 3 or X.shape[1] != N_CHANNELS or X.shape[2] < 2:
        raise ValueError(f"X must have shape (n_windows, 129, n_times), got {X.shape}")
    spatial_filter = np.asarray(spatial_filter, dtype=float)
    if spatial_filter.shape != (N_CHANNELS,):
        raise ValueError(f"spatial_filter must have shape (129,), got {spatial_filter.shape}")
    n_times = X.shape[2]
    y = np.einsum("nct,c->nt", X, spatial_filter)
    t = window_start + np.arange(n_times) / sfreq
    templates = np.exp(-0.5 * ((t[None, :] - t[:, None]) / width) ** 2)  # (candidates, T)
    templates -= templates.mean(axis=1, keepdims=True)
    scores = (y @ templates.T) / np.linalg.norm(templates, axis=1)
    return t[np.argmax(scores, axis=1)]


def _require_columns(metadata, columns, why: str):
    missing = [c for c in columns if c not in metadata.columns]
    if missing:
        raise ValueError(f"metadata lacks columns {missing} ({why})")


def oracle_predict(
    release_dir: str | Path,
    challenge: int,
    *,
    metadata=None,
    X: np.ndarray | None = None,
    sfreq: float = 100.0,
    window_start: float = WINDOW_START,
) -> np.ndarray:
    """Best prediction of the challenge target from the planted truth, shape (n_windows,).

    Challenge 1 (response time, s):
      - with ``X`` (n_windows, 129, n_times) volts at ``sfreq`` (the starter kit's 2 s windows
        starting ``window_start`` = 0.5 s after the stimulus; any preprocessing that keeps
        0.5-50 Hz and volts is fine): the planted wave's latency is measured in each window
        (``c1_latency_from_windows``, the truth's spatial filter), turned into an RT and
        mapped to E[target | measurement] (a binned curve fitted when the release was written,
        on all its trials). This is the best achievable from the data.
      - with ``metadata`` only (pandas DataFrame with ``subject``, ``run`` and
        ``stimulus_onset`` in s, or ``trial`` = 0-based position of the trial's
        ``contrastTrial_start`` among the run's trials in onset order): the planted latency
        itself (jitter included, background noise excluded) mapped the same way, the floor
        no model can beat. Unknown trials give NaN.
    Challenge 2 (externalizing): ``metadata`` with a ``subject`` column; the prediction is
      E[externalizing | planted feature] under the generating model (NaN for unknown subjects).
    """
    truth = load_truth(release_dir)
    check_challenge(challenge)
    if challenge == 1:
        c1 = truth["challenge1"]
        intercept, slope = c1["truth_calibration"]
        if X is not None:
            latency = c1_latency_from_windows(
                X, sfreq, np.array(c1["spatial_filter"]), window_start=window_start,
                width=c1["width_s"],
            )
            raw_rt = (latency - c1["latency_offset_s"]) / c1["latency_slope"]
            cal = c1["eeg_calibration"]
            return np.interp(raw_rt, cal["knots"], cal["values"])
        if metadata is None:
            raise ValueError("challenge 1 needs X (raw windows) or metadata (subject, run, "
                             "stimulus_onset or trial)")
        return _c1_from_metadata(c1, metadata, intercept, slope)
    if metadata is None:
        raise ValueError("challenge 2 needs metadata with a 'subject' column (the planted "
                         "feature is per subject)")
    _require_columns(metadata, ["subject"], "challenge 2 predicts per subject")
    c2 = truth["challenge2"]
    k = c2["beta"] / (c2["beta"] ** 2 + c2["noise_sd"] ** 2)
    table = c2["subjects"]
    out = []
    for subject in metadata["subject"].astype(str):
        subject = subject.removeprefix("sub-")
        if subject not in table:
            out.append(np.nan)
            continue
        out.append(c2["externalizing_mean"] + c2["externalizing_sd"] * k *
                   table[subject]["feature"])
    return np.asarray(out, dtype=float)


def _c1_from_metadata(c1: dict, metadata, intercept: float, slope: float) -> np.ndarray:
    _require_columns(metadata, ["subject", "run"], "challenge 1 looks trials up per run")
    by_onset: dict[tuple[str, int], list[tuple[float, float]]] = {}
    by_index: dict[tuple[str, int, int], float] = {}
    for tr in c1["trials"]:
        latency = tr["latency"] if tr["latency"] is not None else np.nan
        key = (tr["subject"], int(tr["run"]))
        if tr["stimulus_onset"] is not None:
            by_onset.setdefault(key, []).append((tr["stimulus_onset"], latency))
        by_index[(*key, int(tr["trial"]))] = latency
    use_onset = "stimulus_onset" in metadata.columns
    if not use_onset and "trial" not in metadata.columns:
        raise ValueError("metadata needs 'stimulus_onset' (s) or 'trial' to identify trials")
    out = []
    for row in metadata.itertuples(index=False):
        subject = str(row.subject).removeprefix("sub-")
        run = int(row.run)
        latency = np.nan
        if use_onset:
            onset = float(row.stimulus_onset)
            for stim, lat in by_onset.get((subject, run), []):
                if abs(stim - onset) < 5e-4:
                    latency = lat
                    break
        else:
            latency = by_index.get((subject, run, int(row.trial)), np.nan)
        raw_rt = (latency - c1["latency_offset_s"]) / c1["latency_slope"]
        out.append(intercept + slope * raw_rt)
    return np.clip(np.asarray(out, dtype=float), *c1["rt_range_s"])
