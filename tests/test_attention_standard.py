"""Standard, scoring, local, linear and global attention against dense references."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from eegattn.attention.base import masked_softmax
from eegattn.attention.global_tokens import GlobalTokenAttention
from eegattn.attention.linear import LinearAttention, causal_linear_attention
from eegattn.attention.local import LocalAttention
from eegattn.attention.scoring import AdditiveAttention, MultiplicativeAttention
from eegattn.attention.standard import MultiHeadAttention, scaled_dot_product

DIM, HEADS = 16, 4


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def padding(b: int, m: int, real: list[int]) -> torch.Tensor:
    """(b, m) bool, True for the first ``real[i]`` keys of sample ``i``."""
    return torch.arange(m)[None, :] < torch.tensor(real)[:, None]


def band(n: int, window: int, causal: bool) -> torch.Tensor:
    i, j = torch.arange(n)[:, None], torch.arange(n)[None, :]
    return (j >= i - window) & (j <= i) if causal else (i - j).abs() <= window


def dense_twin(module: nn.Module) -> MultiHeadAttention:
    """A ``standard`` module with the same projections as ``module``."""
    twin = MultiHeadAttention(module.dim, module.heads)
    twin.load_state_dict(module.state_dict(), strict=False)
    return twin.eval()


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


# ---------------------------------------------------------------- standard


def torch_twin(module: MultiHeadAttention) -> nn.MultiheadAttention:
    mha = nn.MultiheadAttention(module.dim, module.heads, batch_first=True)
    with torch.no_grad():
        mha.in_proj_weight.copy_(
            torch.cat([module.q_proj.weight, module.k_proj.weight, module.v_proj.weight])
        )
        mha.in_proj_bias.copy_(
            torch.cat([module.q_proj.bias, module.k_proj.bias, module.v_proj.bias])
        )
        mha.out_proj.weight.copy_(module.out_proj.weight)
        mha.out_proj.bias.copy_(module.out_proj.bias)
    return mha.eval()


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_standard_equals_torch_multihead_attention(cross, padded, causal):
    ours = MultiHeadAttention(DIM, HEADS, causal=causal).eval()
    theirs = torch_twin(ours)
    x = torch.randn(3, 6, DIM)
    ctx = torch.randn(3, 9, DIM) if cross else None
    m = 9 if cross else 6
    kpm = padding(3, m, [m, m - 2, 4]) if padded else None
    # torch's float attn_mask; our causal aligns the last query with the last key
    torch_mask = None
    if causal:
        i, j = torch.arange(6)[:, None], torch.arange(m)[None, :]
        torch_mask = j > i + (m - 6)  # torch: True = blocked
    source = x if ctx is None else ctx
    expected, _ = theirs(
        x, source, source, key_padding_mask=None if kpm is None else ~kpm, attn_mask=torch_mask
    )
    got = ours(x, ctx, key_padding_mask=kpm)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_standard_float_and_per_head_masks_equal_torch():
    ours = MultiHeadAttention(DIM, HEADS).eval()
    theirs = torch_twin(ours)
    x = torch.randn(2, 5, DIM)
    bias = torch.randn(2, HEADS, 5, 5)
    bias[0, 1, 2, 3] = float("-inf")
    got = ours(x, attn_mask=bias)
    expected, _ = theirs(x, x, x, attn_mask=bias.reshape(2 * HEADS, 5, 5))
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    allowed = torch.rand(5, 5) > 0.3
    allowed.fill_diagonal_(True)
    expected, _ = theirs(x, x, x, attn_mask=~allowed)  # torch: True = blocked
    torch.testing.assert_close(ours(x, attn_mask=allowed), expected, rtol=1e-5, atol=1e-6)


def test_standard_store_attention_matches_fused_path_and_keeps_weights():
    module = MultiHeadAttention(DIM, HEADS, causal=True).eval()
    x, kpm = torch.randn(2, 7, DIM), padding(2, 7, [7, 3])
    bias = torch.randn(7, 7)
    fused = module(x, key_padding_mask=kpm, attn_mask=bias)
    module.store_attention = True
    explicit = module(x, key_padding_mask=kpm, attn_mask=bias)
    torch.testing.assert_close(explicit, fused, rtol=1e-5, atol=1e-6)
    weights = module.last_attention
    assert weights.shape == (2, HEADS, 7, 7)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, HEADS, 7))
    assert torch.all(weights[..., torch.triu(torch.ones(7, 7, dtype=torch.bool), 1)] == 0)
    assert torch.all(weights[1, ..., 3:] == 0)


def test_scaled_dot_product_gives_zero_rows_not_nan():
    q, k, v = torch.randn(2, 3, 4, 8), torch.randn(2, 3, 5, 8), torch.randn(2, 3, 5, 8)
    allowed = torch.rand(2, 3, 4, 5) > 0.4
    allowed[0, 1, 2] = False
    out = scaled_dot_product(q, k, v, allowed)
    expected = masked_softmax(q @ k.transpose(-2, -1) / 8**0.5, allowed) @ v
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)
    assert torch.all(out[0, 1, 2] == 0)
    float_mask = torch.zeros(2, 3, 4, 5).masked_fill(~allowed, float("-inf"))
    torch.testing.assert_close(scaled_dot_product(q, k, v, float_mask), out)
    assert torch.all(scaled_dot_product(q, k[:, :, :0], v[:, :, :0]) == 0)


def test_standard_dropout_acts_only_in_training():
    module = MultiHeadAttention(DIM, HEADS, dropout=0.5)
    x = torch.randn(2, 6, DIM)
    assert not torch.allclose(module(x), module(x))
    module.eval()
    torch.testing.assert_close(module(x), module(x), rtol=0, atol=0)


def test_standard_rejects_bad_masks():
    module = MultiHeadAttention(DIM, HEADS)
    x = torch.randn(2, 5, DIM)
    with pytest.raises(ValueError, match="batch size"):
        module(x, attn_mask=torch.ones(3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="heads"):
        module(x, attn_mask=torch.ones(2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="NaN"):
        module(x, attn_mask=torch.full((5, 5), float("nan")))
    with pytest.raises(ValueError, match="boolean"):
        module(x, key_padding_mask=torch.ones(2, 5))
    with pytest.raises(ValueError, match="causal"):
        MultiHeadAttention(DIM, HEADS, causal="yes")


# ---------------------------------------------------------------- scoring


def reference(module, x, ctx, kpm, logits_fn, causal=False):
    """Dense attention with ``logits_fn(q, k)`` through the module's projections."""
    source = x if ctx is None else ctx
    q, k, v = module._project(x, source)
    n, m = x.shape[1], source.shape[1]
    allowed = torch.ones(1, 1, n, m, dtype=torch.bool)
    if kpm is not None:
        allowed = allowed & kpm[:, None, None, :]
    if causal:
        allowed = allowed & (torch.arange(m)[None, :] <= torch.arange(n)[:, None] + m - n)
    out = masked_softmax(logits_fn(q, k), allowed) @ v
    return module.out_proj(out.transpose(1, 2).reshape(x.shape[0], n, module.dim))


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("causal", [False, True])
def test_additive_equals_bahdanau_formula(cross, causal):
    module = AdditiveAttention(DIM, HEADS, causal=causal).eval()
    x = torch.randn(2, 5, DIM)
    ctx = torch.randn(2, 7, DIM) if cross else None
    kpm = padding(2, 7 if cross else 5, [4, 5])
    w = module.score_vector  # (h, d)

    def bahdanau(q, k):  # loop over key positions: v^T tanh(W1 q + W2 k)
        cols = [
            (torch.tanh(q + k[:, :, j : j + 1]) * w[None, :, None]).sum(-1)
            for j in range(k.shape[2])
        ]
        return torch.stack(cols, dim=-1)

    expected = reference(module, x, ctx, kpm, bahdanau, causal)
    torch.testing.assert_close(module(x, ctx, key_padding_mask=kpm), expected)


