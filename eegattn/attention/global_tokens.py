"""Global + local attention (Longformer, Beltagy et al., 2020; BigBird, Zaheer et al., 2020).

Ordinary tokens attend to a sliding window of ``window`` keys on each side (the ``local``
mechanism) plus every global token; global tokens attend to every key. Two kinds of global
tokens:

- ``global_indices``: chosen input positions (Longformer's task tokens, BigBird-ITC). An int
  ``k`` means the first ``k`` positions. Their rows attend to everything, their columns are seen
  by everything, and their outputs are returned like any other position's.
- ``num_global`` learned tokens (BigBird-ETC / memory tokens; the default, one token): extra
  keys/values ``k_proj(g), v_proj(g)`` prepended to the sequence and visible to every query.
  Their own query rows would attend to everything, but the module returns only the ``n`` input
  positions, so those rows are not computed.

Memory is O(n * (window + block + g)) except when a dense ``attn_mask`` is given. Causal:
global input positions are seen only by later (or equal) queries and see only earlier keys;
learned tokens hold no input information and stay visible to all.

A query with no allowed *input* key (e.g. a fully padded sample) outputs zeros, even though
learned tokens would still be visible to it. Masks: bool True = allowed, or float added.
Source: the "explore-attention" guide ("Global Attention").
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eegattn.attention.base import masked_softmax
from eegattn.attention.dropout import apply_dropout
from eegattn.attention.local import BandLayout, band_scores, band_values, check_window
from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention
from eegattn.utils.check import check_positive_int


@register_attention("global")
class GlobalTokenAttention(ProjectedAttention):
    """Multi-head local (sliding window) + global-token self-attention.

    Parameters
    ----------
    dim, heads, causal, dropout : as for ``standard``.
    window : int >= 0
        Local half-width: ordinary query ``i`` sees keys with ``|i - j| <= window``.
    num_global : int, optional
        Number of learned global tokens (default 1 when ``global_indices`` is not given).
    global_indices : int or sequence of int, optional
        Input positions that are global (an int ``k`` = the first ``k``). Excludes
        ``num_global``.
    block_size : int, optional
        Query block of the local part (see :class:`~eegattn.attention.local.LocalAttention`).

    ``forward(x (b, n, dim), context=None, *, key_padding_mask (b, n) bool True = real,
    attn_mask (n, n) / (b, n, n) / (b, h, n, n)) -> (b, n, dim)``; self-attention only. With
    ``store_attention`` the weights on the input keys are kept as (b, h, n, n) (with learned
    tokens, rows sum to 1 minus the weight given to the tokens).
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
        num_global: int | None = None,
        global_indices: int | Sequence[int] | None = None,
        block_size: int | None = None,
    ):
        super().__init__(dim, heads, causal=causal, dropout=dropout)
        self.window = check_window(window)
        self.block_size = check_positive_int(
            max(window, 16) if block_size is None else block_size, "block_size"
        )
        if global_indices is not None and num_global is not None:
            raise ValueError(
                "give either num_global (learned tokens) or global_indices (input positions), "
                "not both"
            )
        self.global_indices: tuple[int, ...] | None = None
        if global_indices is not None:
            self.global_indices = _check_indices(global_indices)
            self.global_tokens = None
        else:
            count = check_positive_int(1 if num_global is None else num_global, "num_global")
            self.global_tokens = nn.Parameter(torch.randn(count, dim) * 0.02)

    def extra_repr(self) -> str:
        kind = (
            f"global_indices={self.global_indices}"
            if self.global_indices is not None
            else f"num_global={self.global_tokens.shape[0]}"
        )
        return f"{super().extra_repr()}, window={self.window}, {kind}"

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
        q, k, v, mask, bias, layout, logits, allowed = scores
        n = x.shape[1]
        index = None
        if self.global_indices is None:
            glob_k, glob_v = self._learned_keys_values()
            glob_logits = (q @ glob_k.transpose(-2, -1)) * self.scale  # (b, h, n, g)
            glob_allowed = torch.ones(1, 1, n, glob_k.shape[-2], dtype=torch.bool, device=x.device)
        else:
            index = self._index_tensor(n, x.device)
            # global keys get their own columns below: keep them out of the band (no double count)
            is_global = torch.zeros(n, dtype=torch.bool, device=x.device)
            is_global[index] = True
            allowed = allowed & ~is_global[layout.cols.clamp(0, n - 1)]
            glob_k, glob_v = k[:, :, index], v[:, :, index]
            glob_logits = (q @ glob_k.transpose(-2, -1)) * self.scale
            if bias is not None:
                glob_logits = glob_logits + bias[..., index].to(glob_logits.dtype)
            glob_allowed = self._global_key_mask(mask, index, n)  # (b|1, h|1, n, g)

        # one softmax per query over [its band keys | the global keys]
        band_allowed = allowed.flatten(2, 3)  # (b|1, h|1, n_pad, span)
        lead = torch.broadcast_shapes(band_allowed.shape[:2], glob_allowed.shape[:2])
        pad_rows = layout.n_pad - n
        padding_rows = glob_allowed.new_zeros(*glob_allowed.shape[:2], pad_rows, glob_k.shape[-2])
        glob_allowed = torch.cat([glob_allowed, padding_rows], dim=-2)
        joint_allowed = torch.cat(
            [band_allowed.expand(*lead, -1, -1), glob_allowed.expand(*lead, -1, -1)], dim=-1
        )
        joint_logits = torch.cat(
            [logits.flatten(2, 3), F.pad(glob_logits, (0, 0, 0, pad_rows))], dim=-1
        )
        weights = masked_softmax(joint_logits, joint_allowed)
        band_w = weights[..., : layout.span].unflatten(2, (layout.nb, layout.block))
        glob_w = weights[..., layout.span :]

        # which queries saw at least one input key (learned tokens do not count)
        seen = joint_allowed if index is not None else joint_allowed[..., : layout.span]
        has_key = seen.any(dim=-1)[..., :n]  # (b|1, h|1, n)
        row_w = None
        if index is not None:
            row_logits, row_allowed = self._global_rows(q, k, mask, bias, index, n)
            row_w = masked_softmax(row_logits, row_allowed)  # (b, h, g, n)
            row_any = row_allowed.any(dim=-1)  # (b|1, h|1, g)
            lead = torch.broadcast_shapes(has_key.shape[:2], row_any.shape[:2])
            has_key = has_key.expand(*lead, -1).clone()
            has_key[..., index] = row_any.expand(*lead, -1)
        if self.store_attention:
            self._keep(self._dense_weights(layout, band_w, glob_w, row_w, index, n))

        band_w = apply_dropout(band_w, self.dropout, self.training)
        glob_w = apply_dropout(glob_w, self.dropout, self.training)
        out = band_values(layout, band_w, v) + (glob_w @ glob_v)[..., :n, :]
        if index is not None:
            row_w = apply_dropout(row_w, self.dropout, self.training)
            out = out.index_copy(2, index, row_w @ v)
        return self._finish(out, (~has_key).all(dim=1))

    def _learned_keys_values(self) -> tuple[Tensor, Tensor]:
        """Keys and values of the learned tokens, each (1, h, g, d)."""
        tokens = self.global_tokens[None]
        return self._split(self.k_proj(tokens)), self._split(self.v_proj(tokens))

    def _index_tensor(self, n: int, device) -> Tensor:
        bad = [i for i in self.global_indices if i >= n]
        if bad:
            raise ValueError(
                f"global_indices {bad} are outside a sequence of length {n}; use positions "
                f"< {n} or learned tokens (num_global)"
            )
        return torch.tensor(self.global_indices, dtype=torch.long, device=device)

    def _global_key_mask(self, mask: Tensor | None, index: Tensor, n: int) -> Tensor:
        """Which queries may see each global input key: (b|1, h|1, n, g) bool."""
        allowed = torch.ones(1, 1, n, index.numel(), dtype=torch.bool, device=index.device)
        if self.causal:
            allowed = allowed & (index[None, :] <= torch.arange(n, device=index.device)[:, None])
        if mask is not None:
            allowed = allowed & mask[..., index]
        return allowed

    def _global_rows(
        self, q: Tensor, k: Tensor, mask: Tensor | None, bias: Tensor | None, index: Tensor, n: int
    ) -> tuple[Tensor, Tensor]:
        """Dense logits (b, h, g, n) and allowed-mask of the global query rows."""
        logits = (q[:, :, index] @ k.transpose(-2, -1)) * self.scale
        if bias is not None:
            logits = logits + bias[..., index, :].to(logits.dtype)
        allowed = torch.ones(1, 1, index.numel(), n, dtype=torch.bool, device=q.device)
        if self.causal:
            allowed = allowed & (torch.arange(n, device=q.device)[None, :] <= index[:, None])
        if mask is not None:
            rows = mask if mask.shape[-2] == 1 else mask[..., index, :]
            allowed = allowed & rows
        return logits, allowed

    @staticmethod
    def _dense_weights(
        layout: BandLayout,
        band_w: Tensor,
        glob_w: Tensor,
        row_w: Tensor | None,
        index: Tensor | None,
        n: int,
    ) -> Tensor:
        """Attention weights on the input keys as a dense (b, h, n, n) tensor (for plots)."""
        dense = layout.to_dense(band_w)
        if index is not None:
            dense = dense.index_copy(-1, index, glob_w[..., :n, :])
            dense = dense.index_copy(-2, index, row_w)
        return dense.detach()


def _check_indices(global_indices) -> tuple[int, ...]:
    if isinstance(global_indices, bool):
        raise ValueError(
            f"global_indices must be an int or a sequence of ints, not {global_indices}"
        )
    if isinstance(global_indices, int):
        return tuple(range(check_positive_int(global_indices, "global_indices")))
    indices = tuple(global_indices)
    if not indices or any(isinstance(i, bool) or not isinstance(i, int) or i < 0 for i in indices):
        raise ValueError(
            "global_indices must be a non-empty sequence of non-negative ints, "
            f"got {global_indices!r}"
        )
    if len(set(indices)) != len(indices):
        raise ValueError(f"global_indices has repeated positions: {global_indices!r}")
    return tuple(sorted(indices))
