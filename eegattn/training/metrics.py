"""The challenge metric: normalised RMSE, the overall score and the mean-predictor reference.

Source: EEG Foundation Challenge 2025 rules (see ``docs/challenge.md``, "Metric"):
``NRMSE = RMSE(y_true, y_pred) / std(y_true)`` with the population standard deviation
(``ddof=0``), so predicting the test mean scores exactly 1.0; lower is better.
``overall = 0.3 * NRMSE(challenge 1) + 0.7 * NRMSE(challenge 2)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import make_scorer

from eegattn.challenge import CHALLENGE_WEIGHTS

__all__ = [
    "nrmse",
    "overall_score",
    "nrmse_scorer",
    "mean_predictor_nrmse",
    "CHALLENGE_WEIGHTS",
]


def _as_vector(name: str, values) -> np.ndarray:
    """Return ``values`` as a finite float64 vector; (n, 1) columns are flattened."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(
            f"{name} must be a vector of shape (n,) or (n, 1), got shape {arr.shape}; "
            "pass one target per window"
        )
    if arr.size == 0:
        raise ValueError(f"{name} is empty; NRMSE needs at least two samples")
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} contains {bad} NaN/Inf value(s); drop or impute them first")
    return arr


def nrmse(y_true, y_pred) -> float:
    """Normalised root-mean-square error, the official challenge metric.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n,) or (n, 1)
        Targets and predictions, finite, of equal length.

    Returns
    -------
    float
        ``sqrt(mean((y_true - y_pred)**2)) / std(y_true, ddof=0)``; 1.0 for the test-set mean.

    Raises
    ------
    ValueError
        On length mismatch, NaN/Inf, fewer than two samples or a constant ``y_true`` (the
        normalisation would divide by zero).
    """
    t = _as_vector("y_true", y_true)
    p = _as_vector("y_pred", y_pred)
    if t.shape[0] != p.shape[0]:
        raise ValueError(
            f"y_true has {t.shape[0]} values but y_pred has {p.shape[0]}; "
            "predict one value per target"
        )
    if t.shape[0] < 2:
        raise ValueError("NRMSE needs at least two samples (the std of one value is 0)")
    std = float(np.std(t))
    if not std > 0.0:
        raise ValueError(
            "y_true is constant (std = 0), so NRMSE is undefined; evaluate on a set with "
            "varying targets (for challenge 2, more than one subject)"
        )
    rmse = float(np.sqrt(np.mean((t - p) ** 2)))
    return rmse / std


def overall_score(c1: float, c2: float) -> float:
    """Overall challenge score ``0.3 * c1 + 0.7 * c2`` from the two challenges' NRMSEs."""
    values = []
    for name, value in (("c1", c1), ("c2", c2)):
        v = float(value)
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite, non-negative NRMSE, got {value!r}")
        values.append(v)
    return CHALLENGE_WEIGHTS[1] * values[0] + CHALLENGE_WEIGHTS[2] * values[1]


def mean_predictor_nrmse(y_true, y_train=None) -> float:
    """NRMSE of the constant predictor, the reference every result is compared with.

    With ``y_train`` the prediction is the training mean (the honest baseline, slightly above
    1.0 on held-out data); without it the test mean is used, which scores exactly 1.0.
    """
    t = _as_vector("y_true", y_true)
    constant = float(np.mean(_as_vector("y_train", y_train))) if y_train is not None else t.mean()
    return nrmse(t, np.full_like(t, constant))


#: scikit-learn scorer (``scoring=nrmse_scorer`` in ``GridSearchCV`` / ``cross_val_score``);
#: like every sklearn loss scorer it returns ``-nrmse`` so that greater is better.
nrmse_scorer = make_scorer(nrmse, greater_is_better=False)
