"""Neural attention (DiGiugno & Mahmood 2025, arXiv:2502.17206)."""

import pytest
import torch

from eegattn.attention import build_attention
from eegattn.attention.neural import NeuralAttention

DIM, HEADS, PROJ = 24, 2, 4


def pair(chunk_size=4, **options):
    """A chunked and a naive module with identical weights."""
    torch.manual_seed(0)
    chunked = NeuralAttention(
        DIM, HEADS, projection_dim=PROJ, implementation="chunked", chunk_size=chunk_size, **options
    )
    naive = NeuralAttention(DIM, HEADS, projection_dim=PROJ, implementation="naive", **options)
    naive.load_state_dict(chunked.state_dict())
    return chunked, naive


def run(module, x, context=None, **masks):
    x = x.clone().requires_grad_(True)
    ctx = None if context is None else context.clone().requires_grad_(True)
    out = module(x, ctx, **masks)
    # a non-uniform loss so every output element matters differently
    (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    grads["x"] = x.grad
    if ctx is not None:
        grads["context"] = ctx.grad
    return out, grads


def assert_same(a, b):
    out_a, grads_a = a
    out_b, grads_b = b
    torch.testing.assert_close(out_a, out_b, atol=1e-5, rtol=1e-5)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        assert grads_a[name] is not None, name
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-5, rtol=1e-5, msg=name)


