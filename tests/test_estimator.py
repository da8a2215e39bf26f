"""EEGAttentionRegressor: sklearn conventions, reproducibility, crops, early stopping, pickling
and input errors. Most tests use a tiny model; the pickling test runs every registered model."""

import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, cross_val_score
from torch import nn

from eegattn.training.estimator import (
    EEGAttentionRegressor,
    SubjectLeakageWarning,
    crop_windows,
    seeded_crop_offsets,
)
from eegattn.training.metrics import nrmse, nrmse_scorer
from eegattn.training.splits import subject_kfold

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


class TinyEEG(nn.Module):
    """Conv -> mean over time -> dropout -> linear; (b, c, t) volts -> (b, 1)."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, hidden=8, dropout=0.2):
        super().__init__()
        self.n_chans, self.n_times = n_chans, n_times
        self.conv = nn.Conv1d(n_chans, hidden, 3)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x):
        if x.shape[1:] != (self.n_chans, self.n_times):
            raise ValueError(f"expected (b, {self.n_chans}, {self.n_times}), got {tuple(x.shape)}")
        return self.head(self.drop(torch.relu(self.conv(x * 1e5)).mean(-1)))


class ConstantEEG(nn.Module):
    """Output ignores its parameters' updates: every epoch has the same validation loss."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq):
        super().__init__()
        self.head = nn.Linear(n_chans, n_outputs)

    def forward(self, x):
        return 0.0 * self.head(x.mean(-1)) + 0.5


def make_data(n_subjects=6, per_subject=8, n_chans=4, n_times=30, seed=0):
    rng = np.random.default_rng(seed)
    n = n_subjects * per_subject
    X = (rng.normal(size=(n, n_chans, n_times)) * 1e-5).astype(np.float32)
    y = (X[:, 0].mean(1) * 3e5 + 0.05 * rng.normal(size=n)).astype(np.float32)
    groups = np.repeat([f"sub{k}" for k in range(n_subjects)], per_subject)
    return X, y, groups


def small(**kw):
    params = dict(model=TinyEEG, max_epochs=3, batch_size=8, verbose=0, seed=0)
    params.update(kw)
    return EEGAttentionRegressor(**params)


def weights(est):
    return {k: v.clone() for k, v in est.model_.state_dict().items()}


def test_fit_predict_score_and_fitted_attributes():
    X, y, groups = make_data()
    est = small()
    assert est.fit(X, y, groups=groups) is est
    pred = est.predict(X)
    assert pred.shape == (len(X),) and pred.dtype == np.float32
    assert est.score(X, y) == pytest.approx(r2_score(y, pred), rel=1e-6)
    assert (est.n_chans_, est.n_times_, est.input_n_times_) == (4, 30, 30)
    assert est.valid_split_ == "subject" and len(est.valid_subjects_) == 1
    assert est.n_train_ + est.n_valid_ == len(X) and est.n_valid_ == 8
    assert len(est.history_) == 3 == est.n_epochs_
    assert {"train_loss", "valid_loss", "valid_nrmse", "lr"} <= set(est.history_[0])
    assert not est.model_.training


def test_training_learns_a_simple_target():
    X, y, groups = make_data(n_subjects=8, per_subject=8)
    est = small(max_epochs=25, batch_size=16, lr=2e-2, early_stopping=False, valid_fraction=0.0,
                model_options={"dropout": 0.0}, lr_schedule="constant")
    est.fit(X, y)
    assert est.history_[-1]["train_loss"] < 0.3 * est.history_[0]["train_loss"]
    assert nrmse(y, est.predict(X)) < 0.6  # the mean predictor scores 1.0


def test_bfloat16_autocast_trains_in_low_precision_and_still_learns():
    X, y, groups = make_data(n_subjects=8, per_subject=8)
    kw = dict(max_epochs=25, batch_size=16, lr=2e-2, early_stopping=False, valid_fraction=0.0,
              model_options={"dropout": 0.0}, lr_schedule="constant")
    full = small(**kw).fit(X, y)
    half = small(precision="bfloat16", **kw).fit(X, y)
    # bf16 rounds the forward pass (8 bits of mantissa): other weights, same learning
    assert not all(torch.equal(a, b) for a, b in zip(weights(full).values(),
                                                      weights(half).values()))
    assert nrmse(y, half.predict(X)) < 0.6
    assert all(p.dtype == torch.float32 for p in half.model_.parameters())
    with pytest.raises(ValueError, match="'precision' parameter"):
        small(precision="float16").fit(X, y)


