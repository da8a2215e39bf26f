"""Channel and temporal sigmoid gates for (batch, channels, time) signals.

Both gates follow the CBAM recipe (Woo et al., "CBAM: Convolutional Block Attention Module",
ECCV 2018) in one dimension, as described by the sparse-attention challenge entry (channel
attention: "dual-path average + max pooling, shared MLP with bottleneck, sigmoid gating";
temporal attention: "channel-wise avg/max statistics, 1D convolution, sigmoid gating").
They rescale the input, they do not mix it: the output is ``x * gate`` with the gate in (0, 1).

They are not sequence mechanisms and are not in the attention registry.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegattn.utils.check import check_positive_int


def _check_signal(x: Tensor, channels: int | None, who: str) -> None:
    """Raise ValueError unless ``x`` is (batch, channels, time) with the expected channels."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(
            f"{who} expects input of shape (batch, channels, time), got {shape}; "
            "add or flatten dimensions so the signal has rank 3"
        )
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{who} was built for {channels} channels but the input has {x.shape[1]}; "
            f"build it with channels={x.shape[1]} or fix the input layout (batch, channels, time)"
        )


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation style channel gate.

    ``gate = sigmoid(mlp(mean_t(x)) + mlp(max_t(x)))`` with one shared bias-free MLP
    ``Linear(c, c // r) -> ReLU -> Linear(c // r, c)``; output ``x * gate[:, :, None]``.
    Parameters: exactly ``2 * c * (c // r)``.

    Parameters
    ----------
    channels : int
        Number of channels ``c``.
    reduction_ratio : int
        Bottleneck ratio ``r``; the hidden width is ``c // r`` and must be at least 1.

    Shapes
    ------
    input (b, c, t) -> output (b, c, t); ``last_gate`` (b, c), detached, set on each forward.
    """

    def __init__(self, channels: int, reduction_ratio: int = 16) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        check_positive_int(reduction_ratio, "reduction_ratio")
        hidden = channels // reduction_ratio
        if hidden < 1:
            raise ValueError(
                f"channels // reduction_ratio = {channels} // {reduction_ratio} = 0 hidden units; "
                f"use reduction_ratio <= {channels}"
            )
        self.channels = channels
        self.reduction_ratio = reduction_ratio
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(),
            nn.Linear(hidden, channels, bias=False),
        )
        self.last_gate: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        _check_signal(x, self.channels, "ChannelAttention")
        logits = self.mlp(x.mean(dim=-1)) + self.mlp(x.amax(dim=-1))
        gate = torch.sigmoid(logits)  # (b, c)
        self.last_gate = gate.detach()
        return x * gate.unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, reduction_ratio={self.reduction_ratio}"


class TemporalAttention(nn.Module):
    """Temporal gate from cross-channel statistics.

    ``gate = sigmoid(conv([mean_c(x); max_c(x)]))`` with a bias-free
    ``Conv1d(2, 1, kernel_size, padding=kernel_size // 2)``; output ``x * gate[:, None, :]``.
    Parameters: exactly ``2 * kernel_size``. Works for any number of channels.

    Parameters
    ----------
    kernel_size : int
        Odd width of the temporal convolution (odd so the output keeps the input length).

    Shapes
    ------
    input (b, c, t) -> output (b, c, t); ``last_gate`` (b, t), detached, set on each forward.
    """

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        check_positive_int(kernel_size, "kernel_size")
        if kernel_size % 2 == 0:
            raise ValueError(
                f"kernel_size must be odd so the gate keeps the input length, got {kernel_size}; "
                f"use {kernel_size - 1} or {kernel_size + 1}"
            )
        self.kernel_size = kernel_size
        self.conv = nn.Conv1d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.last_gate: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        _check_signal(x, None, "TemporalAttention")
        stats = torch.stack([x.mean(dim=1), x.amax(dim=1)], dim=1)  # (b, 2, t)
        gate = torch.sigmoid(self.conv(stats)).squeeze(1)  # (b, t)
        self.last_gate = gate.detach()
        return x * gate.unsqueeze(1)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
