"""Inattention dropout (Inattention NotaBene, B. Galoaa 2025): the faithful mode, its defects,
and the relaxed fix."""

import pytest
import torch

from eegattn.attention.inattention import InattentionDropout, StackedInattentionDropout


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("mode", ["relaxed", "faithful"])
@pytest.mark.parametrize("spatial_dims", [1, 2])
@pytest.mark.parametrize("shape", [(4, 6, 20), (4, 6, 5, 7)])
def test_shapes_for_1d_and_2d_inputs(mode, spatial_dims, shape):
    layer = InattentionDropout(6, 0.3, 3, mode=mode, spatial_dims=spatial_dims)
    x = torch.randn(*shape)
    for training in (True, False):
        layer.train(training)
        assert layer(x).shape == x.shape
        keep = layer.last_keep_prob
        if mode == "faithful":  # per element
            assert keep.shape == (4, 3, *shape[1:])
        else:  # per channel
            assert keep.shape == (4, 3, 6)
        assert not keep.requires_grad
    assert layer.alphas.shape == (3,)
    torch.testing.assert_close(layer.alphas.sum(), torch.tensor(1.0))


def test_element_granularity_keep_prob_shape():
    layer = InattentionDropout(6, 0.3, 2, granularity="element")
    layer(torch.randn(3, 6, 4, 5))
    assert layer.last_keep_prob.shape == (3, 2, 6, 4, 5)


def test_conv1d_and_conv2d_builds_give_the_same_result_on_either_rank():
    one = InattentionDropout(5, 0.3, 2, spatial_dims=1).eval()
    two = InattentionDropout(5, 0.3, 2, spatial_dims=2).eval()
    with torch.no_grad():
        for c1, c2 in zip(one.mask_convs, two.mask_convs, strict=True):
            c1.weight.normal_()
            c2.weight.copy_(c1.weight[..., None])
            c2.bias.copy_(c1.bias)
    assert isinstance(two.mask_convs[0], torch.nn.Conv2d)
    for x in (torch.randn(2, 5, 9), torch.randn(2, 5, 3, 4)):
        torch.testing.assert_close(one(x), two(x))


@pytest.mark.parametrize("mode", ["relaxed", "faithful"])
def test_eval_is_deterministic(mode):
    layer = InattentionDropout(6, 0.4, 3, mode=mode).eval()
    x = torch.randn(4, 6, 30)
    first, second = layer(x), layer(x)
    assert torch.equal(first, second)
    if mode == "faithful":  # the original's evaluation is the identity
        assert torch.equal(first, x)


def test_training_is_random_in_both_modes():
    x = torch.randn(4, 6, 30)
    for mode in ("relaxed", "faithful"):
        layer = InattentionDropout(6, 0.4, 3, mode=mode).train()
        assert not torch.equal(layer(x), layer(x))


def _faithful_reference(layer, x, alpha):
    """Inattention NotaBene's forward, written with the layer's convolutions and an alpha."""
    p = layer.dropout_prob
    a = torch.softmax(alpha, dim=0)
    combined = torch.ones_like(x)
    masks = []
    for k, conv in enumerate(layer.mask_convs):
        q = torch.sigmoid(conv(x).detach()) * (1 - p) + p
        mask = torch.bernoulli(q)
        masks.append(mask)
        combined = combined * (a[k] * mask + 1 - a[k])
    return x * combined / (1 - p), masks


def test_faithful_mode_reproduces_the_original_and_its_gradients():
    layer = InattentionDropout(5, 0.3, 3, mode="faithful").train()
    torch.testing.assert_close(layer.alpha.detach(), torch.full((3,), 1 / 3))
    x = torch.randn(2, 5, 40)
    weights = torch.randn(2, 5, 40)

    torch.manual_seed(123)
    out = layer(x)
    (out * weights).sum().backward()

    alpha = torch.full((3,), 1 / 3, requires_grad=True)
    torch.manual_seed(123)
    expected, masks = _faithful_reference(layer, x, alpha)
    (expected * weights).sum().backward()

    torch.testing.assert_close(out, expected)
    # torch.bernoulli passes no gradient: the mask convolutions never learn ...
    for conv in layer.mask_convs:
        for param in conv.parameters():
            assert param.grad is None or torch.count_nonzero(param.grad) == 0
    # ... while alpha gets exactly the original's gradient, which sums to 0 (softmax shift)
    torch.testing.assert_close(layer.alpha.grad, alpha.grad)
    assert layer.alpha.grad.abs().max() > 0
    assert abs(float(layer.alpha.grad.sum())) < 1e-4
    # the original's mask is never 0: each stack multiplies by 1 or 1 - a_k
    ratio = out.detach() / (x / (1 - 0.3))
    assert float(ratio.min()) >= (1 - 1 / 3) ** 3 - 1e-6
    assert any(bool((m == 0).any()) for m in masks)


