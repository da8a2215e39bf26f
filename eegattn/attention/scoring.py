"""Attention with classic score functions: additive (Bahdanau) and multiplicative (Luong).

- Bahdanau, Cho & Bengio (2015), "Neural Machine Translation by Jointly Learning to Align and
  Translate": ``score(q, k) = v^T tanh(W1 q + W2 k)``.
- Luong, Pham & Manning (2015), "Effective Approaches to Attention-based Neural Machine
  Translation": ``dot`` ``score(q, k) = q^T k`` and ``general`` ``score(q, k) = q^T W k``.

Both are multi-head with the projections of the ``standard`` mechanism (``W1 = q_proj``,
``W2 = k_proj`` per head), take the same masks (bool True = allowed, or float added) and do
self or cross attention. Source: the "explore-attention" guide (Attention Mechanisms in AI).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention


class _ScoredAttention(ProjectedAttention):
    """Multi-head attention whose logits come from :meth:`_scores` (b, h, n, m)."""

    def _scores(self, q: Tensor, k: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        """``x`` (b, n, dim), ``context`` (b, m, dim) or None -> (b, n, dim); masks as in
        :class:`~eegattn.attention.standard.MultiHeadAttention`."""
        ctx, mask, bias = self._prepare(x, context, key_padding_mask, attn_mask)
        q, k, v = self._project(x, ctx)
        logits = self._scores(q, k)
        if bias is not None:
            logits = logits + bias
        out = self._attend(logits, v, mask)
        return self._finish(out, self._empty_rows(mask, ctx.shape[1], x.device))


@register_attention("additive")
class AdditiveAttention(_ScoredAttention):
    """Bahdanau attention: per head ``score(q_i, k_j) = v_h^T tanh(q_i + k_j)`` where ``q_i``
    and ``k_j`` are the head's slices of ``q_proj(x_i)`` and ``k_proj(c_j)`` (= ``W1 q``,
    ``W2 k``; their biases play the role of Bahdanau's ``b``).

    Parameters: ``dim``, ``heads``, ``causal``, ``dropout`` as for ``standard``. The learned
    ``score_vector`` (heads, dim // heads) is ``v``. The tanh of every query/key pair,
    (b, h, n, m, d), is formed for ``chunk_elements`` of it at a time (query chunks under
    ``torch.utils.checkpoint``, so backward recomputes them instead of storing them): memory is
    O(b h n m) for the scores plus one chunk, and the result equals the all-pairs form.
    """

    #: Elements of one query chunk's (b, h, chunk, m, d) tanh tensor (16 MiB in float32).
    chunk_elements = 1 << 22

    def __init__(self, dim: int, heads: int = 1, *, causal: bool = False, dropout: float = 0.0):
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        bound = 1.0 / math.sqrt(self.head_dim)
        self.score_vector = nn.Parameter(torch.empty(heads, self.head_dim).uniform_(-bound, bound))

    def _scores(self, q: Tensor, k: Tensor) -> Tensor:
        b, h, n, d = q.shape
        chunk = max(1, self.chunk_elements // max(1, b * h * k.shape[-2] * d))
        if chunk >= n:
            return self._pair_scores(q, k)
        parts = []
        for start in range(0, n, chunk):
            rows = q[:, :, start : start + chunk]
            if torch.is_grad_enabled():
                parts.append(checkpoint(self._pair_scores, rows, k, use_reentrant=False))
            else:
                parts.append(self._pair_scores(rows, k))
        return torch.cat(parts, dim=-2)

    def _pair_scores(self, q: Tensor, k: Tensor) -> Tensor:
        hidden = torch.tanh(q.unsqueeze(-2) + k.unsqueeze(-3))  # (b, h, n, m, d)
        return torch.einsum("bhnmd,hd->bhnm", hidden, self.score_vector)


@register_attention("multiplicative")
class MultiplicativeAttention(_ScoredAttention):
    """Luong attention: per head ``score(q_i, k_j) = q_i^T k_j`` (``score="dot"``) or
    ``q_i^T W_h k_j`` (``score="general"``, ``W_h`` learned, initialised to the identity so
    training starts from the dot form), divided by ``sqrt(dim // heads)`` when ``scale=True``.

    Parameters: ``dim``, ``heads``, ``causal``, ``dropout`` as for ``standard``;
    ``score`` "dot" or "general"; ``scale`` (default False, as in Luong et al.; with
    ``score="dot", scale=True`` this is the ``standard`` mechanism).
    """

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        score: str = "dot",
        scale: bool = False,
    ):
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        if score not in ("dot", "general"):
            raise ValueError(f"score must be 'dot' or 'general', got {score!r}")
        if not isinstance(scale, bool):
            raise ValueError(f"scale must be True or False, got {scale!r}")
        self.score = score
        self.use_scale = scale
        if score == "general":
            eye = torch.eye(self.head_dim).expand(heads, -1, -1).clone()
            self.score_weight = nn.Parameter(eye)  # (heads, d, d)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, score={self.score!r}, scale={self.use_scale}"

    def _scores(self, q: Tensor, k: Tensor) -> Tensor:
        if self.score == "general":
            q = q @ self.score_weight  # (b, h, n, d) @ (h, d, d)
        logits = q @ k.transpose(-2, -1)
        return logits * self.scale if self.use_scale else logits
