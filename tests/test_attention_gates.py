"""Channel and temporal gates: shapes, exact parameter counts, the formulas, bad input."""

import pytest
import torch
import torch.nn.functional as F

from eegattn.attention.gates import ChannelAttention, TemporalAttention


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("channels,ratio", [(129, 16), (64, 8), (16, 16), (7, 2)])
def test_channel_attention_parameter_count_is_exact_and_bias_free(channels, ratio):
    gate = ChannelAttention(channels, reduction_ratio=ratio)
    assert n_params(gate) == 2 * channels * (channels // ratio)
    assert not any("bias" in name for name, _ in gate.named_parameters())


@pytest.mark.parametrize("kernel", [1, 3, 7, 11])
def test_temporal_attention_parameter_count_is_exact_and_bias_free(kernel):
    gate = TemporalAttention(kernel_size=kernel)
    assert n_params(gate) == 2 * kernel
    assert not any("bias" in name for name, _ in gate.named_parameters())


def test_channel_attention_matches_formula_and_keeps_gate():
    torch.manual_seed(0)
    gate = ChannelAttention(32, reduction_ratio=4)
    x = torch.randn(5, 32, 50)
    out = gate(x)
    w1, w2 = gate.mlp[0].weight, gate.mlp[2].weight

    def mlp(v):
        return F.relu(v @ w1.T) @ w2.T

    expected_gate = torch.sigmoid(mlp(x.mean(-1)) + mlp(x.amax(-1)))
    assert out.shape == x.shape
    assert gate.last_gate.shape == (5, 32)
    assert not gate.last_gate.requires_grad
    torch.testing.assert_close(gate.last_gate, expected_gate)
    torch.testing.assert_close(out, x * expected_gate[:, :, None])
    assert bool((gate.last_gate > 0).all() and (gate.last_gate < 1).all())


def test_temporal_attention_matches_formula_and_keeps_gate():
    torch.manual_seed(0)
    gate = TemporalAttention(kernel_size=5)
    x = torch.randn(3, 10, 40)
    out = gate(x)
    stats = torch.stack([x.mean(1), x.amax(1)], dim=1)
    expected_gate = torch.sigmoid(F.conv1d(stats, gate.conv.weight, padding=2))[:, 0]
    assert out.shape == x.shape
    assert gate.last_gate.shape == (3, 40)
    assert not gate.last_gate.requires_grad
    torch.testing.assert_close(gate.last_gate, expected_gate)
    torch.testing.assert_close(out, x * expected_gate[:, None, :])


@pytest.mark.parametrize("channels,t", [(1, 1), (129, 200), (4, 13)])
def test_temporal_attention_keeps_length_for_any_channel_count(channels, t):
    gate = TemporalAttention(kernel_size=7)
    assert gate(torch.randn(2, channels, t)).shape == (2, channels, t)


def test_gates_pass_gradients_to_their_weights():
    x = torch.randn(4, 16, 30)
    for gate in (ChannelAttention(16, 4), TemporalAttention(3)):
        gate(x).square().sum().backward()
        for p in gate.parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0


def test_channel_attention_rejects_bad_input():
    gate = ChannelAttention(16, 4)
    with pytest.raises(ValueError, match="channels"):
        gate(torch.randn(2, 15, 30))
    with pytest.raises(ValueError, match="rank 3"):
        gate(torch.randn(2, 16))
    with pytest.raises(ValueError, match="rank 3"):
        gate(torch.randn(2, 16, 3, 3))
    with pytest.raises(ValueError, match="reduction_ratio"):
        ChannelAttention(8, reduction_ratio=16)
    with pytest.raises(ValueError, match="channels"):
        ChannelAttention(0)


def test_temporal_attention_rejects_bad_input():
    with pytest.raises(ValueError, match="rank 3"):
        TemporalAttention()(torch.randn(4, 30))
    with pytest.raises(ValueError, match="odd"):
        TemporalAttention(kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size"):
        TemporalAttention(kernel_size=0)
