"""Sparse token attention: tokens are shared out among heads and attend only within their head.

The sparse-attention challenge entry ("Sparse Multi-Head Attention Implementation", an
EEG 2025 challenge repository, October 2025; see docs/challenge.md): a random permutation
splits the ``n`` tokens into ``num_heads = max(1, int(scale_factor * n))`` groups; each group is
one head with the full hidden size (scaling ``1/sqrt(dim)``), attention runs inside each group, and
the inverse permutation restores the order. Differences from that entry, which fix its weaknesses:

* evaluation uses a fixed permutation per sequence length, drawn from a seed kept in a
  registered buffer (saved in the state dict), so inference is deterministic; training draws
  a fresh permutation per forward pass from torch's global RNG (``torch.manual_seed``
  reproduces it);
* lengths that do not divide evenly work: group sizes differ by at most one token;
* padded tokens (``key_padding_mask``) are masked: real tokens never attend to them.

The cost is ``O(n^2 / num_heads * dim)``, i.e. ``O(n * dim / scale_factor)``; it is a
regulariser more than a speed-up at EEG sequence lengths. Up to ``dense_max_tokens`` tokens
the same function runs as one dense ``(n, n)`` product under a block mask: at EEG lengths
(50 tokens) the groups' gather and scatter copies cost more than the dense scores.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from eegattn.attention import base
from eegattn.attention.dropout import Dropout
from eegattn.attention.registry import register_attention
from eegattn.utils.check import check_positive_int


def group_layout(perm: Tensor, num_groups: int) -> tuple[Tensor, Tensor, Tensor]:
    """Split the tokens of ``perm`` (a permutation of ``range(n)``) into ``num_groups`` groups
    of consecutive entries, sizes differing by at most one (the first ``n % num_groups`` groups
    get one more).

    Returns
    -------
    index : (groups, size) long
        Original position of each slot (padding slots repeat a valid position).
    valid : (groups, size) bool
        False for padding slots.
    slot_of_position : (n,) long
        Flat slot (``group * size + t``) holding each original position.
    """
    n = int(perm.shape[0])  # a Python int, also under torch.jit.trace
    base_size, extra = divmod(n, int(num_groups))
    size = base_size + (1 if extra else 0)
    sizes = torch.full((num_groups,), base_size, dtype=torch.long)
    sizes[:extra] += 1
    offsets = torch.cumsum(sizes, 0) - sizes
    t = torch.arange(size)
    valid = t[None, :] < sizes[:, None]
    flat = (offsets[:, None] + t[None, :]).clamp(max=n - 1)
    index = perm.cpu()[flat]
    slots = torch.arange(num_groups * size).view(num_groups, size)
    slot_of_position = torch.empty(n, dtype=torch.long)
    slot_of_position[index[valid]] = slots[valid]
    device = perm.device
    return index.to(device), valid.to(device), slot_of_position.to(device)


def _plain_linear(module: nn.Module) -> bool:
    return (
        type(module) is nn.Linear
        and module.bias is not None
        and not module._forward_hooks
        and not module._forward_pre_hooks
        and not module._backward_hooks
    )


@register_attention("sparse")
class SparseTokenAttention(base.SequenceAttention):
    """Self-attention within random token groups, one group per head (sparse-attention entry).

    Parameters
    ----------
    dim : int
        Model width (``hidden_size`` in the sparse-attention entry); every head has the full width.
    heads : int, optional
        Ignored (accepted for the registry): the head count follows the sequence length.
    causal : bool
        Within a group, a token sees only tokens at earlier or equal original positions.
    scale_factor : float
        ``num_heads = max(1, int(scale_factor * seq_len))``, capped at ``seq_len``.
    num_heads : int, optional
        Fixed head count instead (capped at ``seq_len``).
    dropout : float
        Dropout on the attention weights.
    seed : int
        Seed of the evaluation permutations, stored in the buffer ``permutation_seed``.

    ``forward(x, *, key_padding_mask=None, attn_mask=None)``: ``x`` (b, n, dim) -> (b, n, dim);
    ``key_padding_mask`` (b, n) True = real token; ``attn_mask`` (n, n) or (b, n, n), bool
    True = allowed or float added to the logits. ``last_attention`` is (b, 1, n, n): row ``i``
    holds the weights of token ``i`` over its group. A token with no allowed key outputs zeros.
    """

    supports_cross = False
    #: Sequences up to this length use the dense block-masked form (same outputs); longer ones
    #: gather the groups, whose cost grows as O(n * group size) instead of O(n^2).
    dense_max_tokens = 128

    def __init__(
        self,
        dim: int | None = None,
        heads: int | None = None,
        *,
        causal: bool = False,
        scale_factor: float = 0.5,
        num_heads: int | None = None,
        dropout: float = 0.0,
        seed: int = 0,
        hidden_size: int | None = None,
    ) -> None:
        super().__init__()
        if dim is not None and hidden_size is not None and dim != hidden_size:
            raise ValueError(f"dim={dim} and hidden_size={hidden_size} disagree; pass only one")
        dim = dim if dim is not None else hidden_size
        if dim is None:
            raise ValueError("SparseTokenAttention needs dim (or its alias hidden_size)")
        check_positive_int(dim, "dim")
        if isinstance(scale_factor, bool) or not isinstance(scale_factor, int | float):
            raise ValueError(f"scale_factor must be a number > 0, got {scale_factor!r}")
        if not 0 < scale_factor < math.inf:
            raise ValueError(f"scale_factor must be > 0 (e.g. 0.5), got {scale_factor!r}")
        if num_heads is not None:
            check_positive_int(num_heads, "num_heads")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.dim = dim
        self.causal = bool(causal)
        self.scale_factor = float(scale_factor)
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.dropout = Dropout(base.check_dropout(dropout))
        self.register_buffer("permutation_seed", torch.tensor(seed, dtype=torch.long))

    def heads_for(self, seq_len: int) -> int:
        """Number of heads (token groups) used for a sequence of ``seq_len`` tokens."""
        wanted = self.num_heads or max(1, int(self.scale_factor * seq_len))
        return min(wanted, seq_len)

    def eval_permutation(self, seq_len: int) -> Tensor:
        """The fixed evaluation permutation for ``seq_len`` (CPU), from ``permutation_seed``."""
        mixed = (int(self.permutation_seed) * 1_000_003 + int(seq_len)) % (1 << 63)
        # numpy, not a torch Generator: a traced model (submission export) then records the
        # permutation as a constant instead of a fresh random draw per call.
        order = np.random.default_rng(mixed).permutation(int(seq_len))
        return torch.from_numpy(order).long()

    def forward(
        self,
        x: Tensor,
        context: Tensor | None = None,
        *,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
    ) -> Tensor:
        if context is not None:
            raise ValueError(
                "sparse token attention is self-attention only (its groups split one "
                "sequence); pass context=None or use another mechanism for cross-attention"
            )
        base.check_sequences(x, None, self.dim)
        b, n = x.shape[0], int(x.shape[1])  # n fixed under tracing: the layout depends on it
        if n == 0:
            return self.out_proj(x)  # (b, 0, dim)
        if key_padding_mask is not None and (
            key_padding_mask.shape != (b, n) or key_padding_mask.dtype != torch.bool
        ):
            raise ValueError(
                f"key_padding_mask must be bool of shape (batch, seq) = {(b, n)}, True for "
                f"real tokens; got {key_padding_mask.dtype} {tuple(key_padding_mask.shape)}"
            )
        perm = torch.randperm(n) if self.training else self.eval_permutation(n)
        index, valid, slot_of_position = group_layout(perm.to(x.device), self.heads_for(n))
        if n <= self.dense_max_tokens and attn_mask is None:
            return self._dense_forward(x, index, valid, key_padding_mask)
        groups, size = index.shape

        def gather(t: Tensor) -> Tensor:  # (b, n, ...) -> (b, groups, size, ...)
            return t[:, index]

        q, k, v = (gather(t) for t in self._project_qkv(x))
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.dim)  # (b, groups, size, size)

        allowed = valid[None, :, None, :]
        if key_padding_mask is not None:
            allowed = allowed & gather(key_padding_mask)[:, :, None, :]
        if self.causal:
            allowed = allowed & (index[:, None, :] <= index[:, :, None])[None]
        if attn_mask is not None:
            logits, allowed = self._apply_attn_mask(attn_mask, index, b, n, logits, allowed)

        weights = base.masked_softmax(logits, allowed)
        if self.store_attention:
            self._keep(self._dense_weights(weights, index, valid, n))
        out = (self.dropout(weights) @ v).reshape(b, groups * size, self.dim)
        out = self.out_proj(out[:, slot_of_position])
        # a token with no allowed key outputs zeros, as in the other mechanisms
        allowed = allowed.expand(allowed.shape[0], groups, size, size)
        empty = (~allowed.any(-1)).reshape(-1, groups * size)[:, slot_of_position]
        return out.masked_fill(empty[..., None], 0.0) if bool(empty.any()) else out

    def _project_qkv(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """q, k, v (b, n, dim) each, from one (dim -> 3 dim) product: the same weights as the
        three projections, in one larger and faster matrix product. Projections that are not
        plain ``nn.Linear`` or carry hooks (inspection, pruning, quantisation) are called as
        modules instead, so the hooks fire."""
        projections = (self.q_proj, self.k_proj, self.v_proj)
        if not all(_plain_linear(p) for p in projections):
            return tuple(p(x) for p in projections)
        weight = torch.cat([self.q_proj.weight, self.k_proj.weight, self.v_proj.weight])
        bias = torch.cat([self.q_proj.bias, self.k_proj.bias, self.v_proj.bias])
        return F.linear(x, weight, bias).chunk(3, dim=-1)

    def _dense_forward(
        self, x: Tensor, index: Tensor, valid: Tensor, key_padding_mask: Tensor | None
    ) -> Tensor:
        """The grouped attention as one (b, n, n) product where only same-group pairs count."""
        n = x.shape[1]
        group_ids = torch.arange(index.shape[0], device=x.device)[:, None].expand_as(index)
        group_of = torch.empty(n, dtype=torch.long, device=x.device)
        group_of[index[valid]] = group_ids[valid]
        allowed = (group_of[:, None] == group_of[None, :])[None]  # (1, n, n)
        if self.causal:
            allowed = allowed & torch.ones(n, n, dtype=torch.bool, device=x.device).tril()
        if key_padding_mask is not None:
            allowed = allowed & key_padding_mask[:, None, :]  # (b, n, n)
        q, k, v = self._project_qkv(x)
        logits = q @ k.transpose(-2, -1) / math.sqrt(self.dim)  # (b, n, n)
        weights = base.masked_softmax(logits, allowed)
        if self.store_attention:
            self._keep(weights[:, None])
        out = self.out_proj(self.dropout(weights) @ v)
        empty = ~allowed.any(-1)  # a token with no allowed key outputs zeros
        return out.masked_fill(empty[..., None], 0.0) if bool(empty.any()) else out

    @staticmethod
    def _apply_attn_mask(attn_mask, index, b, n, logits, allowed):
        if attn_mask.dim() == 4 and attn_mask.shape[1] != 1:
            raise ValueError(
                "attn_mask has a heads axis but sparse attention's heads follow the sequence "
                "length; pass an (n, n) or (batch, n, n) mask"
            )
        mask = base.build_mask(b, n, n, attn_mask=attn_mask)[:, 0]  # (b|1, n, n)
        rows, cols = index[:, :, None], index[:, None, :]
        allowed = allowed & mask[:, rows, cols]
        bias = base.split_float_mask(attn_mask)
        if bias is not None:
            logits = logits + bias[:, 0][:, rows, cols]
        return logits, allowed

    @staticmethod
    def _dense_weights(weights: Tensor, index: Tensor, valid: Tensor, n: int) -> Tensor:
        """Group weights (b, groups, size, size) scattered into (b, 1, n, n)."""
        pair_valid = valid[:, :, None] & valid[:, None, :]
        rows = index[:, :, None].expand_as(pair_valid)[pair_valid]
        cols = index[:, None, :].expand_as(pair_valid)[pair_valid]
        dense = weights.new_zeros(weights.shape[0], n, n)
        dense[:, rows, cols] = weights[:, pair_valid]
        return dense[:, None]
