"""Dropout with a fast CPU path, for mechanisms and models.

``torch.nn.functional.dropout`` draws its CPU mask with ``bernoulli_``: on 2 cores that took
longer than the 129 -> 128 channel convolution it follows (``bench/models.py --profile
lightweight``). Here the CPU mask comes from 16 random bits per element (one 64-bit draw serves
four elements) compared with a threshold, about 8x faster than ``bernoulli_``. The drop rate is
``p`` rounded to a multiple of 1/65536 (off by at most 7.7e-6; rates below 1/65536 are raised
to it and rates above 1 - 1/65536 lowered to it) and the survivors are scaled by the inverse of
the rounded keep rate, so the layer stays unbiased. The distribution is the same as PyTorch's;
the random stream is not, so a seeded run differs from one made with ``nn.Dropout``. Other
devices keep PyTorch's fused kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LEVELS = 1 << 16  # resolution of the CPU drop rate


def apply_dropout(x: Tensor, p: float, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Shapes: any -> same. Identity when not ``training`` or ``p == 0``; zeros when ``p == 1``
    (as ``nn.Dropout``); ``p`` must be in [0, 1].
    """
    if not training or p == 0.0:
        return x
    if not 0.0 < p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p!r}")
    if p == 1.0:
        return x * 0.0
    if x.device.type != "cpu" or not x.is_floating_point():
        return F.dropout(x, p, True)
    return x * keep_mask(x, p)


def keep_mask(x: Tensor, p: float) -> Tensor:
    """CPU dropout mask shaped like ``x``: 0 with probability ~``p``, else ``1 / keep rate``."""
    dropped_levels = min(max(round(p * _LEVELS), 1), _LEVELS - 1)
    n = x.numel()
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(1 << 63), None)
    bits = words.view(torch.int16)[:n].view(x.shape)  # uniform over the 65536 int16 values
    keep = torch.ge(bits, dropped_levels - _LEVELS // 2)
    return keep.to(x.dtype).mul_(_LEVELS / (_LEVELS - dropped_levels))


class Dropout(nn.Dropout):
    """Drop-in ``nn.Dropout`` using :func:`apply_dropout` (same arguments and state dict).

    Shapes: any -> same.
    """

    def forward(self, x: Tensor) -> Tensor:
        if self.inplace:
            return super().forward(x)
        return apply_dropout(x, self.p, self.training)
