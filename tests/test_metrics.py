"""The official challenge metric (RMSE / population std), the overall score and the scorer."""

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import GroupKFold, cross_val_score

from eegattn.training.metrics import (
    mean_predictor_nrmse,
    nrmse,
    nrmse_scorer,
    overall_score,
)


def test_nrmse_matches_the_formula_with_population_std():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    p = y + rng.normal(scale=0.3, size=50)
    expected = np.sqrt(np.mean((y - p) ** 2)) / np.std(y, ddof=0)
    assert nrmse(y, p) == pytest.approx(expected, rel=1e-12)
    # ddof=1 would give a different value: the metric must use the population std
    assert nrmse(y, p) != pytest.approx(np.sqrt(np.mean((y - p) ** 2)) / np.std(y, ddof=1))


def test_nrmse_hand_computed_and_column_vectors():
    y = np.array([1.0, 2.0, 3.0, 4.0])  # std = sqrt(1.25)
    p = np.array([1.0, 2.0, 3.0, 6.0])  # rmse = 1
    assert nrmse(y, p) == pytest.approx(1 / np.sqrt(1.25))
    assert nrmse(y[:, None], p[:, None]) == pytest.approx(nrmse(y, p))
    assert nrmse(y, y) == 0.0


def test_mean_predictor_scores_one_and_train_mean_is_worse():
    rng = np.random.default_rng(1)
    y_test, y_train = rng.normal(size=40), rng.normal(loc=0.5, size=40)
    assert mean_predictor_nrmse(y_test) == pytest.approx(1.0)
    assert nrmse(y_test, np.full(40, y_test.mean())) == pytest.approx(1.0)
    shifted = mean_predictor_nrmse(y_test, y_train)
    assert shifted > 1.0
    assert shifted == pytest.approx(nrmse(y_test, np.full(40, y_train.mean())))


def test_overall_score_weights():
    assert overall_score(1.0, 1.0) == pytest.approx(1.0)
    assert overall_score(0.88668, 0.97843) == pytest.approx(0.3 * 0.88668 + 0.7 * 0.97843)
    assert overall_score(1.0, 0.0) == pytest.approx(0.3)
    with pytest.raises(ValueError, match="c2"):
        overall_score(1.0, float("nan"))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([1.0, 2.0, 3.0], [1.0, 2.0], "3 values but y_pred has 2"),
        ([1.0, np.nan, 3.0], [1.0, 2.0, 3.0], "y_true contains 1 NaN"),
        ([1.0, 2.0, 3.0], [1.0, np.inf, 3.0], "y_pred contains 1 NaN/Inf"),
        ([2.0, 2.0, 2.0], [1.0, 2.0, 3.0], "constant"),
        ([1.0], [1.0], "at least two"),
        (np.ones((3, 2)), np.ones((3, 2)), "vector"),
        ([], [], "empty"),
    ],
)
def test_nrmse_rejects_bad_input(y_true, y_pred, match):
    with pytest.raises(ValueError, match=match):
        nrmse(y_true, y_pred)


def test_scorer_in_grouped_cross_validation():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(120, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=120)
    groups = np.repeat(np.arange(12), 10)
    cv = GroupKFold(n_splits=4)
    good = cross_val_score(LinearRegression(), X, y, groups=groups, cv=cv, scoring=nrmse_scorer)
    dummy = cross_val_score(DummyRegressor(), X, y, groups=groups, cv=cv, scoring=nrmse_scorer)
    # sklearn's convention: the scorer returns -NRMSE (greater is better)
    assert np.all(good < 0) and np.all(dummy < 0)
    assert np.all(-good < 0.2)
    assert np.all(-dummy > 0.9)
    # and it equals -nrmse on one fold computed by hand
    model = LinearRegression().fit(X[:90], y[:90])
    by_hand = -nrmse(y[90:], model.predict(X[90:]))
    assert nrmse_scorer(model, X[90:], y[90:]) == pytest.approx(by_hand)
