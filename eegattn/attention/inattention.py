"""Inattention: learned, stacked dropout that decides what to forget.

Source: "Inattention NotaBene" (B. Galoaa, 2025,
https://github.com/bishoymoussa/inattention-notabene). Two modes:

``mode="faithful"`` reproduces Inattention NotaBene's published layer exactly (``"seed"`` is a
deprecated alias of it). For each stack ``k`` a 1x1 convolution (with bias)
gives keep probabilities ``q_k = sigmoid(conv_k(x)) * (1 - p) + p`` per element; a mask
``m_k ~ Bernoulli(q_k)`` is drawn with ``torch.bernoulli``; with ``a = softmax(alpha)``
(``alpha`` initialised to ``1 / num_stacks``) the mask is
``M = prod_k (a_k * m_k + 1 - a_k)`` and the output is ``x * M / (1 - p)`` in training and
``x`` in evaluation. Its defects (kept on purpose in this mode): ``torch.bernoulli`` passes no
gradient, so the convolutions never learn (their gradient is exactly zero); only ``alpha``
learns. ``M`` is never 0 (each stack multiplies by 1 or ``1 - a_k``), and the expected training
output ``x * E[M] / (1 - p)`` differs from the evaluation output ``x``.

``mode="relaxed"`` (default) fixes them:

- **granularity**: one keep probability per channel from pooled statistics (mean and mean
  absolute value over time / space, through a 1x1 convolution ``2c -> c``), or per element
  (``granularity="element"``, a 1x1 convolution ``c -> c`` on ``x``).
- **masks that reach 0 and learn**: ``m_k`` is a Gumbel-sigmoid (binary Concrete) sample with
  temperature ``temperature``. With ``hard=True`` (default) the forward value is the exact
  Bernoulli(``q_k``) draw (0 or 1) and the gradient is the relaxed one (straight-through);
  with ``hard=False`` the relaxed value itself is used.
- **stacks are mixed, not multiplied**: ``M = sum_k a_k m_k`` with
  ``a = softmax(alpha / alpha_temperature)``; ``M = 0`` when every stack drops. With one stack
  this is plain dropout with a learned per-channel rate.
- **train and eval agree in expectation**: training outputs ``x * M / (1 - p)``, evaluation
  outputs ``x * E[M] / (1 - p)`` with ``E[M] = sum_k a_k q_k``. The scale is the constant
  ``1 / (1 - p)`` (not ``1 / E[M]``) so that the learned keep probabilities still act as soft
  channel gates at evaluation: forgetting a noisy channel keeps forgetting it. The convolution
  biases start at ``logit(1 - p)`` and the weights near 0, so at initialisation the layer is
  dropout with rate ``p`` and the identity in expectation. With ``hard=False`` the agreement is
  approximate (the relaxed sample's mean is pulled slightly towards 1/2).

In both modes ``dropout_prob=0`` makes the layer the identity (as in the original).

Plotting: ``last_keep_prob`` (detached) is ``(b, stacks, c)`` for per-channel masks and
``(b, stacks, c, *spatial)`` for per-element ones; ``alphas`` is the softmax weight per stack.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from numbers import Real

import torch
from torch import Tensor, nn

from eegattn.utils.check import check_positive_int

MODES = ("relaxed", "faithful")
#: Old mode names that still work: ``"seed"`` was the first name of ``"faithful"``.
_MODE_ALIASES = {"seed": "faithful"}
GRANULARITIES = ("channel", "element")
_EPS = 1e-6


def _check_prob(value) -> float:
    if isinstance(value, bool) or not isinstance(value, Real) or not 0.0 <= float(value) < 1.0:
        raise ValueError(
            f"dropout_prob must be a number in [0, 1), got {value!r}; "
            "0 disables the layer, values near 1 drop almost everything"
        )
    return float(value)


def _check_temperature(name: str, value) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, Real)
        or not math.isfinite(float(value))
        or float(value) <= 0
    ):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


class InattentionDropout(nn.Module):
    """Stacked learned dropout (Inattention NotaBene), faithful or fixed (``"relaxed"``).

    Parameters
    ----------
    channels : int
        Channels ``c`` of the input.
    dropout_prob : float in [0, 1)
        ``p``. Faithful mode: floor of the keep probability and the output scale
        ``1 / (1 - p)``.
        Relaxed mode: the initial drop probability and the output scale ``1 / (1 - p)``.
    num_stacks : int >= 1
        Number of stacked mask generators.
    mode : {"relaxed", "faithful"}
        ``"relaxed"`` (default) fixes the original's defects; ``"faithful"`` reproduces
        Inattention NotaBene's layer exactly, defects included. ``"seed"`` is a deprecated
        alias of ``"faithful"`` (a ``DeprecationWarning``; ``self.mode`` is then "faithful").
    temperature : float > 0
        Relaxed mode: temperature of the Gumbel-sigmoid sample (lower = closer to Bernoulli).
    alpha_temperature : float > 0
        Relaxed mode: temperature of the softmax over the stack weights ``alpha``.
    granularity : {"channel", "element"} or None
        Relaxed mode: one mask per channel (default) or per element. Faithful mode: only "element".
    hard : bool
        Relaxed mode: straight-through (exact 0/1 masks forward, relaxed gradient) if True.
    spatial_dims : {1, 2}
        Build the 1x1 convolutions as ``Conv1d`` (1) or ``Conv2d`` (2). Either module accepts
        (b, c, t) and (b, c, h, w) inputs: a 1x1 convolution acts per position, so the input
        is reshaped to the convolution's rank and back.

    Shapes
    ------
    input (b, c, t) or (b, c, h, w) -> output of the same shape.
    """

    def __init__(
        self,
        channels: int,
        dropout_prob: float = 0.2,
        num_stacks: int = 3,
        mode: str = "relaxed",
        *,
        temperature: float = 0.5,
        alpha_temperature: float = 1.0,
        granularity: str | None = None,
        hard: bool = True,
        spatial_dims: int = 1,
    ) -> None:
        super().__init__()
        check_positive_int(channels, "channels")
        self.dropout_prob = _check_prob(dropout_prob)
        if isinstance(num_stacks, bool) or not isinstance(num_stacks, int) or num_stacks < 1:
            raise ValueError(f"num_stacks must be an integer >= 1, got {num_stacks!r}")
        if isinstance(mode, str) and mode in _MODE_ALIASES:
            warnings.warn(
                f"mode={mode!r} is deprecated; use mode={_MODE_ALIASES[mode]!r} (same behaviour)",
                DeprecationWarning,
                stacklevel=2,
            )
            mode = _MODE_ALIASES[mode]
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
        if granularity is None:
            granularity = "element" if mode == "faithful" else "channel"
        if granularity not in GRANULARITIES:
            raise ValueError(
                f"unknown granularity {granularity!r}; choose one of {', '.join(GRANULARITIES)}"
            )
        if mode == "faithful" and granularity != "element":
            raise ValueError(
                "mode='faithful' masks every element, as Inattention NotaBene does; "
                "use mode='relaxed' for per-channel masks"
            )
        if spatial_dims not in (1, 2):
            raise ValueError(f"spatial_dims must be 1 (Conv1d) or 2 (Conv2d), got {spatial_dims!r}")
        self.channels = channels
        self.num_stacks = num_stacks
        self.mode = mode
        self.granularity = granularity
        self.temperature = _check_temperature("temperature", temperature)
        self.alpha_temperature = _check_temperature("alpha_temperature", alpha_temperature)
        self.hard = bool(hard)
        self.spatial_dims = spatial_dims

        # Inattention NotaBene's initialisation; any constant gives uniform weights.
        self.alpha = nn.Parameter(torch.full((num_stacks,), 1.0 / num_stacks))
        conv = nn.Conv1d if spatial_dims == 1 else nn.Conv2d
        in_channels = 2 * channels if granularity == "channel" else channels
        self.mask_convs = nn.ModuleList(
            conv(in_channels, channels, kernel_size=1) for _ in range(num_stacks)
        )
        if mode == "relaxed":
            self._init_relaxed()
        self.last_keep_prob: Tensor | None = None

    def _init_relaxed(self) -> None:
        # Start as dropout with rate p: keep probability 1 - p everywhere, weights near 0.
        keep = min(1.0 - self.dropout_prob, 1.0 - _EPS)
        with torch.no_grad():
            for conv in self.mask_convs:
                conv.weight.normal_(0.0, 0.01)
                conv.bias.fill_(math.log(keep / (1.0 - keep)))

    @property
    def alphas(self) -> Tensor:
        """Softmax weight of each stack, shape (num_stacks,), detached."""
        return self._alpha_weights().detach()

    def _alpha_weights(self) -> Tensor:
        t = 1.0 if self.mode == "faithful" else self.alpha_temperature
        return torch.softmax(self.alpha / t, dim=0)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() not in (3, 4):
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"InattentionDropout expects (batch, channels, time) or "
                f"(batch, channels, height, width), got {shape}"
            )
        if x.shape[1] != self.channels:
            raise ValueError(
                f"InattentionDropout was built for {self.channels} channels but the input has "
                f"{x.shape[1]} (dimension 1); build it with channels={x.shape[1]}"
            )

    def _pointwise(self, conv: nn.Module, z: Tensor) -> Tensor:
        """Apply a 1x1 convolution to ``z`` (b, C, *spatial) of any spatial rank."""
        b, c, *spatial = z.shape
        flat = z.reshape(b, c, -1) if self.spatial_dims == 1 else z.reshape(b, c, -1, 1)
        out = conv(flat)
        return out.reshape(b, out.shape[1], *spatial)

    def _mask_logits(self, x: Tensor) -> list[Tensor]:
        """Per-stack keep logits: (b, c, 1, ...) per channel or (b, c, *spatial) per element."""
        if self.granularity == "element":
            z = x
        else:
            flat = x.flatten(2)
            # mean |x| rather than std: finite gradient on flat channels (e.g. the Cz reference)
            stats = torch.cat([flat.mean(dim=-1), flat.abs().mean(dim=-1)], dim=1)
            z = stats.reshape(x.shape[0], 2 * self.channels, *([1] * (x.dim() - 2)))
        return [self._pointwise(conv, z) for conv in self.mask_convs]

    def _keep_record(self, probs: list[Tensor]) -> None:
        keep = torch.stack([q.detach() for q in probs], dim=1)
        if self.granularity == "channel":
            keep = keep.flatten(2)  # drop the singleton spatial dims
        self.last_keep_prob = keep

    def expected_mask(self, x: Tensor) -> Tensor:
        """``E[M]`` of the relaxed mode, broadcastable to ``x``: ``sum_k a_k q_k``."""
        if self.mode != "relaxed":
            raise ValueError("expected_mask is defined for mode='relaxed' only")
        self._check_input(x)
        probs = [torch.sigmoid(logit) for logit in self._mask_logits(x)]
        a = self._alpha_weights()
        return sum(a[k] * q for k, q in enumerate(probs))

    def forward(self, x: Tensor) -> Tensor:
        self._check_input(x)
        if self.dropout_prob == 0.0:
            self.last_keep_prob = None
            return x
        if self.mode == "faithful":
            return self._forward_faithful(x)
        return self._forward_relaxed(x)

    def _forward_faithful(self, x: Tensor) -> Tensor:
        p = self.dropout_prob
        if not self.training:
            with torch.no_grad():  # only for plots: the original's eval output is x
                self._keep_record([torch.sigmoid(v) * (1 - p) + p for v in self._mask_logits(x)])
            return x
        a = self._alpha_weights()
        combined = torch.ones_like(x)
        probs = []
        for k, logit in enumerate(self._mask_logits(x)):
            q = torch.sigmoid(logit) * (1 - p) + p
            probs.append(q)
            mask = torch.bernoulli(q)  # no gradient reaches q: the original's first defect
            combined = combined * (a[k] * mask + (1 - a[k]))
        self._keep_record(probs)
        return x * combined / (1 - p)

    def _forward_relaxed(self, x: Tensor) -> Tensor:
        logits = self._mask_logits(x)
        probs = [torch.sigmoid(v) for v in logits]
        self._keep_record(probs)
        a = self._alpha_weights()
        masks = probs if not self.training else [self._sample(v) for v in logits]
        mask = sum(a[k] * m for k, m in enumerate(masks))
        return x * mask / (1 - self.dropout_prob)

    def _sample(self, logits: Tensor) -> Tensor:
        """Gumbel-sigmoid sample of Bernoulli(sigmoid(logits)); exact 0/1 forward if hard."""
        u = torch.rand_like(logits).clamp_(_EPS, 1 - _EPS)
        noisy = logits + torch.log(u) - torch.log1p(-u)  # logistic noise
        soft = torch.sigmoid(noisy / self.temperature)
        if not self.hard:
            return soft
        # P(logits + logistic noise > 0) = sigmoid(logits): an exact Bernoulli draw
        hard = (noisy > 0).to(soft.dtype)
        return hard + soft - soft.detach()

    def extra_repr(self) -> str:
        extra = ""
        if self.mode == "relaxed":
            extra = (
                f", granularity={self.granularity}, temperature={self.temperature}, "
                f"alpha_temperature={self.alpha_temperature}, hard={self.hard}"
            )
        return (
            f"channels={self.channels}, dropout_prob={self.dropout_prob}, "
            f"num_stacks={self.num_stacks}, mode={self.mode}{extra}"
        )


class StackedInattentionDropout(nn.Module):
    """One :class:`InattentionDropout` per entry of ``channels_list`` (Inattention NotaBene's API).

    ``dropout_prob`` and ``num_stacks`` are scalars (shared) or sequences with one value per
    layer, e.g. ``StackedInattentionDropout([64, 128, 256], [0.2, 0.3, 0.4], [3, 4, 5])``.
    Further keyword options (``mode``, ``temperature``, ...) go to every layer. Layers are
    indexable (``stacked[1]``) and ``forward(x, index)`` applies layer ``index``, so a network
    can place each one after the block whose width it matches.
    """

    def __init__(
        self,
        channels_list: Sequence[int],
        dropout_prob: float | Sequence[float] = 0.2,
        num_stacks: int | Sequence[int] = 3,
        **options,
    ) -> None:
        super().__init__()
        if isinstance(channels_list, int | str) or not isinstance(channels_list, Sequence):
            raise ValueError(
                f"channels_list must be a list of channel counts, got {channels_list!r}"
            )
        if len(channels_list) == 0:
            raise ValueError("channels_list is empty; give at least one channel count")
        n = len(channels_list)
        probs = self._per_layer("dropout_prob", dropout_prob, n)
        stacks = self._per_layer("num_stacks", num_stacks, n)
        self.layers = nn.ModuleList(
            InattentionDropout(c, p, k, **options)
            for c, p, k in zip(channels_list, probs, stacks, strict=True)
        )

    @staticmethod
    def _per_layer(name: str, value, n: int) -> list:
        if isinstance(value, Sequence) and not isinstance(value, str):
            if len(value) != n:
                raise ValueError(
                    f"{name} has {len(value)} values but channels_list has {n} layers; "
                    "give one value per layer or a single value for all"
                )
            return list(value)
        return [value] * n

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: int) -> InattentionDropout:
        return self.layers[index]

    def forward(self, x: Tensor, index: int) -> Tensor:
        if (
            isinstance(index, bool)
            or not isinstance(index, int)
            or not -len(self) <= index < len(self)
        ):
            raise ValueError(
                f"index must be an integer in [0, {len(self)}), got {index!r}: one layer per "
                "entry of channels_list"
            )
        return self.layers[index](x)
