"""Sliding-window (local) attention in O(n * window) memory.

Each query ``i`` attends to keys ``j`` with ``|i - j| <= window`` (``i - window <= j <= i`` when
causal), as in the local attention of Longformer (Beltagy et al., 2020) and Image Transformer
(Parmar et al., 2018). Queries are cut into blocks of ``block_size``; block ``s`` needs only the
keys ``[s - window, s + block_size + window)``, taken as overlapping strided views of the padded
keys, so no n x n tensor is ever built (except when a dense ``attn_mask`` is passed in, or for
``store_attention`` plots).

Mask convention: boolean masks are True where attention is allowed; float masks are added.
Source: the "explore-attention" guide ("Local Attention").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from eegattn.attention.base import masked_softmax
from eegattn.attention.dropout import apply_dropout
from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention
from eegattn.utils.check import check_positive_int


def check_window(window) -> int:
    if isinstance(window, bool) or not isinstance(window, int) or window < 0:
        raise ValueError(f"window must be an integer >= 0 (keys on each side), got {window!r}")
    return window


class BandLayout:
    """Index bookkeeping of blocked sliding-window attention over a sequence of length ``n``.

    Query block ``t`` holds queries ``t * block .. t * block + block - 1``; its key window holds
    keys ``t * block - window + c`` for ``c`` in ``[0, span)``, ``span = block + window + after``
    (``after = 0`` when causal, else ``window``). Shapes: ``nb`` blocks, ``n_pad = nb * block``.
    """

    def __init__(self, n: int, window: int, causal: bool, block: int, device=None) -> None:
        self.n = n
        self.window = window
        self.after = 0 if causal else window
        self.block = max(1, min(block, n))
        self.nb = -(-n // self.block)
        self.n_pad = self.nb * self.block
        self.span = self.block + window + self.after
        start = torch.arange(self.nb, device=device)[:, None, None] * self.block
        self.rows = start + torch.arange(self.block, device=device)[None, :, None]  # (nb, B, 1)
        self.cols = start - window + torch.arange(self.span, device=device)[None, None, :]
        offset = self.cols - self.rows  # (nb, B, span): key index minus query index
        self.in_band = (
            (offset >= -window)
            & (offset <= self.after)
            & (self.cols >= 0)
            & (self.cols < n)
            & (self.rows < n)
        )

    def query_blocks(self, t: Tensor) -> Tensor:
        """(..., n, d) -> (..., nb, block, d), padded with zeros at the end."""
        t = F.pad(t, (0, 0, 0, self.n_pad - self.n))
        return t.reshape(*t.shape[:-2], self.nb, self.block, t.shape[-1])

    def key_windows(self, t: Tensor) -> Tensor:
        """(..., n, d) -> (..., nb, d, span): each block's key window (a strided view)."""
        t = F.pad(t, (0, 0, self.window, self.n_pad - self.n + self.after))
        return t.unfold(-2, self.span, self.block)

    def gather(self, t: Tensor) -> Tensor:
        """Band entries of a dense (..., n or 1, n) tensor -> (..., nb, block, span).

        Entries outside the sequence are read at a clamped index: combine with ``in_band``.
        """
        rows = self.rows.clamp(max=self.n - 1) if t.shape[-2] != 1 else torch.zeros_like(self.rows)
        return t[..., rows, self.cols.clamp(0, self.n - 1)]

    def unblock(self, t: Tensor) -> Tensor:
        """(..., nb, block, d) -> (..., n, d)."""
        return t.reshape(*t.shape[:-3], self.n_pad, t.shape[-1])[..., : self.n, :]

    def to_dense(self, weights: Tensor) -> Tensor:
        """Band weights (..., nb, block, span) -> dense (..., n, n), zeros off the band."""
        full = weights.new_zeros(*weights.shape[:-1], self.n_pad + self.window + self.after)
        index = (self.cols + self.window).expand(weights.shape[-3:]).expand_as(weights)
        full = full.scatter(-1, index, weights)
        full = full.reshape(*weights.shape[:-3], self.n_pad, full.shape[-1])
        return full[..., : self.n, self.window : self.window + self.n]


