"""Sparse token attention (the sparse-attention challenge entry): tokens split among heads,
attention within groups."""

import math

import pytest
import torch

from eegattn.attention import build_attention
from eegattn.attention.sparse import SparseTokenAttention, group_layout

DIM = 8


def make(**options) -> SparseTokenAttention:
    torch.manual_seed(0)
    return SparseTokenAttention(DIM, **options)


def groups_of(module, n):
    """Original positions of each eval group, as sets."""
    index, valid, _ = group_layout(module.eval_permutation(n), module.heads_for(n))
    return [set(index[g][valid[g]].tolist()) for g in range(index.shape[0])]


def test_shapes_parameters_and_names():
    module = make()
    assert module(torch.randn(3, 10, DIM)).shape == (3, 10, DIM)
    names = {name for name, _ in module.named_parameters()}
    assert names == {f"{p}_proj.{w}" for p in ("q", "k", "v", "out") for w in ("weight", "bias")}
    assert sum(p.numel() for p in module.parameters()) == 4 * (DIM * DIM + DIM)
    entry_style = SparseTokenAttention(hidden_size=DIM, scale_factor=0.25)
    assert entry_style.dim == DIM and entry_style.heads_for(20) == 5
    built = build_attention("sparse", dim=DIM, heads=4)  # heads ignored
    assert isinstance(built, SparseTokenAttention) and built.heads_for(50) == 25
    assert SparseTokenAttention(DIM, num_heads=7).heads_for(5) == 5  # capped at seq_len
    assert make().heads_for(1) == 1


def test_bad_options_and_inputs():
    with pytest.raises(ValueError, match="scale_factor"):
        SparseTokenAttention(DIM, scale_factor=0)
    with pytest.raises(ValueError, match="disagree"):
        SparseTokenAttention(DIM, hidden_size=DIM * 2)
    with pytest.raises(ValueError, match="self-attention only"):
        make()(torch.randn(1, 4, DIM), torch.randn(1, 4, DIM))
    assert SparseTokenAttention.supports_cross is False
    with pytest.raises(ValueError, match="key_padding_mask"):
        make()(torch.randn(1, 4, DIM), key_padding_mask=torch.ones(1, 5, dtype=torch.bool))


@pytest.mark.parametrize("n, groups", [(12, 3), (11, 3), (7, 7), (10, 4), (5, 1)])
def test_groups_partition_tokens_evenly(n, groups):
    perm = torch.randperm(n)
    index, valid, slot_of_position = group_layout(perm, groups)
    members = index[valid].tolist()
    assert sorted(members) == list(range(n))  # every token in exactly one group
    sizes = valid.sum(1)
    assert sizes.max() - sizes.min() <= 1
    flat = index.reshape(-1)
    assert (flat[slot_of_position] == torch.arange(n)).all()


def test_eval_is_deterministic_and_survives_state_dict_round_trip():
    module = make(seed=3).eval()
    x = torch.randn(2, 11, DIM)
    out = module(x)
    torch.testing.assert_close(module(x), out)
    assert "permutation_seed" in module.state_dict()
    other = SparseTokenAttention(DIM, seed=99)
    other.load_state_dict(module.state_dict())
    other.eval()
    torch.testing.assert_close(other(x), out)
    assert torch.equal(other.eval_permutation(11), module.eval_permutation(11))
    # another seed gives another grouping
    assert not torch.equal(
        SparseTokenAttention(DIM, seed=4).eval_permutation(40), module.eval_permutation(40)
    )


def test_training_draws_fresh_permutations_reproducibly():
    module = make().train()
    x = torch.randn(2, 12, DIM)
    torch.manual_seed(7)
    first = module(x)
    second = module(x)
    assert not torch.allclose(first, second)
    torch.manual_seed(7)
    torch.testing.assert_close(module(x), first)


def test_each_token_attends_only_within_its_group():
    module = make().eval()
    n = 11  # 5 groups of sizes 3, 2, 2, 2, 2
    x = torch.randn(1, n, DIM)
    out = module(x)
    groups = groups_of(module, n)
    assert sorted(len(g) for g in groups) == [2, 2, 2, 2, 3]
    for p in range(n):
        x2 = x.clone()
        x2[0, p] += 3.0
        changed = ((module(x2) - out).abs().amax(-1) > 1e-6)[0]
        group = next(g for g in groups if p in g)
        assert set(torch.nonzero(changed).flatten().tolist()) == group


def test_single_group_is_full_attention():
    module = make(num_heads=1).eval()
    x = torch.randn(2, 6, DIM)
    q, k, v = module.q_proj(x), module.k_proj(x), module.v_proj(x)
    weights = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(DIM), -1)
    torch.testing.assert_close(module(x), module.out_proj(weights @ v))


