"""scikit-learn's ``check_estimator`` on EEGAttentionRegressor and braindecode's EEGRegressor.

    .venv/bin/python bench/sklearn_checks.py --out docs/results/sklearn-checks.json

Both estimators run every check of the installed scikit-learn (``check_estimator(est,
on_fail=None)``, scikit-learn >= 1.6) with their tags as they are: neither declares away 2-D
input, so nothing is skipped that scikit-learn would run. Tiny settings, one thread, CPU: a few
seconds in all. Every failure is put in a class by the rules in ``REASONS`` (matched on the
exception and the exception it chains from), so the table says *why* a check fails, not only
that it does; a failure no rule matches is listed as ``other`` with its message.

The checks feed (n_samples, n_features) matrices; the estimators take EEG windows (n_windows,
n_chans, n_times), so most checks cannot pass on either. A third, diagnostic row runs
EEGAttentionRegressor behind a two-line adapter that reads each matrix as one-channel windows
(n_samples, 1, n_features): what fails there fails for a reason other than the input's rank.
It is not a claim about the estimator as shipped. ``--previous-commit`` adds the estimator of
an earlier commit (default: the last one before metadata routing and the input checks), loaded
from ``git show``, so the before/after counts come from one command. docs/sklearn.md reads
the results and names the tests (tests/test_sklearn_contract.py) that hold the same contract
on 3-D windows.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import importlib.util
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import sparse
from torch import nn

from eegattn.training.estimator import EEGAttentionRegressor

REPO = Path(__file__).resolve().parents[1]
PREVIOUS_COMMIT = "52d9d05"  # the estimator before groups routing and its input checks
DEFAULT_OUT = REPO / "docs" / "results" / "sklearn-checks.json"

# (class, rule): a rule is a regular expression searched in "check_name | exception text"
# (the exception and the one it chains from). First match wins; order from specific to broad.
REASONS = [
    ("2-D input refused: X must be windows (n_windows, n_chans, n_times)",
     r"X must have shape \(n_windows, n_chans, n_times\), got shape \(\d+, \d+\)"),
    ("2-D input read as windows shorter than the model's kernels",
     r"Kernel size can't be greater than actual input size|self must be a matrix"),
    ("array-likes that are not arrays are not converted",
     r"_NotAnArray"),
    ("attributes set in __init__ (skorch's history_, initialized_, virtual_params_)",
     r"should not set any attribute apart from parameters during init"),
    ("__init__ / set_params use the parameters instead of storing them",
     r"check_do_not_raise_errors_in_init_or_set_params|check_set_params"),
    ("no input validation: NaN/Inf, empty data, sparse input or a missing y pass unnoticed",
     r"doesn't check for NaN|empty data|[Ss]parse|requires_y_none"),
    # classes that only the one-channel diagnostic reaches
    ("fit quality: the tiny model averages over time, so it cannot fit the check's toy "
     "regression to R2 > 0.5 (a model property, not the estimator's)",
     r"^check_regressors_train \| AssertionError"),
    ("error wording: windows' messages, not scikit-learn's ('X has 3 features, but ... is "
     "expecting 4', '0 feature(s)', 'n_samples=1', 'Reshape your data', TypeError for objects)",
     r"^check_(n_features_in|n_features_in_after_fitting|estimators_empty_data_messages"
     r"|fit2d_1sample|fit2d_predict1d|dtype_object) \|"),
]


class TinyEEG(nn.Module):
    """1x1 convolution -> mean over time -> linear: (batch, n_chans, n_times) -> (batch, 1)."""

    def __init__(self, n_chans, n_outputs, n_times, sfreq, hidden=8):
        super().__init__()
        self.conv = nn.Conv1d(n_chans, hidden, 1)
        self.head = nn.Linear(hidden, n_outputs)

    def forward(self, x):  # x: (batch, n_chans, n_times)
        return self.head(torch.relu(self.conv(x)).mean(-1))


def _as_windows(X):
    """A matrix (n_samples, n_features) as one-channel windows (n_samples, 1, n_features)."""
    if sparse.issparse(X):
        return X  # refused as it is, by the estimator's own check
    X = X if isinstance(X, np.ndarray) else np.asarray(X)  # lists, DataFrames, _NotAnArray
    return X[:, None, :] if X.ndim == 2 else X


class OneChannelWindows(EEGAttentionRegressor):
    """Diagnostic adapter: the checks' matrices as one-channel windows; nothing else changes."""

    def fit(self, X, y=None, groups=None, *, resume=False):
        super().fit(_as_windows(X), y, groups, resume=resume)
        self.n_features_in_ = self.n_times_  # the check's features are the window's samples
        return self

    def predict(self, X):
        return super().predict(_as_windows(X))