def band_logits(
    layout: BandLayout,
    q: Tensor,
    k: Tensor,
    scale: float,
    mask: Tensor | None,
    bias: Tensor | None,
) -> tuple[Tensor, Tensor]:
    """Blocked band logits and their allowed-mask.

    ``q``, ``k`` (b, h, n, d); ``mask`` dense bool (b or 1, h or 1, n or 1, n) True = allowed
    or None; ``bias`` float (b or 1, h or 1, n, n) or None. Returns logits (b, h, nb, block,
    span) and allowed (b or 1, h or 1, nb, block, span).
    """
    logits = (layout.query_blocks(q) @ layout.key_windows(k)) * scale
    if bias is not None:
        logits = logits + layout.gather(bias.to(logits.dtype))
    allowed = layout.in_band[None, None]
    if mask is not None:
        allowed = allowed & layout.gather(mask)
    return logits, allowed


def band_values(layout: BandLayout, weights: Tensor, v: Tensor) -> Tensor:
    """Band weights (b, h, nb, block, span) times values ``v`` (b, h, n, d) -> (b, h, n, d)."""
    return layout.unblock(weights @ layout.key_windows(v).transpose(-2, -1))


class BandScores(NamedTuple):
    """The shared start of the banded mechanisms (:func:`band_scores`)."""

    q: Tensor  # (b, h, n, d)
    k: Tensor
    v: Tensor
    mask: Tensor | None  # boolean, True = allowed (see ProjectedAttention._prepare)
    bias: Tensor | None  # float mask added to the logits
    layout: BandLayout
    logits: Tensor  # band logits (see band_logits)
    allowed: Tensor


def band_scores(module, x, context, key_padding_mask, attn_mask) -> BandScores | None:
    """Checks, projections and band logits of a banded mechanism (``window``, ``causal``,
    ``block_size``, ``scale`` attributes); None for an empty sequence."""
    _, mask, bias = module._prepare(x, context, key_padding_mask, attn_mask, causal_in_mask=False)
    n = x.shape[1]
    if n == 0:
        return None
    q, k, v = module._project(x, x)
    layout = BandLayout(n, module.window, module.causal, module.block_size, x.device)
    logits, allowed = band_logits(layout, q, k, module.scale, mask, bias)
    return BandScores(q, k, v, mask, bias, layout, logits, allowed)


@register_attention("local")
class LocalAttention(ProjectedAttention):
    """Multi-head sliding-window self-attention (scaled dot product inside the window).

    Parameters
    ----------
    dim, heads, causal, dropout : as for ``standard``.
    window : int >= 0
        Query ``i`` sees keys with ``|i - j| <= window`` (``i - window <= j <= i`` if causal).
    block_size : int
        Queries per block (default ``max(window, 16)``); memory is about
        ``n * (block_size + 2 * window)`` logits per head.

    ``forward(x (b, n, dim), context=None, *, key_padding_mask (b, n) bool True = real,
    attn_mask (n, n) / (b, n, n) / (b, h, n, n) bool or float) -> (b, n, dim)``. Self-attention
    only (``supports_cross = False``): a window needs queries and keys on one time axis.
    A query whose window holds no allowed key outputs zeros.
    """

    supports_cross = False

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        window: int = 16,
        block_size: int | None = None,
    ):
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        self.window = check_window(window)
        self.block_size = check_positive_int(
            max(window, 16) if block_size is None else block_size, "block_size"
        )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, window={self.window}, block_size={self.block_size}"

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        scores = band_scores(self, x, context, key_padding_mask, attn_mask)
        if scores is None:
            return x.new_zeros(x.shape[0], 0, self.dim)
        layout, v, allowed = scores.layout, scores.v, scores.allowed
        weights = masked_softmax(scores.logits, allowed)
        if self.store_attention:
            self._keep(layout.to_dense(weights))
        weights = apply_dropout(weights, self.dropout, self.training)
        out = band_values(layout, weights, v)
        empty = layout.unblock((~allowed.any(dim=-1, keepdim=True)).all(dim=1))[..., 0]
        return self._finish(out, empty)
