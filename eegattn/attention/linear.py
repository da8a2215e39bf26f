"""Linear attention (Katharopoulos, Vyas, Pappas & Fleuret, 2020, "Transformers are RNNs").

Softmax is replaced by a positive feature map ``phi`` (default ``elu(x) + 1``):
``out_i = phi(q_i)^T (sum_j phi(k_j) v_j^T) / phi(q_i)^T (sum_j phi(k_j))``, which costs O(n)
instead of O(n^2). Causal attention restricts the sums to ``j <= i``: computed chunk by chunk
(dense inside a chunk of ``chunk_size`` queries, running sums of ``phi(k) v^T`` across chunks),
so memory is O(n * chunk + (n / chunk) * d^2) per head instead of the O(n * d^2) of a plain
cumulative sum.

Key padding zeroes the padded keys' features. An ``attn_mask`` cannot be expressed in the O(n)
form: with one (or with ``store_attention``) the dense O(n m) form is used. Mask convention:
bool True = allowed; a float mask may only hold 0 and ``-inf``. Source: the
"explore-attention" guide ("Linear Attention").
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from eegattn.attention.dropout import apply_dropout
from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention
from eegattn.utils.check import check_positive_int

FEATURE_MAPS: dict[str, Callable[[Tensor], Tensor]] = {
    "elu": lambda t: F.elu(t) + 1.0,
    "relu": F.relu,
}


def _divide(num: Tensor, den: Tensor) -> Tensor:
    """``num / den`` with 0 where ``den == 0`` (then ``num`` is 0 too: features are >= 0)."""
    safe = den.clamp_min(torch.finfo(den.dtype).tiny)
    return torch.where(den > 0, num / safe, torch.zeros_like(num))


def causal_linear_attention(phi_q: Tensor, phi_k: Tensor, v: Tensor, chunk_size: int) -> Tensor:
    """Causal linear attention, query ``i`` over keys ``j <= i``.

    ``phi_q``, ``phi_k`` (b, h, n, d) non-negative features, ``v`` (b, h, n, dv) -> (b, h, n, dv).
    """
    b, h, n, d = phi_q.shape
    chunk = max(1, min(chunk_size, n))
    nc = -(-n // chunk)
    pad = nc * chunk - n

    def blocks(t: Tensor) -> Tensor:
        return F.pad(t, (0, 0, 0, pad)).reshape(b, h, nc, chunk, t.shape[-1])

    qc, kc, vc = blocks(phi_q), blocks(phi_k), blocks(v)
    # state before each chunk: exclusive prefix sums of phi(k) v^T and of phi(k)
    chunk_kv = kc.transpose(-2, -1) @ vc  # (b, h, nc, d, dv)
    chunk_z = kc.sum(dim=-2)  # (b, h, nc, d)
    prior_kv = chunk_kv.cumsum(dim=2) - chunk_kv
    prior_z = chunk_z.cumsum(dim=2) - chunk_z
    # inside a chunk: dense lower-triangular scores
    scores = (qc @ kc.transpose(-2, -1)).tril()  # (b, h, nc, chunk, chunk)
    num = scores @ vc + qc @ prior_kv
    den = scores.sum(dim=-1, keepdim=True) + (qc @ prior_z.unsqueeze(-1))
    out = _divide(num, den)
    return out.reshape(b, h, nc * chunk, -1)[:, :, :n]


@register_attention("linear")
class LinearAttention(ProjectedAttention):
    """Multi-head linear attention, self or cross, optionally causal.

    Parameters
    ----------
    dim, heads, causal : as for ``standard`` (causal: query ``i`` sees keys
        ``j <= i + (m - n)``).
    dropout : float
        There is no weight matrix to drop in the O(n) form: dropout is applied to the heads'
        outputs before ``out_proj`` (training only).
    feature_map : "elu" (``elu(x) + 1``, the paper's), "relu", or a callable returning
        non-negative features of the same shape.
    chunk_size : int
        Queries per chunk in the causal form.

    ``forward(x (b, n, dim), context (b, m, dim) or None, *, key_padding_mask (b, m) bool True
    = real, attn_mask (n, m) / (b, n, m) / (b, h, n, m) bool or 0/-inf float) -> (b, n, dim)``.
    A query with no allowed key outputs zeros.
    """

    def __init__(
        self,
        dim: int,
        heads: int = 1,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        feature_map: str | Callable[[Tensor], Tensor] = "elu",
        chunk_size: int = 64,
    ):
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        if isinstance(feature_map, str):
            if feature_map not in FEATURE_MAPS:
                raise ValueError(
                    f"unknown feature_map {feature_map!r}; choose one of "
                    f"{', '.join(FEATURE_MAPS)} or pass a callable"
                )
            self.feature_map = FEATURE_MAPS[feature_map]
        elif callable(feature_map):
            self.feature_map = feature_map
        else:
            raise ValueError(f"feature_map must be a name or a callable, got {feature_map!r}")
        self.feature_map_name = feature_map if isinstance(feature_map, str) else "custom"
        self.chunk_size = check_positive_int(chunk_size, "chunk_size")

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, feature_map={self.feature_map_name!r}, "
            f"chunk_size={self.chunk_size}"
        )

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        dense = attn_mask is not None or self.store_attention
        ctx, mask, bias = self._prepare(
            x, context, key_padding_mask, attn_mask, causal_in_mask=dense
        )
        if bias is not None and bool((bias != 0).any()):
            raise ValueError(
                "linear attention cannot add a float bias to its scores; pass a boolean "
                "attn_mask (or a float one holding only 0 and -inf)"
            )
        b, n, m = x.shape[0], x.shape[1], ctx.shape[1]
        q, k, v = self._project(x, ctx)
        phi_q, phi_k = self.feature_map(q), self.feature_map(k)
        if dense:
            out, empty = self._dense(phi_q, phi_k, v, mask)
        else:
            if key_padding_mask is not None:
                phi_k = phi_k * key_padding_mask[:, None, :, None].to(phi_k.dtype)
            if self.causal:
                out = self._causal(phi_q, phi_k, v)
            else:
                num = phi_q @ (phi_k.transpose(-2, -1) @ v)  # (b, h, n, dv)
                den = phi_q @ phi_k.sum(dim=-2).unsqueeze(-1)  # (b, h, n, 1)
                out = _divide(num, den)
            empty = self._empty_without_mask(key_padding_mask, b, n, m, x.device)
        out = apply_dropout(out, self.dropout, self.training)
        return self._finish(out, empty)

    def _causal(self, phi_q: Tensor, phi_k: Tensor, v: Tensor) -> Tensor:
        """Causal form aligned at the end (query ``i`` sees ``j <= i + m - n``): pad the
        shorter side at the front with zero features, which neither see nor are seen."""
        n, m = phi_q.shape[-2], phi_k.shape[-2]
        if m > n:
            phi_q = F.pad(phi_q, (0, 0, m - n, 0))
        elif n > m:
            phi_k = F.pad(phi_k, (0, 0, n - m, 0))
            v = F.pad(v, (0, 0, n - m, 0))
        out = causal_linear_attention(phi_q, phi_k, v, self.chunk_size)
        return out[:, :, out.shape[-2] - n :]

    def _dense(
        self, phi_q: Tensor, phi_k: Tensor, v: Tensor, mask: Tensor | None
    ) -> tuple[Tensor, Tensor | None]:
        """O(n m) form: ``phi(Q) phi(K)^T`` masked, row-normalised; keeps the weights."""
        scores = phi_q @ phi_k.transpose(-2, -1)  # (b, h, n, m)
        if mask is not None:
            scores = scores * mask.to(scores.dtype)
        weights = _divide(scores, scores.sum(dim=-1, keepdim=True))
        self._keep(weights)
        return weights @ v, self._empty_rows(mask, phi_k.shape[-2], phi_q.device)

    def _empty_without_mask(
        self, key_padding_mask: Tensor | None, b: int, n: int, m: int, device
    ) -> Tensor | None:
        """Rows with no allowed key, (b or 1, n or 1), from key padding and causality only."""
        if m == 0:
            return torch.ones(1, 1, dtype=torch.bool, device=device)
        if key_padding_mask is None:
            # causal with m < n: the first n - m queries see nothing
            if self.causal and m < n:
                return (torch.arange(n, device=device) < n - m)[None]
            return None
        if not self.causal:
            return ~key_padding_mask.any(dim=-1, keepdim=True)
        # query i sees keys j <= i + m - n: has one iff the running count of real keys is > 0
        seen = F.pad(key_padding_mask.long().cumsum(dim=-1), (max(n - m, 0), 0))
        last = torch.arange(n, device=device) + max(m - n, 0)
        return seen[:, last] == 0
