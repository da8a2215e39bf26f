"""The challenge pipeline: releases -> cached windows -> subject split -> train -> evaluate -> run.

``run_challenge`` is what ``challenges/challenge1.py``, ``challenges/challenge2.py``,
``eegattn train`` and ``eegattn demo`` call. Every result lands in a new run folder
(``config.json``, ``weights.pt``, ``metrics.json``, ``history.json``, PNG plots) that the
submission packager reads.

Scores are the official NRMSE (RMSE / population std of the true targets) on held-out subjects,
shown next to the mean predictor (the training-target mean; NRMSE >= 1 by construction) and, on a
synthetic release, the oracle that knows the planted truth (the best score the data allows).
Challenge 2's headline is per window on seeded 2 s crops, as the official scorer does; a
per-subject aggregate (mean prediction per subject) is reported beside it, labelled as such.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# (challenge 2's windows are 4 s; models see 2 s crops: random in training, seeded at test)
from eegattn.challenge import (
    C1_SHIFT_AFTER_STIMULUS_S,
    C1_WINDOW_S,
    C2_CROP_N_TIMES,
    CCD_TASK,
    DEFAULT_TRIAL_RULE,
    SFREQ,
    TRIAL_RULES,
    check_challenge,
)
from eegattn.utils.check import check_fraction, check_option

CHALLENGE_TARGET = {1: "response time (s)", 2: "externalizing"}


@dataclass
class ChallengeResult:
    """What a pipeline run produced: its folder, its metrics and the printed table."""

    run_dir: Path
    metrics: dict
    table: str
    extra: dict = field(default_factory=dict)


def _release_names(releases) -> list[str]:
    if isinstance(releases, str):
        releases = [releases]
    names = [str(r).upper() for r in releases]
    if not names:
        raise ValueError("give at least one release, e.g. --releases R5")
    return names


def prepare_synthetic(releases, *, cache_dir=None, n_subjects=24, seed=0, mini=False,
                      verbose=False, **options) -> Path:
    """Generate (or reuse) one synthetic release per name and return their common root."""
    from eegattn.data.synthetic import default_cache_dir, make_release

    # the same folder `eegattn synth` writes to, so a release is generated once
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    for i, release in enumerate(releases):
        # A different seed per release gives different subjects, like real releases.
        make_release(root, release=release, mini=mini, n_subjects=None if mini else n_subjects,
                     seed=seed + 1000 * i, verbose=verbose, **options)
    return root


def _split(windows, *, test_release, test_fraction, seed):
    from eegattn.training.splits import check_disjoint_subjects, subject_split

    groups = windows.groups
    if test_release:
        is_test = windows.metadata["release"].astype(str).str.upper().to_numpy() == test_release
        if not is_test.any():
            raise ValueError(f"no windows from the held-out release {test_release}; "
                             "add it to the loaded releases")
        pool, test = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    else:
        split = subject_split(groups, valid_fraction=0.0, test_fraction=test_fraction, seed=seed)
        pool, test = split.train, split.test
    check_disjoint_subjects(groups, pool, test)
    n_test_subjects = len(np.unique(groups[test]))
    if n_test_subjects < 2:
        raise ValueError(
            f"only {n_test_subjects} test subject(s) with usable windows: NRMSE needs targets "
            "that vary; use more subjects or a larger test fraction"
        )
    return pool, test


def _scores(challenge, y_true, y_pred, y_train, metadata) -> dict:
    from eegattn.training.metrics import nrmse

    out = {
        "nrmse": nrmse(y_true, y_pred),
        "mean_predictor_nrmse": nrmse(y_true, np.full_like(y_true, float(np.mean(y_train)))),
        "rmse": float(np.sqrt(np.mean((y_true - y_pred) ** 2))),
        "n_test_windows": int(len(y_true)),
        "n_test_subjects": int(metadata["subject"].nunique()),
    }
    if challenge == 2:
        per = (
            metadata.assign(_true=y_true, _pred=y_pred)
            .groupby("subject")[["_true", "_pred"]].mean()
        )
        if len(per) > 1 and np.std(per["_true"]) > 0:
            out["per_subject_nrmse"] = nrmse(per["_true"].to_numpy(), per["_pred"].to_numpy())
    return out


def _oracle(challenge, root, windows_test, *, mini) -> float | None:
    """Oracle NRMSE on the test windows of synthetic releases; None for real data."""
    from eegattn.data.synthetic import oracle_predict, read_marker, release_folder_name
    from eegattn.training.metrics import nrmse

    meta = windows_test.metadata
    pred = np.full(len(windows_test), np.nan)
    for release in meta["release"].astype(str).unique():
        folder = Path(root) / release_folder_name(release, mini)
        if read_marker(folder) is None:
            return None  # not a synthetic release: no planted truth
        rows = np.flatnonzero(meta["release"].astype(str).to_numpy() == release)
        if challenge == 1:
            X = np.asarray(windows_test.X[rows])
            pred[rows] = oracle_predict(folder, 1, X=X, sfreq=windows_test.sfreq)
        else:
            pred[rows] = oracle_predict(folder, 2, metadata=meta.iloc[rows])
    if not np.isfinite(pred).all():
        return None
    return nrmse(windows_test.y, pred)


def _plots(run_dir: Path, est, y_true, y_pred, challenge) -> list[str]:
    """Learning curves, predicted vs true and the gates (:func:`eegattn.plots.plot_run`)."""
    from eegattn.plots import plot_run

    return plot_run(run_dir, est.history_, y_true, y_pred, target=CHALLENGE_TARGET[challenge],
                    model=est.model_, sfreq=est.sfreq_)


def format_table(challenge: int, model: str, metrics: dict) -> str:
    """Markdown table of a run: the model next to the mean predictor, the ridge floor and the
    oracle."""
    rows = [("model: " + model, metrics["nrmse"]),
            ("mean predictor", metrics["mean_predictor_nrmse"])]
    if metrics.get("ridge_nrmse") is not None:
        rows.append(("ridge on 100 ms bins (linear floor)", metrics["ridge_nrmse"]))
    if metrics.get("oracle_nrmse") is not None:
        rows.append(("oracle (planted truth)", metrics["oracle_nrmse"]))
    lines = [f"Challenge {challenge} ({CHALLENGE_TARGET[challenge]}), "
             f"{metrics['n_test_subjects']} held-out subjects, "
             f"{metrics['n_test_windows']} windows",
             "", "| predictor | NRMSE |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in rows]
    if "per_subject_nrmse" in metrics:
        lines.append(f"| model, per-subject aggregate (not official) | "
                     f"{metrics['per_subject_nrmse']:.4f} |")
    if metrics.get("out_of_fold_nrmse") is not None:  # not held out: the training subjects
        lines.append(f"| ensemble members out of fold, training subjects (not the test) | "
                     f"{metrics['out_of_fold_nrmse']:.4f} |")
    return "\n".join(lines)


RUN_ARGS_NAME = "run_args.json"  # the call's arguments, read back by --resume
INCOMPLETE_NAME = "INCOMPLETE"  # present from the start of a run until it has finished
CHECKPOINT_DIR = "checkpoint"  # the training loop's last.pt while the run is going


def default_run_name(challenge: int, model) -> str:
    """``c<N>-<model>``; a ``module:Class`` model gives its class name."""
    return f"c{challenge}-{str(model).rpartition(':')[2]}"


def _count_subjects(root, names, mini) -> int | None:
    """Subjects on disk in the named real releases (``sub-*`` folders), None if unknown."""
    from eegattn.data.synthetic import release_folder_name

    total = 0
    for name in names:
        folder = Path(root) / release_folder_name(name, mini)
        if not folder.is_dir():
            return None  # the loader names the missing folder and the fix
        total += sum(1 for p in folder.glob("sub-*") if p.is_dir())
    return total


def check_challenge_options(challenge, *, root, releases, test_release, mini, model,
                            model_options, valid_fraction, test_fraction, runs_dir, run_name,
                            n_subjects, estimator_params: dict) -> dict:
    """Check every option of :func:`run_challenge` before any data is read or written.

    Cheap checks first (no torch import): challenge, releases, fractions, the runs folder and
    run name, the number of subjects the split needs, the model name; then the estimator's
    parameters and one build of the model on the challenge's shapes (bad model options).
    Returns the normalised options. Raises ``ValueError`` / ``FileNotFoundError`` with the fix.
    """
    from eegattn.training.runs import check_run_name

    if challenge not in (1, 2):
        raise ValueError(f"challenge must be 1 or 2, got {challenge!r}")
    names = _release_names(releases)
    if test_release:
        test_release = str(test_release).upper()
        if test_release not in names:
            names.append(test_release)
        if len(names) < 2:
            raise ValueError("a held-out test release needs at least one other release "
                             "to train on; add one with --releases")
    for name, value, low_ok in (("test_fraction", test_fraction, False),
                                ("valid_fraction", valid_fraction, True)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                (0.0 <= value < 1.0) if low_ok else (0.0 < value < 1.0)):
            raise ValueError(f"{name} must be in {'[0, 1)' if low_ok else '(0, 1)'}, got "
                             f"{value!r}")
    runs = Path(runs_dir)
    if runs.exists() and not runs.is_dir():
        raise ValueError(f"--runs-dir {runs} is a file, not a folder; choose another folder")
    check_run_name(run_name or default_run_name(challenge, model))
    if root is not None and not Path(root).is_dir():
        raise FileNotFoundError(f"release root {root} does not exist; give the folder that "
                                "holds EEG2025r<N> folders (see the README's data section)")
    if root is None:
        if isinstance(n_subjects, bool) or not isinstance(n_subjects, int) or n_subjects < 1:
            raise ValueError(f"subjects must be a positive integer, got {n_subjects!r}")
        subjects = n_subjects * len(names) if not mini else None
    else:
        subjects = _count_subjects(root, names, mini)
    if subjects is not None and not test_release:
        folds = (int(estimator_params.get("ensemble", 1) or 1)
                 if estimator_params.get("ensemble_split") == "folds" else 0)
        _check_subject_counts(subjects, test_fraction, valid_fraction, folds)
    if isinstance(model, str) and ":" not in model:
        from eegattn.models import available_models

        if model not in available_models():
            raise ValueError(f"unknown model {model!r}; choose one of "
                             f"{', '.join(available_models())} or give module:Class")
    from eegattn.utils.check import check_positive_int

    check_positive_int(estimator_params.get("ensemble", 1), "ensemble")
    if model_options is not None and not isinstance(model_options, dict):
        raise ValueError(f"model options must be a JSON object such as "
                         f"'{{\"dropout\": 0.2}}', got {model_options!r}")
    # torch from here on
    from eegattn.training.estimator import EEGAttentionRegressor, build_each_member

    EEGAttentionRegressor(model=model, model_options=model_options,
                          valid_fraction=valid_fraction, **estimator_params)._check_params()
    from eegattn.models import member_options

    mix = estimator_params.get("ensemble_mix")
    n_members = int(estimator_params.get("ensemble", 1) or 1)
    members = member_options(model_options, mix, n_members if mix is not None else 1)
    time_heads = sorted({m.get("head") for m in members} & {"softargmax", "distribution"})
    if challenge == 2 and time_heads:
        raise ValueError(
            f"head {time_heads[0]!r} reads a latency off the time axis (challenge 1's "
            "response time); challenge 2's externalizing factor is not a time: use the "
            "regression head, and no time heads in ensemble_mix (--ensemble-mix)")
    build_each_member(model, members, n_chans=129, sfreq=100.0, mix=mix,
                      n_times=C2_CROP_N_TIMES if challenge == 2 else 200)
    return {"releases": names, "test_release": test_release}


def _check_subject_counts(n: int, test_fraction: float, valid_fraction: float,
                          folds: int = 0) -> None:
    """The test split, the early-stopping split of the rest and training each need subjects
    (the same rounding as ``subject_split``); ``folds`` subject folds need one each."""
    n_test = max(1, int(round(test_fraction * n)))
    pool = n - n_test
    if pool < folds:
        raise ValueError(
            f"--ensemble {folds} subject folds need {folds} training subjects, but {n} "
            f"subject(s) leave {pool} after the test split; use fewer members, more subjects, "
            "or --ensemble-split seeds")
    n_valid = 0 if valid_fraction == 0 else max(1, int(round(valid_fraction * pool)))
    if n_test < 2 or pool - n_valid < 1:
        raise ValueError(
            f"{n} subject(s) are too few for test_fraction={test_fraction} and "
            f"valid_fraction={valid_fraction}: the test needs 2 subjects, and training one "
            "after validation; use more subjects (--subjects) or change --test-fraction"
        )


def run_challenge(
    challenge: int,
    *,
    root=None,
    releases=("R5",),
    test_release: str | None = None,
    mini: bool = False,
    model: str | None = "lightweight",
    model_options: dict | None = None,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    patience: int = 5,
    start_from_epoch: int | None = None,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.2,
    seed: int = 2025,
    runs_dir="runs",
    run_name: str | None = None,
    cache_dir=None,
    n_subjects: int = 24,
    n_jobs: int = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    device: str = "cpu",
    verbose: int = 1,
    plots: bool = True,
    synthetic_options: dict | None = None,
    checkpoint_every: int | None = None,
    linear_baseline: bool = True,
    init=None,
    finetune: str = "full",
    lora_options: dict | None = None,
    head: str | None = None,
    augment=None,
    context_s: float | None = None,
    ensemble: int = 1,
    ensemble_combine: str = "mean",
    ensemble_split: str = "seeds",
    ensemble_mix=None,
    ensemble_diversity: float = 0.5,
    precision: str = "float32",
    tasks=None,
    trial_rule: str | None = None,
    resume=None,
) -> ChallengeResult | None:
    """Train and evaluate one model on one challenge in a run folder.

    The run folder is created before training starts and holds ``run_args.json`` (this call's
    arguments) and an ``INCOMPLETE`` marker until the run has finished; the training loop
    checkpoints into ``<run>/checkpoint/`` after every epoch (and every ``checkpoint_every``
    steps), so :func:`resume_challenge` (``eegattn train --resume RUN``) continues a killed
    run to the same weights and history. SIGINT / SIGTERM stop at the next step boundary with
    a checkpoint written. Under ``torchrun`` the same call trains data-parallel; rank 0 builds
    the data and writes the run folder (other ranks return None).

    Parameters
    ----------
    challenge : 1 (CCD response time) or 2 (externalizing factor).
    root : folder holding ``EEG2025r<N>[mini]`` release folders (real HBN, as eegdash lays
        them out). None generates synthetic releases under ``cache_dir`` (or reuses them).
    releases : releases to load; with ``test_release`` the test subjects are that release's
        and training uses the others (give the held-out one here too, or it is added).
    model, model_options : a name from ``eegattn.models.available_models()`` and its options.
    epochs, batch_size, lr, patience : training budget (early stopping on a subject-wise
        validation split of ``valid_fraction`` of the training subjects).
    start_from_epoch : epochs up to this one do not count towards ``patience`` (None: half
        of ``epochs``; see ``EEGAttentionRegressor``).
    test_fraction : fraction of subjects held out for the test score (without test_release).
    seed : seeds the subject split, initialisation, data order and crops.
    n_subjects : subjects per synthetic release (ignored for real data).
    n_jobs, backend, scheduler : how recordings are read
        (:func:`eegattn.data.preprocess.map_recordings`: loky processes, or ``"dask"`` with a
        scheduler address); not stored with the run, a resume may change them.
    synthetic_options : more ``make_release`` options (e.g. ``trials_per_run``).
    checkpoint_every : also checkpoint every this many steps (None: at epoch ends only).
    linear_baseline : also fit the ridge floor on the training subjects and report its test
        NRMSE beside the model's (a few seconds).
    init : starting weights, ``hf:ORG/NAME`` or a folder (``eegattn pretrain``, ``eegattn
        train``, braindecode's ``save_pretrained``); ``model=None`` takes the folder's model,
        and the folder's architecture options come before ``model_options``
        (:mod:`eegattn.training.finetune`).
    finetune, lora_options : ``"full"``, ``"frozen"`` (head only) or ``"lora"`` (peft
        adapters + head) and the adapters' ``r``, ``alpha``, ``dropout``.
    tasks : challenge 2: the HBN tasks to train on (names, or ``"all"``; default the CCD
        runs). The test windows are always the held-out subjects' CCD windows, the task the
        challenge scores.
    trial_rule : challenge 1: ``"challenge"`` (default) or ``"current"`` CCD trial table
        (:func:`eegattn.data.windows.ccd_trial_table`).
    head, augment, context_s, ensemble, ensemble_combine, ensemble_split, ensemble_mix,
        ensemble_diversity, precision : as the ``eegattn train`` options and
        ``EEGAttentionRegressor`` parameters of those names (``head`` sets the model option).
    resume : an existing run folder to continue (use :func:`resume_challenge`).
    """
    # the call's arguments as run_args.json stores them (refused here, before anything is
    # written, if they cannot be stored); the estimator reads the options from this JSON
    # form too, so a resumed run sees exactly what the first one saw (lists, not tuples)
    args = _jsonable_args({k: v for k, v in locals().items()
                           if k not in ("resume", "verbose", "n_jobs", "backend",
                                        "scheduler")})
    model_options, augment = args["model_options"], args["augment"]
    lora_options, init, ensemble_mix = args["lora_options"], args["init"], args["ensemble_mix"]
    init_source = None
    if init is not None:  # found first (a hub id without a network fails here, at once)
        from eegattn.training.finetune import init_model_options, resolve_init

        init_source = resolve_init(init)
        model, model_options = init_model_options(model, model_options, init_source)
        model_options = json.loads(json.dumps(model_options))
        args.update(model=model, model_options=model_options)
    elif model is None:
        model = args["model"] = "lightweight"
    if head is not None:  # shorthand for the model option every EEG model takes
        model_options = args["model_options"] = {**(model_options or {}), "head": head}
    crop_anchor, context_s = _context(challenge, augment, context_s)
    train_tasks, load_options = _task_options(challenge, tasks, trial_rule)
    from eegattn.data.preprocess import check_parallel_options

    check_parallel_options(n_jobs, backend, scheduler)
    load_options.update(backend=backend, scheduler=scheduler)
    estimator_params = dict(max_epochs=epochs, batch_size=batch_size, lr=lr,
                            patience=patience, start_from_epoch=start_from_epoch,
                            checkpoint_every=checkpoint_every, seed=seed, init=init,
                            finetune=finetune, lora_options=lora_options,
                            augment=augment, crop_anchor=crop_anchor, ensemble=ensemble,
                            ensemble_combine=ensemble_combine,
                            ensemble_split=ensemble_split, ensemble_mix=ensemble_mix,
                            ensemble_diversity=ensemble_diversity, precision=precision,
                            crop_n_times=C2_CROP_N_TIMES if challenge == 2 else (
                                200 if context_s else None))
    checked = check_challenge_options(
        challenge, root=root, releases=releases, test_release=test_release, mini=mini,
        model=model, model_options=model_options, valid_fraction=valid_fraction,
        test_fraction=test_fraction, runs_dir=runs_dir, run_name=run_name,
        n_subjects=n_subjects, estimator_params=estimator_params,
    )
    names, test_release = checked["releases"], checked["test_release"]
    from eegattn.training.distributed import init_distributed
    from eegattn.training.estimator import EEGAttentionRegressor, resolve_device
    from eegattn.training.runs import create_run_dir, save_run
    from eegattn.training.signals import TrainingInterrupted, stop_on_signals

    dist = init_distributed(resolve_device(device))
    try:
        run_dir = None
        if dist.is_main:
            run_dir = Path(resume) if resume else create_run_dir(
                runs_dir, run_name or default_run_name(challenge, model))
            if not resume:
                from eegattn.utils.io import write_json_atomic, write_text_atomic

                write_text_atomic(run_dir / INCOMPLETE_NAME,
                                  f"training; continue a stopped run with: eegattn train "
                                  f"--resume {run_dir}\n")
                write_json_atomic(run_dir / RUN_ARGS_NAME, _jsonable_args(args))
        run_dir = Path(dist.broadcast_object(None if run_dir is None else str(run_dir)))
        if verbose and dist.is_main:
            print(f"run folder: {run_dir}" + (" (resumed)" if resume else ""), flush=True)
        synthetic = root is None
        if dist.is_main:  # rank 0 writes releases and caches; the others then read them
            root_used = _prepare_data(challenge, root, names, mini, cache_dir, n_subjects,
                                      n_jobs, verbose, synthetic_options, **load_options)
        dist.barrier()
        if not dist.is_main:
            root_used = _prepare_data(challenge, root, names, mini, cache_dir, n_subjects,
                                      n_jobs, 0, synthetic_options, **load_options)
        windows = root_used[1]
        root = root_used[0]
        pool, test = _split(windows, test_release=test_release, test_fraction=test_fraction,
                            seed=seed)
        if train_tasks is not None:  # train on the tasks asked for, test on CCD windows
            pool, test = _select_tasks(windows, pool, test, train_tasks)
        if init_source is not None and dist.is_main:  # pretrained on test subjects' windows?
            from eegattn.training.finetune import warn_pretrained_on

            warn_pretrained_on(init_source, windows.groups[test])
        train_ws, test_ws = windows.subset(pool), windows.subset(test)
        if context_s:  # train on windows cut with context; test on the exact windows
            kw = dict(shift_after_stimulus_s=C1_SHIFT_AFTER_STIMULUS_S - context_s,
                      window_s=C1_WINDOW_S + 2 * context_s, **load_options)
            if dist.is_main:
                wide = _prepare_data(challenge, root, names, mini, cache_dir, n_subjects,
                                     n_jobs, verbose, synthetic_options, **kw)[1]
            dist.barrier()
            if not dist.is_main:
                wide = _prepare_data(challenge, root, names, mini, cache_dir, n_subjects,
                                     n_jobs, 0, synthetic_options, **kw)[1]
            train_ws = wide.subset(np.flatnonzero(np.isin(wide.groups, train_ws.groups)))

        est = EEGAttentionRegressor(
            model=model, model_options=model_options, valid_fraction=valid_fraction,
            device=device,
            verbose=verbose if dist.is_main else 0,
            checkpoint_dir=str(run_dir / CHECKPOINT_DIR), **estimator_params,
        )
        try:
            with stop_on_signals():
                est.fit(train_ws, resume=bool(resume))
        except TrainingInterrupted as stop:
            stop.run_dir = run_dir  # the CLI names it in the resume hint
            raise
        if not dist.is_main:
            return None
        y_pred = est.predict(test_ws)
    finally:
        dist.close()
    metrics = _scores(challenge, test_ws.y, y_pred, train_ws.y, test_ws.metadata)
    metrics["oracle_nrmse"] = (
        _oracle(challenge, root, test_ws, mini=mini) if synthetic else None
    )
    metrics["ridge_nrmse"] = (
        _ridge_floor(challenge, train_ws, test_ws, seed, crop_anchor)
        if linear_baseline and model != "ridge"
        else None)
    if est.oof_predictions_ is not None:  # subject folds: a cross-validated training score
        from eegattn.training.metrics import nrmse

        metrics["out_of_fold_nrmse"] = float(nrmse(train_ws.y, est.oof_predictions_))
    metrics["best_epoch"] = est.best_epoch_
    metrics["n_epochs"] = est.n_epochs_
    metrics["n_train_windows"] = int(est.n_train_)

    test_subjects = sorted(map(str, np.unique(test_ws.groups)))
    valid_subjects = sorted(map(str, est.valid_subjects_ or []))
    train_subjects = sorted(set(map(str, np.unique(train_ws.groups))) - set(valid_subjects))
    config = {
        "challenge": challenge,
        "cache_key": windows.cache_key,
        "releases": names,
        "test_release": test_release,
        "data": "synthetic" if synthetic else "local",
        "split": {"train": train_subjects, "valid": valid_subjects, "test": test_subjects,
                  "seed": seed,
                  **({"folds": [sorted(map(str, fold)) for fold in est.ensemble_folds_]}
                     if est.ensemble_folds_ else {})},
        **({"tasks": {"train": train_tasks, "test": CCD_TASK}} if train_tasks else {}),
        **({"trial_rule": load_options.get("trial_rule") or DEFAULT_TRIAL_RULE}
           if challenge == 1 else {}),
        "world_size": dist.world_size,
    }
    # a resumed run may have been stopped after these files were written: rewrite them
    save_run(run_dir, est, config=config, metrics=metrics, force=bool(resume))
    files = _plots(run_dir, est, test_ws.y, y_pred, challenge) if plots else []
    label = model if ensemble == 1 else (
        f"{model}, ensemble of {ensemble} ({ensemble_split}"
        f"{f', diversity {ensemble_diversity:g}' if ensemble_split == 'joint' else ''}"
        f"{'' if ensemble_mix is None else ', ' + _mix_label(est)})")
    table = format_table(challenge, label, metrics)
    from eegattn.utils.io import write_text_atomic

    write_text_atomic(run_dir / "results.md", table + "\n")
    _mark_complete(run_dir)
    if verbose:
        print(table)
        print(f"\nrun folder: {run_dir}  ({', '.join(files + ['config.json', 'weights.pt'])})")
    return ChallengeResult(run_dir=run_dir, metrics=metrics, table=table,
                           extra={"plots": files, "config": json.loads(json.dumps(config))})


def _mix_label(est) -> str:
    """An ensemble of mixed members in the run table: the heads it mixes, or the options in
    which its members differ."""
    options = [m["model_options"] for m in est.ensemble_members_]
    heads = list(dict.fromkeys(o.get("head", "regression") for o in options))
    if len(heads) > 1:
        return "mixed " + "/".join(heads)
    differ = sorted({key for o in options for key in o if any(
        other.get(key) != o[key] for other in options)})
    return "mixed " + ", ".join(differ)


def _ridge_floor(challenge, train_ws, test_ws, seed, crop_anchor=None) -> float:
    """Test NRMSE of the ridge floor (``models/ridge.py``) fitted on the run's training
    subjects (alpha by inner cross-validation over them): every deep model must beat it."""
    from eegattn.training.estimator import EEGAttentionRegressor
    from eegattn.training.metrics import nrmse

    ridge = EEGAttentionRegressor(
        model="ridge", valid_fraction=0.0, early_stopping=False, verbose=0, seed=seed,
        crop_n_times=C2_CROP_N_TIMES if challenge == 2 else (
            200 if crop_anchor is not None else None),
        crop_anchor=crop_anchor,  # training windows with context: the exact window in them
    ).fit(train_ws)
    return nrmse(test_ws.y, ridge.predict(test_ws))


def _context(challenge, augment, context_s) -> tuple[int | None, float | None]:
    """(crop anchor in samples, context in seconds) of challenge-1 training windows: a
    label-moving augmentation needs context on both sides of the +0.5..+2.5 s window
    (default 0.2 s: windows +0.3..+2.7 s, the exact one 20 samples in)."""
    from eegattn.training.augment import LABEL_MOVING, parse_augment

    check_challenge(challenge)
    moving = set(parse_augment(augment)) & set(LABEL_MOVING)
    if moving and challenge != 1:
        raise ValueError(f"{', '.join(sorted(moving))} moves the challenge-1 response time "
                         "with the signal; challenge 2 has no time target: drop it")
    if context_s is None:
        context_s = 0.2 if moving else 0.0
    check_fraction(context_s, "context_s", high=C1_SHIFT_AFTER_STIMULUS_S, low_inclusive=True,
                   fix="It is the extra signal cut on each side of the 2 s window, in seconds.")
    if context_s and challenge != 1:
        raise ValueError("context_s applies to challenge 1 (challenge 2 already crops 2 s "
                         "out of 4 s windows); leave it unset")
    samples = context_s * SFREQ
    if abs(samples - round(samples)) > 1e-6 or (context_s and round(samples) < 1):
        raise ValueError(f"context_s={context_s} is not a whole number of samples at "
                         f"{SFREQ:g} Hz; use a multiple of {1 / SFREQ:g} s")
    if moving and not context_s:
        raise ValueError(f"{', '.join(sorted(moving))} moves the target with the crop and "
                         "needs context around the window; give context_s > 0 (e.g. 0.2)")
    if not context_s:
        return None, None
    return int(round(context_s * SFREQ)), float(context_s)


def _task_options(challenge, tasks, trial_rule) -> tuple[list[str] | None, dict]:
    """(training tasks or None, options for ``load_challenge_windows``), checked before any
    work: challenge 2 loads the training tasks and the CCD runs (its test windows); challenge 1
    takes the trial rule."""
    from eegattn.data.hbn import resolve_tasks

    options = {}
    if trial_rule is not None:
        if challenge != 1:
            raise ValueError("trial_rule applies to challenge 1 (its CCD trials); leave it "
                             "unset for challenge 2")
        check_option("trial_rule", trial_rule, TRIAL_RULES)
        options["trial_rule"] = trial_rule
    if tasks is None:
        return None, options
    train_tasks = resolve_tasks(tasks)
    if challenge == 1:
        if train_tasks != [CCD_TASK]:
            raise ValueError(f"challenge 1 uses the {CCD_TASK} task only (response times), "
                             f"got tasks={tasks!r}; --tasks is for challenge 2")
        return None, options
    options["tasks"] = list(dict.fromkeys([*train_tasks, CCD_TASK]))
    return train_tasks, options


def _select_tasks(windows, pool, test, train_tasks):
    """Training windows of ``train_tasks`` among ``pool``, test windows of the CCD runs among
    ``test`` (the task the challenge scores), both non-empty."""
    task = windows.metadata["task"].astype(str).to_numpy()
    pool = pool[np.isin(task[pool], train_tasks)]
    test = test[task[test] == CCD_TASK]
    if not len(pool):
        raise ValueError(f"no training windows of the tasks {train_tasks} (present: "
                         f"{sorted(set(task))}); choose tasks the releases hold")
    if len(np.unique(windows.groups[test])) < 2:
        raise ValueError(f"fewer than 2 held-out subjects have {CCD_TASK} windows, which the "
                         "test score needs; use more subjects")
    return pool, test


def _prepare_data(challenge, root, names, mini, cache_dir, n_subjects, n_jobs, verbose,
                  synthetic_options, **window_options):
    """(release root, WindowSet): synthetic releases generated when ``root`` is None."""
    from eegattn.data.cache import load_challenge_windows

    if root is None:
        root = prepare_synthetic(names, cache_dir=cache_dir, n_subjects=n_subjects, seed=0,
                                 mini=mini, verbose=verbose > 1, **(synthetic_options or {}))
    cache = Path(cache_dir) / "windows" if cache_dir else None
    windows = load_challenge_windows(challenge, releases=names, root=root, mini=mini,
                                     cache_dir=cache, n_jobs=n_jobs, progress=verbose > 0,
                                     **window_options)
    return root, windows


def _jsonable_args(args: dict) -> dict:
    """The arguments in the JSON form ``run_args.json`` keeps: absolute folders (a resume may
    start elsewhere), lists for tuples. ValueError for what JSON cannot hold."""
    out = dict(args)
    for key in ("root", "runs_dir", "cache_dir"):
        if out.get(key) is not None:
            out[key] = str(Path(out[key]).resolve())
    init = out.get("init")
    if init is not None and not str(init).startswith("hf:"):
        out["init"] = str(Path(init).resolve())
    if out.get("model") is not None and not isinstance(out["model"], str):
        raise ValueError("a run folder needs a model given by name or module:Class, not "
                         f"{type(out['model']).__name__}")
    try:
        return json.loads(json.dumps(out))
    except TypeError as exc:
        raise ValueError(f"an option cannot be stored in run_args.json ({exc}); pass "
                         "numbers, strings, lists and dicts") from None


def _mark_complete(run_dir: Path) -> None:
    """The run has finished: drop the resume state and the INCOMPLETE marker (last)."""
    import shutil

    shutil.rmtree(run_dir / CHECKPOINT_DIR, ignore_errors=True)
    (run_dir / INCOMPLETE_NAME).unlink(missing_ok=True)


def resume_challenge(run_dir, *, device: str | None = None, verbose: int = 1,
                     n_jobs: int = 1, backend: str | None = None,
                     scheduler: str | None = None) -> ChallengeResult | None:
    """Continue the run in ``run_dir`` (a folder :func:`run_challenge` created) from its last
    checkpoint, with the arguments it was started with. ``device`` may differ."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; give the folder that "
                                "'eegattn train' printed")
    args_path = run_dir / RUN_ARGS_NAME
    if not args_path.is_file():
        raise ValueError(f"{run_dir} has no {RUN_ARGS_NAME}: it was not started by 'eegattn "
                         "train' (or is older than --resume); start a new run instead")
    if not (run_dir / INCOMPLETE_NAME).exists():
        raise ValueError(f"{run_dir} has finished already (no {INCOMPLETE_NAME} marker); "
                         "nothing to resume")
    try:
        args = json.loads(args_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{args_path} is damaged ({exc}); start a new run instead") from exc
    challenge = args.pop("challenge")
    # the device it ran on unless told otherwise (older run_args.json files lack it)
    args["device"] = device or args.get("device") or "cpu"
    return run_challenge(challenge, **args, resume=run_dir, verbose=verbose, n_jobs=n_jobs,
                         backend=backend, scheduler=scheduler)
