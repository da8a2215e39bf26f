"""Building blocks of the convolution + attention EEG regressors.

The sparse-attention challenge entry (its challenge-1 response-time models) describes the
pieces: convolution stages (Conv1d with bias -> BatchNorm1d -> ReLU -> dropout -> max-pool),
a sequence attention block (attention + residual + LayerNorm, then a d -> 2d -> d GELU
feed-forward with residual), global pooling and an MLP regression head.

:class:`~eegattn.models.conv_attention.ConvAttentionRegressor` assembles them.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from eegattn.attention.dropout import Dropout
from eegattn.utils.check import (
    InvalidParameterError,
    check_fraction,
    check_option,
    check_positive_int,
    validate_type,
)

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU}
POOLINGS = ("avg", "avgmax")
DOWNSAMPLINGS = ("maxpool", "stride")


# ---------------------------------------------------------------------------------------------
# option checks


def int_tuple(name: str, values, *, allow_empty: bool = False) -> tuple[int, ...]:
    """``values`` as a tuple of positive integers (one per stage or layer)."""
    if isinstance(values, int | str) or not isinstance(values, Sequence):
        raise InvalidParameterError(
            f"Invalid value for the '{name}' parameter. It must be a list of positive "
            f"integers, but got {values!r}."
        )
    if not values and not allow_empty:
        raise InvalidParameterError(f"{name} is empty; give at least one value")
    return tuple(check_positive_int(v, f"{name}[{i}]") for i, v in enumerate(values))


def check_probability(name: str, value) -> float:
    """A dropout probability in [0, 1)."""
    return float(check_fraction(value, name, low_inclusive=True))


def check_options_dict(name: str, options) -> None:
    """Keyword options of a sub-module: a dict or None."""
    validate_type(options, (dict, None), name, fix="Pass keyword options as a dict.")


def check_downsample(downsample: str) -> None:
    check_option("downsample", downsample, DOWNSAMPLINGS,
                 fix="'maxpool' is a convolution, then max-pool (as the sparse-attention entry); "
                 "'stride' a strided convolution (fewer FLOPs).")


# ---------------------------------------------------------------------------------------------
# blocks


class ConvStage(nn.Sequential):
    """``Conv1d`` (bias, "same" padding) -> ``BatchNorm1d`` -> activation -> dropout
    [-> channel dropout] -> max-pool.

    The dropout is :class:`~eegattn.attention.dropout.Dropout` or, with ``inattention=True``,
    an :class:`~eegattn.attention.InattentionDropout` over the ``out_channels`` (Inattention
    NotaBene)
    built with ``dropout_prob=dropout`` and ``inattention_options``. ``channel_dropout > 0``
    adds ``nn.Dropout1d``: in training it zeroes whole feature maps (one draw per window and
    channel, Tompson et al. 2015, "spatial dropout"), which curbs the memorisation that
    element dropout does not (neighbouring time steps are correlated, so a dropped element is
    inferred from its neighbours). ``pool=1`` skips the pooling. ``downsample="stride"``
    replaces convolution + max-pool by a convolution with stride ``pool`` (padding
    ``(kernel - 1) // 2``): the same parameters, ``pool`` times fewer convolution FLOPs and no
    pooling pass, but a different function (it samples the filter responses instead of taking
    their maximum).

    Shapes: (b, in_channels, t) -> (b, out_channels, t // pool) with ``"maxpool"``, or
    (b, out_channels, :func:`stage_length`) with ``"stride"`` (``t / pool`` when it divides).
    Parameters: ``in * out * kernel + out`` (conv) + ``2 * out`` (norm) [+ inattention's].
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        pool: int = 2,
        dropout: float = 0.0,
        activation: str = "relu",
        inattention: bool = False,
        inattention_options: dict | None = None,
        downsample: str = "maxpool",
        channel_dropout: float = 0.0,
    ) -> None:
        check_downsample(downsample)
        channel_dropout = check_probability("channel_dropout", channel_dropout)
        strided = downsample == "stride" and pool > 1
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        if strided:
            layers["conv"] = nn.Conv1d(
                in_channels, out_channels, kernel_size, stride=pool, padding=(kernel_size - 1) // 2
            )
        else:
            layers["conv"] = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same")
        layers["norm"] = nn.BatchNorm1d(out_channels)
        layers["act"] = ACTIVATIONS[check_option("activation", activation, ACTIVATIONS)]()
        if inattention:
            from eegattn.attention import InattentionDropout

            layers["drop"] = InattentionDropout(
                out_channels, dropout_prob=dropout, **(inattention_options or {})
            )
        else:
            layers["drop"] = Dropout(dropout)
        if channel_dropout > 0:
            layers["channel_drop"] = nn.Dropout1d(channel_dropout)
        if pool > 1 and not strided:
            layers["pool"] = nn.MaxPool1d(pool)
        super().__init__(layers)


def stage_length(n_times: int, kernel_size: int, pool: int, downsample: str = "maxpool") -> int:
    """Output length of a :class:`ConvStage` for an input of ``n_times`` samples."""
    if pool == 1:
        return n_times
    if downsample == "stride":
        padding = (kernel_size - 1) // 2
        return max(0, (n_times + 2 * padding - kernel_size) // pool + 1)
    return n_times // pool


class AttentionBlock(nn.Module):
    """Sequence attention with residual and LayerNorm, then a GELU feed-forward with residual.

    ``x = norm(x + attention(x)); x = x + ffn(x)`` with ``ffn = Linear(d, r d) -> GELU ->
    Dropout -> Linear(r d, d) -> Dropout`` (post-norm, as the sparse-attention entry's models).
    The attention is any registry mechanism, ``build_attention(attention, dim=d, dropout=dropout,
    **attention_options)`` (``attention_options`` may set ``heads`` and override ``dropout``).

    Shapes: (b, n, d) -> (b, n, d).
    Parameters: the mechanism's + ``2 d`` (LayerNorm) + ``2 r d^2 + r d + d`` (FFN).
    """

    def __init__(
        self,
        dim: int,
        *,
        attention: str = "sparse",
        attention_options: dict | None = None,
        dropout: float = 0.0,
        ffn_ratio: int = 2,
    ) -> None:
        super().__init__()
        from eegattn.attention import build_attention

        options = {"dropout": dropout, **(attention_options or {})}
        self.attention = build_attention(attention, dim=dim, **options)
        self.norm = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_ratio * dim),
            nn.GELU(),
            Dropout(dropout),
            nn.Linear(ffn_ratio * dim, dim),
            Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(x + self.attention(x))
        return x + self.ffn(x)


class SinusoidalPosition(nn.Module):
    """Add fixed sine/cosine position codes (Vaswani et al. 2017) to (b, n, d) tokens.

    No parameters (the table is a non-persistent buffer, so state dicts are unchanged). The
    sparse-attention entry's models have no positional information: after convolutions with
    small receptive fields, order-free attention and global pooling they barely know *when*
    something happened, which is what a response-time latency is.
    ``positional="sinusoidal"`` restores that.
    """

    def __init__(self, dim: int, max_len: int) -> None:
        super().__init__()
        position = torch.arange(max_len, dtype=torch.float32)[:, None]
        freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(1e4) / dim))
        table = torch.zeros(max_len, dim)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: dim // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.table[: x.shape[1]]


