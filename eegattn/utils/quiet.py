"""Silencing third-party noise that users cannot act on (standard library only)."""

from __future__ import annotations

import contextlib
import warnings

__all__ = ["quiet_braindecode_import"]


@contextlib.contextmanager
def quiet_braindecode_import():
    """Import braindecode without its montage warning.

    braindecode 1.8's model zoo builds MNE montages at import time (``braindecode.models``,
    which ``braindecode.preprocessing`` imports too), and MNE 1.13 warns about the renamed
    ``standard_1020`` on every import: a FutureWarning for braindecode's authors, noise for our
    users (and, from joblib workers, an extra line in the command line's output)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message="Montage name")
        yield
