"""Selective attention: multi-head attention whose logits have a penalty ``F`` subtracted.

``softmax(Q K^T / sqrt(d_head) - F) V`` (Leviathan et al. 2024). ``F`` comes from two places:

* a user-given ``selective_mask`` (the interface ``forward(Q, K, V, selective_mask)`` of a
  public "Selective Attention Implementation" repository), which that code ignored except for
  its ``-inf`` entries; here finite values really are subtracted, infinite values remove the
  key, and a boolean mask follows the library convention (True = allowed);
* the parameter-free *selection* of Leviathan, Kalman & Matias (2024), "Selective Attention
  Improves Transformer", arXiv:2410.02703: ``S = ReLU(head-0 causal logits)`` with the first
  token and the diagonal never penalised, ``F[i, j] = sum_{k < i} S[k, j]``, subtracted from
  every head's logits. It needs causal self-attention.

With ``F = 0`` the module is standard multi-head attention.
"""

from __future__ import annotations

import torch
import torch.nn.functional as functional
from torch import Tensor

from eegattn.attention.base import check_sequences
from eegattn.attention.registry import register_attention
from eegattn.attention.standard import ProjectedAttention


def _as_4d(mask: Tensor, name: str, n: int, m: int) -> Tensor:
    """View a (n, m), (b, n, m) or (b, h, n, m) mask as 4-D (b|1, h|1, n, m)."""
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() == 3:
        mask = mask[:, None]
    elif mask.dim() != 4:
        raise ValueError(
            f"{name} must be (n, m), (batch, n, m) or (batch, heads, n, m), "
            f"got shape {tuple(mask.shape)}"
        )
    if mask.shape[-2:] != (n, m):
        raise ValueError(f"{name} ends in {tuple(mask.shape[-2:])} but queries x keys is {(n, m)}")
    return mask


def selective_penalty(
    selector_logits: Tensor, allowed: Tensor | None = None, real_tokens: Tensor | None = None
) -> Tensor:
    """The selection penalty ``F`` of Leviathan et al. (2024), arXiv:2410.02703.

    Parameters
    ----------
    selector_logits : (b, 1, n, n)
        Scaled logits of the selecting head (head 0) of causal self-attention.
    allowed : (b|1, h|1, n, n) bool, optional
        True where attention is allowed (causal included); blocked entries select nothing.
    real_tokens : (b, n) bool, optional
        False for padding tokens, which select nothing either.

    Returns
    -------
    (b, 1, n, n) ``F`` with ``F[i, j] = sum_{k < i} S[k, j]``, ``S = ReLU(logits)`` where
    allowed, ``S[:, 0] = 0`` (the first token is never masked) and ``S[i, i] = 0`` (nor self).
    """
    n = selector_logits.shape[-1]
    if n == 0:
        return torch.zeros_like(selector_logits)
    s = torch.relu(selector_logits)
    if allowed is not None:
        s = s.masked_fill(~allowed[:, :1], 0.0)
    if real_tokens is not None:
        s = s.masked_fill(~real_tokens[:, None, :, None], 0.0)
    keep = torch.ones(n, n, dtype=torch.bool, device=s.device)
    keep[:, 0] = False
    keep.fill_diagonal_(False)
    s = s * keep
    # Exclusive cumulative sum over queries: query i is penalised by what queries k < i selected.
    return functional.pad(torch.cumsum(s[..., :-1, :], dim=-2), (0, 0, 1, 0))