@pytest.mark.parametrize("cross", [False, True])
def test_additive_query_chunks_equal_all_pairs_in_outputs_and_gradients(cross):
    torch.manual_seed(0)
    whole = AdditiveAttention(DIM, HEADS, causal=not cross)
    chunked = AdditiveAttention(DIM, HEADS, causal=not cross)
    chunked.load_state_dict(whole.state_dict())
    x = torch.randn(2, 9, DIM)
    ctx = torch.randn(2, 7, DIM) if cross else None
    m = 7 if cross else 9
    # one chunk's (b, h, chunk, m, d) tanh may hold 2 query rows: 5 chunks, the last uneven
    chunked.chunk_elements = 2 * 2 * HEADS * m * (DIM // HEADS)
    calls = []
    chunked._pair_scores = lambda q, k, f=chunked._pair_scores: calls.append(q.shape[2]) or f(q, k)
    grads = []
    for module in (whole, chunked):
        out = module(x, ctx)
        out.square().sum().backward()
        grads.append([p.grad for p in module.parameters()])
        if module is whole:
            expected = out
    torch.testing.assert_close(out, expected)
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b)
    assert calls[:5] == [2, 2, 2, 2, 1]  # forward chunks (backward recomputes them)


def test_multiplicative_dot_scaled_equals_standard_and_unscaled_differs():
    x, kpm = torch.randn(2, 6, DIM), padding(2, 6, [6, 2])
    luong = MultiplicativeAttention(DIM, HEADS, score="dot", scale=True, causal=True).eval()
    standard = MultiHeadAttention(DIM, HEADS, causal=True).eval()
    standard.load_state_dict(luong.state_dict())
    torch.testing.assert_close(luong(x, key_padding_mask=kpm), standard(x, key_padding_mask=kpm))
    luong.use_scale = False
    expected = reference(luong, x, None, kpm, lambda q, k: q @ k.transpose(-2, -1), causal=True)
    torch.testing.assert_close(luong(x, key_padding_mask=kpm), expected)
    assert not torch.allclose(luong(x, key_padding_mask=kpm), standard(x, key_padding_mask=kpm))


