"""The fast-CPU dropout: same distribution, scaling and gradient as ``nn.Dropout``."""

import pytest
import torch
from torch import nn

from eegattn.attention.dropout import Dropout, apply_dropout


@pytest.mark.parametrize("p", [0.1, 0.4, 0.9])
def test_keeps_with_probability_one_minus_p_and_rescales(p):
    torch.manual_seed(0)
    x = torch.ones(400_003)  # not a multiple of the 4 elements one random word serves
    y = apply_dropout(x, p, training=True)
    kept = y != 0
    assert abs(kept.float().mean().item() - (1 - p)) < 0.005
    # the rate is rounded to 1/65536, the scale is the exact inverse of the rounded keep rate
    torch.testing.assert_close(y[kept], torch.full_like(y[kept], 1 / (1 - p)), rtol=1e-4, atol=0)
    assert abs(y.mean().item() - 1.0) < 0.01  # unbiased, as nn.Dropout


def test_gradient_is_the_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 32, requires_grad=True)
    y = apply_dropout(x, 0.25, training=True)
    y.sum().backward()
    scale = y.detach()[y.detach() != 0].div(x.detach()[y.detach() != 0]).mean()
    torch.testing.assert_close(scale, torch.tensor(1 / 0.75), rtol=1e-4, atol=0)
    assert torch.equal(x.grad, (y.detach() != 0).float() * (65536 / (65536 - 16384)))


def test_identity_in_eval_and_at_zero():
    x = torch.randn(8, 4)
    assert apply_dropout(x, 0.5, training=False) is x
    assert apply_dropout(x, 0.0, training=True) is x
    layer = Dropout(0.5).eval()
    assert torch.equal(layer(x), x)


def test_module_is_a_drop_in_for_nn_dropout():
    layer = Dropout(0.3)
    assert isinstance(layer, nn.Dropout)
    assert layer.state_dict() == {}
    torch.manual_seed(2)
    out = layer(torch.ones(10_000))
    values = out.unique()
    assert len(values) == 2 and values[0] == 0
    assert torch.isclose(values[1], torch.tensor(1 / 0.7), rtol=1e-4)


@pytest.mark.parametrize("p", [0.5, 0.3, 0.05])
def test_neighbours_sharing_a_random_word_drop_independently(p):
    # four neighbouring elements share one 64-bit draw: each lane must keep at 1 - p, and the
    # lanes must be uncorrelated (0.5 tests only the sign bits, 0.3 and 0.05 the low bits too)
    torch.manual_seed(4)
    kept = (apply_dropout(torch.ones(200_000, 4), p) != 0).float()
    assert (kept.mean(0) - (1 - p)).abs().max() < 0.006
    corr = torch.corrcoef(kept.T)
    assert (corr - torch.eye(4)).abs().max() < 0.02


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_floating_dtypes(dtype):
    torch.manual_seed(5)
    y = apply_dropout(torch.ones(50_000, dtype=dtype), 0.2)
    assert y.dtype == dtype
    assert abs((y != 0).double().mean().item() - 0.8) < 0.01
    assert torch.isclose(y.max().double(), torch.tensor(1 / 0.8, dtype=torch.float64), rtol=1e-2)


def test_p_one_gives_zeros_as_nn_dropout():
    x = torch.randn(5, 3)
    assert torch.equal(apply_dropout(x, 1.0), torch.zeros_like(x))
    assert torch.equal(Dropout(1.0)(x), nn.Dropout(1.0)(x))


def test_inplace_falls_back_to_pytorch():
    torch.manual_seed(6)
    x = torch.ones(1000)
    out = Dropout(0.5, inplace=True)(x)
    assert out is x and set(x.unique().tolist()) == {0.0, 2.0}


def test_seeded_calls_repeat():
    x = torch.randn(100)
    torch.manual_seed(3)
    a = apply_dropout(x, 0.5)
    torch.manual_seed(3)
    b = apply_dropout(x, 0.5)
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_bad_probability_is_refused(p):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        apply_dropout(torch.ones(3), p, training=True)
