"""The linear floor: ridge regression on binned signals of all channels.

Every deep configuration must beat it. Features: each channel's mean over consecutive bins of
``bin_s`` seconds (100 ms: 20 bins per 2 s window, 129 x 20 = 2,580 features), in microvolts,
standardised with the training windows' mean and spread. The regularisation is chosen by an
inner cross-validation *over subjects* (scikit-learn's ``GroupKFold``: windows of one subject
never sit on both sides of a fold), every alpha of the grid solved from one SVD per fold, and
the ridge is refitted on all training windows.

It is a torch module like the other models, so the estimator, ``eegattn train --model ridge``,
the benchmarks and the submission packager take it by name; it has no gradient training: the
estimator calls :meth:`BinnedRidge.fit_closed_form` instead of the training loop, and the
fitted weights live in buffers and parameters (traced as constants in a submission).

Shapes: (b, n_chans, n_times) volts -> (b, n_outputs).
"""

from __future__ import annotations

import numpy as np
import torch
from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import TraceableDirMixin
from eegattn.models.normalization import MICROVOLTS_PER_VOLT, check_eeg_input
from eegattn.utils.check import check_positive_int, check_positive_number

__all__ = ["BinnedRidge", "DEFAULT_ALPHAS"]

#: the regularisation grid of the inner cross-validation (features are standardised)
DEFAULT_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 17))


class BinnedRidge(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """Ridge regression on per-channel bin means (see the module docstring).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments.
    bin_s : float
        Bin length in seconds (0.1).
    alphas : sequence of float
        Regularisation strengths the inner cross-validation chooses from.
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
        bin_s: float = 0.1,
        alphas=DEFAULT_ALPHAS,
        inner_folds: int = 5,
        input_scale: float = MICROVOLTS_PER_VOLT,
    ) -> None:
        super().__init__(n_outputs=n_outputs, n_chans=n_chans, chs_info=chs_info,
                         n_times=n_times, input_window_seconds=input_window_seconds,
                         sfreq=sfreq)
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        check_positive_number(bin_s, "bin_s", unit="seconds")
        check_positive_int(inner_folds, "inner_folds", minimum=2)
        alphas = tuple(float(a) for a in alphas)
        if not alphas or min(alphas) <= 0:
            raise ValueError(f"alphas must be positive numbers, got {alphas!r}")
        sfreq = self._sfreq or 100.0
        self.bin = max(1, int(round(bin_s * sfreq)))
        self.n_bins = self.n_times // self.bin
        if self.n_bins < 1:
            raise ValueError(f"n_times={self.n_times} is shorter than one bin of {bin_s} s; "
                             "use a smaller bin_s")
        self.alphas, self.inner_folds, self.input_scale = alphas, inner_folds, input_scale
        n_features = self.n_chans * self.n_bins
        self.register_buffer("feature_mean", torch.zeros(n_features))
        self.register_buffer("feature_scale", torch.ones(n_features))
        self.linear = nn.Linear(n_features, self.n_outputs)
        nn.init.zeros_(self.linear.weight)
        self.alpha_ = None  # chosen by fit_closed_form

    def features(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) volts -> (b, n_chans * n_bins) standardised bin means."""
        x = x[..., : self.n_bins * self.bin] * self.input_scale  # microvolts
        binned = x.reshape(x.shape[0], x.shape[1], self.n_bins, self.bin).mean(-1)
        return (binned.flatten(1) - self.feature_mean) / self.feature_scale

    def forward(self, x: Tensor) -> Tensor:
        check_eeg_input(x, self.n_chans, self.n_times, check_finite=self.training)
        return self.linear(self.features(x))  # (b, n_outputs)

    @torch.no_grad()
    def fit_closed_form(self, X, y, groups=None, *, batch_size: int = 512) -> dict:
        """Choose alpha by subject-wise inner cross-validation, refit on all of ``X`` (n,
        n_chans, n_times) and ``y`` (n,); returns ``{"alpha", "inner_mse"}``."""
        from sklearn.model_selection import GroupKFold, KFold

        self.feature_mean.zero_()
        self.feature_scale.fill_(1.0)
        F = np.concatenate([
            self.features(torch.as_tensor(np.asarray(X[i:i + batch_size]), dtype=torch.float32))
            .numpy() for i in range(0, len(X), batch_size)]).astype(np.float64)  # (n, p)
        mean, scale = F.mean(0), F.std(0)
        scale[scale < 1e-6] = 1.0  # a flat feature (the reference channel) stays 0
        F = (F - mean) / scale
        y = np.asarray(y, dtype=np.float64)
        if groups is not None and len(np.unique(groups)) >= 2:
            folds = GroupKFold(n_splits=min(self.inner_folds, len(np.unique(groups))))
            splits = folds.split(F, y, groups)
        else:  # no subject ids: window folds (the estimator warns about that split already)
            splits = KFold(n_splits=min(self.inner_folds, len(y))).split(F)
        alphas = np.asarray(self.alphas)
        sq_err = np.zeros(len(alphas))
        for train, test in splits:
            coefs, intercept = _ridge_path(F[train], y[train], alphas)  # (p, a), (a,)
            sq_err += ((F[test] @ coefs + intercept - y[test, None]) ** 2).sum(0)
        best = int(np.argmin(sq_err))
        coef, intercept = _ridge_path(F, y, alphas[best:best + 1])
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.feature_scale.copy_(torch.as_tensor(scale, dtype=torch.float32))
        self.linear.weight.copy_(torch.as_tensor(coef[:, 0], dtype=torch.float32)
                                 .reshape(self.n_outputs, -1))
        self.linear.bias.fill_(float(intercept[0]))
        self.alpha_ = float(alphas[best])
        return {"alpha": self.alpha_, "inner_mse": float(sq_err[best] / len(y))}

    def extra_repr(self) -> str:
        return f"bin={self.bin} samples, n_bins={self.n_bins}, alphas={len(self.alphas)}"


def _ridge_path(F: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple:
    """Ridge solutions for every alpha from one SVD of the centred features: coefficients
    (p, n_alphas) and intercepts (n_alphas,). ``w = V diag(s / (s^2 + alpha)) U^T y``."""
    f_mean, y_mean = F.mean(0), y.mean()
    U, S, Vt = np.linalg.svd(F - f_mean, full_matrices=False)
    Uty = U.T @ (y - y_mean)  # (k,)
    coefs = Vt.T @ (S[:, None] / (S[:, None] ** 2 + alphas[None, :]) * Uty[:, None])
    return coefs, y_mean - f_mean @ coefs
