"""scikit-learn's contract, where it applies to signal windows (n_windows, n_chans, n_times).

Subject leakage first: ``cross_validate``/``GridSearchCV``/``Pipeline`` must hand ``fit`` the
training subjects (metadata routing), and a window-level early-stopping split must warn. Then
clone, get_params/set_params, Pipeline, search and cross-validation with group splits,
pickling, refit idempotence, inputs left unchanged, read-only memory maps and shape
bookkeeping, each on 3-D windows with the tiny model of test_estimator.py (one thread, well
under a second per fit). test_estimator.py covers the rest (pickling every registered model,
one seed -> equal weights, the caller's RNG left alone, input errors).
"""

import contextlib
import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
import sklearn
from scipy import sparse
from sklearn.base import clone
from sklearn.exceptions import DataConversionWarning, NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_predict, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import get_tags
from sklearn.utils.validation import check_is_fitted
from test_estimator import make_data, small

from eegattn.data.windows import WindowSet
from eegattn.training.estimator import EEGAttentionRegressor, SubjectLeakageWarning
from eegattn.training.metrics import nrmse_scorer
from eegattn.training.splits import subject_kfold

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SKLEARN_VERSION = tuple(int(p) for p in sklearn.__version__.split(".")[:2])


def routing():
    """scikit-learn's metadata routing, on for the duration of a ``with`` block."""
    return sklearn.config_context(enable_metadata_routing=True)


@contextlib.contextmanager
def no_leakage_warning():
    """A SubjectLeakageWarning inside the block fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", SubjectLeakageWarning)
        yield


def center_channels(X):
    """Each channel minus its mean over time: a new array, X untouched."""
    return X - X.mean(axis=-1, keepdims=True)


def windowset(X, y, groups):
    meta = pd.DataFrame({"release": "R5", "subject": groups, "task": "ccd", "run": 1,
                         "target": y, "trial": np.arange(len(y))})
    return WindowSet(X=X, y=y, metadata=meta, sfreq=100.0, challenge=1)


# ------------------------------------------------------------------ subject leakage


def test_window_level_early_stopping_split_warns_and_a_subject_split_does_not():
    X, y, groups = make_data()
    with pytest.warns(SubjectLeakageWarning) as record:
        small(max_epochs=1).fit(X, y)
    message = str(record[0].message)
    assert "\n" not in message  # one line: the problem, then the fix
    assert "windows of the training subjects" in message and "optimistic" in message
    assert "groups=" in message and "enable_metadata_routing" in message
    assert issubclass(SubjectLeakageWarning, UserWarning)

    with no_leakage_warning():
        assert small(max_epochs=1).fit(X, y, groups=groups).valid_split_ == "subject"
        assert small(max_epochs=1).fit(windowset(X, y, groups)).valid_split_ == "subject"
        # nothing is selected on the validation windows: no early stopping, nothing to warn
        est = small(max_epochs=1, early_stopping=False).fit(X, y)
        assert est.valid_split_ == "window"
        small(max_epochs=1, early_stopping=False, valid_fraction=0.0).fit(X, y)


def test_cross_validate_with_routing_gives_every_fold_a_subject_split():
    """The fix: with routing enabled, fit gets each training fold's subjects by default."""
    X, y, groups = make_data(n_subjects=6)
    with routing(), no_leakage_warning():
        out = cross_validate(small(max_epochs=2), X, y, cv=subject_kfold(3),
                             params={"groups": groups}, return_estimator=True,
                             return_indices=True, scoring=nrmse_scorer)
    assert [est.valid_split_ for est in out["estimator"]] == ["subject"] * 3
    for est, train, test in zip(out["estimator"], out["indices"]["train"],
                                out["indices"]["test"], strict=True):
        # validated on a subject of the fold's training part, never on a test subject
        assert set(est.valid_subjects_) < set(groups[train])
        assert set(est.valid_subjects_).isdisjoint(groups[test])
        assert est.n_train_ + est.n_valid_ == len(train)


