"""Challenge 2 on a synthetic release: a deep model, the feature baseline, the ridge floor, the
mean predictor and the oracle, trained on the CCD runs only or on every task, each scored on
the held-out subjects' CCD windows (the task the challenge scores).

    .venv/bin/python bench/challenge2.py [--folds 4] [--epochs 5] [--cache-dir DIR]
        [--out docs/results/challenge2.json]

The release: 24 subjects (seed 0) with shorter recordings than the default release, so that
the whole benchmark fits in about 20 minutes of two CPU cores: 14-18 CCD trials per run, at
most 2 runs, 60 s of RestingState, 40 s of DespicableMe and of each surroundSupp run
(written to ``<cache>/bench-challenge2/``). The shape was fixed before any result was seen.

Splits: ``--folds`` subject folds (``eegattn.training.subject_kfold``, seeded): every subject
with a target is tested once, on its CCD windows, by models trained on the other subjects
(and, for the deep model, early-stopped on 15 % of those). The two task settings share the
folds, so every comparison is paired: per fold, the difference of two NRMSEs, then their mean
and standard error over the folds. Scores are per window on the seeded 2 s crops of the
estimator (the pipeline's test score; ``eegattn validate-submission`` scores the ingestion's
crops), one prediction per window, in no particular order: nothing here looks at
neighbouring windows.

Predictors: ``lightweight_fast`` (``--epochs``, batch 64, AdamW 1e-3), ``featureridge``
(band powers + covariance tangent space, subject means, ridge), ``ridge`` (the linear floor on
100 ms bin means), the mean predictor (the training subjects' mean target) and the oracle
(E[externalizing | planted feature]).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEEP = "lightweight_fast"
MODELS = (DEEP, "featureridge", "ridge")
SETTINGS = ("ccd", "all")
#: the benchmark's release shape (module docstring), besides 24 subjects and seed 0
RELEASE = {"trials_per_run": (14, 18), "max_runs": 2, "rest_seconds": 60.0,
           "task_seconds": 40.0}


def _fit_predict(model, train, test, *, epochs, seed):
    from eegattn.training.estimator import EEGAttentionRegressor

    deep = model == DEEP
    est = EEGAttentionRegressor(
        model=model, crop_n_times=200, max_epochs=epochs, batch_size=64, lr=1e-3,
        valid_fraction=0.15 if deep else 0.0, early_stopping=deep, seed=seed, verbose=0,
    )  # fmt: skip
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(train)
    fitted = time.perf_counter() - start
    pred = est.predict(test)
    return pred, fitted, time.perf_counter() - start - fitted


def _mean_se(values) -> dict:
    values = [float(v) for v in values]
    se = statistics.stdev(values) / len(values) ** 0.5 if len(values) > 1 else float("nan")
    return {"mean": statistics.fmean(values), "se": se, "n": len(values)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0, help="fold assignment and training")
    parser.add_argument("--cache-dir", default=None,
                        help="release and window cache folder (default: the project cache)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import torch

    from eegattn.challenge import ALL_TASKS, CCD_TASK
    from eegattn.data.cache import load_challenge_windows
    from eegattn.data.synthetic import default_cache_dir, make_release, oracle_predict
    from eegattn.training.metrics import nrmse
    from eegattn.training.splits import subject_kfold

    root = (Path(args.cache_dir) if args.cache_dir else default_cache_dir()) / "bench-challenge2"
    release = make_release(root, n_subjects=args.subjects, seed=0, **RELEASE)
    cache = root / "windows"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = {"ccd": load_challenge_windows(2, root=root, cache_dir=cache, progress=False),
                "all": load_challenge_windows(2, root=root, cache_dir=cache, tasks=ALL_TASKS,
                                              progress=False)}
    ccd = data["ccd"]
    folds = list(subject_kfold(args.folds, seed=args.seed).split(
        np.zeros(len(ccd)), ccd.y, ccd.groups))
    print(f"release {release}: {len(ccd)} CCD windows, {len(data['all'])} windows of "
          f"{sorted(set(data['all'].metadata['task']))}, {len(np.unique(ccd.groups))} "
          f"subjects, {args.folds} folds, torch threads {torch.get_num_threads()}", flush=True)

    per_fold = []
    pooled = {"y": [], "mean": [], "oracle": []}
    for k, (train_idx, test_idx) in enumerate(folds):
        test = ccd.subset(np.sort(test_idx))
        train_subjects = np.unique(ccd.groups[train_idx])
        row = {"fold": k, "test_subjects": sorted(map(str, np.unique(test.groups))),
               "n_test_windows": len(test), "nrmse": {}, "fit_s": {}, "predict_s": {},
               "n_train_windows": {}}
        mean_pred = np.full(len(test), float(np.mean(ccd.y[train_idx])))
        oracle = oracle_predict(release, 2, metadata=test.metadata)
        row["nrmse"]["mean predictor"] = nrmse(test.y, mean_pred)
        row["nrmse"]["oracle"] = nrmse(test.y, oracle)
        pooled["y"].append(test.y)
        pooled["mean"].append(mean_pred)
        pooled["oracle"].append(oracle)
        for setting in SETTINGS:
            windows = data[setting]
            train = windows.subset(np.flatnonzero(np.isin(windows.groups, train_subjects)))
            for model in args.models:
                key = f"{model} / {setting}"
                pred, fit_s, predict_s = _fit_predict(model, train, test, epochs=args.epochs,
                                                      seed=args.seed + k)
                row["nrmse"][key] = nrmse(test.y, pred)
                row["fit_s"][key], row["predict_s"][key] = fit_s, predict_s
                row["n_train_windows"][key] = len(train)
                pooled.setdefault(key, []).append(pred)
                print(f"fold {k}: {key:28s} NRMSE {row['nrmse'][key]:.4f} (fit {fit_s:.0f} s, "
                      f"{len(train)} windows)", flush=True)
        print(f"fold {k}: mean predictor {row['nrmse']['mean predictor']:.4f}, oracle "
              f"{row['nrmse']['oracle']:.4f}", flush=True)
        per_fold.append(row)

    y = np.concatenate(pooled["y"])
    names = ["oracle", *[f"{m} / {s}" for m in args.models for s in SETTINGS], "mean predictor"]
    summary = {}
    for name in names:
        key = "mean" if name == "mean predictor" else name
        summary[name] = {
            "pooled_nrmse": nrmse(y, np.concatenate(pooled[key])),
            "per_fold": _mean_se(r["nrmse"][name] for r in per_fold),
        }
    paired = {}
    for model in args.models:
        for setting in SETTINGS:
            name = f"{model} / {setting}"
            paired[f"{name} - mean predictor"] = _mean_se(
                r["nrmse"][name] - r["nrmse"]["mean predictor"] for r in per_fold)
            if model != "featureridge" and "featureridge" in args.models:
                paired[f"{name} - featureridge / {setting}"] = _mean_se(
                    r["nrmse"][name] - r["nrmse"][f"featureridge / {setting}"]
                    for r in per_fold)
        paired[f"{model}: all - ccd"] = _mean_se(
            r["nrmse"][f"{model} / all"] - r["nrmse"][f"{model} / ccd"] for r in per_fold)

    lines = ["| predictor / training tasks | NRMSE (pooled) | NRMSE per fold, mean +- SE |",
             "|---|---|---|"]
    for name in names:
        s = summary[name]
        lines.append(f"| {name} | {s['pooled_nrmse']:.4f} | {s['per_fold']['mean']:.4f} +- "
                     f"{s['per_fold']['se']:.4f} |")
    lines += ["", "| paired difference (per fold) | mean +- SE |", "|---|---|"]
    lines += [f"| {k} | {v['mean']:+.4f} +- {v['se']:.4f} |" for k, v in paired.items()]
    print("\n" + "\n".join(lines))

    if args.out:
        from _common import portable

        from eegattn.utils.io import write_json_atomic

        result = {
            "benchmark": "challenge2",
            "command": f"python bench/challenge2.py --folds {args.folds} --epochs {args.epochs} "
                       f"--seed {args.seed} --out {args.out}",  # --cache-dir left out
            "release": {"name": release.name, "subjects": args.subjects, "seed": 0,
                        **{k: list(v) if isinstance(v, tuple) else v
                           for k, v in RELEASE.items()},
                        "n_ccd_windows": len(ccd), "n_all_windows": len(data["all"]),
                        "tasks_all": sorted(set(data["all"].metadata["task"])),
                        "test_task": CCD_TASK},
            "settings": {"folds": args.folds, "epochs": args.epochs, "seed": args.seed,
                         "deep_model": DEEP, "torch_threads": torch.get_num_threads(),
                         "machine": platform.platform(), "python": platform.python_version(),
                         "torch": torch.__version__},
            "summary": summary, "paired": paired, "per_fold": per_fold,
        }
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(args.out, portable(json.loads(json.dumps(result))), indent=1)
        print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
