"""Shared pieces of every sequence attention mechanism: argument checks and masks.

Mask convention for the whole library (the ``torch.nn.functional.scaled_dot_product_attention``
convention): a boolean mask is **True where attention is allowed** and False where it is
blocked; a float mask is added to the attention logits (use ``-inf`` to block).

Shapes used throughout: ``b`` batch, ``h`` heads, ``n`` queries, ``m`` keys, ``d`` width.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegattn.utils.check import check_positive_int


def check_heads(dim: int, heads: int) -> int:
    """Validate ``dim`` and ``heads`` and return the per-head width ``dim // heads``."""
    check_positive_int(dim, "dim")
    check_positive_int(heads, "heads")
    if dim % heads:
        raise ValueError(
            f"dim={dim} is not divisible by heads={heads}; choose heads among the divisors "
            f"of dim (e.g. {[h for h in range(1, min(dim, 16) + 1) if dim % h == 0]})"
        )
    return dim // heads


def check_dropout(p: float) -> float:
    if not 0.0 <= float(p) < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {p!r}")
    return float(p)


def check_sequences(x: Tensor, context: Tensor | None, dim: int) -> Tensor:
    """Check ``x`` (b, n, dim) and ``context`` (b, m, dim); return the context to attend to."""
    if not isinstance(x, Tensor) or x.dim() != 3:
        raise ValueError(
            f"expected queries of shape (batch, seq, dim), got "
            f"{tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
        )
    if x.shape[-1] != dim:
        raise ValueError(f"queries have width {x.shape[-1]} but the module was built for dim={dim}")
    if context is None:
        return x
    if context.dim() != 3:
        raise ValueError(f"expected context of shape (batch, seq, dim), got {tuple(context.shape)}")
    if context.shape[0] != x.shape[0]:
        raise ValueError(
            f"batch sizes differ: queries have {x.shape[0]}, context has {context.shape[0]}"
        )
    if context.shape[-1] != dim:
        raise ValueError(f"context has width {context.shape[-1]} but dim={dim}")
    return context


def build_mask(
    batch: int,
    n: int,
    m: int,
    *,
    key_padding_mask: Tensor | None = None,
    attn_mask: Tensor | None = None,
    causal: bool = False,
    device: torch.device | None = None,
) -> Tensor | None:
    """Combine the mask arguments into one boolean mask, True = allowed.

    Parameters
    ----------
    key_padding_mask : (b, m) bool, optional
        True for real keys, False for padding.
    attn_mask : (n, m), (b, n, m) or (b, h, n, m), optional
        Boolean (True = allowed) or float (added to logits; ``-inf`` blocks). A float mask is
        returned through :func:`split_float_mask`, not here: only its ``-inf`` entries are
        folded into the boolean mask.
    causal : bool
        Query ``i`` may see keys ``j <= i + (m - n)`` (aligned at the end, as for a cache).

    Returns
    -------
    (b or 1, h or 1, n, m) bool tensor, or None when nothing is masked.
    """
    mask = None
    if key_padding_mask is not None:
        if key_padding_mask.shape != (batch, m):
            raise ValueError(
                f"key_padding_mask must have shape (batch, keys) = {(batch, m)}, "
                f"got {tuple(key_padding_mask.shape)}"
            )
        if key_padding_mask.dtype != torch.bool:
            raise ValueError(
                "key_padding_mask must be boolean, True for real keys and False for padding"
            )
        mask = key_padding_mask[:, None, None, :]
    if attn_mask is not None:
        am = attn_mask
        if am.dim() == 2:
            am = am[None, None]
        elif am.dim() == 3:
            am = am[:, None]
        elif am.dim() != 4:
            raise ValueError(
                f"attn_mask must be (n, m), (batch, n, m) or (batch, heads, n, m), "
                f"got {tuple(attn_mask.shape)}"
            )
        if am.shape[-2:] != (n, m):
            raise ValueError(
                f"attn_mask ends in {tuple(am.shape[-2:])} but queries x keys is {(n, m)}"
            )
        if am.dtype != torch.bool:
            am = am != float("-inf")
        mask = am if mask is None else mask & am
    if causal:
        i = torch.arange(n, device=device)[:, None]
        j = torch.arange(m, device=device)[None, :]
        cm = (j <= i + (m - n))[None, None]
        mask = cm if mask is None else mask & cm
    return mask


def split_float_mask(attn_mask: Tensor | None) -> Tensor | None:
    """The finite additive part of a float ``attn_mask`` (``-inf`` entries become 0), or None."""
    if attn_mask is None or attn_mask.dtype == torch.bool:
        return None
    bias = torch.where(torch.isinf(attn_mask), torch.zeros_like(attn_mask), attn_mask)
    if bias.dim() == 2:
        bias = bias[None, None]
    elif bias.dim() == 3:
        bias = bias[:, None]
    return bias


def masked_softmax(logits: Tensor, mask: Tensor | None, dim: int = -1) -> Tensor:
    """Softmax over ``dim`` that gives exactly 0 to blocked entries and an all-zero row
    (not NaN) where every entry is blocked. ``mask`` is boolean, True = allowed."""
    if mask is None:
        return torch.softmax(logits, dim=dim)
    logits = logits.masked_fill(~mask, float("-inf"))
    # A row with no allowed key would be all -inf: give it finite logits, then zero it.
    empty = ~mask.any(dim=dim, keepdim=True)
    logits = logits.masked_fill(empty, 0.0)
    weights = torch.softmax(logits, dim=dim)
    return weights.masked_fill(~mask, 0.0)


def sdpa_mask(mask: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """Prepare a boolean mask for ``scaled_dot_product_attention``.

    Returns ``(mask_for_sdpa, empty_rows)``: rows with no allowed key are opened (SDPA would
    give NaN there) and ``empty_rows`` (b, h, n, 1) marks them so the caller zeroes them.
    """
    if mask is None:
        return None, None
    empty = ~mask.any(dim=-1, keepdim=True)
    if not bool(empty.any()):
        return mask, None
    return mask | empty, empty


class SequenceAttention(nn.Module):
    """Base class of the registry's mechanisms.

    Subclasses implement ``forward(x, context=None, *, key_padding_mask=None, attn_mask=None)``
    mapping queries ``x`` (b, n, dim) and an optional ``context`` (b, m, dim) to (b, n, dim).
    ``context=None`` is self-attention. Boolean masks are True where attention is allowed.

    Set ``store_attention = True`` on a module to keep its last attention weights
    (b, h, n, m) in ``last_attention`` for plotting (mechanisms that form them).
    """

    supports_cross: bool = True
    supports_causal: bool = True

    def __init__(self) -> None:
        super().__init__()
        self.store_attention = False
        self.last_attention: Tensor | None = None

    def _keep(self, weights: Tensor) -> None:
        if self.store_attention:
            self.last_attention = weights.detach()
