"""The ridge floor: bin features, the closed-form path, alpha by subject-wise inner CV,
the estimator's closed-form fit, export."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from eegattn.models import build_model
from eegattn.models.ridge import BinnedRidge, _ridge_path
from eegattn.training.estimator import EEGAttentionRegressor
from eegattn.training.metrics import nrmse

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _data(n=240, noise=0.05, seed=0):
    """Windows whose target is a broad late positivity (bins 12-15 of 20 on 30 channels)."""
    rng = np.random.default_rng(seed)
    amplitude = rng.normal(size=n)
    X = rng.normal(size=(n, 129, 200)) * 20e-6
    X[:, 40:70, 120:160] += amplitude[:, None, None] * 5e-6
    y = 1.2 + 0.3 * amplitude + noise * rng.normal(size=n)
    return X.astype(np.float32), y.astype(np.float32), np.repeat(np.arange(n // 12), 12)


def test_ridge_path_equals_scikit_learn():
    rng = np.random.default_rng(0)
    F = rng.normal(size=(80, 30))
    y = F[:, 0] * 2 + rng.normal(size=80)
    coefs, intercepts = _ridge_path(F, y, np.array([0.1, 10.0, 1000.0]))
    for i, alpha in enumerate((0.1, 10.0, 1000.0)):
        ref = Ridge(alpha=alpha).fit(F, y)
        np.testing.assert_allclose(coefs[:, i], ref.coef_, atol=1e-10)
        assert intercepts[i] == pytest.approx(ref.intercept_, abs=1e-10)


def test_features_are_bin_means_in_microvolts():
    model = build_model("ridge")
    x = torch.zeros(1, 129, 200)
    x[0, 3, 10:20] = 2e-6  # bin 1 of channel 3 at 2 uV
    f = model.features(x)
    assert f.shape == (1, 129 * 20)
    assert f[0, 3 * 20 + 1] == pytest.approx(2.0) and f[0].abs().sum() == pytest.approx(2.0)


def test_fit_learns_a_broad_signal_and_beats_the_mean():
    X, y, groups = _data()
    est = EEGAttentionRegressor("ridge", valid_fraction=0.0, early_stopping=False, verbose=0)
    est.fit(X[:180], y[:180], groups=groups[:180])
    score = nrmse(y[180:], est.predict(X[180:]))
    assert score < 0.5  # the mean predictor scores ~1
    assert est.n_epochs_ == 1 and est.history_[0]["alpha"] in est.model_.alphas
    assert np.isfinite(est.history_[0]["inner_mse"])


def test_alpha_grows_with_noise():
    X, y, groups = _data(noise=0.05)
    clean = BinnedRidge(n_chans=129, n_outputs=1, n_times=200, sfreq=100.0)
    clean.fit_closed_form(X, y, groups)
    _, y_noisy, _ = _data(noise=3.0)
    noisy = BinnedRidge(n_chans=129, n_outputs=1, n_times=200, sfreq=100.0)
    noisy.fit_closed_form(X, y_noisy, groups)
    assert noisy.alpha_ > clean.alpha_


def test_inner_folds_never_split_a_subject(monkeypatch):
    import eegattn.models.ridge as ridge_module

    seen = []
    real = ridge_module._ridge_path

    def spy(F, y, alphas):
        seen.append(len(y))
        return real(F, y, alphas)

    monkeypatch.setattr(ridge_module, "_ridge_path", spy)
    X, y, groups = _data(n=60)
    model = BinnedRidge(n_chans=129, n_outputs=1, n_times=200, sfreq=100.0, inner_folds=5)
    model.fit_closed_form(X, y, groups)
    # 5 subjects of 12 windows: each inner fold holds out whole subjects (48 train windows)
    assert seen[:-1] == [48] * 5 and seen[-1] == 60


def test_exports_and_reloads(tmp_path):
    from eegattn.training.runs import create_run_dir, load_run, save_run

    X, y, groups = _data(n=48)
    est = EEGAttentionRegressor("ridge", valid_fraction=0.0, early_stopping=False, verbose=0)
    est.fit(X, y, groups=groups)
    run = create_run_dir(tmp_path, "ridge")
    save_run(run, est)
    model, _ = load_run(run)
    x = torch.from_numpy(X[:5])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x)[:, 0].detach().numpy(), est.predict(X[:5]), rtol=1e-5,
                               atol=1e-5)


@pytest.mark.parametrize("options, message", [
    ({"bin_s": 0}, "'bin_s' parameter"),
    ({"alphas": (0.0, 1.0)}, "alphas must be positive"),
    ({"inner_folds": 1}, "'inner_folds' parameter"),
    ({"bin_s": 5.0}, "shorter than one bin"),
])
def test_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("ridge", **options)