def test_padded_tokens_have_no_influence():
    module = make(scale_factor=0.25)
    x = torch.randn(2, 12, DIM)
    padding = torch.ones(2, 12, dtype=torch.bool)
    padding[0, 8:] = False
    padding[1, 3:] = False
    x2 = x.clone()
    x2[~padding] = torch.randn(int((~padding).sum()), DIM) * 10
    for mode in ("eval", "train"):
        getattr(module, mode)()
        torch.manual_seed(1)
        out = module(x, key_padding_mask=padding)
        torch.manual_seed(1)
        out2 = module(x2, key_padding_mask=padding)
        torch.testing.assert_close(out2[padding], out[padding])
        assert torch.isfinite(out).all()
    module.store_attention = True
    module.eval()(x, key_padding_mask=padding)
    assert (module.last_attention[0, 0][:, 8:] == 0).all()


def test_causal_masks_by_original_position():
    module = make(causal=True, scale_factor=0.2).eval()
    n = 10
    x = torch.randn(1, n, DIM)
    out = module(x)
    groups = groups_of(module, n)
    for p in range(n):
        x2 = x.clone()
        x2[0, p] += 3.0
        changed = ((module(x2) - out).abs().amax(-1) > 1e-6)[0]
        group = next(g for g in groups if p in g)
        assert set(torch.nonzero(changed).flatten().tolist()) == {i for i in group if i >= p}


def test_attn_mask_and_stored_weights():
    module = make(scale_factor=0.5).eval()
    module.store_attention = True
    n = 8
    x = torch.randn(2, n, DIM)
    module(x)
    weights = module.last_attention
    assert weights.shape == (2, 1, n, n)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 1, n))
    for group in groups_of(module, n):
        outside = [j for j in range(n) if j not in group]
        assert (weights[:, 0][:, sorted(group)][:, :, outside] == 0).all()
    blocked = torch.ones(n, n, dtype=torch.bool)
    blocked[:, 0] = False
    blocked[0, 0] = True
    module(x, attn_mask=blocked)
    assert (module.last_attention[:, 0, 1:, 0] == 0).all()
    bias = torch.zeros(n, n).masked_fill(~blocked, float("-inf"))
    out_bool = module(x, attn_mask=blocked)
    torch.testing.assert_close(module(x, attn_mask=bias), out_bool)


def test_token_without_allowed_key_outputs_zeros():
    module = make(num_heads=2).eval()
    x = torch.randn(2, 6, DIM)
    padding = torch.ones(2, 6, dtype=torch.bool)
    padding[1] = False  # the whole second sequence is padding
    out = module(x, key_padding_mask=padding)
    assert (out[1] == 0).all() and (out[0] != 0).any(-1).all()
    blocked = torch.ones(6, 6, dtype=torch.bool)
    blocked[2] = False  # token 2 may attend to nothing
    out = module(x, attn_mask=blocked)
    assert (out[:, 2] == 0).all() and torch.isfinite(out).all()


def test_zero_length_and_single_token():
    module = make().eval()
    assert module(torch.randn(2, 0, DIM)).shape == (2, 0, DIM)
    x = torch.randn(2, 1, DIM)
    torch.testing.assert_close(module(x), module.out_proj(module.v_proj(x)))


@pytest.mark.parametrize("n", [7, 11, 50, 128])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("padded", [False, True])
@pytest.mark.parametrize("mode", ["eval", "train"])
def test_dense_form_equals_grouped_form(n, causal, padded, mode):
    dense = make(causal=causal, scale_factor=0.3)
    grouped = make(causal=causal, scale_factor=0.3)
    grouped.dense_max_tokens = 0  # force the gather/scatter form
    assert n <= dense.dense_max_tokens
    dense.store_attention = grouped.store_attention = True
    x = torch.randn(3, n, DIM)
    padding = None
    if padded:
        padding = torch.ones(3, n, dtype=torch.bool)
        padding[1, n // 2 :] = False
        padding[2] = False  # nothing to attend to: zeros
    outputs, grads = [], []
    for module in (dense, grouped):
        getattr(module, mode)()
        xi = x.clone().requires_grad_()
        torch.manual_seed(5)  # the same training permutation for both
        out = module(xi, key_padding_mask=padding)
        out.square().sum().backward()
        outputs.append(out)
        grads.append((xi.grad, module.q_proj.weight.grad))
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(dense.last_attention, grouped.last_attention)
    for a, b in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    if padded:
        assert (outputs[0][2] == 0).all()


def test_dense_form_switches_at_its_threshold_and_hooks_still_fire():
    module = make().eval()
    calls = []
    module.q_proj.register_forward_hook(lambda *args: calls.append("q"))
    for n in (module.dense_max_tokens, module.dense_max_tokens + 1):
        x = torch.randn(2, n, DIM)
        reference = make().eval()
        reference.dense_max_tokens = 0
        torch.testing.assert_close(module(x), reference(x), rtol=1e-5, atol=1e-6)
    assert calls == ["q", "q"]  # a hooked projection is called as a module in both forms