def test_multiplicative_general_uses_its_matrix():
    module = MultiplicativeAttention(DIM, HEADS, score="general").eval()
    x, ctx = torch.randn(2, 4, DIM), torch.randn(2, 6, DIM)
    dot = MultiplicativeAttention(DIM, HEADS, score="dot").eval()
    dot.load_state_dict(module.state_dict(), strict=False)
    torch.testing.assert_close(module(x, ctx), dot(x, ctx))  # identity at initialisation
    with torch.no_grad():
        module.score_weight.normal_()
    weight = module.score_weight
    expected = reference(module, x, ctx, None, lambda q, k: q @ weight @ k.transpose(-2, -1))
    torch.testing.assert_close(module(x, ctx), expected)
    with pytest.raises(ValueError, match="score"):
        MultiplicativeAttention(DIM, HEADS, score="cosine")


# ---------------------------------------------------------------- local


@pytest.mark.parametrize(
    ("n", "window", "block_size", "causal"),
    [
        (1, 2, None, False),
        (7, 0, 2, False),
        (13, 3, 5, False),
        (13, 3, 4, True),
        (20, 30, None, True),
        (33, 4, None, False),
    ],
)
def test_local_equals_dense_band_attention(n, window, block_size, causal):
    module = LocalAttention(DIM, HEADS, window=window, block_size=block_size, causal=causal).eval()
    twin = dense_twin(module)
    x = torch.randn(2, n, DIM)
    kpm = padding(2, n, [n, max(1, n - 3)])
    expected = twin(x, key_padding_mask=kpm, attn_mask=band(n, window, causal))
    torch.testing.assert_close(module(x, key_padding_mask=kpm), expected, rtol=1e-5, atol=1e-6)


def test_local_with_attn_mask_bias_and_stored_weights():
    module = LocalAttention(DIM, HEADS, window=2, block_size=3).eval()
    twin = dense_twin(module)
    x = torch.randn(2, 9, DIM)
    bias = torch.randn(2, HEADS, 9, 9)
    bias[..., 4, 5] = float("-inf")
    dense_bias = bias.masked_fill(~band(9, 2, False), float("-inf"))
    module.store_attention = twin.store_attention = True
    torch.testing.assert_close(module(x, attn_mask=bias), twin(x, attn_mask=dense_bias))
    torch.testing.assert_close(module.last_attention, twin.last_attention)


def test_local_window_with_only_padding_outputs_zeros():
    module = LocalAttention(DIM, HEADS, window=1, causal=True).eval()
    x = torch.randn(1, 6, DIM)
    kpm = torch.tensor([[False, False, False, True, True, True]])
    out = module(x, key_padding_mask=kpm)
    assert torch.all(out[0, :3] == 0) and torch.all(out[0, 3:] != 0)


def test_local_memory_grows_with_window_not_length():
    module = LocalAttention(8, 1, window=4).eval()
    x = torch.randn(1, 512, 8)
    with torch.no_grad(), LargestTensor() as spy:
        module(x)
    assert spy.largest < 512 * 512 // 8


def test_local_refuses_cross_attention_and_bad_window():
    module = LocalAttention(DIM, HEADS)
    with pytest.raises(ValueError, match="self-attention"):
        module(torch.randn(2, 4, DIM), torch.randn(2, 4, DIM))
    with pytest.raises(ValueError, match="window"):
        LocalAttention(DIM, HEADS, window=-1)


# ---------------------------------------------------------------- linear


