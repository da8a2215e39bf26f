"""The contract every registered sequence attention mechanism keeps (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import pytest
import torch

from eegattn.attention import available_attention, build_attention

DIM, HEADS = 32, 4
NAMES = [
    "standard", "additive", "multiplicative", "local", "linear", "global",
    "selective", "neural", "sparse",
]  # fmt: skip
# Options a mechanism needs at dim=32, heads=4: neural's default d' = dim_head // 32 is 0. With
# d' = 2 its score MLP has a single ReLU unit in the middle, dead for ~half of the random inits
# (then no gradient reaches q_proj); d' = dim_head = 8 keeps it alive.
OPTIONS = {"neural": {"projection_dim": 8}}


def build(name: str, **options):
    torch.manual_seed(0)
    return build_attention(name, dim=DIM, heads=HEADS, **{**OPTIONS.get(name, {}), **options})


def inputs(b: int = 2, n: int = 6, m: int | None = None):
    torch.manual_seed(1)
    x = torch.randn(b, n, DIM)
    return x, (None if m is None else torch.randn(b, m, DIM))


def contexts(module):
    """Self-attention always; cross-attention where the mechanism supports it."""
    return ["self", "cross"] if module.supports_cross else ["self"]


def test_every_documented_name_is_registered():
    assert sorted(NAMES) == available_attention()


@pytest.mark.parametrize("name", NAMES)
def test_is_a_sequence_attention(name):
    from eegattn.attention.base import SequenceAttention

    module = build(name)
    assert isinstance(module, SequenceAttention)
    assert module.registry_name == name


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, 1, 7])
def test_shapes_and_short_sequences(name, n):
    module = build(name).eval()
    x, _ = inputs(n=n)
    out = module(x)
    assert out.shape == (2, n, DIM)
    assert torch.isfinite(out).all()
    if module.supports_cross:
        x, ctx = inputs(n=n, m=5)
        assert module(x, ctx).shape == (2, n, DIM)
        x, ctx = inputs(n=3, m=n)
        out = module(x, ctx)
        assert out.shape == (2, 3, DIM) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NAMES)
def test_padded_key_has_no_influence(name):
    module = build(name).eval()
    for kind in contexts(module):
        x, ctx = inputs(n=6, m=8 if kind == "cross" else None)
        source = x if ctx is None else ctx
        m = source.shape[1]
        kpm = torch.ones(2, m, dtype=torch.bool)
        kpm[0, -2:] = False
        changed = source.clone()
        changed[0, -2:] = 10 * torch.randn(2, DIM) + 5
        with torch.no_grad():
            before = module(x, ctx, key_padding_mask=kpm)
            after = (
                module(changed, key_padding_mask=kpm)
                if ctx is None
                else module(x, changed, key_padding_mask=kpm)
            )
        # in self-attention the padded positions are also queries: compare the real ones
        rows = slice(0, 4) if ctx is None else slice(None)
        torch.testing.assert_close(after[0, rows], before[0, rows], rtol=0, atol=1e-5)
        torch.testing.assert_close(after[1], before[1], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_fully_masked_rows_are_finite_zeros(name):
    module = build(name).eval()
    for kind in contexts(module):
        x, ctx = inputs(n=5, m=7 if kind == "cross" else None)
        m = 5 if ctx is None else 7
        kpm = torch.ones(2, m, dtype=torch.bool)
        kpm[1] = False
        out = module(x, ctx, key_padding_mask=kpm)
        assert torch.isfinite(out).all()
        assert torch.all(out[1] == 0), f"{name} ({kind}): a sample with no real key must give 0"
        assert not torch.all(out[0] == 0)


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter(name):
    module = build(name).train()
    x, _ = inputs(n=6)
    x.requires_grad_(True)
    out = module(x)
    (out * torch.randn_like(out)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    for pname, p in module.named_parameters():
        assert p.grad is not None, f"{name}: no gradient reached {pname}"
        assert torch.isfinite(p.grad).all(), f"{name}: non-finite gradient in {pname}"
        # a key bias shifts all of a query's dot-product logits equally: softmax ignores it
        if pname != "k_proj.bias":
            assert p.grad.abs().sum() > 0, f"{name}: zero gradient for {pname}"


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_in_eval(name):
    module = build(name).eval()
    x, _ = inputs(n=9)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module(x), rtol=0, atol=0)


@pytest.mark.parametrize("name", NAMES)
def test_causal_queries_ignore_the_future(name):
    module = build(name, causal=True).eval()
    if not module.supports_causal:
        pytest.skip(f"{name} documents supports_causal = False")
    x, _ = inputs(n=8)
    changed = x.clone()
    changed[:, 5:] = torch.randn(2, 3, DIM)
    with torch.no_grad():
        torch.testing.assert_close(module(changed)[:, :5], module(x)[:, :5], rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_dim_not_divisible_by_heads_raises(name):
    if name == "sparse":
        pytest.skip("sparse ignores heads (each head keeps the full width, as in the entry)")
    with pytest.raises(ValueError, match="divisible"):
        build_attention(name, dim=30, heads=4, **OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", NAMES)
def test_two_dimensional_input_raises(name):
    module = build(name)
    with pytest.raises(ValueError, match="shape"):
        module(torch.randn(6, DIM))


@pytest.mark.parametrize("name", NAMES)
def test_mismatched_cross_batch_raises(name):
    module = build(name)
    if not module.supports_cross:
        with pytest.raises(ValueError):
            module(*inputs(n=4, m=4))
        pytest.skip(f"{name} documents supports_cross = False (and refuses a context)")
    x, _ = inputs(b=2, n=4)
    _, ctx = inputs(b=3, m=5)
    with pytest.raises(ValueError, match="batch"):
        module(x, ctx)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_key_padding_mask_shape_raises(name):
    module = build(name)
    x, _ = inputs(n=6)
    with pytest.raises(ValueError, match="key_padding_mask"):
        module(x, key_padding_mask=torch.ones(2, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="key_padding_mask"):
        module(x, key_padding_mask=torch.ones(6, dtype=torch.bool))


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="standard"):
        build_attention("nope", dim=DIM)
