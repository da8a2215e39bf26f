"""Does masked-reconstruction pretraining on other tasks' unlabeled windows help challenge 1
when few subjects are labelled?

Design (every setting fixed before the first run; nothing was tuned on these splits, so all
splits are report splits):

* data: one synthetic release (``--subjects`` subjects, generator seed 11; CCD with one run of
  30-40 trials per subject, and every other task the generator writes: RestingState and
  whatever else it supports, recorded in the JSON). The generator is used as it is.
* split ``s`` (``--splits``, seeds 1..4): ``--test-subjects`` subjects drawn with seed ``s``
  are the test set; the others are the pool.
* pretraining, once per split: masked reconstruction (:mod:`eegattn.training.pretrain`) on
  every non-CCD window of the pool subjects (never a test subject: a hidden test set gives
  no windows), ``--pretrain-epochs`` epochs. One pretrained encoder serves every size.
* labelled training sets: the first n in ``--sizes`` (4, 8, 16) of a seeded permutation of
  the pool (nested), their CCD windows with response-time targets.
* arms, trained with one seed, the same epochs, learning rate and batches, without early
  stopping (no validation subjects taken from the few labelled ones):
  ``scratch`` (random initialisation), ``pretrained`` (``init=`` the pretrained folder, every
  weight fine-tuned), ``frozen`` (the pretrained encoder kept, only the read-out and head
  trained); beside them the ridge floor (``ridge``, closed form), the mean predictor (the
  training-target mean) and the oracle (the planted truth, the best the data allow).
* metric: NRMSE on the test subjects' CCD windows. Paired difference ``pretrained - scratch``
  (and ``frozen - scratch``) per split; mean and standard error (sample std / sqrt(k)) over
  the k splits; negative means pretraining helped.

    .venv/bin/python bench/pretrain.py --out docs/results/pretrain.json

About 30 minutes on 2 CPU cores with the defaults; ``--quick`` is a one-minute smoke run.
"""

from __future__ import annotations

import argparse
import inspect
import math
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common as common  # noqa: E402