def previous_estimator_class(commit: str):
    """``EEGAttentionRegressor`` as ``commit`` had it, or None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:eegattn/training/estimator.py"], cwd=REPO, check=True,
            capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    name = f"estimator_at_{commit}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # the pickling checks import the class by its module's name
    exec(compile(source, f"{commit}:eegattn/training/estimator.py", "exec"), module.__dict__)
    return module.EEGAttentionRegressor


def estimators(previous_commit: str | None) -> dict:
    """The estimators measured, with the settings recorded in the JSON."""
    from braindecode import EEGRegressor

    ours = dict(model=TinyEEG, max_epochs=2, batch_size=16, verbose=0)
    theirs = dict(module="ShallowFBCSPNet", max_epochs=2, batch_size=16, verbose=0)
    recorded = {**ours, "model": "TinyEEG (bench/sklearn_checks.py)"}
    out = {
        "EEGAttentionRegressor": (EEGAttentionRegressor(**ours), recorded),
        "braindecode.EEGRegressor": (EEGRegressor(**theirs), theirs),
        "EEGAttentionRegressor as one-channel windows (diagnostic)": (
            OneChannelWindows(**ours), {**recorded, "adapter": "OneChannelWindows"}),
    }
    previous = previous_estimator_class(previous_commit) if previous_commit else None
    if previous is not None:
        out[f"EEGAttentionRegressor at {previous_commit}"] = (
            previous(**ours), {**recorded, "commit": previous_commit})
    return out


def _text(check_name: str, exc: BaseException | None) -> str:
    parts = [check_name]
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " | ".join(" ".join(p.split()) for p in parts)


def classify(check_name: str, exc: BaseException | None) -> str:
    text = _text(check_name, exc)
    for reason, rule in REASONS:
        if re.search(rule, text):
            return reason
    return "other"


def measure(est) -> dict:
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(est, on_fail=None)
    checks = []
    for r in results:
        exc = r["exception"]
        row = {"check": r["check_name"], "status": r["status"]}
        if exc is not None:
            row["exception"] = _text("", exc).lstrip(" |")[:200]
        if r["status"] == "failed":
            row["reason"] = classify(r["check_name"], exc)
        checks.append(row)
    status = collections.Counter(c["status"] for c in checks)
    reasons = collections.Counter(c["reason"] for c in checks if "reason" in c)
    return {
        "total": len(checks),
        "passed": status["passed"],
        "failed": status["failed"],
        "skipped": status["skipped"],
        "failures_by_reason": dict(reasons.most_common()),
        "checks": checks,
    }


def _commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, check=True,
                             capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file to write ('-': none)")
    parser.add_argument("--previous-commit", default=PREVIOUS_COMMIT,
                        help="also measure the estimator of this commit ('': skip)")
    args = parser.parse_args(argv)

    import braindecode
    import sklearn

    from eegattn.utils.io import write_json_atomic

    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 6):
        print(f"scikit-learn {sklearn.__version__}: check_estimator(on_fail=None) needs 1.6+",
              file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    report = {
        "what": "scikit-learn's check_estimator on EEGAttentionRegressor and braindecode's "
                "EEGRegressor, tags as they are (nothing declared away), tiny settings",
        "command": ".venv/bin/python bench/sklearn_checks.py --out "
                   "docs/results/sklearn-checks.json",
        "recorded": datetime.date.today().isoformat(),
        "commit": _commit(),
        "versions": {"scikit-learn": sklearn.__version__, "braindecode": braindecode.__version__,
                     "torch": torch.__version__.split("+")[0]},
        "estimators": {},
    }
    print(f"scikit-learn {sklearn.__version__}, braindecode {braindecode.__version__}\n")
    print("| estimator | checks | passed | failed | skipped |\n|---|---|---|---|---|")
    for name, (est, settings) in estimators(args.previous_commit).items():
        result = measure(est)
        report["estimators"][name] = {"settings": settings, **result}
        print(f"| {name} | {result['total']} | {result['passed']} | {result['failed']} | "
              f"{result['skipped']} |")
    for name, result in report["estimators"].items():
        print(f"\n{name}: failures by reason")
        for reason, count in result["failures_by_reason"].items():
            print(f"  {count:3d}  {reason}")
        for row in result["checks"]:
            if row.get("reason") == "other":
                print(f"       other: {row['check']}: {row['exception'][:160]}")
    if args.out != "-":
        write_json_atomic(args.out, report, indent=1)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
