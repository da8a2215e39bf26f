"""Model benchmark (issue 5): speed, FLOPs, FLOP efficiency and NRMSE of every EEG model
against braindecode's EEGNeX, on CPU.

1. Speed (one subprocess, so every model sees the same machine state): windows/s of a training
   step (forward + MSE backward + AdamW step, train mode) and of inference (eval mode,
   ``torch.inference_mode``) on a batch of 256 windows of 129 x 200 float32 (~20 uV noise).
   After one untimed warm-up call per model, each repeat times one training step and one
   inference pass of every model, the model order rotated per repeat, plus a large float32
   ``torch.mm`` (the machine's peak matmul FLOP/s, median of 3 calls). Children run in the
   environment users have (glibc's default malloc; an mmap threshold of 1 MiB, which the memory
   benchmarks use, made the project's models up to 1.9x slower through page faults). So drift (other
   processes, frequency changes) hits all models and the matmul alike; speed-ups and FLOP
   fractions are computed per repeat (paired) and reported as median (min-max).
2. FLOPs per window: ``torch.utils.flop_counter.FlopCounterMode`` on a batch of 8 in train mode
   (forward, and forward + backward), divided by 8. The counter sees matmul-like ops (mm, bmm,
   addmm, convolutions, SDPA); elementwise work and the optimizer step are not counted.
   Achieved fraction = training FLOPs/s (forward + backward FLOPs x windows/s) / peak matmul
   FLOP/s of the same repeat.
3. NRMSE (challenge 1, one subprocess per model): a synthetic release (default 12 subjects,
   ``make_release(n_subjects=12, seed=0)``) -> cached windows -> seeded subject-wise split
   (25 % of the subjects held out for the test) -> ``EEGAttentionRegressor`` with the same
   epochs (default 2: the whole run stays near 10 min on 2 idle cores; use ``--epochs 10
   --skip-speed`` for a more telling comparison), batch (32), learning rate (1e-3, AdamW,
   cosine) and seed for every model, no early stopping -> official
   NRMSE on the held-out subjects, next to the training-mean predictor and the synthetic
   oracle (the best prediction from the planted signal). Every model trains through the
   estimator, the project's one training loop (``eegattn.training.loop``).

The reference of the speed columns is braindecode's ``EEGNeX`` itself, as braindecode ships it.
Its NRMSE row is the project's ``eegnex`` (that same network behind the project's input
normalisation): unnormalised EEGNeX sees ~1e-5 V inputs, where its BatchNorm epsilon dominates
the variance, so training it raw would not be a fair comparison. ``--models`` can add the
project's ``eegnex`` to the speed run.

Targets (issue 5), printed as PASS/FAIL: the lightweight model trains >= 25x and infers >= 20x
faster than EEGNeX with equal or better NRMSE; the project's own models reach >= 50 % of the
measured matmul FLOP/s in training. The speed-up targets are checked for two configurations of the
lightweight model: ``lightweight`` (the sparse-attention entry as written: convolution + max-pool,
average pooling, dropout 0.4) and the registry preset ``lightweight_fast``
(``eegattn.models.preset``: strided convolutions with strides 4 and 2 instead of convolution +
max-pool, so 25 tokens instead of 50, sinusoidal positions, average + max pooling beside a position
read-out of 4 features per token, no element dropout but whole feature maps dropped at 0.3 and
attention weights at 0.5; the same convolution and attention weights, 46,596 more head and read-out
weights). The "speed-up at matmul rate" column is the speed-up a model would reach if all its
counted FLOPs ran at the measured ``torch.mm`` rate, against EEGNeX as measured. It is a yardstick,
not a hard limit (the ``torch.mm`` rate is not the hardware's peak, and small models' repeats
sometimes beat it), but a target well above it is out of reach without cutting the model's FLOPs.

Usage::

    python bench/models.py                  # speed (5 repeats) + NRMSE (12 subjects, 2 epochs)
    python bench/models.py --quick          # ~1 min smoke run: batch 32, 2 repeats, tiny data
    python bench/models.py --skip-nrmse --repeats 7
    python bench/models.py --skip-speed --epochs 10 --n-subjects 20
    python bench/models.py --skip-speed --epochs 10 --root cache --n-subjects 24 \
        --nrmse-models lightweight_fast eegnex --nrmse-seeds 0 1 2 3   # mean over 4 splits
    python bench/models.py --profile lightweight eegnex_braindecode   # where the time goes
    python bench/models.py --profile lightweight_fast --profile-mode infer --profile-batch 256
    python bench/models.py --skip-nrmse --models lightweight:downsample=stride,dropout=0.2
    python bench/models.py --merge-nrmse a.json b.json --out c.json  # splits 0-3 + 4-5
    python bench/models.py --skip-speed --skip-reference ...  # then merge with EEGNeX's runs

Outputs: markdown tables and PASS/FAIL lines on stdout, ``bench/results/models.json`` and
``bench/results/models.png`` (``--quick`` writes ``models-quick.*``). Exit code 0 when every
target passes, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)
from _models_measure import (  # noqa: E402
    child_nrmse,
    child_profile,
    child_release,
    child_speed,
)
from _models_report import (  # noqa: E402
    _label,
    _stats,
    analyse_speed,
    combine_seeds,
    merge_nrmse,
    nrmse_check,
    nrmse_table,
    plot,
    speed_table,
    summary_table,
    target_checks,
)
from _models_spec import (  # noqa: E402
    BATCH,
    DEFAULT_SPEED_MODELS,
    MATMUL_SIZE,
    NRMSE_MODELS,
    NRMSE_REFERENCE,
    REFERENCE,
    model_spec,
)

CHILDREN = {
    "speed": child_speed,
    "nrmse": child_nrmse,
    "release": child_release,
    "profile": child_profile,
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: batch 32, 2 repeats, a small 6-subject release, 1 epoch",
    )
    parser.add_argument("--skip-nrmse", action="store_true", help="speed and FLOPs only")
    parser.add_argument("--skip-speed", action="store_true", help="NRMSE only")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help=f"speed models (default: {' '.join(DEFAULT_SPEED_MODELS)}); "
        f"{REFERENCE} is braindecode's EEGNeX and is always added",
    )
    parser.add_argument(
        "--nrmse-models",
        nargs="+",
        default=None,
        help=f"NRMSE models (default: {' '.join(NRMSE_MODELS)}); {NRMSE_REFERENCE} is added unless "
        "--skip-reference",
    )
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5)")
    parser.add_argument("--batch", type=int, default=None, help="speed batch (default 256)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="NRMSE epoch budget, equal for every model (default 2)",
    )
    parser.add_argument("--train-batch", type=int, default=32, help="NRMSE batch size")
    parser.add_argument("--lr", type=float, default=1e-3, help="NRMSE learning rate (AdamW)")
    parser.add_argument(
        "--n-subjects",
        type=int,
        default=None,
        help="subjects of the synthetic release (default 12)",
    )
    parser.add_argument(
        "--test-fraction",
        type=float,
        default=0.25,
        help="fraction of subjects held out for the NRMSE",
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument(
        "--nrmse-seeds",
        type=int,
        nargs="+",
        default=None,
        metavar="SEED",
        help="NRMSE over several split and training seeds on one release (default: --seed); "
        "every model gets the same splits, and the NRMSE target compares the means",
    )
    parser.add_argument(
        "--release-seed",
        type=int,
        default=None,
        help="seed of the synthetic release (default: --seed); keep it fixed to compare "
        "training seeds on one release",
    )
    # every model trains through the estimator (the one training loop); kept in the recorded
    # arguments so runs of earlier versions still pool with --merge-nrmse
    parser.set_defaults(trainer="estimator")
    parser.add_argument(
        "--root",
        default=None,
        help="folder of the synthetic release (default: <project cache>/bench-models/s<N>)",
    )
    parser.add_argument(
        "--memory-fraction",
        type=float,
        default=0.7,
        help="skip a speed model needing more than this share of free memory",
    )
    parser.add_argument(
        "--profile",
        nargs="+",
        default=None,
        metavar="MODEL",
        help="only profile one training step of these models and exit",
    )
    parser.add_argument("--profile-batch", type=int, default=64)
    parser.add_argument(
        "--profile-mode",
        choices=("train", "infer"),
        default="train",
        help="profile a training step (default) or an inference pass",
    )
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument(
        "--merge-nrmse",
        nargs="+",
        default=None,
        metavar="JSON",
        help="pool the NRMSE runs of earlier benchmark JSONs over different split seeds "
        "(same release and settings) and print the table and checks; nothing is trained",
    )
    parser.add_argument(
        "--skip-reference",
        action="store_true",
        help="do not train EEGNeX for the NRMSE; pool its splits from earlier runs with "
        "--merge-nrmse",
    )
    parser.add_argument("--out", default=None, help="JSON path (PNG next to it)")
    args = parser.parse_args(argv)
    if args.merge_nrmse:
        if not args.out:
            parser.error("--merge-nrmse needs --out (a new JSON path)")
        args.out = Path(args.out)
        if any(Path(p).resolve() == args.out.resolve() for p in args.merge_nrmse):
            parser.error("--out must not be one of the --merge-nrmse inputs")
        return args
    quick = args.quick
    args.repeats = args.repeats or (2 if quick else 5)
    args.batch = args.batch or (32 if quick else BATCH)
    args.epochs = args.epochs or (1 if quick else 2)
    args.n_subjects = args.n_subjects or (6 if quick else 12)
    for name in ("repeats", "batch", "epochs", "n_subjects", "train_batch"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if args.skip_speed and args.skip_nrmse:
        parser.error("--skip-speed and --skip-nrmse leave nothing to run")
    if not 0 < args.test_fraction < 1:
        parser.error("--test-fraction must be in (0, 1)")
    args.nrmse_seeds = list(dict.fromkeys(args.nrmse_seeds or [args.seed]))
    models = list(args.models or DEFAULT_SPEED_MODELS)
    if REFERENCE not in models:
        models.append(REFERENCE)
    args.models = list(dict.fromkeys(models))
    nrmse_models = list(args.nrmse_models or NRMSE_MODELS)
    if NRMSE_REFERENCE not in nrmse_models and not args.skip_reference:
        nrmse_models.append(NRMSE_REFERENCE)
    args.nrmse_models = list(dict.fromkeys(nrmse_models))
    for name in {*args.models, *args.nrmse_models, *(args.profile or ())} - {REFERENCE}:
        try:
            registry_name, _ = model_spec(name)
        except ValueError as err:
            parser.error(str(err))
        from eegattn.models import available_models

        if registry_name not in available_models():
            parser.error(
                f"unknown model {name!r}: use {', '.join(available_models())}, "
                f"{REFERENCE} or NAME:key=value,..."
            )
    stem = "models-quick" if quick else "models"
    args.out = Path(args.out) if args.out else common.RESULTS_DIR / f"{stem}.json"
    return args


def _project_cache() -> Path:
    repo = Path(__file__).resolve().parent.parent
    return Path(os.environ.get("EEGATTN_CACHE", "").strip() or repo / "cache")


def run_profiles(args) -> int:
    for name in args.profile:
        res = common.run_child(
            __file__,
            {
                "kind": "profile",
                "model": name,
                "batch": args.profile_batch,
                "mode": args.profile_mode,
                "top": 12,
                "threads": args.threads,
            },
            args.timeout,
        )
        if res.get("status") != "ok":
            print(f"{name}: profile failed: {res.get('reason')}")
            continue
        what = "one training step" if args.profile_mode == "train" else "one inference pass"
        print(
            f"### {_label(name)}: {what}, batch {args.profile_batch}, "
            f"{res['total_ms']:.0f} ms self CPU in all, "
            f"{100 * res['matmul_share']:.0f} % of it in convolutions and matrix products\n"
        )
        print(
            common.markdown_table(
                ["op", "self ms", "share", "calls"],
                [
                    [o["op"], f"{o['self_ms']:.0f}", f"{100 * o['share']:.1f} %", o["calls"]]
                    for o in res["ops"]
                ],
            )
        )
        print()
    return 0


def main(argv=None) -> int:
    spec = common.child_spec()
    if spec is not None:
        try:
            common.report_child(CHILDREN[spec["kind"]](spec))
        except Exception as err:  # reported to the driver, which prints it
            common.report_child({"status": "error", "reason": f"{type(err).__name__}: {err}"})
        return 0

    args = parse_args(argv)
    if args.merge_nrmse:
        return run_merge(args)
    if args.profile:
        return run_profiles(args)
    started = time.perf_counter()
    machine = (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"model benchmark{' (quick)' if args.quick else ''}: {machine}; batch {args.batch}, "
        f"{args.repeats} repeats\n",
        flush=True,
    )
    if args.batch != BATCH:
        print(
            f"note: the issue's targets are defined at batch {BATCH}; this run uses {args.batch}\n"
        )
    results: dict = {"machine": machine, "args": {k: str(v) for k, v in vars(args).items()}}

    rows, peak, speed_failed = {}, {}, False
    if not args.skip_speed:
        rows, peak = run_speed(args, results)
        speed_failed = not rows

    nrmse_cells = None
    if not args.skip_nrmse:
        nrmse_cells = run_nrmse(args, results)
    if rows and nrmse_cells:
        print("### Summary (medians)\n")
        print(summary_table(rows, nrmse_cells))
        print()
    checks = target_checks(rows, nrmse_cells)
    if speed_failed:
        checks.insert(0, ("the speed run completed", False))
    print("### Targets\n")
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'NOT RUN'}  {text}")
    results["checks"] = [{"check": t, "pass": p} for t, p in checks]
    results["wall_s"] = time.perf_counter() - started
    common.write_json(args.out, results)
    plot(
        rows,
        nrmse_cells,
        peak,
        args.out.with_suffix(".png"),
        f"eegattn model benchmark: {machine}, batch {args.batch}",
    )
    print(
        f"\nwrote {args.out} and {args.out.with_suffix('.png').name}; "
        f"{results['wall_s'] / 60:.1f} min in all"
    )
    return 0 if all(p for _, p in checks) else 1


def run_merge(args) -> int:
    """--merge-nrmse: the pooled NRMSE table and checks of earlier runs."""
    loaded = []
    for path in args.merge_nrmse:
        try:
            loaded.append((path, json.loads(Path(path).read_text())))
        except (OSError, json.JSONDecodeError) as err:
            print(f"error: cannot read {path} ({err}); give benchmark JSON files",
                  file=sys.stderr)
            return 2
    try:
        cells, notes = merge_nrmse(loaded)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    n = len(next(iter(cells.values())).get("per_seed", []))
    print(f"### NRMSE pooled over {n} split seeds from {', '.join(args.merge_nrmse)}\n")
    print(nrmse_table(cells))
    for note in notes:
        print(f"note: {note}")
    # every pooled model against the reference (a variant may be what a preset becomes)
    checks = [nrmse_check(m, cells) for m in cells if m != NRMSE_REFERENCE]
    print("\n### Targets\n")
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL' if passed is False else 'NOT RUN'}  {text}")
    results = {"merged_from": list(args.merge_nrmse), "nrmse": cells,
               "checks": [{"check": t, "pass": p} for t, p in checks]}
    common.write_json(args.out, results)
    print(f"\nwrote {args.out}")
    return 0 if all(p for _, p in checks if p is not None) else 1


def run_speed(args, results: dict) -> tuple[dict, dict]:
    """The paired speed child; returns (rows per model, peak matmul FLOP/s stats)."""
    speed = common.run_child(
        __file__,
        {
            "kind": "speed",
            "models": args.models,
            "batch": args.batch,
            "repeats": args.repeats,
            "warmup": 1,
            "threads": args.threads,
            "matmul_size": MATMUL_SIZE,
            "memory_fraction": args.memory_fraction,
        },
        args.timeout,
    )
    results["speed_raw"] = speed
    if speed.get("status") != "ok":
        print(f"speed run failed: {speed.get('reason')}")
        rows, peak = {}, {}
    else:
        rows = analyse_speed(speed)
        peak = _stats(speed["peak_flops"])
        results["speed"] = rows
        results["peak_matmul_flops"] = peak
        print(
            f"### Speed and FLOPs (CPU, {speed['threads']} threads, torch {speed['torch']}, "
            f"batch {speed['batch']}, {args.repeats} paired repeats; median (min-max))\n"
        )
        print(speed_table(rows, speed))
        print(
            f"\nmatmul peak: float32 torch.mm {MATMUL_SIZE}x{MATMUL_SIZE}, "
            f"{peak['median'] / 1e9:.1f} GFLOP/s ({peak['min'] / 1e9:.1f}-"
            f"{peak['max'] / 1e9:.1f}); speed-ups are vs {_label(REFERENCE)}, paired per "
            f"repeat; FLOPs counted by torch.utils.flop_counter (matmul-like ops only).\n",
            flush=True,
        )
    return rows, peak


def run_nrmse(args, results: dict) -> dict:
    root = (
        Path(args.root)
        if args.root
        else _project_cache() / "bench-models" / ("quick" if args.quick else f"s{args.n_subjects}")
    )
    cache_dir = _project_cache() / "windows"
    release_options = (
        {"trials_per_run": (12, 16), "rest_seconds": 20.0, "tasks": ("contrastChangeDetection",)}
        if args.quick
        else {}
    )
    made = common.run_child(
        __file__,
        {
            "kind": "release",
            "root": str(root),
            "n_subjects": args.n_subjects,
            "seed": args.seed if args.release_seed is None else args.release_seed,
            "cache_dir": str(cache_dir),
            "release_options": release_options,
        },
        args.timeout,
    )
    results["release"] = made
    if made.get("status") != "ok":
        print(f"could not prepare the synthetic release: {made.get('reason')}\n")
        return {n: {"status": "error", "reason": made.get("reason")} for n in args.nrmse_models}
    print(
        f"### NRMSE, challenge 1 (synthetic release {made['folder']}: "
        f"{made['n_windows']} windows of {made['n_subjects_with_windows']} subjects; "
        f"{100 * args.test_fraction:.0f} % of subjects held out; {args.epochs} epoch(s), "
        f"batch {args.train_batch}, lr {args.lr:g}, split and training seed(s) "
        f"{', '.join(map(str, args.nrmse_seeds))} for every model)\n",
        flush=True,
    )
    cells = {}
    for name in args.nrmse_models:
        runs = []
        for seed in args.nrmse_seeds:
            spec = {
                "kind": "nrmse",
                "model": name,
                "root": str(root),
                "cache_dir": str(cache_dir),
                "epochs": args.epochs,
                "batch": args.train_batch,
                "lr": args.lr,
                "seed": seed,
                "test_fraction": args.test_fraction,
                "trainer": args.trainer,
                "threads": args.threads,
            }
            cell = common.run_child(__file__, spec, args.timeout)
            runs.append({**cell, "seed": seed})
            print(
                f"  {_label(name)}, seed {seed}: "
                + (
                    f"NRMSE {cell['nrmse']:.4f} in {cell['fit_s']:.0f} s"
                    if cell.get("status") == "ok"
                    else f"failed: {cell.get('reason')}"
                ),
                flush=True,
            )
        cells[name] = combine_seeds(runs)
    results["nrmse"] = cells
    print()
    print(nrmse_table(cells))
    print()
    return cells


if __name__ == "__main__":
    sys.exit(main())