#: the deep model: lightweight_fast with narrower convolutions (a CPU budget)
MODEL = "lightweight_fast"
MODEL_OPTIONS = {"conv_channels": [32, 64], "head_hidden": [32]}
ARMS = ("scratch", "pretrained", "frozen")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(common.RESULTS_DIR / "pretrain.json"))
    p.add_argument("--subjects", type=int, default=32)
    p.add_argument("--test-subjects", type=int, default=8)
    p.add_argument("--sizes", type=int, nargs="+", default=[4, 8, 16])
    p.add_argument("--splits", type=int, nargs="+", default=[1, 2, 3, 4])
    p.add_argument("--epochs", type=int, default=15, help="fine-tuning / scratch epochs")
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--rest-seconds", type=float, default=40.0)
    p.add_argument("--task-seconds", type=float, default=20.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cache", default=None, help="release folder (default: a temp folder)")
    p.add_argument("--quick", action="store_true", help="smoke run: tiny everything")
    args = p.parse_args(argv)
    if args.quick:
        args.subjects, args.test_subjects, args.sizes, args.splits = 10, 3, [2, 4], [1, 2]
        args.epochs, args.pretrain_epochs, args.rest_seconds, args.task_seconds = 1, 1, 12, 10
    return args


def make_data(args, folder: Path):
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import make_release

    options = {"n_subjects": args.subjects, "seed": 11, "trials_per_run": (30, 40),
               "max_runs": 1, "rest_seconds": args.rest_seconds}
    if "task_seconds" in inspect.signature(make_release).parameters:
        options["task_seconds"] = args.task_seconds
    root = folder / "release"
    make_release(root, **options)
    ccd = load_challenge_windows(1, releases=["R5"], root=root, cache_dir=folder / "windows",
                                 progress=False)
    return root, ccd, options


def nrmse_of(y, pred):
    from eegattn.training.metrics import nrmse

    return float(nrmse(y, pred))


def run_split(split, args, root, ccd, folder: Path, log) -> dict:
    import numpy as np

    from eegattn.data.synthetic import oracle_predict, release_folder_name
    from eegattn.training.estimator import EEGAttentionRegressor
    from eegattn.training.pretrain import pretrain, unlabeled_windows, write_pretrain_folder

    subjects = np.unique(ccd.groups)
    rng = np.random.default_rng(split)
    order = rng.permutation(subjects)
    test_subjects = sorted(order[: args.test_subjects].tolist())
    pool = order[args.test_subjects:].tolist()  # in a seeded order: nested size prefixes
    test_idx = np.flatnonzero(np.isin(ccd.groups, test_subjects))
    y_test = ccd.y[test_idx]
    X_test = np.asarray(ccd.X[test_idx])

    # pretraining on the pool's other tasks (never the test subjects)
    t0 = time.perf_counter()
    unlabeled = unlabeled_windows(root, ["R5"], exclude_subjects=test_subjects)
    assert not set(unlabeled.groups) & set(test_subjects)
    result = pretrain(unlabeled, model=MODEL, model_options=MODEL_OPTIONS,
                      epochs=args.pretrain_epochs, batch_size=64, lr=args.lr, seed=split,
                      verbose=0)
    pre_dir = write_pretrain_folder(folder / f"pretrained-{split}", result, model=MODEL,
                                    model_options=MODEL_OPTIONS)
    pre = {"seconds": time.perf_counter() - t0, "n_windows": len(unlabeled),
           "n_subjects": int(len(set(unlabeled.groups))), "tasks": unlabeled.info["tasks"],
           **{k: result.metrics[k] for k in ("train_loss", "heldout_loss",
                                              "heldout_zero_loss")}}
    log(f"split {split}: pretrained on {pre['n_windows']} windows of {pre['tasks']} from "
        f"{pre['n_subjects']} subjects in {pre['seconds']:.0f} s; held-out reconstruction "
        f"{pre['heldout_loss']:.3f} (zeros {pre['heldout_zero_loss']:.3f})")
    oracle_pred = oracle_predict(root / release_folder_name("R5", False), 1, X=X_test,
                                 sfreq=ccd.sfreq)
    rows = []
    for size in args.sizes:
        labelled = pool[:size]
        train_idx = np.flatnonzero(np.isin(ccd.groups, labelled))
        X_train, y_train = np.asarray(ccd.X[train_idx]), ccd.y[train_idx]
        row = {"split": split, "size": size, "n_train_windows": int(len(train_idx)),
               "n_test_windows": int(len(test_idx)),
               "mean_predictor": nrmse_of(y_test, np.full_like(y_test, y_train.mean())),
               "oracle": nrmse_of(y_test, oracle_pred)}
        ridge = EEGAttentionRegressor("ridge", early_stopping=False, valid_fraction=0.0,
                                      verbose=0, seed=split)
        ridge.fit(X_train, y_train, groups=ccd.groups[train_idx])
        row["ridge"] = nrmse_of(y_test, ridge.predict(X_test))
        common_params = dict(model_options=MODEL_OPTIONS, max_epochs=args.epochs,
                             batch_size=args.batch_size, lr=args.lr, early_stopping=False,
                             valid_fraction=0.0, seed=split, verbose=0)
        for arm in ARMS:
            t1 = time.perf_counter()
            extra = {} if arm == "scratch" else {
                "init": str(pre_dir), "finetune": "frozen" if arm == "frozen" else "full"}
            est = EEGAttentionRegressor(MODEL, **common_params, **extra)
            est.fit(X_train, y_train)
            row[arm] = nrmse_of(y_test, est.predict(X_test))
            row[f"{arm}_seconds"] = time.perf_counter() - t1
        rows.append(row)
        log(f"split {split}, {size:>2} subjects ({row['n_train_windows']} windows): "
            + ", ".join(f"{k} {row[k]:.4f}" for k in ("mean_predictor", "ridge", *ARMS,
                                                          "oracle")))
    return {"split": split, "test_subjects": test_subjects, "pool": pool,
            "pretraining": pre, "rows": rows}


def summarize(splits: list, sizes) -> list:
    """Per size: mean NRMSE of each predictor, and paired differences with standard errors."""
    out = []
    for size in sizes:
        rows = [r for s in splits for r in s["rows"] if r["size"] == size]
        k = len(rows)
        entry = {"size": size, "k_splits": k}
        for key in ("mean_predictor", "ridge", *ARMS, "oracle"):
            entry[key] = statistics.fmean(r[key] for r in rows)
        for arm in ("pretrained", "frozen"):
            diffs = [r[arm] - r["scratch"] for r in rows]
            se = statistics.stdev(diffs) / math.sqrt(k) if k > 1 else None
            entry[f"{arm}_minus_scratch"] = {
                "mean": statistics.fmean(diffs), "se": se, "per_split": diffs,
                "n_better": int(sum(d < 0 for d in diffs))}
        out.append(entry)
    return out


def table(summary: list) -> str:
    lines = ["| labelled subjects | mean predictor | ridge | scratch | pretrained | frozen "
             "encoder | pretrained - scratch | frozen - scratch | oracle |",
             "|---|---|---|---|---|---|---|---|---|"]

    def diff(e, arm):
        d = e[f"{arm}_minus_scratch"]
        se = "" if d["se"] is None else f" ± {d['se']:.4f}"
        return f"{d['mean']:+.4f}{se} ({d['n_better']}/{e['k_splits']} better)"

    for e in summary:
        lines.append(
            f"| {e['size']} | {e['mean_predictor']:.4f} | {e['ridge']:.4f} | "
            f"{e['scratch']:.4f} | {e['pretrained']:.4f} | {e['frozen']:.4f} | "
            f"{diff(e, 'pretrained')} | {diff(e, 'frozen')} | {e['oracle']:.4f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    def log(text):
        print(f"[{time.perf_counter() - started:6.0f} s] {text}", flush=True)

    with tempfile.TemporaryDirectory(prefix="eegattn-bench-pretrain-") as tmp:
        folder = Path(args.cache) if args.cache else Path(tmp)
        root, ccd, release_options = make_data(args, folder)
        log(f"release: {args.subjects} subjects, {len(ccd)} CCD windows")
        splits = [run_split(s, args, root, ccd, folder, log) for s in args.splits]
    summary = summarize(splits, args.sizes)
    text = table(summary)
    print("\nChallenge 1 NRMSE on the test subjects (mean over splits "
          f"{', '.join(map(str, args.splits))}); differences: mean ± standard error\n")
    print(text)
    from eegattn.training.runs import package_versions

    result = {
        "benchmark": "pretrain",
        "command": "python bench/pretrain.py " + " ".join(argv if argv is not None
                                                          else sys.argv[1:]),
        "design": {"model": MODEL, "model_options": MODEL_OPTIONS, "arms": list(ARMS),
                   "release": {k: list(v) if isinstance(v, tuple) else v
                               for k, v in release_options.items()},
                   **{k: v for k, v in vars(args).items() if k not in ("out", "cache")},
                   "settings_chosen_on": "none: fixed before the first run; every split "
                                         "is a report split"},
        "summary": summary,
        "splits": splits,
        "table": text,
        "seconds": time.perf_counter() - started,
        "machine": {"platform": platform.platform(), "threads": args.threads},
        "versions": package_versions(),
    }
    out = Path(args.out)
    common.write_json(out, result, indent=2)
    print(f"\nwrote {out} ({result['seconds'] / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
