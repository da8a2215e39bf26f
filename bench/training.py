"""Per-step cost of the training loop, against a bare optimizer step and the loop it replaced.

Three ways to take the same optimizer steps of one model on the same windows (in RAM):

* ``bare``: ``eegattn.training.loop.train_step`` on one pre-built batch tensor, repeated: no
  data gathering, no scheduler, no logging. The floor any loop pays.
* ``loop``: ``EEGAttentionRegressor.fit`` (the one training loop, ``eegattn.training.loop``),
  no validation, ``max_epochs`` epochs; per step = fit time / steps.
* ``previous``: the estimator's loop as it was before the training engine was unified
  (``git show <--previous-commit>:eegattn/training/estimator.py``, loaded as a module), run the
  same way. Skipped when git or that commit is not available.

Repeats are interleaved (bare, loop, previous, bare, ...) so drifts of a busy machine hit all
three alike; the table gives medians, and the target reads the median of the paired ratios
loop / previous (each repeat runs both back to back), measured in this run.

Target (issue 15): the loop's per-step time is within 5 % of the previous loop's.

    .venv/bin/python bench/training.py --out docs/results/training-loop.json
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common as common  # noqa: E402

PREVIOUS_COMMIT = "374ecd4"  # the last commit with the estimator's own _TrainingRun
TARGET_RATIO = 1.05


def _previous_estimator(commit: str):
    """The estimator module of ``commit``, or None when git cannot show it."""
    try:
        source = subprocess.run(
            ["git", "show", f"{commit}:eegattn/training/estimator.py"], cwd=REPO,
            capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    folder = Path(tempfile.mkdtemp(prefix="eegattn-previous-"))
    path = folder / "previous_estimator.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("previous_estimator", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="lightweight_fast")
    parser.add_argument("--windows", type=int, default=640, help="training windows")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--previous-commit", default=PREVIOUS_COMMIT)
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from eegattn.training.estimator import EEGAttentionRegressor
    from eegattn.training.loop import make_loss, make_optimizer, steps_per_epoch, train_step

    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(args.windows, 129, 200)) * 2e-5).astype(np.float32)
    y = rng.normal(1.5, 0.3, size=args.windows).astype(np.float32)
    n_steps = args.epochs * steps_per_epoch(args.windows, args.batch)
    params = dict(model=args.model, max_epochs=args.epochs, batch_size=args.batch,
                  early_stopping=False, valid_fraction=0.0, verbose=0, seed=0)
    previous = _previous_estimator(args.previous_commit)

    def bare() -> float:
        from eegattn.models import build_model

        torch.manual_seed(0)
        model = build_model(args.model).train()
        opt = make_optimizer("adamw", model.parameters(), 1e-3, 1e-2)
        loss_fn = make_loss("mse")
        xb, yb = torch.from_numpy(X[: args.batch]), torch.from_numpy(y[: args.batch])
        start = time.perf_counter()
        for _ in range(n_steps):
            train_step(model, opt, loss_fn, xb, yb)
        return (time.perf_counter() - start) / n_steps

    def fit(cls) -> float:
        est = cls(**params)
        start = time.perf_counter()
        est.fit(X, y)
        return (time.perf_counter() - start) / n_steps

    runners = {"bare": bare, "loop": lambda: fit(EEGAttentionRegressor)}
    if previous is not None:
        runners["previous"] = lambda: fit(previous.EEGAttentionRegressor)
    for fn in runners.values():  # warm-up: thread pools, allocator, oneDNN primitives
        fn()
    times = {name: [] for name in runners}
    for repeat in range(args.repeats):
        for name, fn in runners.items():
            times[name].append(fn())
        print(f"repeat {repeat + 1}/{args.repeats}: " + ", ".join(
            f"{n} {1e3 * t[-1]:.1f} ms" for n, t in times.items()), file=sys.stderr, flush=True)

    med = {name: statistics.median(t) for name, t in times.items()}
    rows = [[name, f"{1e3 * med[name]:.1f}",
             f"{1e3 * min(times[name]):.1f}-{1e3 * max(times[name]):.1f}",
             f"{med[name] / med['bare']:.3f}"] for name in times]
    print(f"\nPer optimizer step, {args.model}, batch {args.batch}, {n_steps} steps per fit, "
          f"{torch.get_num_threads()} thread(s), median of {args.repeats}\n")
    print(common.markdown_table(["way", "ms / step", "range", "x bare"], rows))
    result = {"args": vars(args), "n_steps": n_steps, "threads": torch.get_num_threads(),
              "torch": torch.__version__, "seconds_per_step": times,
              "median_seconds_per_step": med}
    if "previous" in med:
        # each repeat runs both back to back: the median of the paired ratios is what a busy
        # machine disturbs least; the ratio of the fastest runs is printed beside it
        paired = [a / b for a, b in zip(times["loop"], times["previous"])]
        ratio = statistics.median(paired)
        fastest = min(times["loop"]) / min(times["previous"])
        result.update(loop_over_previous=ratio, paired_ratios=paired,
                      loop_over_previous_fastest=fastest)
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"\n{verdict}: the loop takes {ratio:.3f}x the previous loop's time per step "
              f"(median of {len(paired)} paired repeats; fastest runs {fastest:.3f}x; "
              f"target <= {TARGET_RATIO})")
    else:
        print("\nprevious loop not available (no git history); ratio not measured")
    if args.out:
        common.write_json(args.out, result, indent=2)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
