"""Domain-agnostic attention mechanisms, one family per file.

Sequence mechanisms map ``(batch, seq, dim)`` to ``(batch, seq, dim)`` and are built by name
with :func:`build_attention`. Boolean masks everywhere are True where attention is allowed.
"""

from eegattn.attention import (  # noqa: F401  (imported to register the mechanisms)
    global_tokens,
    linear,
    local,
    neural,
    scoring,
    selective,
    sparse,
    standard,
)
from eegattn.attention.gates import ChannelAttention, TemporalAttention
from eegattn.attention.inattention import InattentionDropout, StackedInattentionDropout
from eegattn.attention.registry import available_attention, build_attention, register_attention

__all__ = [
    "ChannelAttention",
    "InattentionDropout",
    "StackedInattentionDropout",
    "TemporalAttention",
    "available_attention",
    "build_attention",
    "register_attention",
]