def test_same_seed_gives_identical_weights_and_leaves_global_rng_alone():
    X, y, groups = make_data()
    before = torch.get_rng_state()
    a = small(crop_n_times=24).fit(X, y, groups=groups)
    after = torch.get_rng_state()
    b = small(crop_n_times=24).fit(X, y, groups=groups)
    c = small(crop_n_times=24, seed=1).fit(X, y, groups=groups)
    wa, wb, wc = weights(a), weights(b), weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    assert np.array_equal(a.predict(X), b.predict(X))
    assert torch.equal(before, after)


def test_get_params_set_params_clone():
    est = small(model_options={"hidden": 4})
    params = est.get_params()
    assert params["model"] is TinyEEG and params["model_options"] == {"hidden": 4}
    est.set_params(lr=0.5, max_epochs=2)
    assert est.lr == 0.5 and est.max_epochs == 2
    X, y, groups = make_data()
    est.fit(X, y, groups=groups)
    cloned = clone(est)
    assert cloned.get_params()["lr"] == 0.5
    assert not hasattr(cloned, "model_")
    assert cloned.model_options == {"hidden": 4} and cloned.model_options is not est.model_options


def test_model_by_class_instance_and_name():
    X, y, groups = make_data()
    template = TinyEEG(4, 1, 30, 100.0, hidden=5)
    initial = {k: v.clone() for k, v in template.state_dict().items()}
    est = small(model=template).fit(X, y, groups=groups)
    assert est.model_ is not template
    assert all(torch.equal(initial[k], template.state_dict()[k]) for k in initial)  # untouched
    assert est.model_.conv.out_channels == 5
    with pytest.raises(ValueError, match="model_options cannot be applied"):
        small(model=template, model_options={"hidden": 3}).fit(X, y)
    named = small(model="lightweight_noattn", max_epochs=1, early_stopping=False,
                  valid_fraction=0.0)
    X16, y16, _ = make_data(n_subjects=2, per_subject=4, n_chans=16, n_times=200)
    named.fit(X16, y16)
    assert type(named.model_).__name__ == "ConvAttentionRegressor"  # the noattn preset
    with pytest.raises(ValueError, match="unknown model"):
        small(model="no_such_model").fit(X, y)
    with pytest.raises(ValueError, match="model must be"):
        small(model=3).fit(X, y)


def test_output_bias_starts_at_the_target_mean():
    X, y, groups = make_data()
    y = y + 1.5  # response times sit around 1.5 s
    kw = dict(max_epochs=1, lr=1e-7, lr_schedule="constant", model_options={"dropout": 0.0})
    est = small(**kw).fit(X, y, groups=groups)
    assert est.output_bias_initialized_
    train = ~np.isin(groups, est.valid_subjects_)
    assert est.model_.head.bias.item() == pytest.approx(y[train].mean(), abs=1e-4)
    off = small(init_output_bias=False, **kw).fit(X, y, groups=groups)
    assert not off.output_bias_initialized_
    assert abs(est.predict(X).mean() - y.mean()) < abs(off.predict(X).mean() - y.mean())


def test_crops_random_in_training_and_seeded_in_predict():
    X, y, groups = make_data(n_times=40)
    est = small(crop_n_times=32).fit(X, y, groups=groups)
    assert est.input_n_times_ == 32 and est.n_times_ == 40
    p1, p2 = est.predict(X), est.predict(X)
    assert np.array_equal(p1, p2)
    # predict crops exactly what seeded_crop_offsets says
    offsets = seeded_crop_offsets(len(X), 40, 32, est.seed_)
    manual = est.predict(crop_windows(X, offsets, 32))
    assert np.array_equal(p1, manual)
    assert est.predict(X[:, :, :32]).shape == (len(X),)  # already model-sized windows
    with pytest.raises(ValueError, match="fewer than the 32"):
        est.predict(X[:, :, :20])
    with pytest.raises(ValueError, match="longer than the windows"):
        small(crop_n_times=50).fit(X, y)


def test_crop_windows_takes_the_right_slices():
    x = np.arange(2 * 3 * 10, dtype=np.float32).reshape(2, 3, 10)
    out = crop_windows(x, np.array([0, 4]), 5)
    assert np.array_equal(out[0], x[0, :, 0:5]) and np.array_equal(out[1], x[1, :, 4:9])
    rng_offsets = seeded_crop_offsets(1000, 400, 200, seed=0)
    assert rng_offsets.min() >= 0 and rng_offsets.max() <= 200 and len(set(rng_offsets)) > 100


