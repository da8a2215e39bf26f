"""A subject-level feature baseline for challenge 2: band powers and covariance tangent-space
features, then ridge.

Features of a window (b, n_chans, n_times), in microvolts:

- **band powers**: each channel's Welch spectrum (MNE's ``psd_array_welch``: Hamming windows of
  ``welch_s`` seconds, half overlap, mean over segments), averaged over the bins of each band
  of ``bands`` (Hz, ``[low, high)``), log(power + 1e-6 uV^2/Hz) -- n_chans x n_bands values;
- **covariance in the tangent space**: the window's sample covariance (pyriemann's ``scm``),
  shrunk towards its mean variance (pyriemann's ``Shrinkage``, ``(1 - s) C + s tr(C)/n I``:
  the flat reference channel Cz needs it), mapped to the tangent space at a reference matrix
  (pyriemann's ``TangentSpace``: ``upper(logm(Cref^-1/2 C Cref^-1/2))``, off-diagonal terms
  times sqrt 2) -- n_chans (n_chans + 1) / 2 values.

Fit (:meth:`FeatureRidge.fit_closed_form`, called by the estimator instead of the training
loop): the features are averaged over each subject's windows (the target is one value per
subject), the reference matrix is the Riemannian mean of the subjects' mean covariances
(pyriemann), the subject rows are standardised, and a ridge is chosen by an inner
cross-validation over subjects (every alpha from one SVD per fold, as
:mod:`eegattn.models.ridge`) and refitted on all subjects.

MNE and pyriemann define the features (:meth:`FeatureRidge.library_features`); the module
computes the same numbers in torch (float64 inside; tested equal to 1e-12), which is what the
fit runs on every window (MNE's Welch and numpy's ``eigh`` took 30-60 ms per window here,
torch 9 ms) and what a submission runs: the fitted model is a torch module that predicts one
window at a time, as the scoring does, and traces into a zip (``eegattn package``) that needs
only torch.

Shapes: (b, n_chans, n_times) volts -> (b, n_outputs).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch
from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import TraceableDirMixin
from eegattn.models.normalization import MICROVOLTS_PER_VOLT, check_eeg_input
from eegattn.models.ridge import DEFAULT_ALPHAS, _ridge_path
from eegattn.utils.check import check_fraction, check_positive_int, check_positive_number

__all__ = ["FeatureRidge", "DEFAULT_BANDS"]

#: delta, theta, alpha, beta, gamma (Hz, [low, high))
DEFAULT_BANDS = ((1.0, 4.0), (4.0, 8.0), (8.0, 13.0), (13.0, 30.0), (30.0, 45.0))
_POWER_FLOOR = 1e-6  # uV^2/Hz, keeps log finite on the flat reference channel


class FeatureRidge(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """Ridge on band powers and tangent-space covariance features (module docstring).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments.
    bands : sequence of (low, high)
        Frequency bands in Hz (``[low, high)``) of the band powers.
    welch_s : float
        Length of the Welch segments in seconds (half overlap; at most the window).
    shrinkage : float
        Shrinkage of each covariance towards its mean variance, in (0, 1].
    alphas : sequence of float
        Ridge strengths the inner cross-validation chooses from (features standardised).
    inner_folds : int
        Subject folds of the inner cross-validation (fewer when there are fewer subjects).
    input_scale : float
        Input units to microvolts (1e6 for volts).
    """

    def __init__(
        self,
        n_chans: int | None = None,
        n_outputs: int | None = None,
        n_times: int | None = None,
        chs_info=None,
        input_window_seconds: float | None = None,
        sfreq: float | None = None,
        *,
        bands=DEFAULT_BANDS,
        welch_s: float = 1.0,
        shrinkage: float = 0.1,
        alphas=DEFAULT_ALPHAS,
        inner_folds: int = 5,
        input_scale: float = MICROVOLTS_PER_VOLT,
    ) -> None:
        super().__init__(n_outputs=n_outputs, n_chans=n_chans, chs_info=chs_info,
                         n_times=n_times, input_window_seconds=input_window_seconds,
                         sfreq=sfreq)
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        check_positive_number(welch_s, "welch_s", unit="seconds")
        check_fraction(shrinkage, "shrinkage", high_inclusive=True)
        check_positive_int(inner_folds, "inner_folds", minimum=2)
        alphas = tuple(float(a) for a in alphas)
        if not alphas or min(alphas) <= 0:
            raise ValueError(f"alphas must be positive numbers, got {alphas!r}")
        self.fs = float(self._sfreq or 100.0)
        self.bands = tuple((float(lo), float(hi)) for lo, hi in bands)
        self.n_per_seg = min(self.n_times, max(2, int(round(welch_s * self.fs))))
        self.n_overlap = self.n_per_seg // 2
        freqs = np.arange(self.n_per_seg // 2 + 1) * self.fs / self.n_per_seg
        band_matrix = np.zeros((len(freqs), len(self.bands)))
        for j, (lo, hi) in enumerate(self.bands):
            inside = (freqs >= lo) & (freqs < hi)
            if not inside.any():
                raise ValueError(
                    f"band {lo:g}-{hi:g} Hz holds no frequency bin of the {self.n_per_seg}-sample "
                    f"Welch segments ({self.fs / self.n_per_seg:g} Hz apart); widen the band "
                    "or lengthen welch_s"
                )
            band_matrix[inside, j] = 1.0 / inside.sum()
        self.shrinkage, self.alphas, self.inner_folds = float(shrinkage), alphas, inner_folds
        self.input_scale = float(input_scale)
        n, p_bands = self.n_chans, self.n_chans * len(self.bands)
        rows, cols = np.triu_indices(n)
        n_features = p_bands + len(rows)
        self.register_buffer("band_matrix", torch.as_tensor(band_matrix, dtype=torch.float64))
        self.register_buffer("window", torch.as_tensor(_hamming(self.n_per_seg)))
        self.register_buffer("upper_rows", torch.as_tensor(rows, dtype=torch.long))
        self.register_buffer("upper_cols", torch.as_tensor(cols, dtype=torch.long))
        self.register_buffer("upper_weights", torch.as_tensor(
            np.where(rows == cols, 1.0, math.sqrt(2.0)), dtype=torch.float64))
        self.register_buffer("reference_isqrt", torch.eye(n, dtype=torch.float64))
        self.register_buffer("feature_mean", torch.zeros(n_features, dtype=torch.float64))
        self.register_buffer("feature_scale", torch.ones(n_features, dtype=torch.float64))
        self.linear = nn.Linear(n_features, self.n_outputs)
        nn.init.zeros_(self.linear.weight)
        self.alpha_ = None  # chosen by fit_closed_form

    # ----------------------------------------------------------------- features in torch
    def band_powers(self, x: Tensor) -> Tensor:
        """(b, c, t) microvolts, float64 -> (b, c * n_bands) log band powers."""
        step = self.n_per_seg - self.n_overlap
        segments = x.unfold(-1, self.n_per_seg, step)  # (b, c, n_segments, n_per_seg)
        window = self.window.to(x.dtype)
        segments = (segments - segments.mean(-1, keepdim=True)) * window
        power = torch.fft.rfft(segments, dim=-1).abs() ** 2
        scale = torch.full((power.shape[-1],), 2.0, dtype=power.dtype, device=power.device)
        scale[0] = 1.0  # one-sided density: DC (and Nyquist of an even segment) once
        if self.n_per_seg % 2 == 0:
            scale[-1] = 1.0
        psd = (power * scale).mean(-2) / (self.fs * (window**2).sum())  # (b, c, f)
        return torch.log(psd @ self.band_matrix.to(x.dtype) + _POWER_FLOOR).flatten(1)

    def covariances(self, x: Tensor) -> Tensor:
        """(b, c, t) microvolts, float64 -> (b, c, c) shrunk sample covariances."""
        centred = x - x.mean(-1, keepdim=True)
        cov = centred @ centred.transpose(-1, -2) / x.shape[-1]  # (b, c, c)
        mu = torch.diagonal(cov, dim1=-2, dim2=-1).mean(-1)  # (b,)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        return (1.0 - self.shrinkage) * cov + self.shrinkage * mu[:, None, None] * eye

    def tangent_vectors(self, x: Tensor) -> Tensor:
        """(b, c, t) microvolts, float64 -> (b, c (c + 1) / 2) tangent-space vectors."""
        isqrt = self.reference_isqrt.to(x.dtype)
        whitened = isqrt @ self.covariances(x) @ isqrt
        with _one_thread():
            values, vectors = torch.linalg.eigh(whitened)
        log_map = (vectors * torch.log(values)[:, None, :]) @ vectors.transpose(-1, -2)
        return log_map[:, self.upper_rows, self.upper_cols] * self.upper_weights.to(x.dtype)

    def features(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) volts -> (b, n_features) standardised features, float64."""
        x = x.double() * self.input_scale
        raw = torch.cat([self.band_powers(x), self.tangent_vectors(x)], dim=1)
        return (raw - self.feature_mean.double()) / self.feature_scale.double()

    def forward(self, x: Tensor) -> Tensor:
        check_eeg_input(x, self.n_chans, self.n_times, check_finite=self.training)
        return self.linear(self.features(x).to(self.linear.weight.dtype))  # (b, n_outputs)

    # ----------------------------------------------------------------- fit
    def library_features(self, X, reference=None) -> tuple[np.ndarray, np.ndarray]:
        """The definition of the features: unstandardised band powers (n, c * n_bands) and
        shrunk covariances (n, c, c) of windows ``X`` (n, c, t) volts, computed with MNE and
        pyriemann; with ``reference`` (c, c) the second item is the tangent vectors instead.
        (The torch methods give the same numbers, faster.)"""
        from mne.time_frequency import psd_array_welch
        from pyriemann.estimation import Covariances, Shrinkage
        from pyriemann.tangentspace import TangentSpace

        x = np.asarray(X, dtype=np.float64) * self.input_scale
        psd, freqs = psd_array_welch(x, self.fs, n_fft=self.n_per_seg,
                                     n_per_seg=self.n_per_seg, n_overlap=self.n_overlap,
                                     window="hamming", average="mean", verbose=False)
        bands = np.log(psd @ self.band_matrix.numpy()[: len(freqs)] + _POWER_FLOOR)
        covs = Shrinkage(self.shrinkage).transform(Covariances("scm").transform(x))
        if reference is None:
            return bands.reshape(len(x), -1), covs
        ts = TangentSpace(metric="riemann")
        ts.reference_ = reference  # the reference fitted on the subjects (fit_closed_form)
        return bands.reshape(len(x), -1), ts.transform(covs)

    @torch.no_grad()
    def fit_closed_form(self, X, y, groups=None, *, batch_size: int = 256) -> dict:
        """Fit on windows ``X`` (n, n_chans, n_times) volts with targets ``y`` (n,) and subject
        ids ``groups`` (n,) (module docstring); returns ``{"alpha", "inner_mse",
        "n_subjects"}``. Without groups every window counts as its own subject. Runs on one
        thread (see ``_one_thread``)."""
        with _one_thread():
            return self._fit(X, y, groups, batch_size)

    def _fit(self, X, y, groups, batch_size: int) -> dict:
        from pyriemann.tangentspace import TangentSpace
        from pyriemann.utils.base import invsqrtm
        from sklearn.model_selection import KFold

        y = np.asarray(y, dtype=np.float64)
        groups = np.arange(len(y)) if groups is None else np.asarray(groups)
        names, row = np.unique(groups, return_inverse=True)
        counts = np.bincount(row, minlength=len(names)).astype(np.float64)
        n, c = len(names), self.n_chans
        row_t = torch.as_tensor(row)

        def chunks():
            for i in range(0, len(y), batch_size):
                x = torch.as_tensor(np.asarray(X[i : i + batch_size])).double()
                yield row_t[i : i + batch_size], x * self.input_scale

        band_sum = torch.zeros(n, c * len(self.bands), dtype=torch.float64)
        cov_sum = torch.zeros(n, c, c, dtype=torch.float64)
        for rows, x in chunks():  # pass 1: subject means of band powers and covariances
            band_sum.index_add_(0, rows, self.band_powers(x))
            cov_sum.index_add_(0, rows, self.covariances(x))
        subject_covs = cov_sum / torch.as_tensor(counts)[:, None, None]
        # pyriemann on torch tensors (its array-API support): torch's eigh, 5x faster here
        reference = TangentSpace(metric="riemann").fit(subject_covs).reference_
        self.reference_isqrt.copy_(torch.as_tensor(invsqrtm(reference)))
        # pass 2: every window's features (float32, for the inner cross-validation)
        windows = np.empty((len(y), band_sum.shape[1] + c * (c + 1) // 2), dtype=np.float32)
        for i, (_, x) in zip(range(0, len(y), batch_size), chunks()):
            windows[i : i + len(x)] = torch.cat([self.band_powers(x), self.tangent_vectors(x)],
                                                dim=1).numpy()
        F = np.zeros((n, windows.shape[1]))
        np.add.at(F, row, windows)
        F /= counts[:, None]  # subject means
        target = np.bincount(row, weights=y, minlength=n) / counts
        mean, scale = F.mean(0), F.std(0)
        scale[scale < 1e-9] = 1.0
        F = (F - mean) / scale
        alphas = np.asarray(self.alphas)
        sq_err = np.zeros(len(alphas))
        if n >= 3:  # fit on the training subjects' means, score their held-out windows
            folds = KFold(n_splits=min(self.inner_folds, n), shuffle=True, random_state=0)
            for train, test in folds.split(F):
                coefs, intercept = _ridge_path(F[train], target[train], alphas)
                held = np.isin(row, test)
                pred = ((windows[held] - mean) / scale) @ coefs + intercept
                sq_err += ((pred - y[held, None]) ** 2).sum(0)
        best = int(np.argmin(sq_err)) if n >= 3 else len(alphas) - 1  # 2 subjects: strongest
        coef, intercept = _ridge_path(F, target, alphas[best : best + 1])
        self.feature_mean.copy_(torch.as_tensor(mean))
        self.feature_scale.copy_(torch.as_tensor(scale))
        self.linear.weight.copy_(torch.as_tensor(coef[:, 0], dtype=torch.float32)
                                 .reshape(self.n_outputs, -1))
        self.linear.bias.fill_(float(intercept[0]))
        self.alpha_ = float(alphas[best])
        return {"alpha": self.alpha_, "inner_mse": float(sq_err[best] / len(y)),
                "n_subjects": n}

    def extra_repr(self) -> str:
        return (f"bands={len(self.bands)}, welch={self.n_per_seg} samples, "
                f"shrinkage={self.shrinkage}, alphas={len(self.alphas)}")


@contextlib.contextmanager
def _one_thread():
    """torch on one thread for a batched ``eigh`` of small matrices (eager calls only; a trace
    records the operator, not the setting). With two threads on a busy two-core machine it
    ran 9x slower than with one (256 matrices of 129 x 129: 9.3 s against 1.0 s)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting():
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _hamming(n: int) -> np.ndarray:
    """The periodic Hamming window scipy's ``get_window("hamming", n)`` gives Welch."""
    return 0.54 - 0.46 * np.cos(2.0 * np.pi * np.arange(n) / n)
