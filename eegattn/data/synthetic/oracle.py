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
    LRP_AMPLITUDE,
    LRP_DECAY,
    LRP_PEAK,
    LRP_PEAK_JITTER,
    LRP_RISE_SD,
    PRESS_POSITIVITY_AMPLITUDE,
    PRESS_POSITIVITY_JITTER,
    PRESS_POSITIVITY_LATENCY,
    PRESS_POSITIVITY_SD,
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


#: The filtered background is 1/f, not white: its per-sample variance understates how much it
#: looks like a slow template. Inflating it by 4 tempers the white-noise likelihood; on an
#: 8-subject release the calibrated oracle's NRMSE went 0.665 (x1), 0.648 (x2), 0.643 (x4),
#: 0.645 (x8).
NOISE_INFLATION = 4.0


def c1_oracle_model(covariance: np.ndarray, topo) -> dict:
    """What the EEG oracle of challenge 1 knows: unit-gain minimum-variance spatial filters
    (129,) for the stimulus-locked wave, the readiness potential over each motor cortex and the
    post-press positivity, and the noise variance each filter leaves (from ``covariance``,
    the release's pooled model covariance of a CCD recording without the planted waves)."""
    from eegattn.data.synthetic.signals import _optimal_spatial_filter

    patterns = {"wave": topo.c1, "left": topo.motor["left"], "right": topo.motor["right"],
                "positivity": topo.press_positivity}
    filters = {k: _optimal_spatial_filter(covariance, _referenced(p)) for k, p in
               patterns.items()}
    return {"filters": {k: [float(f"{v:.6g}") for v in w] for k, w in filters.items()},
            "noise_var": {k: NOISE_INFLATION * float(w @ covariance @ w)
                          for k, w in filters.items()}}


def _measure_latencies(data: np.ndarray, sfreq: float, trials: list[dict], model: dict) -> None:
    """Store in each trial what the EEG oracle measures in its window (before raw-like
    artifacts): the wave's latency and the posterior-mean response time, to calibrate the EEG
    route of ``oracle_predict``."""
    rows = [t for t in trials if np.isfinite(t["latency"])]
    if not rows:
        return
    n = int(round((WINDOW_STOP - WINDOW_START) * sfreq))
    starts = [int(round((t["stimulus_onset"] + WINDOW_START) * sfreq)) for t in rows]
    X = np.stack([data[:, a: a + n] for a in starts])
    measured = c1_latency_from_windows(X, sfreq, np.array(model["filters"]["wave"]))
    rt = c1_response_time_from_windows(X, sfreq, model)
    for t, lat, r in zip(rows, measured, rt):
        t["latency_measured"] = float(lat)
        t["rt_measured"] = float(r)


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


