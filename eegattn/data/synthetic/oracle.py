"""The planted truth file, and the oracle that turns it into the best achievable prediction."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from eegattn.challenge import (
    check_challenge,
)
from eegattn.data.montage import (
    HBN_CHANNELS,
    N_CHANNELS,
    REFERENCE_CHANNEL,
    channel_index,
)
from eegattn.data.synthetic.params import (
    C1_AMPLITUDE,
    C1_JITTER,
    C1_LATENCY_OFFSET,
    C1_LATENCY_SLOPE,
    C1_WIDTH,
    C2_BETA,
    C2_BETA_FREQ,
    C2_BETA_RMS,
    C2_BETA_SD,
    C2_LOG_AMPLITUDE_SCALE,
    C2_NOISE,
    EXTERNALIZING_MEAN,
    EXTERNALIZING_SD,
    GENERATOR_VERSION,
    RT_MAX,
    RT_MIN,
    TRUTH_NAME,
    WINDOW_START,
    WINDOW_STOP,
)
from eegattn.data.synthetic.tasks import C2_TASK_STRENGTH


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
            "description": "frontal beta log-amplitude = scale * task strength * feature; "
                           "feature = beta * z(externalizing) + N(0, noise)",
            "pattern": [round(float(v), 6) for v in _referenced(topo.c2)],
            "beta": C2_BETA,
            "noise_sd": C2_NOISE,
            "log_amplitude_scale": C2_LOG_AMPLITUDE_SCALE,
            "task_strength": {task: C2_TASK_STRENGTH[task] for task in params["tasks"]},
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
                                                             s.c2_feature),  # strength 1
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
      The feature is one number per subject, shown by every task with the task's strength
      (``truth["challenge2"]["task_strength"]``), so the prediction is the same for windows
      of any task; a ``task`` column, when given, must name tasks the release holds.
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
    if "task" in metadata.columns:
        known = set(c2.get("task_strength") or truth["params"]["tasks"])
        unknown = sorted(set(metadata["task"].astype(str)) - known)
        if unknown:
            raise ValueError(f"the release holds no {unknown} recordings (its tasks: "
                             f"{sorted(known)}); the oracle predicts its own windows only")
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