def _toy_batch(generator, batch=64, channels=4, t=8):
    """Channels 0..2 carry the target, channel 3 is pure noise."""
    x = torch.randn(batch, channels, t, generator=generator)
    y = x[:, :3].mean(-1).sum(-1)
    return x, y


def _train_toy(mode, steps=300):
    torch.manual_seed(0)
    p = 0.3
    layer = InattentionDropout(4, p, 3, mode=mode).train()
    generator = torch.Generator().manual_seed(1)
    optimizer = torch.optim.Adam(layer.parameters(), lr=0.05)
    for _ in range(steps):
        x, y = _toy_batch(generator)
        # fixed read-out (sum of channel means): dropping a channel is the only way to ignore it
        prediction = layer(x).mean(-1).sum(-1) * (1 - p)
        loss = (prediction - y).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return layer, generator


def test_relaxed_mode_learns_to_forget_a_noise_channel():
    layer, generator = _train_toy("relaxed")
    layer.eval()
    x, _ = _toy_batch(generator, batch=256)
    layer(x)
    # effective keep probability per channel: sum_k a_k q_k, averaged over the batch
    keep = (layer.alphas[None, :, None] * layer.last_keep_prob).sum(1).mean(0)
    assert keep[3] < keep[:3].min() - 0.2, keep
    assert keep[3] < 0.7 - 0.1  # moved below its initial value 1 - p


def test_faithful_mode_training_leaves_mask_convolutions_unchanged():
    torch.manual_seed(0)
    initial = InattentionDropout(4, 0.3, 3, mode="faithful").state_dict()
    layer, _ = _train_toy("faithful")
    for name, value in layer.state_dict().items():
        if name.startswith("mask_convs"):
            assert torch.equal(value, initial[name]), name


def test_relaxed_mode_passes_gradients_to_mask_convolutions():
    layer = InattentionDropout(6, 0.3, 2).train()
    (layer(torch.randn(4, 6, 10)) * torch.randn(4, 6, 10)).sum().backward()
    for conv in layer.mask_convs:
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
        assert conv.bias.grad.abs().sum() > 0


def _spread_keep_probs(layer):
    with torch.no_grad():
        for conv in layer.mask_convs:
            conv.bias.uniform_(-3.0, 3.0)


def test_relaxed_training_average_matches_eval_output():
    p = 0.25
    layer = InattentionDropout(5, p, 3, alpha_temperature=0.5)
    _spread_keep_probs(layer)
    with torch.no_grad():
        layer.alpha.copy_(torch.tensor([0.2, -0.4, 0.9]))
    x = torch.randn(1, 5, 12).expand(4000, 5, 12)
    with torch.no_grad():
        evaluated = layer.eval()(x[:1])
        sampled = layer.train()(x)
    # per channel the mask is constant over time: compare the masks themselves
    train_mask = (sampled / x * (1 - p)).mean(0)
    eval_mask = evaluated[0] / x[0] * (1 - p)
    torch.testing.assert_close(train_mask, eval_mask, atol=0.03, rtol=0)
    # and the hard masks really reach 0 (every stack dropped the channel)
    assert bool((sampled == 0).any())


def test_faithful_mode_training_average_differs_from_eval_output():
    p = 0.25
    layer = InattentionDropout(5, p, 3, mode="faithful")
    x = torch.randn(1, 5, 12).expand(4000, 5, 12)
    with torch.no_grad():
        sampled_mean = layer.train()(x).mean(0)
    q = layer.last_keep_prob[0]  # (stacks, c, t)
    a = layer.alphas[:, None, None]
    # independent stacks: E[M] = prod_k (1 - a_k (1 - q_k))
    expected = x[0] * (1 - a * (1 - q)).prod(0) / (1 - p)
    torch.testing.assert_close(sampled_mean, expected, atol=0.03, rtol=0.03)
    evaluated = layer.eval()(x[:1])[0]
    # E[M] / (1 - p) is not 1: the original's train and eval scales differ
    assert torch.equal(evaluated, x[0])
    assert float((expected / x[0] - 1).abs().mean()) > 0.05


