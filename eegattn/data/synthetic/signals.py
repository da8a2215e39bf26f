"""Simulated EEG: background sources, alpha, blinks, the planted waves and raw-like artifacts."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from eegattn.data.montage import (
    EYE_CHANNELS,
    N_CHANNELS,
    REFERENCE_CHANNEL,
    channel_index,
    channel_positions,
    scalp_pattern,
)
from eegattn.data.synthetic.params import (
    ALPHA_CLOSED_GAIN,
    BLINK_RATE,
    C1_PATTERN_CENTER,
    C1_PATTERN_WIDTH,
    C1_WIDTH,
    C2_BETA_FREQ,
    C2_BETA_RMS,
    C2_BETA_SD,
    C2_LOG_AMPLITUDE_SCALE,
    C2_PATTERN_CENTER,
    C2_PATTERN_WIDTH,
    ERD_CENTER,
    ERD_DEPTH,
    ERD_SD,
    ERS_CENTER,
    ERS_GAIN,
    ERS_SD,
    HIGHPASS,
    LATENT_RMS,
    LINE_FREQ,
    LRP_DECAY,
    LRP_RISE_SD,
    MOTOR_CENTER,
    MOTOR_WIDTH,
    MU_BETA_FREQ,
    MU_BETA_RMS,
    MU_BETA_SD,
    N_LATENT_SOURCES,
    PRESS_POSITIVITY_SD,
    PRESS_POSITIVITY_WIDTH,
    SENSOR_RMS,
    UV,
    _rng,
)
from eegattn.data.synthetic.subjects import (
    _Press,
    _Subject,
)


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
    motor: dict  # hand -> pattern over the contralateral motor cortex
    press_positivity: np.ndarray


def _topographies() -> _Topographies:
    positions = channel_positions()
    alpha = scalp_pattern("Oz", 0.05, referenced=False)
    blink_center = positions[[channel_index(c) for c in EYE_CHANNELS]].mean(axis=0)
    blink_center = blink_center + np.array([0.0, 0.02, 0.0])  # in front of the eyes
    blink = scalp_pattern(blink_center, 0.045, referenced=False)
    blink = blink / blink.max()
    cpz_pz = (positions[channel_index("CPz")] + positions[channel_index("Pz")]) / 2
    return _Topographies(
        motor={hand: scalp_pattern(name, MOTOR_WIDTH, referenced=False)
               for hand, name in MOTOR_CENTER.items()},
        press_positivity=scalp_pattern(cpz_pz, PRESS_POSITIVITY_WIDTH, referenced=False),
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
    """Model covariance (129, 129) in V^2 of a CCD recording without the planted waves:
    latent sources, alpha, beta, the sensorimotor rhythm and blinks, referenced to Cz, times
    gains, plus sensor noise."""
    mixing = _source_mixing(subj, topo)
    cov = mixing @ mixing.T
    for pattern in topo.motor.values():
        cov += MU_BETA_RMS**2 * np.outer(pattern, pattern)
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


def _lrp_shape(times: np.ndarray, peak: float) -> tuple[slice, np.ndarray]:
    """A half-Gaussian rise to ``peak`` and an exponential return, sliced to where it lives."""
    sfreq = 1.0 / (times[1] - times[0])
    lo = max(0, int((peak - 4 * LRP_RISE_SD) * sfreq))
    hi = min(times.size, int((peak + 6 * LRP_DECAY) * sfreq) + 2)
    dt = times[lo:hi] - peak
    return slice(lo, hi), np.where(dt < 0, np.exp(-0.5 * (dt / LRP_RISE_SD) ** 2),
                                   np.exp(-np.maximum(dt, 0.0) / LRP_DECAY))


def _motor_activity(rng: np.random.Generator, topo: _Topographies, presses: list[_Press],
                    times: np.ndarray, pink: np.ndarray) -> np.ndarray:
    """(129, n_times) volts, unreferenced: the sensorimotor beta rhythm of both hemispheres,
    desynchronised around every press (more over the hemisphere contralateral to the hand)
    and rebounding after it, plus each press's lateralised readiness potential and
    centro-parietal positivity."""
    n_times = times.size
    freqs = np.fft.rfftfreq(n_times, times[1] - times[0])
    shape = np.exp(-0.5 * ((freqs - MU_BETA_FREQ) / MU_BETA_SD) ** 2) * (pink > 0)
    hands = list(MOTOR_CENTER)
    rhythm = _shaped_noise(rng, len(hands), n_times, np.stack([shape] * len(hands)))
    gain = np.ones((len(hands), n_times))
    for press in presses:
        for row, hand in enumerate(hands):
            side = "contra" if hand == press.hand else "ipsi"
            sl, bump = _bump(times, press.time + ERD_CENTER, ERD_SD)
            gain[row, sl] -= ERD_DEPTH[side] * bump
            if side == "contra":
                sl, bump = _bump(times, press.time + ERS_CENTER, ERS_SD)
                gain[row, sl] += ERS_GAIN * bump
    gain = np.clip(gain, 0.1, None)  # overlapping presses never invert the rhythm
    out = np.zeros((N_CHANNELS, n_times))
    for row, hand in enumerate(hands):
        out += np.outer(topo.motor[hand], MU_BETA_RMS * gain[row] * rhythm[row])
    for press in presses:
        sl, wave = _lrp_shape(times, press.lrp_peak)
        out[:, sl] += np.outer(topo.motor[press.hand] * press.lrp_amplitude, wave)
        sl, wave = _bump(times, press.positivity_peak, PRESS_POSITIVITY_SD)
        out[:, sl] += np.outer(topo.press_positivity * press.positivity_amplitude, wave)
    return out


def _simulate(rng: np.random.Generator, subj: _Subject, topo: _Topographies, n_times: int,
              sfreq: float, *, eyes_closed=(), components=(), raw_like=False,
              c2_strength: float = 1.0, presses: list[_Press] | None = None,
              motor_rng: np.random.Generator | None = None) -> np.ndarray:
    """Brain signal + sensor noise of one recording in volts, shape (129, n_times), referenced
    to Cz (row Cz = 0). ``raw_like`` only drops the 0.5 Hz high-pass; see ``_raw_artifacts``.
    ``c2_strength`` scales the challenge-2 feature's log amplitude in this recording (the
    task's strength, ``tasks.C2_TASK_STRENGTH``; 1.0 leaves the arithmetic as it was).
    ``presses`` (CCD runs) adds the sensorimotor rhythm and the button-press waves, drawn
    from ``motor_rng`` so that every other draw stays as it was without them."""
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
    beta_rms = C2_BETA_RMS * math.exp(C2_LOG_AMPLITUDE_SCALE * c2_strength * subj.c2_feature)
    eeg += np.outer(topo.c2, beta_rms * rhythms[1])

    # Challenge-1 component.
    for peak, amplitude in components:
        sl, shape = _bump(times, peak, C1_WIDTH)
        eeg[:, sl] += np.outer(topo.c1 * amplitude, shape)

    if presses is not None:
        if motor_rng is None:
            raise ValueError("presses need their own motor_rng")
        eeg += _motor_activity(motor_rng, topo, presses, times, pink)

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


