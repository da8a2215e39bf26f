"""Lazy package exports (lazy_loader): every exported name resolves to its module's object."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = ["eegattn", "eegattn.data", "eegattn.training", "eegattn.models", "eegattn.baselines"]


@pytest.mark.parametrize("package", PACKAGES)
def test_every_exported_name_resolves(package):
    module = importlib.import_module(package)
    assert module.__all__, package
    for name in module.__all__:
        value = getattr(module, name)
        assert value is not None, (package, name)
        assert name in dir(module), (package, name)
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_lazy_names_are_the_defining_objects():
    import eegattn
    from eegattn.data.synthetic import make_release
    from eegattn.models.conv_attention import ConvAttentionRegressor
    from eegattn.training.metrics import nrmse

    assert eegattn.nrmse is nrmse
    assert eegattn.data.make_release is make_release
    assert eegattn.models.LightweightResponseTimeCNNWithAttention is ConvAttentionRegressor