def linear_reference(module, x, ctx, allowed):
    """Dense ``phi(Q) phi(K)^T`` masked by ``allowed`` (broadcastable), row-normalised."""
    source = x if ctx is None else ctx
    q, k, v = module._project(x, source)
    scores = (module.feature_map(q) @ module.feature_map(k).transpose(-2, -1)) * allowed
    out = (scores / scores.sum(-1, keepdim=True)).nan_to_num(0.0)  # 0/0: query saw nothing
    return module.out_proj((out @ v).transpose(1, 2).reshape(x.shape[0], x.shape[1], module.dim))


@pytest.mark.parametrize(("n", "chunk_size"), [(1, 4), (10, 1), (10, 3), (10, 64), (16, 4)])
def test_causal_linear_equals_masked_dense(n, chunk_size):
    module = LinearAttention(DIM, HEADS, causal=True, chunk_size=chunk_size).eval()
    x = torch.randn(2, n, DIM)
    kpm = padding(2, n, [n, max(1, n - 2)])
    allowed = band(n, n, causal=True)[None, None] & kpm[:, None, None, :]
    expected = linear_reference(module, x, None, allowed)
    got = module(x, key_padding_mask=kpm)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("n", "m"), [(4, 7), (7, 4)])
def test_causal_linear_cross_aligns_at_the_end(n, m):
    module = LinearAttention(DIM, HEADS, causal=True, chunk_size=3).eval()
    x, ctx = torch.randn(2, n, DIM), torch.randn(2, m, DIM)
    allowed = torch.arange(m)[None, :] <= torch.arange(n)[:, None] + (m - n)
    expected = linear_reference(module, x, ctx, allowed)
    got = module(x, ctx)
    if n > m:  # the first n - m queries see no key: zeros, not the bias of out_proj
        expected[:, : n - m] = 0
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_noncausal_linear_equals_dense_with_padding_and_masks():
    module = LinearAttention(DIM, HEADS).eval()
    x, ctx = torch.randn(3, 5, DIM), torch.randn(3, 8, DIM)
    kpm = padding(3, 8, [8, 3, 0])
    expected = linear_reference(module, x, ctx, kpm[:, None, None, :])
    got = module(x, ctx, key_padding_mask=kpm)
    torch.testing.assert_close(got[:2], expected[:2], rtol=1e-5, atol=1e-5)
    assert torch.all(got[2] == 0)
    allowed = torch.rand(5, 8) > 0.3
    allowed[:, 0] = True
    expected = linear_reference(module, x, ctx, allowed & kpm[:1, None, None, :])
    got = module(x, ctx, key_padding_mask=kpm, attn_mask=allowed)
    torch.testing.assert_close(got[:1], expected[:1], rtol=1e-5, atol=1e-5)
    float_mask = torch.zeros(5, 8).masked_fill(~allowed, float("-inf"))
    torch.testing.assert_close(
        module(x, ctx, attn_mask=float_mask), module(x, ctx, attn_mask=allowed)
    )
    with pytest.raises(ValueError, match="float bias"):
        module(x, ctx, attn_mask=torch.randn(5, 8))


def test_linear_feature_maps_and_stored_weights():
    relu = LinearAttention(DIM, HEADS, feature_map="relu").eval()
    x = torch.randn(2, 6, DIM)
    expected = linear_reference(relu, x, None, torch.ones(1))
    torch.testing.assert_close(relu(x), expected, rtol=1e-5, atol=1e-5)
    custom = LinearAttention(DIM, HEADS, feature_map=torch.exp).eval()
    custom.load_state_dict(relu.state_dict())
    custom.store_attention = True
    out = custom(x)
    q, k, _ = custom._project(x, x)
    scores = torch.exp(q) @ torch.exp(k).transpose(-2, -1)
    weights = scores / scores.sum(-1, keepdim=True)
    torch.testing.assert_close(custom.last_attention, weights, rtol=1e-5, atol=1e-6)
    custom.store_attention = False
    torch.testing.assert_close(custom(x), out, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="feature_map"):
        LinearAttention(DIM, HEADS, feature_map="softplus")


def test_causal_linear_memory_is_chunked():
    phi = torch.rand(1, 1, 1024, 4)
    with LargestTensor() as spy:
        causal_linear_attention(phi, phi, phi, chunk_size=32)
    assert spy.largest <= 1024 * 32


# ---------------------------------------------------------------- global


def global_index_mask(n, window, index, causal):
    is_global = torch.zeros(n, dtype=torch.bool)
    is_global[list(index)] = True
    allowed = band(n, window, False) | is_global[:, None] | is_global[None, :]
    return allowed & band(n, n, True) if causal else allowed