def test_structure_follows_the_paper():
    module = build_attention("neural", dim=256, heads=4)
    assert module.projection_dim == 2  # dim_head 64 // 32
    assert module.q_down.weight.shape == (2, 64) and module.k_down.weight.shape == (2, 64)
    assert module.score_in.weight.shape == (2, 4)
    assert module.score_hidden.weight.shape == (1, 2)
    assert module.score_out.weight.shape == (1, 1)
    for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
        assert getattr(module, name).weight.shape == (256, 256)
    # one scorer shared by all heads: no per-head copies
    dh, p = 64, 2
    scorer = 2 * (dh * p + p) + (2 * p * p + p) + (p * (p // 2) + p // 2) + (p // 2 + 1)
    assert sum(t.numel() for t in module.parameters()) == 4 * (256 * 256 + 256) + scorer


def test_too_small_projection_dim_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="projection_dim >= 2"):
        NeuralAttention(64, 4)  # dim_head 16 -> d' = 0
    with pytest.raises(ValueError, match="projection_dim >= 2"):
        NeuralAttention(64, 1, projection_dim=1)
    with pytest.raises(ValueError, match="implementation"):
        NeuralAttention(64, 1, projection_dim=2, implementation="fast")
    with pytest.raises(ValueError, match="chunk_size"):
        NeuralAttention(64, 1, projection_dim=2, chunk_size=0)


def test_naive_matches_a_per_pair_loop():
    torch.manual_seed(3)
    module = NeuralAttention(DIM, HEADS, projection_dim=PROJ, implementation="naive")
    x = torch.randn(1, 3, DIM)
    with torch.no_grad():
        out = module(x)
        dh = module.head_dim
        q = module.q_proj(x).view(1, 3, HEADS, dh)
        k = module.k_proj(x).view(1, 3, HEADS, dh)
        v = module.v_proj(x).view(1, 3, HEADS, dh)
        heads = []
        for h in range(HEADS):
            scores = torch.empty(3, 3)
            for i in range(3):
                for j in range(3):
                    z = torch.cat((module.q_down(q[0, i, h]), module.k_down(k[0, j, h])))
                    z = torch.relu(module.score_in(z))
                    z = torch.relu(module.score_hidden(z))
                    scores[i, j] = module.score_out(z)[0]  # no 1/sqrt(d) scaling
            heads.append(torch.softmax(scores, -1) @ v[0, :, h])
        expected = module.out_proj(torch.cat(heads, dim=-1))[None]
    torch.testing.assert_close(out, expected)


def test_chunked_equals_naive_self_attention():
    chunked, naive = pair(chunk_size=4)
    x = torch.randn(2, 11, DIM)  # 11 is not a multiple of 4
    assert_same(run(chunked, x), run(naive, x))


def test_chunked_equals_naive_with_causal_and_padding():
    chunked, naive = pair(chunk_size=3, causal=True)
    x = torch.randn(2, 10, DIM)
    padding = torch.ones(2, 10, dtype=torch.bool)
    padding[1, 6:] = False
    assert_same(run(chunked, x, key_padding_mask=padding), run(naive, x, key_padding_mask=padding))


def test_chunked_equals_naive_with_padding_only():
    chunked, naive = pair(chunk_size=4)
    x, ctx = torch.randn(2, 9, DIM), torch.randn(2, 6, DIM)
    padding = torch.ones(2, 6, dtype=torch.bool)
    padding[0, 4:] = False
    assert_same(
        run(chunked, x, ctx, key_padding_mask=padding),
        run(naive, x, ctx, key_padding_mask=padding),
    )


def test_chunked_equals_naive_cross_with_float_and_bool_masks():
    chunked, naive = pair(chunk_size=4)
    x, ctx = torch.randn(2, 7, DIM), torch.randn(2, 9, DIM)
    bias = torch.randn(2, 7, 9)
    bias[:, :, 0] = float("-inf")
    assert_same(run(chunked, x, ctx, attn_mask=bias), run(naive, x, ctx, attn_mask=bias))
    allowed = torch.rand(2, HEADS, 7, 9) > 0.3
    allowed[:, :, 2] = False  # a fully masked row in every head
    a = run(chunked, x, ctx, attn_mask=allowed)
    assert_same(a, run(naive, x, ctx, attn_mask=allowed))
    assert torch.isfinite(a[0]).all()
    assert all(torch.isfinite(g).all() for g in a[1].values())


def test_chunked_replays_dropout_in_backward():
    # with one chunk both draw the same dropout mask; the checkpoint must replay it
    chunked, naive = pair(chunk_size=64, dropout=0.3)
    x = torch.randn(2, 8, DIM)
    torch.manual_seed(5)
    a = run(chunked, x)
    torch.manual_seed(5)
    assert_same(a, run(naive, x))


def test_fully_masked_row_has_zero_attention():
    chunked, _ = pair()
    chunked.store_attention = True
    x = torch.randn(1, 5, DIM)
    allowed = torch.ones(5, 5, dtype=torch.bool)
    allowed[3] = False
    out = chunked(x, attn_mask=allowed)
    assert (chunked.last_attention[:, :, 3] == 0).all()
    assert (out[0, 3] == 0).all() and torch.isfinite(out).all()
    torch.testing.assert_close(
        chunked.last_attention[:, :, [0, 1, 2, 4]].sum(-1), torch.ones(1, 2, 4)
    )


def test_stored_attention_same_for_both_implementations():
    chunked, naive = pair(chunk_size=3)
    chunked.store_attention = naive.store_attention = True
    x = torch.randn(2, 8, DIM)
    chunked(x)
    naive(x)
    assert chunked.last_attention.shape == (2, HEADS, 8, 8)
    torch.testing.assert_close(chunked.last_attention, naive.last_attention)


def largest_saved_tensor(module, x):
    """Largest number of elements autograd keeps (outside checkpoints) for the backward."""
    sizes = []

    def pack(t):
        sizes.append(t.numel())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(x.requires_grad_(True)).sum().backward()
    return max(sizes)


def test_chunked_never_keeps_the_pairs_tensor():
    chunked, naive = pair(chunk_size=4)
    b, n = 2, 16
    x = torch.randn(b, n, DIM)
    pairs = b * HEADS * n * n * PROJ  # one chunk-free (b, h, n, n, d') tensor
    assert largest_saved_tensor(naive, x) >= pairs
    assert largest_saved_tensor(chunked, x) < b * HEADS * n * n  # not even the score matrix


@pytest.mark.parametrize("implementation", ["chunked", "naive"])
def test_zero_length_and_single_token(implementation):
    module = NeuralAttention(DIM, HEADS, projection_dim=PROJ, implementation=implementation)
    assert module(torch.randn(2, 0, DIM)).shape == (2, 0, DIM)
    x = torch.randn(2, 1, DIM)
    torch.testing.assert_close(module(x), module.out_proj(module.v_proj(x)))
    assert (module(torch.randn(2, 3, DIM), torch.randn(2, 0, DIM)) == 0).all()
