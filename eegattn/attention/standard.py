"""Scaled dot-product multi-head attention (Vaswani et al., 2017, "Attention Is All You Need").

Also home of :class:`ProjectedAttention`, the multi-head base shared by the ``standard``,
``additive``, ``multiplicative``, ``local``, ``global`` and ``linear`` mechanisms: the
``q_proj, k_proj, v_proj, out_proj`` projections, head splitting, argument and mask checks, and the
rule that a query row with no allowed key outputs zeros.

Mask convention: boolean masks are True where attention is allowed; float masks are added to
the logits (``-inf`` blocks). See :mod:`eegattn.attention.base`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eegattn.attention.base import (
    SequenceAttention,
    build_mask,
    check_dropout,
    check_heads,
    check_sequences,
    masked_softmax,
    sdpa_mask,
    split_float_mask,
)
from eegattn.attention.dropout import apply_dropout
from eegattn.attention.registry import register_attention


def scaled_dot_product(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    mask: Tensor | None = None,
    dropout_p: float = 0.0,
    training: bool = False,
) -> Tensor:
    """``softmax(q k^T / sqrt(d) + mask) v`` through ``F.scaled_dot_product_attention``.

    Parameters
    ----------
    q : (b, h, n, d) queries; k : (b, h, m, d) keys; v : (b, h, m, dv) values.
    mask : optional, broadcastable to (b, h, n, m)
        Boolean (True = allowed) or float (added to the logits, ``-inf`` blocks).
    dropout_p : float
        Dropout on the attention weights, applied only when ``training`` is True.

    Returns
    -------
    (b, h, n, dv). A query row with no allowed key (or ``m == 0``) is all zeros, never NaN.
    """
    n, m = q.shape[-2], k.shape[-2]
    if n == 0 or m == 0:
        return q.new_zeros(*q.shape[:-1], v.shape[-1])
    if mask is not None and mask.dtype != torch.bool:
        mask = mask.to(q.dtype)
        _, empty = sdpa_mask(mask != float("-inf"))
        if empty is not None:  # SDPA gives NaN on an all -inf row: open it, zero it below
            mask = mask.masked_fill(empty, 0.0)
    else:
        mask, empty = sdpa_mask(mask)
    out = F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, dropout_p=dropout_p if training else 0.0
    )
    if empty is not None:
        out = out.masked_fill(empty, 0.0)
    return out


class ProjectedAttention(SequenceAttention):
    """Multi-head base: ``q_proj, k_proj, v_proj, out_proj`` = ``nn.Linear(dim, dim)`` with bias.

    Subclasses call :meth:`_prepare` (checks + masks), :meth:`_project` (heads), compute
    per-head outputs (b, h, n, dim // heads), and return :meth:`_finish` (merge heads, output
    projection, zero the rows that had no allowed key).
    """

    def __init__(self, dim: int, heads: int = 1, *, causal: bool = False, dropout: float = 0.0):
        super().__init__()
        self.head_dim = check_heads(dim, heads)
        if not isinstance(causal, bool):
            raise ValueError(f"causal must be True or False, got {causal!r}")
        if causal and not self.supports_causal:
            raise ValueError(f"{type(self).__name__} does not support causal=True")
        self.dim = dim
        self.heads = heads
        self.causal = causal
        self.dropout = check_dropout(dropout)
        self.scale = 1.0 / math.sqrt(self.head_dim)
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, heads={self.heads}, causal={self.causal}, dropout={self.dropout}"

    def _prepare(
        self,
        x: Tensor,
        context: Tensor | None,
        key_padding_mask: Tensor | None,
        attn_mask: Tensor | None,
        *,
        causal_in_mask: bool = True,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Check the inputs and combine the masks.

        Returns ``(context, mask, bias)``: the keys/values source (b, m, dim), the boolean mask
        (b or 1, h or 1, n or 1, m) or None (causal included unless ``causal_in_mask`` is
        False, for mechanisms that apply it without a dense mask), and the finite part of a float
        ``attn_mask`` (1 or b, 1 or h, n, m) or None.
        """
        if context is not None and not self.supports_cross:
            raise ValueError(
                f"{type(self).__name__} supports self-attention only; call it without context"
            )
        ctx = check_sequences(x, context, self.dim)
        b, n, m = x.shape[0], x.shape[1], ctx.shape[1]
        if attn_mask is not None:
            self._check_attn_mask(attn_mask, b)
        mask = build_mask(
            b,
            n,
            m,
            key_padding_mask=key_padding_mask,
            attn_mask=attn_mask,
            causal=self.causal and causal_in_mask,
            device=x.device,
        )
        return ctx, mask, split_float_mask(attn_mask)

    def _check_attn_mask(self, attn_mask: Tensor, batch: int) -> None:
        if not isinstance(attn_mask, Tensor):
            raise ValueError(f"attn_mask must be a tensor, got {type(attn_mask).__name__}")
        if attn_mask.dim() in (3, 4) and attn_mask.shape[0] not in (1, batch):
            raise ValueError(
                f"attn_mask has batch size {attn_mask.shape[0]} but the input has {batch}; "
                "give one mask per sample or a 2-D (n, m) mask"
            )
        if attn_mask.dim() == 4 and attn_mask.shape[1] not in (1, self.heads):
            raise ValueError(
                f"attn_mask has {attn_mask.shape[1]} heads but the module has {self.heads}; "
                "give one mask per head or a single one (size 1)"
            )
        if attn_mask.dtype != torch.bool and bool(torch.isnan(attn_mask).any()):
            raise ValueError("attn_mask contains NaN; use -inf to block and finite values to bias")

    def _split(self, t: Tensor) -> Tensor:
        """(b, n, dim) -> (b, h, n, dim // h)."""
        b, n, _ = t.shape
        return t.view(b, n, self.heads, self.head_dim).transpose(1, 2)

    def _project(self, x: Tensor, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Queries from ``x``, keys and values from ``context``, each (b, h, seq, dim // h)."""
        q = self._split(self.q_proj(x))
        k = self._split(self.k_proj(context))
        v = self._split(self.v_proj(context))
        return q, k, v

    def _attend(self, logits: Tensor, v: Tensor, mask: Tensor | None) -> Tensor:
        """Masked softmax of ``logits`` (b, h, n, m), kept for plots, dropout, times ``v``."""
        weights = masked_softmax(logits, mask)
        self._keep(weights)
        weights = apply_dropout(weights, self.dropout, self.training)
        return weights @ v

    def _finish(self, heads_out: Tensor, empty_rows: Tensor | None) -> Tensor:
        """Merge heads (b, h, n, d) -> (b, n, dim), apply ``out_proj`` and zero ``empty_rows``
        ((b or 1, n or 1) bool, True where a query had no allowed key in any head)."""
        b, _, n, _ = heads_out.shape
        out = self.out_proj(heads_out.transpose(1, 2).reshape(b, n, self.dim))
        if empty_rows is not None:
            out = out.masked_fill(empty_rows[..., None], 0.0)
        return out

    @staticmethod
    def _empty_rows(mask: Tensor | None, m: int, device: torch.device) -> Tensor | None:
        """Rows with no allowed key in any head, (b or 1, n or 1) bool, or None if none can be."""
        if mask is None:
            return torch.ones(1, 1, dtype=torch.bool, device=device) if m == 0 else None
        return (~mask.any(dim=-1)).all(dim=1)


@register_attention("standard")
class MultiHeadAttention(ProjectedAttention):
    """Multi-head scaled dot-product attention, self or cross (Vaswani et al., 2017).

    ``softmax(Q K^T / sqrt(d_head) + mask) V`` per head through PyTorch's fused
    ``scaled_dot_product_attention``; numerically the same as ``nn.MultiheadAttention`` with
    ``batch_first=True`` given the same weights (whose ``key_padding_mask`` is the inverse:
    True = ignore).

    Parameters
    ----------
    dim, heads : model width and number of heads (``dim % heads == 0``).
    causal : query ``i`` sees keys ``j <= i + (m - n)``.
    dropout : dropout on the attention weights (training only).

    ``forward(x (b, n, dim), context (b, m, dim) or None, *, key_padding_mask (b, m) bool True =
    real key, attn_mask (n, m) / (b, n, m) / (b, h, n, m) bool True = allowed or float added)
    -> (b, n, dim)``. With ``store_attention = True`` the weights are formed explicitly and kept in
    ``last_attention`` (b, h, n, m).
    """

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        ctx, mask, bias = self._prepare(x, context, key_padding_mask, attn_mask)
        q, k, v = self._project(x, ctx)
        if self.store_attention:
            logits = (q @ k.transpose(-2, -1)) * self.scale
            if bias is not None:
                logits = logits + bias
            out = self._attend(logits, v, mask)
        else:
            sdpa_arg = mask
            if bias is not None:
                bias = bias.to(q.dtype)
                sdpa_arg = bias if mask is None else torch.where(mask, bias, float("-inf"))
            out = scaled_dot_product(q, k, v, sdpa_arg, self.dropout, self.training)
        return self._finish(out, self._empty_rows(mask, ctx.shape[1], x.device))
