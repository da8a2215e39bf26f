"""Subject-wise splits: a subject never lands in two splits (randomised checks)."""

import numpy as np
import pytest
from sklearn.dummy import DummyRegressor
from sklearn.model_selection import cross_val_score

from eegattn.training.splits import (
    apply_subject_split,
    check_disjoint_subjects,
    subject_kfold,
    subject_split,
    train_valid_split,
)


def _random_groups(rng):
    n_subjects = int(rng.integers(3, 40))
    counts = rng.integers(1, 30, size=n_subjects)
    ids = np.array([f"NDAR{k:05d}" for k in range(n_subjects)])
    groups = np.repeat(ids, counts)
    return groups[rng.permutation(groups.size)]  # windows in random order


def test_random_splits_are_subject_disjoint_and_cover_everything():
    rng = np.random.default_rng(0)
    for trial in range(200):
        groups = _random_groups(rng)
        n_subjects = np.unique(groups).size
        valid_fraction = float(rng.uniform(0.0, 0.4))
        test_fraction = float(rng.uniform(0.0, 0.4))
        try:
            split = subject_split(groups, valid_fraction=valid_fraction,
                                  test_fraction=test_fraction, seed=trial)
        except ValueError:
            # only allowed when there are too few subjects for the requested splits
            assert n_subjects <= (valid_fraction > 0) + (test_fraction > 0) + 2
            continue
        train, valid, test = (set(groups[s.astype(int)]) for s in
                              (split.train, split.valid, split.test))
        assert not (train & valid) and not (train & test) and not (valid & test)
        all_idx = np.concatenate([split.train, split.valid, split.test])
        assert np.array_equal(np.sort(all_idx), np.arange(groups.size))
        assert set(split.train_subjects) == train and set(split.test_subjects) == test
        assert len(train) >= 1
        assert (len(valid) >= 1) == (valid_fraction > 0)
        assert (len(test) >= 1) == (test_fraction > 0)
        check_disjoint_subjects(groups, split.train, split.valid, split.test)


def test_fractions_count_subjects_not_windows():
    groups = np.repeat(np.arange(10), np.arange(1, 11))  # very unequal windows per subject
    split = subject_split(groups, valid_fraction=0.2, test_fraction=0.3, seed=0)
    assert (len(split.train_subjects), len(split.valid_subjects), len(split.test_subjects)) == (
        5, 2, 3)


def test_split_is_seeded_and_independent_of_window_order():
    rng = np.random.default_rng(1)
    groups = np.repeat([f"s{k}" for k in range(20)], 5)
    a = subject_split(groups, seed=3)
    b = subject_split(groups, seed=3)
    c = subject_split(groups, seed=4)
    shuffled = groups[rng.permutation(groups.size)]
    d = subject_split(shuffled, seed=3)
    assert a.test_subjects == b.test_subjects and np.array_equal(a.train, b.train)
    assert a.test_subjects != c.test_subjects or a.valid_subjects != c.valid_subjects
    assert a.test_subjects == d.test_subjects and a.valid_subjects == d.valid_subjects


def test_train_valid_split_and_too_few_subjects():
    groups = np.array([0, 0, 1, 1, 2, 2])
    train, valid = train_valid_split(groups, valid_fraction=0.3, seed=0)
    assert set(groups[train]).isdisjoint(groups[valid])
    assert len(valid) == 2
    with pytest.raises(ValueError, match="only 1 subject"):
        train_valid_split(np.zeros(5), valid_fraction=0.2)
    with pytest.raises(ValueError, match="no subject for training"):
        subject_split(groups, valid_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        subject_split(groups, valid_fraction=-0.1)
    with pytest.raises(ValueError, match="vector"):
        subject_split(np.zeros((2, 3)))


def test_to_dict_and_apply_round_trip():
    groups = np.repeat(np.array(["a", "b", "c", "d", "e"]), 3)
    split = subject_split(groups, valid_fraction=0.2, test_fraction=0.2, seed=5)
    d = split.to_dict()
    assert all(isinstance(s, str) for s in d["train_subjects"])
    again = apply_subject_split(groups, d["train_subjects"], d["valid_subjects"],
                                d["test_subjects"])
    for a, b in ((split.train, again.train), (split.valid, again.valid),
                 (split.test, again.test)):
        assert np.array_equal(a, b)
    with pytest.raises(ValueError, match="both train and test"):
        apply_subject_split(groups, ["a", "b"], [], ["b"])


def test_check_disjoint_subjects_detects_a_leak():
    groups = np.array([0, 0, 1, 1])
    check_disjoint_subjects(groups, [0, 1], [2, 3])
    with pytest.raises(ValueError, match="subject 0"):
        check_disjoint_subjects(groups, [0], [1, 2])


def test_subject_kfold_never_puts_a_subject_on_both_sides():
    rng = np.random.default_rng(2)
    groups = _random_groups(rng)
    while np.unique(groups).size < 5:
        groups = _random_groups(rng)
    cv = subject_kfold(5, seed=0)
    seen_test = []
    for train, test in cv.split(np.zeros(groups.size), groups=groups):
        assert set(groups[train]).isdisjoint(groups[test])
        seen_test.append(test)
    assert np.array_equal(np.sort(np.concatenate(seen_test)), np.arange(groups.size))
    scores = cross_val_score(DummyRegressor(), np.zeros((groups.size, 1)),
                             rng.normal(size=groups.size), groups=groups, cv=cv)
    assert scores.shape == (5,)
    with pytest.raises(ValueError, match="n_splits"):
        subject_kfold(1)