def test_cross_validate_without_routing_needs_params_groups():
    """Routing off (scikit-learn's default): groups= feeds the splitter only; params= fit."""
    X, y, groups = make_data(n_subjects=4)
    cv = subject_kfold(2)
    with no_leakage_warning():
        out = cross_validate(small(max_epochs=1), X, y, groups=groups, cv=cv,
                             params={"groups": groups}, return_estimator=True)
    assert [est.valid_split_ for est in out["estimator"]] == ["subject"] * 2
    # the plain call (the old README example) validates on windows, and now says so
    with pytest.warns(SubjectLeakageWarning):
        out = cross_validate(small(max_epochs=1), X, y, groups=groups, cv=cv,
                             return_estimator=True)
    assert [est.valid_split_ for est in out["estimator"]] == ["window"] * 2


def test_routing_request_can_be_turned_off_and_survives_clone_and_pickle():
    X, y, groups = make_data(n_subjects=4)
    assert small().get_metadata_routing().fit.requests["groups"] is True
    with routing():  # set_*_request exist only while routing is enabled
        est = small(max_epochs=1).set_fit_request(groups=False)
    for copy in (clone(est), pickle.loads(pickle.dumps(est))):
        assert copy.get_metadata_routing().fit.requests["groups"] is False
    with routing(), pytest.warns(SubjectLeakageWarning):
        out = cross_validate(est, X, y, cv=subject_kfold(2), params={"groups": groups},
                             return_estimator=True)
    assert [e.valid_split_ for e in out["estimator"]] == ["window"] * 2


def test_grid_search_with_group_splits_routes_groups_to_every_fit():
    X, y, groups = make_data(n_subjects=4)
    grid = {"lr": [1e-3, 1e-2]}
    with routing(), no_leakage_warning():
        search = GridSearchCV(small(max_epochs=1), grid, cv=subject_kfold(2),
                              scoring=nrmse_scorer).fit(X, y, groups=groups)
    assert search.best_estimator_.valid_split_ == "subject"  # the refit on all subjects too
    assert search.best_params_["lr"] in grid["lr"]
    assert search.predict(X).shape == (len(X),)
    # routing off: GridSearchCV keeps groups for its splitter; every fit warns
    with pytest.warns(SubjectLeakageWarning):
        search = GridSearchCV(small(max_epochs=1), grid, cv=subject_kfold(2)).fit(
            X, y, groups=groups)
    assert search.best_estimator_.valid_split_ == "window"


def test_cross_val_predict_with_routing():
    X, y, groups = make_data(n_subjects=4)
    with routing(), no_leakage_warning():
        pred = cross_val_predict(small(max_epochs=1), X, y, cv=subject_kfold(2),
                                 params={"groups": groups})
    assert pred.shape == (len(X),) and np.isfinite(pred).all()


# ------------------------------------------------------------------ Pipeline


def test_pipeline_of_a_window_transformer_and_the_estimator():
    X, y, groups = make_data()
    pipe = make_pipeline(FunctionTransformer(center_channels), small())
    reference = small().fit(center_channels(X), y, groups=groups).predict(center_channels(X))
    with no_leakage_warning():
        # routing off: the step's name prefixes the parameter
        pipe.fit(X, y, eegattentionregressor__groups=groups)
        assert np.array_equal(pipe.predict(X), reference)
        # routing on: groups= reaches the step that requests it
        with routing():
            again = clone(pipe).fit(X, y, groups=groups)
            out = cross_validate(clone(pipe), X, y, cv=subject_kfold(2),
                                 params={"groups": groups}, return_estimator=True)
    assert np.array_equal(again.predict(X), reference)
    assert pipe[-1].valid_split_ == "subject" and pipe.n_features_in_ == X.shape[1]
    assert all(p[-1].valid_split_ == "subject" for p in out["estimator"])
    pipe.set_params(eegattentionregressor__lr=0.5)
    assert pipe[-1].lr == 0.5


