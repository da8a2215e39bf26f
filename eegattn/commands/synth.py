"""`eegattn synth`: write (or reuse) a synthetic HBN-like release with planted ground truth.

Example: ``eegattn synth --root cache --subjects 24`` writes ``cache/EEG2025r5``, which
``EEGChallengeDataset(release="R5", cache_dir="cache", mini=False, download=False, ...)`` and
``eegattn preprocess --root cache`` read like a downloaded release. ``--mini`` writes
``EEG2025r5mini`` with the 20 real mini subject IDs. See ``eegattn/data/synthetic/``.
Standard library only at module level (``eegattn --help`` stays fast).
"""

from __future__ import annotations

import time
from pathlib import Path

HELP = "write a synthetic HBN-like release (BIDS, BDF) with planted ground truth"


def add_arguments(parser):
    parser.add_argument("--root", default=None,
                        help="folder that receives EEG2025r<N>[mini] (default: $EEGATTN_CACHE "
                        "or ./cache)")
    parser.add_argument("--release", default="R5", help="release name R1..R11 (default: R5)")
    parser.add_argument("--mini", action="store_true",
                        help="mini layout: the release's 20 real mini subject IDs")
    parser.add_argument("--subjects", type=int, default=None, metavar="N",
                        help="number of subjects (default: 24; a mini release has 20)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--raw-like", action="store_true",
                        help="500 Hz with 60 Hz line noise, drifts and content above 50 Hz")
    parser.add_argument("--sfreq", type=float, default=None,
                        help="sampling rate in Hz (default: 100, or 500 with --raw-like)")
    parser.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                        help="HBN tasks to write, or 'all' (default: contrastChangeDetection, "
                        "RestingState, DespicableMe, surroundSupp)")
    parser.add_argument("--task-seconds", type=float, default=None, metavar="S",
                        help="length of each recording of the tasks other than CCD and "
                        "RestingState (default: 60)")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="worker processes (default: 1 below 8 subjects, else 2)")
    parser.add_argument("--force", action="store_true",
                        help="rebuild a synthetic release that exists (never a folder that "
                        "eegattn did not write)")
    parser.add_argument("--quiet", action="store_true", help="print only the release path")


def _size_on_disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def run(args) -> int:
    from eegattn.data.synthetic import (
        CCD_TASK,
        MARKER_NAME,
        REST_TASK,
        load_truth,
        make_release,
    )

    options = {}
    if args.tasks is not None:
        from eegattn.challenge import ALL_TASKS, TASKS

        options["tasks"] = TASKS if ALL_TASKS in args.tasks else tuple(args.tasks)
    if args.task_seconds is not None:
        options["task_seconds"] = args.task_seconds
    if args.sfreq is not None:
        options["sfreq"] = args.sfreq
    start = time.perf_counter()
    release_dir = make_release(
        args.root, release=args.release, mini=args.mini, n_subjects=args.subjects,
        seed=args.seed, raw_like=args.raw_like, force=args.force, n_jobs=args.n_jobs,
        verbose=not args.quiet, **options,
    )
    elapsed = time.perf_counter() - start
    if args.quiet:
        print(release_dir)
        return 0
    marker_age = time.time() - (release_dir / MARKER_NAME).stat().st_mtime
    reused = marker_age > elapsed + 1.0
    truth = load_truth(release_dir)
    recordings = truth["recordings"]
    n_ccd = sum(r["task"] == CCD_TASK for r in recordings)
    n_rest = sum(r["task"] == REST_TASK for r in recordings)
    n_other = len(recordings) - n_ccd - n_rest
    c2 = truth["challenge2"]
    print(
        f"{'reused' if reused else 'wrote'} {release_dir}: "
        f"{len(c2['subjects'])} subjects, {n_ccd} CCD runs, {n_rest} RestingState and "
        f"{n_other} other recordings, "
        f"{_size_on_disk(release_dir) / 1e6:.0f} MB"
        + ("" if reused else f", {elapsed:.1f} s")
    )
    print(
        f"planted truth: {release_dir / '.eegattn_truth.json'} (challenge-2 population best "
        f"NRMSE {c2['population_best_nrmse']:.3f}; oracle: eegattn.data.synthetic."
        "oracle_predict)"
    )
    return 0
