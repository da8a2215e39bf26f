"""Selective attention (Leviathan, Kalman & Matias 2024, arXiv:2410.02703) and the interface of a
public "Selective Attention Implementation" repository."""

import math

import pytest
import torch

from eegattn.attention import build_attention
from eegattn.attention.selective import SelectiveAttention, selective_penalty

DIM, HEADS = 16, 4


def make(**options) -> SelectiveAttention:
    torch.manual_seed(0)
    return SelectiveAttention(DIM, HEADS, **options)


def head_split(t, heads):
    b, n, d = t.shape
    return t.view(b, n, heads, d // heads).transpose(1, 2)


def reference(module, q_in, k_in, v_in, penalty=None, allowed=None):
    """softmax(QK^T/sqrt(d) - penalty) V written out from the module's weights.

    penalty: broadcastable to (b, h, n, m), finite; allowed: bool, True = allowed."""
    h = module.heads
    q = head_split(module.q_proj(q_in), h)
    k = head_split(module.k_proj(k_in), h)
    v = head_split(module.v_proj(v_in), h)
    logits = q @ k.transpose(-2, -1) / math.sqrt(module.head_dim)
    if penalty is not None:
        logits = logits - penalty
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    out = torch.softmax(logits, -1) @ v
    b, _, n, _ = out.shape
    return module.out_proj(out.transpose(1, 2).reshape(b, n, -1))


def test_constructor_accepts_library_and_public_implementation_names():
    assert SelectiveAttention(32, 8).heads == 8  # the public code's positional (d_model, n_heads)
    other_style = SelectiveAttention(d_model=32, n_heads=8, dropout=0.1)
    assert (other_style.dim, other_style.heads, other_style.dropout) == (32, 8, 0.1)
    built = build_attention("selective", dim=32, heads=4)
    assert isinstance(built, SelectiveAttention) and built.heads == 4
    with pytest.raises(ValueError, match="disagree"):
        SelectiveAttention(32, d_model=16)
    with pytest.raises(ValueError, match="divisible"):
        SelectiveAttention(30, 4)


def test_zero_penalty_equals_standard_attention():
    module = make()
    x, ctx = torch.randn(2, 5, DIM), torch.randn(2, 7, DIM)
    expected = reference(module, x, ctx, ctx)
    torch.testing.assert_close(module(x, ctx), expected)
    torch.testing.assert_close(module(x, ctx, ctx, selective_mask=torch.zeros(5, 7)), expected)


def test_zero_penalty_equals_library_standard_module():
    module = make()
    x, ctx = torch.randn(2, 5, DIM), torch.randn(2, 7, DIM)
    expected = module(x, ctx)
    standard = build_attention("standard", dim=DIM, heads=HEADS)
    standard.load_state_dict(module.state_dict())
    torch.testing.assert_close(standard(x, ctx), expected, atol=1e-5, rtol=1e-5)


def test_finite_penalty_is_subtracted():
    module = make()
    q, k, v = torch.randn(2, 5, DIM), torch.randn(2, 6, DIM), torch.randn(2, 6, DIM)
    f = torch.rand(2, HEADS, 5, 6) * 3
    torch.testing.assert_close(module(q, k, v, selective_mask=f), reference(module, q, k, v, f))
    # a larger penalty on one key lowers its weight
    module.store_attention = True
    module(q, k, v)
    before = module.last_attention[..., 2].clone()
    f = torch.zeros(5, 6)
    f[:, 2] = 2.0
    module(q, k, v, selective_mask=f)
    assert (module.last_attention[..., 2] < before).all()


def test_infinite_penalty_removes_key_and_bool_mask_is_true_allowed():
    module = make()
    module.store_attention = True
    q, k, v = torch.randn(2, 5, DIM), torch.randn(2, 6, DIM), torch.randn(2, 6, DIM)
    f = torch.zeros(5, 6)
    f[:, 3] = float("-inf")
    out = module(q, k, v, selective_mask=f)
    assert (module.last_attention[..., 3] == 0).all()
    allowed = torch.ones(5, 6, dtype=torch.bool)
    allowed[:, 3] = False
    torch.testing.assert_close(out, reference(module, q, k, v, allowed=allowed))
    torch.testing.assert_close(module(q, k, v, selective_mask=allowed), out)
    # the value of a removed key has no influence
    v2 = v.clone()
    v2[:, 3] += 10
    torch.testing.assert_close(module(q, k, v2, selective_mask=allowed), out)


def test_penalty_shapes_broadcast():
    module = make()
    q = k = v = torch.randn(2, 5, DIM)
    f2 = torch.rand(5, 5)
    out = module(q, k, v, selective_mask=f2)
    torch.testing.assert_close(module(q, k, v, selective_mask=f2.expand(2, 5, 5)), out)
    torch.testing.assert_close(module(q, k, v, selective_mask=f2.expand(2, HEADS, 5, 5)), out)
    with pytest.raises(ValueError, match="queries x keys"):
        module(q, k, v, selective_mask=torch.rand(5, 4))
    with pytest.raises(ValueError, match="does not fit"):
        module(q, k, v, selective_mask=torch.rand(2, HEADS + 1, 5, 5))
    with pytest.raises(ValueError, match="NaN"):
        module(q, k, v, selective_mask=torch.full((5, 5), float("nan")))


def test_public_implementation_readme_causal_example():
    batch, seq = 2, 6
    module = make()
    q, k, v = (torch.randn(batch, seq, DIM) for _ in range(3))
    # that README's expression: a float mask, 0 on and below the diagonal, -inf above
    seed_mask = (
        torch.triu(
            torch.ones((seq, seq), dtype=torch.bool) * float("-inf"),
            diagonal=1,
        )
        .unsqueeze(0)
        .unsqueeze(1)
        .expand(batch, HEADS, seq, seq)
    )
    causal = torch.ones(seq, seq, dtype=torch.bool).tril()
    expected = reference(module, q, k, v, allowed=causal)
    torch.testing.assert_close(module(q, k, v, selective_mask=seed_mask), expected)
    torch.testing.assert_close(module(q, k, v, selective_mask=causal), expected)
    causal_module = make(causal=True, selection=False)
    torch.testing.assert_close(causal_module(q, k, v), expected)


def test_fully_masked_row_gives_zero_attention_not_nan():
    module = make()
    module.store_attention = True
    x = torch.randn(1, 4, DIM, requires_grad=True)
    f = torch.zeros(4, 4)
    f[1] = float("-inf")
    out = module(x, x, x, selective_mask=f)
    assert torch.isfinite(out).all()
    assert (module.last_attention[:, :, 1] == 0).all()
    assert (out[0, 1] == 0).all() and (out[0, [0, 2, 3]] != 0).any(-1).all()
    out.sum().backward()
    assert torch.isfinite(x.grad).all()


def loop_penalty(logits0):
    """F[i, j] = sum_{k < i} S[k, j], S = relu(causal logits) with S[:, 0] = S[i, i] = 0."""
    logits0 = logits0.detach()
    n = logits0.shape[-1]
    f = torch.zeros(n, n, dtype=logits0.dtype)
    for i in range(n):
        for j in range(n):
            total = 0.0
            for k in range(i):
                if j <= k and j != 0 and j != k:
                    total += max(float(logits0[k, j]), 0.0)
            f[i, j] = total
    return f


def test_selection_matches_paper_definition():
    torch.manual_seed(1)
    module = SelectiveAttention(DIM, HEADS, causal=True)
    assert module.selection  # default on for causal
    module.store_attention = True
    x = torch.randn(2, 7, DIM) * 3
    out = module(x)
    q = head_split(module.q_proj(x), HEADS)
    k = head_split(module.k_proj(x), HEADS)
    logits = q @ k.transpose(-2, -1) / math.sqrt(module.head_dim)
    f = torch.stack([loop_penalty(logits[b, 0]) for b in range(2)])[:, None]
    assert (f > 0).any()  # the example really exercises the penalty
    causal = torch.ones(7, 7, dtype=torch.bool).tril()
    expected = reference(module, x, x, x, penalty=f, allowed=causal)
    torch.testing.assert_close(out, expected)
    plain = make(causal=True, selection=False)
    plain.load_state_dict(module.state_dict())
    assert not torch.allclose(plain(x), out)


def test_selection_never_masks_first_token_or_self():
    logits = torch.randn(3, 1, 6, 6).abs() + 1
    allowed = torch.ones(6, 6, dtype=torch.bool).tril()[None, None]
    f = selective_penalty(logits, allowed)
    assert (f[..., 0] == 0).all()
    assert (torch.diagonal(f, dim1=-2, dim2=-1) == 0).all()
    assert (f[..., 0, :] == 0).all()  # the first query has no earlier query
    assert (f[..., 5, 1:4] > 0).all()  # selected by queries 2..4
    assert (f[..., 5, 4] == 0).all()  # only query 5 itself could have selected key 4 yet


def test_selection_ignores_padding_tokens():
    torch.manual_seed(2)
    module = SelectiveAttention(DIM, HEADS, causal=True)
    x = torch.randn(1, 6, DIM)
    padding = torch.tensor([[True, True, True, True, False, False]])
    out = module(x, key_padding_mask=padding)
    x2 = x.clone()
    x2[:, 4:] = torch.randn(1, 2, DIM) * 5
    torch.testing.assert_close(module(x2, key_padding_mask=padding)[:, :4], out[:, :4])


def test_selection_needs_causal_self_attention():
    with pytest.raises(ValueError, match="causal"):
        SelectiveAttention(DIM, HEADS, selection=True)
    module = SelectiveAttention(DIM, HEADS, causal=True)
    with pytest.raises(ValueError, match="self-attention"):
        module(torch.randn(1, 4, DIM), torch.randn(1, 6, DIM))
    with pytest.raises(ValueError, match="self-attention"):
        module(torch.randn(1, 4, DIM), torch.randn(1, 6, DIM), torch.randn(1, 6, DIM))


def test_registry_masks_and_gradients():
    module = make(causal=True)
    x = torch.randn(2, 5, DIM, requires_grad=True)
    padding = torch.tensor([[True] * 5, [True, True, True, False, False]])
    out = module(x, key_padding_mask=padding)
    assert out.shape == (2, 5, DIM)
    out.square().sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in module.parameters())
    with pytest.raises(ValueError, match="width"):
        module(torch.randn(2, 5, DIM + 1))


@pytest.mark.parametrize("causal", [False, True])
def test_zero_length_and_single_token(causal):
    module = make(causal=causal)
    assert module(torch.randn(2, 0, DIM)).shape == (2, 0, DIM)
    x = torch.randn(2, 1, DIM)
    # one token attends only to itself: the output is its projected value
    torch.testing.assert_close(module(x), module.out_proj(module.v_proj(x)))
    if not causal:
        assert (module(torch.randn(2, 3, DIM), torch.randn(2, 0, DIM)) == 0).all()