@pytest.mark.parametrize(
    ("n", "window", "indices", "causal"),
    [(9, 1, 1, False), (9, 2, [0, 4, 8], False), (12, 1, [2, 7], True), (5, 0, [4], False)],
)
def test_global_indices_equal_dense_attention(n, window, indices, causal):
    module = GlobalTokenAttention(
        DIM, HEADS, window=window, global_indices=indices, block_size=4, causal=causal
    ).eval()
    twin = dense_twin(module)
    index = range(indices) if isinstance(indices, int) else indices
    x, kpm = torch.randn(2, n, DIM), padding(2, n, [n, n - 2])
    mask = global_index_mask(n, window, index, causal)
    module.store_attention = twin.store_attention = True
    expected = twin(x, key_padding_mask=kpm, attn_mask=mask)
    got = module(x, key_padding_mask=kpm)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(module.last_attention, twin.last_attention, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_learned_global_tokens_equal_dense_attention_over_extended_sequence(causal):
    g, n, window = 2, 10, 2
    module = GlobalTokenAttention(DIM, HEADS, window=window, num_global=g, causal=causal).eval()
    twin = dense_twin(module)
    x, kpm = torch.randn(2, n, DIM), padding(2, n, [n, 6])
    extended = torch.cat([module.global_tokens.expand(2, -1, -1), x], dim=1)
    mask = torch.ones(n + g, n + g, dtype=torch.bool)
    mask[g:, g:] = band(n, window, causal)
    ext_kpm = torch.cat([torch.ones(2, g, dtype=torch.bool), kpm], dim=1)
    expected = twin(extended, key_padding_mask=ext_kpm, attn_mask=mask)[:, g:]
    # documented: a query with no allowed *input* key outputs zeros (here sample 1, rows 8, 9)
    no_input_key = ~(band(n, window, causal)[None] & kpm[:, None, :]).any(-1)
    assert no_input_key.sum() == 2
    expected = expected.masked_fill(no_input_key[..., None], 0.0)
    got = module(x, key_padding_mask=kpm)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_global_attn_mask_bias_matches_dense():
    module = GlobalTokenAttention(DIM, HEADS, window=1, global_indices=[3]).eval()
    twin = dense_twin(module)
    x = torch.randn(2, 8, DIM)
    bias = torch.randn(2, 1, 8, 8)
    bias[0, 0, 3, 5] = float("-inf")
    dense_bias = bias.masked_fill(~global_index_mask(8, 1, [3], False), float("-inf"))
    torch.testing.assert_close(module(x, attn_mask=bias), twin(x, attn_mask=dense_bias))


def test_global_fully_padded_sample_outputs_zeros_and_memory_stays_linear():
    module = GlobalTokenAttention(8, 2, window=3, num_global=2).eval()
    x = torch.randn(2, 512, 8)
    kpm = torch.ones(2, 512, dtype=torch.bool)
    kpm[1] = False
    with torch.no_grad(), LargestTensor() as spy:
        out = module(x, key_padding_mask=kpm)
    assert torch.all(out[1] == 0) and torch.isfinite(out).all()
    assert spy.largest < 512 * 512 // 4


def test_global_rejects_bad_options():
    with pytest.raises(ValueError, match="not both"):
        GlobalTokenAttention(DIM, HEADS, num_global=2, global_indices=[0])
    with pytest.raises(ValueError, match="repeated"):
        GlobalTokenAttention(DIM, HEADS, global_indices=[1, 1])
    module = GlobalTokenAttention(DIM, HEADS, global_indices=[0, 6])
    with pytest.raises(ValueError, match="outside a sequence of length 4"):
        module(torch.randn(1, 4, DIM))
    with pytest.raises(ValueError, match="self-attention"):
        module(torch.randn(1, 8, DIM), torch.randn(1, 8, DIM))


def test_scoring_local_linear_global_train_with_dropout():
    for module in [
        AdditiveAttention(DIM, HEADS, dropout=0.3),
        LocalAttention(DIM, HEADS, window=2, dropout=0.3),
        LinearAttention(DIM, HEADS, dropout=0.3),
        GlobalTokenAttention(DIM, HEADS, window=2, global_indices=[0], dropout=0.3),
    ]:
        x = torch.randn(2, 6, DIM)
        loss = F.mse_loss(module(x), torch.zeros(2, 6, DIM))
        loss.backward()
        assert all(p.grad is not None for p in module.parameters())
        assert not torch.allclose(module(x), module(x)), type(module).__name__