def test_early_stopping_stops_and_restores_the_best_epoch():
    X, y, groups = make_data()
    est = small(model=ConstantEEG, max_epochs=10, patience=2, start_from_epoch=0)
    est.fit(X, y, groups=groups)
    assert est.stopped_early_ and est.n_epochs_ == 3 and est.best_epoch_ == 1

    # a noisy run: the kept weights are those of the epoch with the lowest validation loss
    est = small(max_epochs=8, patience=8, lr=0.3, optimizer="sgd", lr_schedule="constant")
    est.fit(X, y, groups=groups)
    losses = [h["valid_loss"] for h in est.history_]
    assert est.best_epoch_ == int(np.argmin(losses)) + 1
    assert est.best_epoch_ != len(losses)  # otherwise the test would not test restoring
    valid = np.isin(groups, est.valid_subjects_)
    mse = float(np.mean((est.predict(X[valid]) - y[valid]) ** 2))
    assert mse == pytest.approx(min(losses), rel=1e-5)


def test_patience_counts_only_after_start_from_epoch():
    X, y, groups = make_data()
    # a constant model never improves on epoch 1: it stops `patience` epochs after the start
    for start, stop in ((None, 7), (3, 5), (0, 3)):  # None: half of max_epochs (5)
        est = small(model=ConstantEEG, max_epochs=10, patience=2, start_from_epoch=start)
        est.fit(X, y, groups=groups)
        assert est.stopped_early_ and est.n_epochs_ == stop and est.best_epoch_ == 1, start
        assert len(est.history_) == stop
    for start in (8, 9):  # patience runs out at the last epoch, or never: no early stop
        est = small(model=ConstantEEG, max_epochs=10, patience=2, start_from_epoch=start)
        est.fit(X, y, groups=groups)
        assert not est.stopped_early_ and est.n_epochs_ == 10 and est.best_epoch_ == 1
    for bad in (-1, 1.5, True, "auto"):
        with pytest.raises(ValueError, match="start_from_epoch"):
            small(start_from_epoch=bad).fit(X, y, groups=groups)


def test_windowset_input_gives_subject_split_and_provenance():
    windows = pytest.importorskip("eegattn.data.windows")
    X, y, groups = make_data()
    meta = pd.DataFrame({"release": "R5", "subject": groups, "task": "ccd", "run": 1,
                         "target": y, "trial": np.arange(len(y))})
    ws = windows.WindowSet(X=X, y=y, metadata=meta, sfreq=100.0, challenge=1, cache_key="abc")
    est = small().fit(ws)
    assert est.valid_split_ == "subject" and est.challenge_ == 1 and est.cache_key_ == "abc"
    assert set(est.valid_subjects_).isdisjoint(set(groups[~np.isin(groups, est.valid_subjects_)]))
    assert np.array_equal(est.predict(ws), est.predict(X))
    assert est.score(ws) == pytest.approx(est.score(X, y))
    with pytest.raises(ValueError, match="carries its own y"):
        small().fit(ws, y)


def test_without_groups_the_validation_split_is_by_window_and_warns():
    X, y, _ = make_data()
    with pytest.warns(SubjectLeakageWarning, match="no groups") as record:
        est = small(max_epochs=1).fit(X, y)
    assert est.valid_split_ == "window" and est.n_valid_ == round(0.2 * len(X))
    assert len(record) == 1 and record[0].filename == __file__  # points at the caller's fit


def test_grid_search_and_cross_val_with_subject_groups():
    X, y, groups = make_data()
    est = small(max_epochs=1, batch_size=16, early_stopping=False, valid_fraction=0.0)
    cv = subject_kfold(2, seed=0)
    scores = cross_val_score(est, X, y, groups=groups, cv=cv, scoring=nrmse_scorer)
    assert scores.shape == (2,) and np.all(scores < 0)
    search = GridSearchCV(est, {"lr": [1e-3, 1e-2]}, cv=cv, scoring=nrmse_scorer)
    search.fit(X, y, groups=groups)
    assert search.best_params_["lr"] in (1e-3, 1e-2)
    assert search.best_estimator_.predict(X).shape == (len(X),)


