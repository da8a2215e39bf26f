"""Build sequence attention mechanisms by name.

Every registered class takes ``dim`` (model width) and ``heads`` as its first keyword
arguments, then its own options, and maps ``(batch, seq, dim)`` to ``(batch, seq, dim)``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

_REGISTRY: dict[str, type[nn.Module]] = {}


def register_attention(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``cls`` buildable as ``build_attention(name, ...)``."""

    def decorator(cls: type[nn.Module]) -> type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"attention name {name!r} is already registered")
        _REGISTRY[name] = cls
        cls.registry_name = name
        return cls

    return decorator


def available_attention() -> list[str]:
    """Names accepted by :func:`build_attention`, sorted."""
    return sorted(_REGISTRY)


def build_attention(name: str, dim: int, heads: int = 1, **options) -> nn.Module:
    """Build the sequence attention mechanism ``name``.

    Parameters
    ----------
    name : str
        One of :func:`available_attention` (``standard``, ``additive``, ``multiplicative``,
        ``local``, ``linear``, ``global``, ``selective``, ``neural``, ``sparse``).
    dim : int
        Model width: input and output are ``(batch, seq, dim)``.
    heads : int
        Number of heads (the sparse mechanism derives its own head count from the sequence
        length and ignores this unless it is given ``num_heads``).
    **options
        The mechanism's own keyword options (``causal``, ``dropout``, ``window``, ...).
    """
    try:
        cls = _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown attention {name!r}; choose one of {', '.join(available_attention())}"
        ) from None
    return cls(dim=dim, heads=heads, **options)