# ------------------------------------------------------------------ params, clone, pickle


def test_get_params_set_params_round_trip_and_clone():
    est = small(model_options={"hidden": 4}, crop_n_times=24, max_grad_norm=1.0)
    params = est.get_params()
    assert set(params) == set(EEGAttentionRegressor().get_params())  # every __init__ argument
    rebuilt = EEGAttentionRegressor().set_params(**params)
    assert rebuilt.get_params() == params
    assert est.set_params(**params) is est and est.get_params() == params
    cloned = clone(est)
    assert cloned.get_params() == params and cloned is not est
    assert cloned.model_options == params["model_options"]
    assert cloned.model_options is not est.model_options  # deep-copied, not shared
    with pytest.raises(ValueError, match="Invalid parameter 'lrr'"):
        est.set_params(lrr=0.1)
    # a clone of a fitted estimator is unfitted and trains to the same predictions
    X, y, groups = make_data()
    est.fit(X, y, groups=groups)
    fresh = clone(est)
    with pytest.raises(NotFittedError):
        fresh.predict(X)
    assert np.array_equal(fresh.fit(X, y, groups=groups).predict(X), est.predict(X))


def test_pickle_round_trip_keeps_predictions_and_fitted_attributes():
    X, y, groups = make_data()
    unfitted = pickle.loads(pickle.dumps(small()))
    assert unfitted.get_params() == small().get_params()
    est = small(crop_n_times=24).fit(X, y, groups=groups)
    restored = pickle.loads(pickle.dumps(est))
    assert np.array_equal(restored.predict(X), est.predict(X))
    for name in ("n_chans_", "n_times_", "input_n_times_", "n_features_in_", "valid_split_",
                 "valid_subjects_", "best_epoch_", "seed_"):
        assert getattr(restored, name) == getattr(est, name), name
    assert restored.history_ == est.history_  # the same fit: durations included
    pipe = make_pipeline(FunctionTransformer(center_channels), small())
    pipe.fit(X, y, eegattentionregressor__groups=groups)
    assert np.array_equal(pickle.loads(pickle.dumps(pipe)).predict(X), pipe.predict(X))


# ------------------------------------------------------------------ fit semantics


def losses(est):
    return [{k: v for k, v in h.items() if k != "duration_s"} for h in est.history_]


def test_refitting_is_idempotent():
    X, y, groups = make_data()
    est = small(crop_n_times=24)
    first = est.fit(X, y, groups=groups).predict(X)
    history = losses(est)
    second = est.fit(X, y, groups=groups).predict(X)
    assert np.array_equal(first, second) and losses(est) == history
    # a fit on other data in between leaves nothing behind
    X2, y2, groups2 = make_data(seed=1)
    est.fit(X2, y2, groups=groups2)
    assert np.array_equal(est.fit(X, y, groups=groups).predict(X), first)


def test_inputs_are_left_unchanged():
    X, y, groups = make_data(n_times=40)
    X64, y_list = X.astype(np.float64), [float(v) for v in y]  # the casting paths as well
    copies = X.copy(), y.copy(), groups.copy(), X64.copy(), list(y_list)
    est = small(crop_n_times=32).fit(X, y, groups=groups)
    est.predict(X)
    est.score(X, y)
    small(max_epochs=1).fit(X64, y_list, groups=groups).predict(X64)
    for before, after in zip(copies, (X, y, groups, X64, y_list), strict=True):
        assert np.array_equal(before, after)
    assert X.dtype == np.float32 and X64.dtype == np.float64