class GlobalPool(nn.Module):
    """Pool (b, n, d) over the sequence: ``"avg"`` -> (b, d); ``"avgmax"`` -> (b, 2 d)."""

    def __init__(self, mode: str = "avg") -> None:
        super().__init__()
        self.mode = check_option("pooling", mode, POOLINGS)

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(dim=1)
        if self.mode == "avg":
            return mean
        return torch.cat([mean, x.amax(dim=1)], dim=-1)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}"


class PositionReadout(nn.Module):
    """Global pooling plus a read-out that keeps *where* each feature was.

    Every token is projected to ``k`` features and the flattened ``(n_tokens * k)`` vector is
    appended to the pooled one, so the head can weigh early and late tokens differently, as
    EEGNeX's dense layer over its flattened feature map does (Chen et al. 2024). Pooling alone
    averages positions away, and a latency is a position.

    Shapes: (b, n_tokens, dim) -> (b, pooled + n_tokens * k).
    """

    def __init__(self, pool: GlobalPool, dim: int, n_tokens: int, k: int) -> None:
        super().__init__()
        self.pool = pool
        self.proj = nn.Linear(dim, k)
        self.n_tokens, self.k = n_tokens, k

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.pool(x), self.proj(x).flatten(1)], dim=-1)

    def extra_repr(self) -> str:
        return f"n_tokens={self.n_tokens}, k={self.k}"


class RegressionHead(nn.Sequential):
    """MLP ``in -> hidden[0] -> ... -> n_outputs`` with ReLU and dropout between layers.

    Shapes: (b, in_features) -> (b, n_outputs).
    """

    def __init__(
        self, in_features: int, hidden: Sequence[int], n_outputs: int, dropout: float = 0.0
    ) -> None:
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, n_outputs))
        super().__init__(*layers)


def collect_gates(module: nn.Module) -> dict[str, Tensor]:
    """Last gate values of every gate inside ``module``, keyed by submodule name.

    Channel gates give (b, channels), temporal gates (b, time) (``last_gate``), inattention
    dropouts their keep probabilities (``last_keep_prob``). Empty before the first forward.
    """
    gates: dict[str, Tensor] = {}
    for name, sub in module.named_modules():
        for attr in ("last_gate", "last_keep_prob"):
            value = getattr(sub, attr, None)
            if isinstance(value, Tensor):
                gates[name] = value
    return gates


class TraceableDirMixin:
    """Hide braindecode signal properties that raise from ``dir()`` so ``torch.jit.trace`` works.

    ``torch.jit.trace`` probes every name in ``dir(module)`` with ``hasattr``, which only
    tolerates AttributeError; braindecode 1.8.1's ``EEGModuleMixin`` properties raise
    ValueError when unset (``chs_info`` without channel info, ``sfreq`` without a sampling
    rate), so tracing any braindecode model built without ``chs_info`` fails. Mix this in
    before ``nn.Module``; the properties themselves behave as before.
    """

    def __dir__(self):
        names = []
        for name in super().__dir__():
            if isinstance(getattr(type(self), name, None), property):
                try:
                    getattr(self, name)
                except ValueError:
                    continue
            names.append(name)
        return names