def _truth(params, subjects, trials, recordings, topo, c1_model) -> dict:
    c1_pattern = _referenced(topo.c1)
    # The truth-route calibration: E[target | planted latency], fitted by least squares on the
    # release's own trials (an oracle may use the truth).
    rows = [t for t in trials if np.isfinite(t["latency"])]
    target = np.array([t["rt_from_stimulus"] for t in rows])

    def to_rt(key):
        return np.array([(t[key] - C1_LATENCY_OFFSET) / C1_LATENCY_SLOPE for t in rows])

    truth_cal = _fit_line(to_rt("latency"), target)
    eeg_cal = _fit_binned(np.array([t["rt_measured"] for t in rows]), target)
    r2 = C2_BETA**2 / (C2_BETA**2 + C2_NOISE**2)
    return {
        "generator_version": GENERATOR_VERSION,
        "params": params,
        "channels": list(HBN_CHANNELS),
        "challenge1": {
            "description": "P300-like wave at stimulus + offset + slope * rt_decision + jitter; "
                           "at every press a lateralised readiness potential, beta "
                           "desynchronisation and a centro-parietal positivity",
            "pattern": [round(float(v), 6) for v in c1_pattern],
            "spatial_filter": c1_model["filters"]["wave"],
            "oracle_model": c1_model,
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


def _zero_mean_rows(a: np.ndarray) -> np.ndarray:
    return a - a.mean(axis=-1, keepdims=True)


def _log_likelihood_ratio(y: np.ndarray, templates: np.ndarray, noise_var: float) -> np.ndarray:
    """log p(y | template) - log p(y | nothing) under white Gaussian noise, (n, n_templates)."""
    return (y @ templates.T - 0.5 * (templates**2).sum(axis=1)) / noise_var


def c1_response_time_from_windows(X: np.ndarray, sfreq: float, model: dict, *,
                                  window_start: float = WINDOW_START) -> np.ndarray:
    """Posterior-mean response time (s after the stimulus) of each window, (n_windows,).

    The planted model read back: for every candidate press time between ``RT_MIN`` and
    ``RT_MAX`` (a flat prior), the likelihood of the spatially filtered window (``model`` from
    ``c1_oracle_model``) under a readiness potential over either motor cortex, the post-press
    positivity and the stimulus-locked wave at ``offset + slope * rt`` with its latency jitter
    integrated out; white noise of the filters' variance; mean amplitudes (their lognormal
    spread ignored). The window's mean is removed from data and templates alike.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 3 or X.shape[1] != N_CHANNELS or X.shape[2] < 2:
        raise ValueError(f"X must have shape (n_windows, 129, n_times), got {X.shape}")
    names = ("left", "right", "positivity", "wave")
    filters = np.array([model["filters"][k] for k in names])
    noise = [model["noise_var"][k] for k in names]
    Y = _zero_mean_rows(np.einsum("nct,fc->nft", X, filters))
    t = window_start + np.arange(X.shape[2]) / sfreq
    grid = np.arange(RT_MIN, RT_MAX + 0.5 / sfreq, 1.0 / sfreq)  # candidate press times
    dt = t[None, :] - (grid[:, None] + LRP_PEAK)
    rise = math.hypot(LRP_RISE_SD, LRP_PEAK_JITTER)  # the peak's jitter widens the average
    lrp = LRP_AMPLITUDE * np.where(dt < 0, np.exp(-0.5 * (dt / rise) ** 2),
                                   np.exp(-np.maximum(dt, 0.0) / LRP_DECAY))
    pos_sd = math.hypot(PRESS_POSITIVITY_SD, PRESS_POSITIVITY_JITTER)
    pos = PRESS_POSITIVITY_AMPLITUDE["correct"] * np.exp(
        -0.5 * ((t[None, :] - grid[:, None] - PRESS_POSITIVITY_LATENCY) / pos_sd) ** 2)
    lrp, pos = _zero_mean_rows(lrp), _zero_mean_rows(pos)
    hands = np.stack([_log_likelihood_ratio(Y[:, k], lrp, noise[k]) for k in (0, 1)])
    log_press = (np.logaddexp(hands[0], hands[1]) + math.log(0.5)
                 + _log_likelihood_ratio(Y[:, 2], pos, noise[2]))
    # the wave: latency L on the window's samples, jitter integrated over L
    wave = _zero_mean_rows(C1_AMPLITUDE * np.exp(-0.5 * ((t[None, :] - t[:, None])
                                                        / C1_WIDTH) ** 2))
    log_wave = _log_likelihood_ratio(Y[:, 3], wave, noise[3])  # (n, L)
    centre = C1_LATENCY_OFFSET + C1_LATENCY_SLOPE * grid
    kernel = np.exp(-0.5 * ((t[None, :] - centre[:, None]) / C1_JITTER) ** 2)  # (G, L)
    peak = log_wave.max(axis=1, keepdims=True)
    log_wave_rt = np.log(np.exp(log_wave - peak) @ kernel.T + 1e-300) + peak
    log_post = log_press + log_wave_rt
    log_post -= log_post.max(axis=1, keepdims=True)
    post = np.exp(log_post)
    return (post @ grid) / post.sum(axis=1)


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
        0.5-50 Hz and volts is fine): the posterior-mean response time under the planted
        press waves and stimulus wave (``c1_response_time_from_windows``, the truth's spatial
        filters) mapped to E[target | measurement] (a binned curve fitted when the release was
        written, on all its trials). This is the best achievable from the data.
      - with ``metadata`` only (pandas DataFrame with ``subject``, ``run`` and
        ``stimulus_onset`` in s, or ``trial`` = 0-based position of the trial's
        ``contrastTrial_start`` among the run's trials in onset order): the planted latency
        itself (jitter included, background noise excluded) mapped to E[target] by a line:
        what the stimulus-locked wave alone could give without noise (the press waves carry
        more, so this is no longer a floor). Unknown trials give NaN.
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
            raw_rt = c1_response_time_from_windows(X, sfreq, c1["oracle_model"],
                                                   window_start=window_start)
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
