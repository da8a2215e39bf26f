"""Subject-wise splits: a subject's windows always stay together in one split.

Windows of one subject are strongly correlated (and in challenge 2 they share one target), so
splitting by window leaks subjects between train and test and flatters every score (the
sparse-attention challenge entry's trial-level folds did exactly that). Everything here splits
the *subjects* and maps them back to window indices. ``groups`` is always a vector
(n_windows,) with one subject id per window, e.g. ``WindowSet.groups``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold

__all__ = [
    "SubjectSplit",
    "subject_split",
    "train_valid_split",
    "apply_subject_split",
    "subject_kfold",
    "check_disjoint_subjects",
]


def _as_groups(groups) -> np.ndarray:
    arr = np.asarray(groups)
    if arr.ndim != 1:
        raise ValueError(
            f"groups must be a vector (n_windows,) of subject ids, got shape {arr.shape}"
        )
    if arr.size == 0:
        raise ValueError("groups is empty; there are no windows to split")
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        raise ValueError("groups contains NaN; every window needs a subject id")
    if arr.dtype.kind == "O" and any(g is None for g in arr):
        raise ValueError("groups contains None; every window needs a subject id")
    return arr


def _check_fraction(name: str, value: float) -> float:
    v = float(value)
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return v


def _n_subjects_for(fraction: float, n_subjects: int) -> int:
    # at least one subject for any positive fraction, so a small set still gets each split
    return 0 if fraction == 0.0 else max(1, int(round(fraction * n_subjects)))


def _indices_of(groups: np.ndarray, subjects: Sequence) -> np.ndarray:
    return np.flatnonzero(np.isin(groups, np.asarray(subjects, dtype=groups.dtype)))


def _plain(values) -> list:
    """Subject ids as plain Python values (JSON-friendly, numpy scalars unwrapped)."""
    return [v.item() if isinstance(v, np.generic) else v for v in values]


@dataclass(frozen=True)
class SubjectSplit:
    """Window indices (sorted, int64) and subject ids of a train/valid/test split."""

    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    train_subjects: tuple
    valid_subjects: tuple
    test_subjects: tuple
    seed: int | None = None

    def to_dict(self) -> dict:
        """JSON-ready description (subject lists and counts) for a run's ``config.json``."""
        return {
            "seed": self.seed,
            "train_subjects": _plain(self.train_subjects),
            "valid_subjects": _plain(self.valid_subjects),
            "test_subjects": _plain(self.test_subjects),
            "n_windows": {
                "train": int(self.train.size),
                "valid": int(self.valid.size),
                "test": int(self.test.size),
            },
        }


def subject_split(
    groups, *, valid_fraction: float = 0.1, test_fraction: float = 0.2, seed: int = 0
) -> SubjectSplit:
    """Seeded train/valid/test split of the subjects in ``groups``.

    Fractions are of *subjects* (not windows), rounded, with at least one subject in every
    split whose fraction is positive; the rest go to train. The result depends only on the set
    of subject ids and the seed, not on the order of the windows.

    Raises ``ValueError`` when there are too few subjects to give every split one.
    """
    g = _as_groups(groups)
    valid_fraction = _check_fraction("valid_fraction", valid_fraction)
    test_fraction = _check_fraction("test_fraction", test_fraction)
    if valid_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"valid_fraction + test_fraction = {valid_fraction + test_fraction} leaves no "
            "subject for training; make their sum < 1"
        )
    subjects = np.unique(g)
    n_test = _n_subjects_for(test_fraction, subjects.size)
    n_valid = _n_subjects_for(valid_fraction, subjects.size)
    if n_test + n_valid >= subjects.size:
        raise ValueError(
            f"only {subjects.size} subject(s): cannot give {n_test} to test, {n_valid} to "
            "valid and at least one to train; use more subjects or smaller fractions"
        )
    order = np.random.default_rng(seed).permutation(subjects.size)
    shuffled = subjects[order]
    test_s = np.sort(shuffled[:n_test])
    valid_s = np.sort(shuffled[n_test : n_test + n_valid])
    train_s = np.sort(shuffled[n_test + n_valid :])
    return SubjectSplit(
        train=_indices_of(g, train_s),
        valid=_indices_of(g, valid_s),
        test=_indices_of(g, test_s),
        train_subjects=tuple(_plain(train_s)),
        valid_subjects=tuple(_plain(valid_s)),
        test_subjects=tuple(_plain(test_s)),
        seed=int(seed),
    )


def train_valid_split(groups, valid_fraction: float = 0.2, seed: int = 0):
    """Subject-wise ``(train_idx, valid_idx)``; used for the estimator's early stopping."""
    split = subject_split(groups, valid_fraction=valid_fraction, test_fraction=0.0, seed=seed)
    return split.train, split.valid


def apply_subject_split(
    groups, train_subjects: Iterable, valid_subjects: Iterable = (), test_subjects: Iterable = ()
) -> SubjectSplit:
    """Rebuild a split from saved subject lists (e.g. a run's ``config.json``).

    Raises ``ValueError`` if a subject is listed in two splits.
    """
    g = _as_groups(groups)
    lists = [tuple(train_subjects), tuple(valid_subjects), tuple(test_subjects)]
    seen: dict = {}
    for name, subjects in zip(("train", "valid", "test"), lists):
        for s in subjects:
            if s in seen and seen[s] != name:
                raise ValueError(f"subject {s!r} is listed in both {seen[s]} and {name}")
            seen[s] = name
    return SubjectSplit(
        train=_indices_of(g, lists[0]) if lists[0] else np.zeros(0, dtype=np.int64),
        valid=_indices_of(g, lists[1]) if lists[1] else np.zeros(0, dtype=np.int64),
        test=_indices_of(g, lists[2]) if lists[2] else np.zeros(0, dtype=np.int64),
        train_subjects=lists[0],
        valid_subjects=lists[1],
        test_subjects=lists[2],
    )


def subject_kfold(n_splits: int = 5, *, seed: int | None = 0) -> GroupKFold:
    """A ``GroupKFold`` with shuffled subjects, for ``cross_val_score(..., groups=subjects)``.

    ``seed=None`` keeps sklearn's unshuffled, size-balanced assignment.
    """
    if isinstance(n_splits, bool) or not isinstance(n_splits, int) or n_splits < 2:
        raise ValueError(f"n_splits must be an integer >= 2, got {n_splits!r}")
    if seed is None:
        return GroupKFold(n_splits=n_splits)
    return GroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)


def check_disjoint_subjects(groups, *index_sets) -> None:
    """Raise ``ValueError`` if any subject has windows in more than one of ``index_sets``."""
    g = _as_groups(groups)
    owner: dict = {}
    for k, idx in enumerate(index_sets):
        for s in np.unique(g[np.asarray(idx, dtype=np.int64)]):
            key = s.item() if isinstance(s, np.generic) else s
            if key in owner and owner[key] != k:
                raise ValueError(
                    f"subject {key!r} has windows in split {owner[key]} and split {k}; "
                    "split by subject (eegattn.training.splits.subject_split)"
                )
            owner[key] = k
