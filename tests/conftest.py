"""Fixtures shared by the test modules.

- ``tiny_root``: a tiny synthetic release (4 subjects, seed 3, a few short CCD runs,
  RestingState, DespicableMe and surroundSupp at 100 Hz) written once per session under
  ``<basetemp>/hbn_tiny``; tests read it and never modify it (copy it first, as
  ``tiny_copy`` fixtures do).
- ``raw_root``: 2 subjects at 500 Hz with line noise, not band-passed (``raw_like=True``).
- ``one_thread``: torch on one thread for the test, restored afterwards. Tiny models gain
  nothing from threads, and on a busy machine OpenMP waits cost 10x. Modules opt in with
  ``pytestmark = pytest.mark.usefixtures("one_thread")``.

Nothing heavy is imported here at collection time: torch and the generator load inside the
fixtures that need them.
"""

from __future__ import annotations

import pytest

#: options of the tiny release (``make_release(root, **TINY_RELEASE)``)
TINY_RELEASE = dict(n_subjects=4, seed=3, trials_per_run=(6, 8), rest_seconds=12.0,
                    task_seconds=12.0)
#: options of the 500 Hz raw-like release
RAW500_RELEASE = dict(n_subjects=2, seed=5, raw_like=True, trials_per_run=(6, 8),
                      rest_seconds=12.0, max_runs=1,
                      tasks=("contrastChangeDetection", "RestingState"))


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """A tiny synthetic release shared by the data tests (never modified by them)."""
    from eegattn.data.synthetic import make_release

    root = tmp_path_factory.getbasetemp() / "hbn_tiny"
    make_release(root, **TINY_RELEASE)
    return root


@pytest.fixture(scope="session")
def raw_root(tmp_path_factory):
    """500 Hz recordings with line noise (not yet band-passed)."""
    from eegattn.data.synthetic import make_release

    root = tmp_path_factory.getbasetemp() / "hbn_raw500"
    make_release(root, **RAW500_RELEASE)
    return root


@pytest.fixture
def one_thread():
    """torch on one thread for the test; the previous setting is restored afterwards."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