@register_attention("selective")
class SelectiveAttention(ProjectedAttention):
    """Multi-head attention with a penalty ``F`` subtracted from the logits (Leviathan
    et al. 2024, arXiv:2410.02703).

    Parameters
    ----------
    dim, heads : int
        Model width and head count (``d_model``, ``n_heads`` in the public implementation;
        also positional).
    causal : bool
        Query ``i`` sees keys ``j <= i`` (aligned at the end when ``m != n``).
    dropout : float
        Dropout on the attention weights (the public implementation used 0.1; the library
        default is 0).
    selection : bool, optional
        Apply the paper's parameter-free selection (default: ``causal``). Needs causal
        self-attention.

    Forward, two interfaces
    -----------------------
    ``forward(x, context=None, *, key_padding_mask=None, attn_mask=None, selective_mask=None)``
        registry interface: ``x`` (b, n, dim), ``context`` (b, m, dim) -> (b, n, dim).
    ``forward(Q, K, V, selective_mask=None)``
        the public implementation's interface (used when three tensors are passed):
        ``Q`` (b, n, dim), ``K``, ``V`` (b, m, dim).

    ``selective_mask`` (n, m), (b, n, m) or (b, h, n, m): float -> finite entries are
    subtracted from the logits and infinite ones remove the key; bool -> True = allowed.
    ``attn_mask`` follows the library convention (float is *added*, bool True = allowed).
    A query row with no allowed key outputs zeros (as in ``standard``).
    """

    def __init__(
        self,
        dim: int | None = None,
        heads: int | None = None,
        *,
        causal: bool = False,
        dropout: float = 0.0,
        selection: bool | None = None,
        d_model: int | None = None,
        n_heads: int | None = None,
    ) -> None:
        dim = _one_of("dim", dim, "d_model", d_model)
        heads = _one_of("heads", heads, "n_heads", n_heads)
        if dim is None:
            raise ValueError("SelectiveAttention needs dim (or its alias d_model)")
        super().__init__(dim, 1 if heads is None else heads, causal=causal, dropout=dropout)
        self.selection = self.causal if selection is None else bool(selection)
        if self.selection and not self.causal:
            raise ValueError(
                "selection (arXiv:2410.02703) needs causal self-attention; pass causal=True "
                "or selection=False"
            )

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, selection={self.selection}"

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        value: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        selective_mask: Tensor | None = None,
    ) -> Tensor:
        if value is not None:  # the public implementation's forward(Q, K, V, selective_mask)
            if context is None:
                raise ValueError("forward(Q, K, V) needs K as well as V; pass all three")
            values = check_sequences(x, value, self.dim)
            if values.shape[1] != context.shape[1]:
                raise ValueError(
                    f"K has {context.shape[1]} positions but V has {values.shape[1]}; "
                    "pass keys and values of the same length"
                )
            self_attention = x.shape[1] == context.shape[1]
        else:
            values = None
            self_attention = context is None
        if self.selection and not self_attention:
            raise ValueError(
                "selection (arXiv:2410.02703) needs causal self-attention; build the module "
                "with selection=False for cross-attention"
            )
        keys, allowed, bias = self._prepare(x, context, key_padding_mask, attn_mask)
        q, k, v = self._project(x, keys)
        if values is not None:
            v = self._split(self.v_proj(values))
        n, m = x.shape[1], keys.shape[1]
        logits = (q @ k.transpose(-2, -1)) * self.scale
        selector_logits = logits[:, :1]  # the paper selects with head 0's plain logits
        if bias is not None:
            logits = logits + bias
        if selective_mask is not None:
            penalty, blocked = self._user_penalty(selective_mask, x.shape[0], n, m)
            if penalty is not None:
                logits = logits - penalty
            if blocked is not None:
                allowed = ~blocked if allowed is None else allowed & ~blocked
        if self.selection:
            logits = logits - selective_penalty(selector_logits, allowed, key_padding_mask)
        out = self._attend(logits, v, allowed)
        return self._finish(out, self._empty_rows(allowed, m, x.device))

    def _user_penalty(
        self, f: Tensor, batch: int, n: int, m: int
    ) -> tuple[Tensor | None, Tensor | None]:
        """Split a selective mask into (finite penalty to subtract, blocked entries)."""
        if not isinstance(f, Tensor):
            raise ValueError(f"selective_mask must be a tensor, got {type(f).__name__}")
        f = _as_4d(f, "selective_mask", n, m)
        if f.shape[0] not in (1, batch) or f.shape[1] not in (1, self.heads):
            raise ValueError(
                f"selective_mask of shape {tuple(f.shape)} does not fit batch={batch}, "
                f"heads={self.heads}; use (n, m), (batch, n, m) or (batch, heads, n, m)"
            )
        if f.dtype == torch.bool:
            return None, ~f
        if not f.is_floating_point():
            raise ValueError(
                f"selective_mask must be float (subtracted from the logits) or bool "
                f"(True = allowed), got {f.dtype}"
            )
        if torch.isnan(f).any():
            raise ValueError("selective_mask contains NaN; use -inf to remove a key")
        infinite = torch.isinf(f)
        penalty = torch.where(infinite, torch.zeros_like(f), f)
        return penalty, (infinite if bool(infinite.any()) else None)


def _one_of(name: str, value, seed_name: str, seed_value):
    if value is not None and seed_value is not None and value != seed_value:
        raise ValueError(f"{name}={value} and {seed_name}={seed_value} disagree; pass only one")
    return value if value is not None else seed_value