def test_input_conventions_of_scikit_learn_that_hold_for_windows():
    X, y, groups = make_data()
    boxed = X.astype(object)  # numbers boxed as objects (e.g. from pandas) are converted
    est = small(max_epochs=1).fit(boxed, y, groups=groups)
    assert np.array_equal(est.predict(boxed), est.predict(X))
    with pytest.warns(DataConversionWarning, match="column-vector y"):
        small(max_epochs=1).fit(X, y[:, None], groups=groups)
    with pytest.raises(TypeError, match="sparse input is not supported"):
        small().fit(sparse.csr_array(X[:, 0]), y)
    with pytest.raises(ValueError, match="Complex data not supported"):
        small().fit(X.astype(np.complex64), y)
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        small().fit(X)
    for empty in (X[:, :0], X[:, :, :0]):
        with pytest.raises(ValueError, match="at least 1 channel and 1 sample"):
            small().fit(empty, y, groups=groups)
    assert est.predict(X[:0]).shape == (0,)


def test_read_only_memory_maps(tmp_path):
    X, y, groups = make_data(n_times=40)
    for name, arr in (("X", X), ("y", y), ("groups", groups)):
        np.save(tmp_path / f"{name}.npy", arr)
    Xm, ym, gm = (np.load(tmp_path / f"{n}.npy", mmap_mode="r") for n in ("X", "y", "groups"))
    assert not Xm.flags.writeable and isinstance(Xm, np.memmap)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # e.g. torch's "non-writable" warning
        est = small(crop_n_times=32).fit(Xm, ym, groups=gm)
        pred = est.predict(Xm)
        score = est.score(Xm, ym)
    reference = small(crop_n_times=32).fit(X, y, groups=groups)
    assert np.array_equal(pred, reference.predict(X))
    assert score == pytest.approx(reference.score(X, y))


def test_shape_bookkeeping_after_fit():
    est = small(crop_n_times=24)
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    for name in ("n_chans_", "n_times_", "input_n_times_", "n_features_in_", "n_outputs_"):
        assert not hasattr(est, name)
    X, y, groups = make_data(n_chans=4, n_times=30)
    est.fit(X, y, groups=groups)
    check_is_fitted(est)
    assert (est.n_chans_, est.n_times_, est.input_n_times_) == (4, 30, 24)
    assert est.n_features_in_ == X.shape[1] == est.n_chans_  # scikit-learn counts X.shape[1]
    assert est.n_outputs_ == 1
    # a refit on other shapes resets them
    X6, y6, groups6 = make_data(n_chans=6, n_times=28)
    est.fit(X6, y6, groups=groups6)
    assert (est.n_chans_, est.n_times_, est.input_n_times_, est.n_features_in_) == (6, 28, 24, 6)
    with pytest.raises(ValueError, match="4 channels but the estimator was fitted on 6"):
        est.predict(X)


# ------------------------------------------------------------------ check_estimator


@pytest.mark.skipif(SKLEARN_VERSION < (1, 6), reason="check_estimator(on_fail=None): 1.6+")
def test_check_estimator_runs_every_check_and_the_signal_independent_ones_pass():
    """The tags claim 2-D input (scikit-learn's default), so no check is skipped; the checks
    that do not depend on the input's shape pass. docs/sklearn.md explains the others."""
    from sklearn.utils.estimator_checks import check_estimator

    est = small(max_epochs=1)
    assert get_tags(est).input_tags.two_d_array  # not declared away: nothing is skipped
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    status = {}
    for r in results:
        status.setdefault(r["check_name"], set()).add(r["status"])
    assert {name for name, s in status.items() if "skipped" in s} <= {"check_array_api_input"}
    must_pass = [
        "check_estimator_cloneable", "check_estimator_repr", "check_no_attributes_set_in_init",
        "check_estimators_unfitted", "check_do_not_raise_errors_in_init_or_set_params",
        "check_mixin_order", "check_get_params_invariance", "check_set_params",
        "check_parameters_default_constructible", "check_fit1d", "check_supervised_y_no_nan",
        "check_requires_y_none", "check_complex_data", "check_estimator_sparse_tag",
        "check_estimator_sparse_array", "check_estimator_sparse_matrix",
    ]
    assert {name: status[name] for name in must_pass} == {name: {"passed"} for name in must_pass}