@pytest.mark.parametrize(
    "name", ["lightweight", "lightweight_fast", "improved", "lightweight_noattn", "eegnex"]
)
def test_pickle_and_joblib_round_trips_for_every_model(name):
    from eegattn.models import available_models

    assert name in available_models()
    X, y, _ = make_data(n_subjects=1, per_subject=4, n_chans=16, n_times=200)
    est = EEGAttentionRegressor(model=name, max_epochs=1, batch_size=4, early_stopping=False,
                                valid_fraction=0.0, verbose=0).fit(X, y)
    pred = est.predict(X)
    restored = pickle.loads(pickle.dumps(est))
    buf = io.BytesIO()
    joblib.dump(est, buf)
    buf.seek(0)
    from_joblib = joblib.load(buf)
    assert np.array_equal(restored.predict(X), pred)
    assert np.array_equal(from_joblib.predict(X), pred)
    assert restored.get_params() == est.get_params()


def test_getstate_holds_cpu_weights_and_a_cuda_estimator_loads_on_cpu(monkeypatch):
    X, y, groups = make_data()
    est = small().fit(X, y, groups=groups)
    pred = est.predict(X)
    state = est.__getstate__()
    assert state["model_"] is None
    assert all(t.device.type == "cpu" for t in state["_model_state_cpu"].values())
    # simulate an estimator trained on a CUDA machine, unpickled on a CPU-only one
    est.device = "cuda"
    blob = pickle.dumps(est)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(UserWarning, match="loaded on the CPU"):
        restored = pickle.loads(blob)
    assert restored.device == "cpu" and restored.device_ == "cpu"
    assert np.array_equal(restored.predict(X), pred)


def test_cuda_requested_without_cuda_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y, groups = make_data()
    with pytest.raises(ValueError, match="CUDA is not available"):
        small(device="cuda").fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="unknown device"):
        small(device="gpu0").fit(X, y, groups=groups)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fit_pickles_to_cpu_state():
    X, y, groups = make_data()
    est = small(device="cuda").fit(X, y, groups=groups)
    assert next(est.model_.parameters()).is_cuda
    state = est.__getstate__()
    assert all(t.device.type == "cpu" for t in state["_model_state_cpu"].values())
    restored = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(restored.predict(X), est.predict(X), rtol=1e-5)


def test_progress_display(capsys):
    X, y, groups = make_data()
    small(max_epochs=2, verbose=1).fit(X, y, groups=groups)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("epoch")]
    assert len(lines) == 2 and "valid_nrmse" in lines[0] and "train_loss" in lines[1]
    small(max_epochs=1, verbose=0).fit(X, y, groups=groups)
    assert capsys.readouterr().out == ""


def test_input_errors():
    X, y, groups = make_data()
    bad = X.copy()
    bad[3, 1, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN or Inf"):
        small().fit(bad, y)
    bad_y = y.copy()
    bad_y[0] = np.inf
    with pytest.raises(ValueError, match="y contains 1 NaN/Inf"):
        small().fit(X, bad_y)
    with pytest.raises(ValueError, match=r"shape \(n_windows, n_chans, n_times\)"):
        small().fit(X[:, 0], y)
    with pytest.raises(ValueError, match="y has 47 values but X has 48"):
        small().fit(X, y[:-1])
    with pytest.raises(ValueError, match="at least 2 windows"):
        small(early_stopping=False, valid_fraction=0).fit(X[:1], y[:1])
    with pytest.raises(ValueError, match="at least 2 subjects"):
        small().fit(X, y, groups=np.zeros(len(y)))
    with pytest.raises(ValueError, match="groups has shape"):
        small().fit(X, y, groups=groups[:-1])
    with pytest.raises(ValueError, match="early_stopping=True needs a validation split"):
        small(valid_fraction=0.0).fit(X, y)
    with pytest.raises(ValueError, match="max_epochs"):
        small(max_epochs=0).fit(X, y)
    with pytest.raises(ValueError, match="optimizer"):
        small(optimizer="lbfgs").fit(X, y)
    est = small(max_epochs=1).fit(X, y, groups=groups)
    with pytest.raises(ValueError, match="5 channels but the estimator was fitted on 4"):
        est.predict(np.zeros((2, 5, 30), dtype=np.float32))
    with pytest.raises(ValueError, match="31 samples but the estimator was fitted on 30"):
        est.predict(np.zeros((2, 4, 31), dtype=np.float32))
    with pytest.raises(ValueError, match="NaN"):
        est.predict(bad)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        small().predict(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a correct fit raises no warnings of ours
        small(max_epochs=1).fit(X, y, groups=groups)
