"""Synthetic subjects (IDs, factors, RT medians) and their CCD / RestingState event timelines."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from eegattn.challenge import (
    EXCLUDED_SUBJECTS,
    R5_MINI_SUBJECTS,
)
from eegattn.data.montage import (
    N_CHANNELS,
)
from eegattn.data.synthetic.params import (
    _TRIAL_P,
    ALPHA_RMS,
    C1_AMPLITUDE,
    C1_JITTER,
    C1_LATENCY_OFFSET,
    C1_LATENCY_SLOPE,
    C2_BETA,
    C2_NOISE,
    EXTERNALIZING_MEAN,
    EXTERNALIZING_SD,
    LRP_AMPLITUDE,
    LRP_PEAK,
    LRP_PEAK_JITTER,
    PRESS_AMPLITUDE_LOG_SD,
    PRESS_POSITIVITY_AMPLITUDE,
    PRESS_POSITIVITY_JITTER,
    PRESS_POSITIVITY_LATENCY,
    RT_LOG_SD_WITHIN,
    RT_MAX,
    RT_MIN,
    WINDOW_STOP,
    _ndar_id,
    _rng,
    mini_subjects,
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


@dataclass(frozen=True)
class _Press:
    """One button press and the trial's draw of its response-locked waves (times in s)."""

    time: float
    hand: str  # "left" / "right"
    error: bool  # a wrong or non-target press (larger positivity afterwards)
    lrp_peak: float  # absolute time of the lateralised readiness potential's peak
    lrp_amplitude: float  # volts (negative)
    positivity_peak: float  # absolute time of the post-press positivity's peak
    positivity_amplitude: float  # volts


def _presses(rng: np.random.Generator, rows) -> list[_Press]:
    """The presses of a run's event rows, each with its response-locked waves drawn from
    ``rng`` (a stream of its own, so the events and the other signals do not change)."""
    out = []
    for onset_ms, value, feedback in sorted(rows):
        if not value.endswith("_buttonPress"):
            continue
        t = onset_ms / 1000.0
        error = feedback != "smiley_face"
        scale = np.exp(rng.normal(0.0, PRESS_AMPLITUDE_LOG_SD, 2))
        positivity = PRESS_POSITIVITY_AMPLITUDE["error" if error else "correct"]
        out.append(_Press(
            time=t, hand=value.removesuffix("_buttonPress"), error=error,
            lrp_peak=t + LRP_PEAK + rng.normal(0.0, LRP_PEAK_JITTER),
            lrp_amplitude=float(LRP_AMPLITUDE * scale[0]),
            positivity_peak=t + PRESS_POSITIVITY_LATENCY + rng.normal(0.0,
                                                                      PRESS_POSITIVITY_JITTER),
            positivity_amplitude=float(positivity * scale[1]),
        ))
    return out


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


