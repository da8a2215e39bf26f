"""A small causal transformer language model whose attention is any causal registry mechanism.

DiGiugno & Mahmood (2025, arXiv:2502.17206) trained a decoder-only LM on
WikiText-103 with neural attention in the first layer only and standard attention elsewhere;
``first_layer_only=True`` reproduces that placement for any mechanism. Every block is built
with ``causal=True``: token ``i`` sees tokens ``0..i`` only. ``selective`` then applies the
paper's selection (Leviathan et al. 2024, arXiv:2410.02703).

Layout: token embedding (+ a token shift, below) + learned position embedding -> ``depth``
pre-norm blocks ``x + attn(LN(x))``, ``x + MLP(LN(x))`` -> LayerNorm -> linear head tied to the
embedding.

Token shift (``token_shift=True``, default): each position also receives a learned linear map
of the previous token's embedding, as the "shift" of H3 (Fu et al. 2023) and RWKV. It is causal
and gives every position its predecessor for free, so a 2-block model on a CPU budget learns
associative recall in a few hundred steps instead of waiting thousands of steps for a
previous-token head to form with learned absolute positions; the look-up itself is still the
attention's job (local and linear attention still fail it). ``token_shift=False`` is the plain
transformer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from eegattn.attention import build_attention
from eegattn.attention.dropout import Dropout
from eegattn.models.vision import AttentionStoreMixin, TransformerBlock, attention_options_for
from eegattn.utils.check import check_positive_int

__all__ = ["CausalTransformerLM"]


class CausalTransformerLM(AttentionStoreMixin, nn.Module):
    """Decoder-only transformer LM.

    Parameters
    ----------
    vocab_size : int
        Token ids are in ``[0, vocab_size)`` (256 for the byte-level tokenizer).
    max_len : int
        Longest sequence (size of the position table).
    dim, depth, heads, mlp_ratio, dropout : transformer sizes.
    attention : str
        Registry mechanism built with ``causal=True`` (``standard``, ``neural``, ``selective``,
        ``linear``, ``local``, ...). A mechanism without causal support raises ValueError.
    attention_options : dict, optional
        Options of that mechanism (e.g. ``{"window": 8}`` for ``local``). Neural attention's
        ``projection_dim`` defaults to 8 at small widths (see
        :func:`eegattn.models.vision.attention_options_for`).
    first_layer_only : bool
        DiGiugno & Mahmood's placement: ``attention`` in the first block, ``standard`` in the
        others.
    token_shift : bool
        Add a learned map of the previous token's embedding at every position (see above).

    Shapes: ``forward(tokens (b, n) long) -> logits (b, n, vocab_size)``; the logits at
    position ``i`` predict token ``i + 1`` and depend on ``tokens[:, :i + 1]`` only.
    """

    def __init__(
        self,
        vocab_size: int,
        *,
        max_len: int = 256,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 4,
        dropout: float = 0.0,
        attention: str = "standard",
        attention_options: dict | None = None,
        first_layer_only: bool = False,
        token_shift: bool = True,
    ) -> None:
        super().__init__()
        check_positive_int(vocab_size, "vocab_size")
        check_positive_int(max_len, "max_len")
        check_positive_int(depth, "depth")
        check_positive_int(mlp_ratio, "mlp_ratio")
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.attention_name = attention
        self.first_layer_only = bool(first_layer_only)
        self.token_embed = nn.Embedding(vocab_size, dim)
        nn.init.normal_(self.token_embed.weight, std=0.02)  # tied head: keep first logits small
        self.pos_embed = nn.Parameter(torch.randn(1, max_len, dim) * 0.02)
        self.shift = nn.Linear(dim, dim, bias=False) if token_shift else None
        self.drop = Dropout(dropout)
        blocks = []
        for layer in range(depth):
            name = attention if layer == 0 or not first_layer_only else "standard"
            options = attention_options_for(
                name, dim, heads, attention_options if name == attention else None
            )
            mechanism = build_attention(name, dim=dim, heads=heads, causal=True, **options)
            blocks.append(TransformerBlock(dim, mechanism, mlp_ratio, dropout))
        self.blocks = nn.ModuleList(blocks)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.head.weight = self.token_embed.weight  # tied

    def forward(self, tokens: Tensor) -> Tensor:
        if not isinstance(tokens, Tensor) or tokens.dim() != 2:
            shape = tuple(tokens.shape) if isinstance(tokens, Tensor) else type(tokens).__name__
            raise ValueError(f"expected token ids of shape (batch, seq), got {shape}")
        if tokens.dtype not in (torch.long, torch.int32, torch.int64):
            raise ValueError(f"token ids must be integers (torch.long), got {tokens.dtype}")
        n = tokens.shape[1]
        if n > self.max_len:
            raise ValueError(
                f"sequence of {n} tokens is longer than max_len={self.max_len}; "
                f"build the model with max_len >= {n} or shorten the sequence"
            )
        if n and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ValueError(
                f"token ids must be in [0, {self.vocab_size}), got "
                f"[{int(tokens.min())}, {int(tokens.max())}]"
            )
        x = self.token_embed(tokens.long())
        if self.shift is not None:  # position i also sees token i - 1 (zeros before the first)
            x = x + self.shift(nn.functional.pad(x, (0, 0, 1, 0))[:, :-1])
        x = self.drop(x + self.pos_embed[:, :n])
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))
