"""Input checks and the input normalisation every EEG model carries.

A submission receives raw windows in volts, so each model standardises its own input: a fixed
scale to microvolts, then per-window, per-channel standardisation (zero mean, unit variance
over time). HBN's Cz (E129) is the recording reference and is flat; a flat channel must give
zeros, never NaN or Inf (see ``docs/challenge.md``, "Data layout").
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

MICROVOLTS_PER_VOLT = 1e6


def check_eeg_input(x, n_chans: int, n_times: int, *, check_finite: bool = False) -> None:
    """Raise ValueError unless ``x`` is a floating (batch, n_chans, n_times) tensor.

    ``check_finite=True`` also rejects NaN / Inf values; it costs a device-to-host sync, so
    models only ask for it in training mode (a NaN that reaches the loss ruins a whole run,
    while at inference it only spoils the rows that hold it).
    """
    if not isinstance(x, Tensor):
        raise ValueError(
            f"expected a torch.Tensor of shape (batch, {n_chans}, {n_times}), got "
            f"{type(x).__name__}; convert with torch.as_tensor(x, dtype=torch.float32)"
        )
    if x.dim() != 3:
        raise ValueError(
            f"expected input of shape (batch, n_chans={n_chans}, n_times={n_times}), got rank "
            f"{x.dim()} shape {tuple(x.shape)}; a single window needs a batch axis (x[None])"
        )
    if x.shape[1] != n_chans or x.shape[2] != n_times:
        raise ValueError(
            f"expected windows of (n_chans, n_times) = ({n_chans}, {n_times}), got "
            f"({x.shape[1]}, {x.shape[2]}) (input shape {tuple(x.shape)}); pick/reorder "
            f"channels and crop/resample windows to match, or build the model with "
            f"n_chans={x.shape[1]}, n_times={x.shape[2]}"
        )
    if not x.is_floating_point():
        raise ValueError(
            f"expected floating-point EEG in volts, got dtype {x.dtype}; "
            "convert with x.to(torch.float32)"
        )
    if check_finite and not bool(torch.isfinite(x).all()):
        raise ValueError(
            "input contains NaN or Inf values; clean or drop those windows before training "
            "(e.g. X[np.isfinite(X).all(axis=(1, 2))])"
        )


class EEGInputNormalization(nn.Module):
    """Volts to microvolts, then per-window, per-channel standardisation.

    ``out[b, c] = (x[b, c] - mean_t x[b, c]) / std_t x[b, c]`` (population std), and exactly 0
    on a channel whose std is below ``eps`` microvolts (a flat channel such as the Cz
    reference). No parameters; deterministic; traceable with ``torch.jit.trace``.

    The statistics are computed on the channel shifted by its first sample, which changes
    nothing mathematically but makes a constant channel exactly zero (no rounding residue to
    amplify) and reduces cancellation on large DC offsets. Above ``eps`` the output does not
    depend on the input's scale: ``x`` and ``10 * x`` give the same output (up to rounding).
    Inputs beyond about 1e18 (volts) overflow the float32 variance and give zeros.

    Parameters
    ----------
    scale : float
        Multiplier from input units to microvolts (``1e6`` for volts).
    eps : float
        Channels with a window std under ``eps`` microvolts count as flat (default 1e-3 uV =
        1 nV, far below EEG amplifier noise of about 0.5 uV).

    Shapes
    ------
    input (b, c, t) -> output (b, c, t).
    """

    def __init__(self, scale: float = MICROVOLTS_PER_VOLT, eps: float = 1e-3) -> None:
        super().__init__()
        if not (isinstance(scale, int | float) and not isinstance(scale, bool) and scale > 0):
            raise ValueError(f"scale must be a number > 0 (1e6 for volts), got {scale!r}")
        if not (isinstance(eps, int | float) and not isinstance(eps, bool) and eps >= 0):
            raise ValueError(f"eps must be a number >= 0 (microvolts), got {eps!r}")
        self.scale = float(scale)
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        shifted = x - x[..., :1]  # a constant channel becomes exact zeros
        # two-pass variance: accurate, and much faster on CPU than torch.var's Welford
        centred = shifted - shifted.mean(dim=-1, keepdim=True)
        var = centred.square().mean(dim=-1, keepdim=True)
        keep = var > (self.eps / self.scale) ** 2
        # 1 / std only where the channel is kept: flat channels give no inf, nor NaN gradients
        safe_var = torch.where(keep, var, torch.ones_like(var))
        inv_std = torch.where(keep, safe_var.rsqrt(), torch.zeros_like(var))
        return centred * inv_std

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, eps={self.eps:g}"
