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


def test_mask_is_not_correlated_between_neighbours():
    # four neighbouring elements share one 64-bit draw: their drops must still be independent
    torch.manual_seed(4)
    kept = (apply_dropout(torch.ones(200_000, 4), 0.5) != 0).float()
    corr = torch.corrcoef(kept.T)
    assert (corr - torch.eye(4)).abs().max() < 0.02


def test_seeded_calls_repeat():
    x = torch.randn(100)
    torch.manual_seed(3)
    a = apply_dropout(x, 0.5)
    torch.manual_seed(3)
    b = apply_dropout(x, 0.5)
    assert torch.equal(a, b)


@pytest.mark.parametrize("p", [1.0, -0.1, 1.5])
def test_bad_probability_is_refused(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        apply_dropout(torch.ones(3), p, training=True)
