"""An ensemble of registry models as one module: a weighted sum of the members' predictions.

``EEGAttentionRegressor(ensemble=K)`` (``eegattn train --ensemble K``) trains K members with
seeds ``seed, seed + 1, ...`` on the same split, or one per held-out subject fold
(``ensemble_split="folds"``), each through the training loop with its own early stopping,
or all K together in one loop (``ensemble_split="joint"``, negative correlation learning:
``eegattn.training.loop.negative_correlation_criterion``), and combines them here; the run
folder stores the ensemble as the model ``"ensemble"`` with its members' specs, so
``load_run`` rebuilds it and the submission packager traces it into one torch-only module (K
times a member's inference time).

Combination: the mean (weights 1/K, intercept 0); a linear stacker fitted on the members'
predictions for the validation subjects (non-negative weights and an intercept, by
``scipy.optimize.nnls``: those subjects took no part in any member's gradient steps, only in
its early stopping); or the mean calibrated by a slope and an intercept fitted the same way
on held-out predictions (weights slope/K), out-of-fold ones with subject folds.

Shapes: (b, n_chans, n_times) -> (b, 1).
"""

from __future__ import annotations

import numpy as np
import torch
from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import TraceableDirMixin

__all__ = ["MeanEnsemble", "stack_weights"]


class MeanEnsemble(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """Weighted sum of member models (see the module docstring).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments, passed on to every member.
    members : list of dict
        ``{"model": registry name, "model_options": {...}}`` per member.
    """

    def __init__(self, n_chans=None, n_outputs=None, n_times=None, chs_info=None,
                 input_window_seconds=None, sfreq=None, *, members: list | None = None):
        super().__init__(n_outputs=n_outputs, n_chans=n_chans, chs_info=chs_info,
                         n_times=n_times, input_window_seconds=input_window_seconds,
                         sfreq=sfreq)
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        from eegattn.models import build_model

        if not members or not all(isinstance(m, dict) and "model" in m for m in members):
            raise ValueError("members must be a non-empty list of {'model': name, "
                             "'model_options': {...}} dicts")
        if any(m["model"] == "ensemble" for m in members):
            raise ValueError("an ensemble cannot hold another ensemble")
        self.members = nn.ModuleList(
            build_model(m["model"], n_chans=self.n_chans, n_outputs=self.n_outputs,
                        n_times=self.n_times, sfreq=self._sfreq or 100.0,
                        **(m.get("model_options") or {}))
            for m in members
        )
        k = len(self.members)
        self.register_buffer("weights", torch.full((k,), 1.0 / k))  # the mean by default
        self.register_buffer("intercept", torch.zeros(()))

    #: members trained together (ensemble_split="joint"): in training mode the forward gives
    #: every member's whole output for the joint criterion; never saved or traced
    joint = False

    def forward(self, x: Tensor) -> Tensor:
        if self.joint and self.training:  # (b, K * W): negative_correlation_criterion's input
            outs = [m(x) for m in self.members]
            if len({o.shape[1] for o in outs}) > 1:
                raise ValueError("members trained together must give outputs of one width; "
                                 "use members of one configuration")
            return torch.stack(outs, dim=1).flatten(1)
        preds = torch.stack([m(x)[:, 0] for m in self.members], dim=1)  # (b, K)
        return (preds @ self.weights + self.intercept)[:, None]  # (b, 1)

    def set_combination(self, weights, intercept: float = 0.0) -> None:
        with torch.no_grad():
            self.weights.copy_(torch.as_tensor(np.asarray(weights), dtype=torch.float32))
            self.intercept.fill_(float(intercept))


def stack_weights(member_predictions: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    """Non-negative weights and an intercept that best combine member predictions (n, K)
    for targets (n,) in least squares (``scipy.optimize.nnls`` on centred data)."""
    from scipy.optimize import nnls

    P = np.asarray(member_predictions, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    p_mean, y_mean = P.mean(0), y.mean()
    weights, _ = nnls(P - p_mean, y - y_mean)
    if not weights.any():  # nothing helps: fall back to the mean
        weights = np.full(P.shape[1], 1.0 / P.shape[1])
    return weights, float(y_mean - p_mean @ weights)
