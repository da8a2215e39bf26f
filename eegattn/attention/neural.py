"""Neural attention: attention scores from a small MLP instead of a dot product.

DiGiugno & Mahmood (2025), "Neural Attention: A Novel Mechanism for Enhanced Expressive Power
in Transformer Models", arXiv:2502.17206. Per head, queries and keys (width
``dim_head``) are projected to ``d'`` (``projection_dim``, default ``dim_head // 32``) by two
linear layers shared across heads; the score of query ``i`` and key ``j`` is
``MLP([q'_i; k'_j])`` with ``MLP = Linear(2d', d') -> ReLU -> Linear(d', d'//2) -> ReLU ->
Linear(d'//2, 1)``, shared across heads, with no ``1/sqrt(d)`` scaling.

The authors' code materialises the (b, h, n, m, 2d') tensor of all pairs.
``implementation="chunked"`` (default) never does: the first MLP layer splits as
``W_q q'_i + W_k k'_j``, computed once per token; pairs are formed for one chunk of queries at a
time under ``torch.utils.checkpoint`` so the backward pass recomputes them instead of storing them.
Each chunk holds complete score rows, so its softmax is exact.
``implementation="naive"`` is the authors' way (for checks).
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from eegattn.attention.base import masked_softmax
from eegattn.attention.dropout import apply_dropout
from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention
from eegattn.utils.check import check_positive_int

IMPLEMENTATIONS = ("chunked", "naive")

# Default chunk: at most this many elements in one chunk's (b, h, chunk, m, d') hidden tensor.
CHUNK_BUDGET_ELEMENTS = 1 << 22


@register_attention("neural")
class NeuralAttention(ProjectedAttention):
    """Multi-head attention with MLP scores (arXiv:2502.17206).

    Parameters
    ----------
    dim, heads : int
        Model width and head count; ``dim_head = dim // heads``.
    causal : bool
        Query ``i`` sees keys ``j <= i`` (aligned at the end when ``m != n``).
    dropout : float
        Dropout on the attention weights.
    projection_dim : int, optional
        ``d'``, the width q and k are projected to before the MLP (default ``dim_head // 32``,
        as in the paper). Must be at least 2.
    implementation : {"chunked", "naive"}
        ``chunked`` (default) loops over query chunks without materialising all pairs;
        ``naive`` materialises (b, h, n, m, 2d') like the authors' code.
    chunk_size : int, optional
        Queries per chunk (default: as many as keep one chunk's hidden tensor under
        ``CHUNK_BUDGET_ELEMENTS`` elements).

    ``forward(x, context=None, *, key_padding_mask=None, attn_mask=None)``: ``x`` (b, n, dim),
    ``context`` (b, m, dim) -> (b, n, dim). Boolean masks are True where attention is allowed;
    a float ``attn_mask`` is added to the scores. A row with no allowed key outputs zeros.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        projection_dim: int | None = None,
        implementation: str = "chunked",
        chunk_size: int | None = None,
    ) -> None:
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        proj = self.head_dim // 32 if projection_dim is None else projection_dim
        if isinstance(proj, bool) or not isinstance(proj, int) or proj < 2:
            raise ValueError(
                f"neural attention needs projection_dim d' >= 2 (its MLP is 2d' -> d' -> d'//2 "
                f"-> 1), got d'={proj!r} (dim_head={self.head_dim}); pass projection_dim >= 2 "
                f"or a larger dim_head (the default d' = dim_head // 32 needs dim_head >= 64)"
            )
        if implementation not in IMPLEMENTATIONS:
            raise ValueError(
                f"unknown implementation {implementation!r}; choose one of {IMPLEMENTATIONS}"
            )
        if chunk_size is not None:
            check_positive_int(chunk_size, "chunk_size")
        self.projection_dim = proj
        self.implementation = implementation
        self.chunk_size = chunk_size
        # Shared across heads: per-head q and k down to d', then the score MLP.
        self.q_down = nn.Linear(self.head_dim, proj)
        self.k_down = nn.Linear(self.head_dim, proj)
        self.score_in = nn.Linear(2 * proj, proj)
        self.score_hidden = nn.Linear(proj, proj // 2)
        self.score_out = nn.Linear(proj // 2, 1)

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, projection_dim={self.projection_dim}, "
            f"implementation={self.implementation!r}, chunk_size={self.chunk_size}"
        )

    def _mlp_tail(self, hidden: Tensor) -> Tensor:
        """ReLU'd first-layer output (..., d') -> scores (...)."""
        return self.score_out(torch.relu(self.score_hidden(hidden))).squeeze(-1)

    @staticmethod
    def _weights(scores: Tensor, allowed: Tensor | None, bias: Tensor | None) -> Tensor:
        if bias is not None:
            scores = scores + bias
        return masked_softmax(scores, allowed)

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        source, allowed, bias = self._prepare(x, context, key_padding_mask, attn_mask)
        q, k, v = self._project(x, source)
        q, k = self.q_down(q), self.k_down(k)  # (b, h, n or m, d')
        if self.implementation == "naive":
            out = self._naive(q, k, v, allowed, bias)
        else:
            out = self._chunked(q, k, v, allowed, bias)
        return self._finish(out, self._empty_rows(allowed, source.shape[1], x.device))

    def _naive(self, q, k, v, allowed, bias) -> Tensor:
        """The authors' way: all (b, h, n, m, 2d') query-key pairs at once."""
        n, m = q.shape[2], k.shape[2]
        pairs = torch.cat(
            (q[:, :, :, None].expand(-1, -1, -1, m, -1), k[:, :, None].expand(-1, -1, n, -1, -1)),
            dim=-1,
        )
        scores = self._mlp_tail(torch.relu(self.score_in(pairs)))
        weights = self._weights(scores, allowed, bias)
        self._keep(weights)
        return apply_dropout(weights, self.dropout, self.training) @ v

    def _chunked(self, q, k, v, allowed, bias) -> Tensor:
        b, h, n, proj = q.shape
        m = k.shape[2]
        if n == 0:
            return v.new_zeros(b, h, 0, v.shape[-1])
        # First MLP layer on [q; k] = W_q q + W_k k + bias: once per token, not per pair.
        w_q, w_k = self.score_in.weight[:, :proj], self.score_in.weight[:, proj:]
        q_in = functional.linear(q, w_q, self.score_in.bias)
        k_in = functional.linear(k, w_k)
        chunk = self.chunk_size or max(1, CHUNK_BUDGET_ELEMENTS // max(1, b * h * m * proj))
        chunk = min(chunk, n)
        kept: list[Tensor] | None = [] if self.store_attention else None
        recording = [True]  # the backward's recomputation must not record again

        def one_chunk(q_chunk, k_all, v_all, allowed_chunk, bias_chunk):
            scores = self._mlp_tail(torch.relu(q_chunk[:, :, :, None] + k_all[:, :, None]))
            weights = self._weights(scores, allowed_chunk, bias_chunk)
            if kept is not None and recording[0]:
                kept.append(weights.detach())
            return apply_dropout(weights, self.dropout, self.training) @ v_all

        use_checkpoint = torch.is_grad_enabled()
        outputs = []
        for start in range(0, n, chunk):
            rows = slice(start, start + chunk)
            args = (q_in[:, :, rows], k_in, v, _query_rows(allowed, rows), _query_rows(bias, rows))
            if use_checkpoint:
                outputs.append(checkpoint(one_chunk, *args, use_reentrant=False))
            else:
                outputs.append(one_chunk(*args))
        recording[0] = False
        if kept is not None:
            self._keep(torch.cat([w.expand(b, h, -1, m) for w in kept], dim=2))
        return torch.cat(outputs, dim=2)


def _query_rows(mask: Tensor | None, rows: slice) -> Tensor | None:
    """Rows ``rows`` of a (.., n or 1, m) mask; a mask shared by all queries stays whole."""
    if mask is None or mask.shape[-2] == 1:
        return mask
    return mask[..., rows, :]