def test_zero_dropout_is_identity():
    for mode in ("relaxed", "faithful"):
        layer = InattentionDropout(3, 0.0, 2, mode=mode).train()
        x = torch.randn(2, 3, 5)
        assert torch.equal(layer(x), x)


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, float("nan"), True, "0.2"])
def test_invalid_dropout_prob(p):
    with pytest.raises(ValueError, match="dropout_prob"):
        InattentionDropout(4, p, 2)


@pytest.mark.parametrize("k", [0, -1, 1.5])
def test_invalid_num_stacks(k):
    with pytest.raises(ValueError, match="num_stacks"):
        InattentionDropout(4, 0.2, k)


def test_invalid_options_and_inputs():
    with pytest.raises(ValueError, match="mode"):
        InattentionDropout(4, 0.2, 2, mode="gumbel")
    with pytest.raises(ValueError, match="per-channel"):
        InattentionDropout(4, 0.2, 2, mode="faithful", granularity="channel")
    with pytest.raises(ValueError, match="temperature"):
        InattentionDropout(4, 0.2, 2, temperature=0)
    with pytest.raises(ValueError, match="spatial_dims"):
        InattentionDropout(4, 0.2, 2, spatial_dims=3)
    layer = InattentionDropout(4, 0.2, 2)
    with pytest.raises(ValueError, match="built for 4 channels"):
        layer(torch.randn(2, 5, 10))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(2, 4))
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(2, 4, 3, 3, 3))


def test_stacked_layers_take_per_layer_settings():
    stacked = StackedInattentionDropout([8, 16, 32], [0.2, 0.3, 0.4], [3, 4, 5], mode="faithful")
    assert len(stacked) == 3
    assert [layer.num_stacks for layer in stacked.layers] == [3, 4, 5]
    assert [layer.dropout_prob for layer in stacked.layers] == [0.2, 0.3, 0.4]
    assert stacked[1].channels == 16 and stacked[1].mode == "faithful"
    stacked.eval()
    x = torch.randn(2, 16, 10)
    assert torch.equal(stacked(x, 1), x)
    shared = StackedInattentionDropout([4, 6], 0.1, 2)
    assert [layer.num_stacks for layer in shared.layers] == [2, 2]
    assert shared(torch.randn(2, 6, 3, 3), 1).shape == (2, 6, 3, 3)


def test_stacked_rejects_bad_settings():
    with pytest.raises(ValueError, match="dropout_prob has 2 values"):
        StackedInattentionDropout([4, 8, 16], [0.1, 0.2])
    with pytest.raises(ValueError, match="num_stacks has 1 values"):
        StackedInattentionDropout([4, 8], 0.1, [2])
    with pytest.raises(ValueError, match="channels_list"):
        StackedInattentionDropout([])
    stacked = StackedInattentionDropout([4, 8])
    with pytest.raises(ValueError, match="index"):
        stacked(torch.randn(2, 4, 5), 2)
    with pytest.raises(ValueError, match="built for 8 channels"):
        stacked(torch.randn(2, 4, 5), 1)


def test_seed_mode_name_is_a_deprecated_alias_of_faithful():
    x = torch.randn(3, 6, 20)
    torch.manual_seed(7)
    faithful = InattentionDropout(6, 0.3, 3, mode="faithful")
    torch.manual_seed(7)
    with pytest.warns(DeprecationWarning, match="mode='faithful'"):
        alias = InattentionDropout(6, 0.3, 3, mode="seed")
    assert alias.mode == "faithful" and alias.granularity == "element"
    assert alias.state_dict().keys() == faithful.state_dict().keys()
    for name, value in faithful.state_dict().items():
        assert torch.equal(alias.state_dict()[name], value), name
    for training in (True, False):
        faithful.train(training)
        alias.train(training)
        torch.manual_seed(11)
        expected = faithful(x)
        torch.manual_seed(11)
        torch.testing.assert_close(alias(x), expected, rtol=0, atol=0)
        torch.testing.assert_close(alias.last_keep_prob, faithful.last_keep_prob, rtol=0, atol=0)
    with pytest.warns(DeprecationWarning):
        stacked = StackedInattentionDropout([4, 8], 0.2, 2, mode="seed")
    assert [layer.mode for layer in stacked.layers] == ["faithful", "faithful"]
