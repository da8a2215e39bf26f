"""`eegattn preprocess`: build (or reuse) the cached challenge windows of HBN releases.

Example: ``eegattn preprocess --challenge 1 --root ~/hbn --release R1 R2 --n-jobs 4``.
Standard library only at module level (``eegattn --help`` stays fast); the pipelines in
``pipelines/`` reuse ``add_window_arguments`` and ``window_options``.
"""

from __future__ import annotations

import argparse

HELP = "build or reuse the cached challenge-1 / challenge-2 windows of local HBN releases"
#: --backend values (the joblib backends that need no setup, and Dask)
BACKENDS = ("loky", "multiprocessing", "threading", "dask")


def add_window_arguments(parser: argparse.ArgumentParser, *, challenge: bool = True) -> None:
    """Options shared by ``eegattn preprocess`` and ``pipelines/challenge{1,2}.py``."""
    if challenge:
        parser.add_argument("--challenge", type=int, choices=(1, 2), required=True,
                            help="1: response-time windows (CCD trials); 2: externalizing "
                            "windows (4 s every 2 s)")
    data = parser.add_argument_group("data")
    data.add_argument("--root", default=None,
                      help="folder holding EEG2025r<N>[mini] release folders (default: the "
                      "project cache, $EEGATTN_CACHE or ./cache)")
    data.add_argument("--release", "--releases", dest="release", nargs="+", default=["R5"],
                      metavar="R",
                      help="releases to use, e.g. R1 R2 (default: R5)")
    data.add_argument("--mini", action="store_true", help="use the EEG2025r<N>mini folders")
    data.add_argument("--tasks", nargs="+", default=None, metavar="TASK",
                      help="challenge 2 only: HBN tasks to window, or 'all' (default: "
                      "contrastChangeDetection)")
    data.add_argument("--subjects", nargs="+", default=None, metavar="ID",
                      help="only these subjects (NDAR... or sub-NDAR...)")
    data.add_argument("--keep-excluded", action="store_true",
                      help="keep the nine subjects the challenge excluded")
    data.add_argument("--source", choices=("local", "eegdash"), default="local",
                      help="read the folders directly (default) or list them through eegdash")
    data.add_argument("--download", action="store_true",
                      help="with --source eegdash: download missing files (needs a network)")
    data.add_argument("--strict", action="store_true",
                      help="stop on a bad recording instead of skipping it with a warning")
    prep = parser.add_argument_group("preprocessing")
    prep.add_argument("--sfreq", type=float, default=100.0,
                      help="output rate in Hz; other rates are resampled (default 100)")
    prep.add_argument("--l-freq", type=float, default=None, help="high-pass edge in Hz")
    prep.add_argument("--h-freq", type=float, default=None,
                      help="low-pass edge in Hz (below Nyquist: < 50 for 100 Hz files)")
    prep.add_argument("--notch", type=float, nargs="+", default=(), metavar="HZ",
                      help="line frequencies to notch out (500 Hz raw files only)")
    prep.add_argument("--reference", default=None,
                      help="re-reference: 'average' or a channel name (default: keep Cz)")
    win = parser.add_argument_group("windows")
    win.add_argument("--window-s", type=float, default=None,
                     help="window length in s (default 2 for challenge 1, 4 for challenge 2)")
    win.add_argument("--stride-s", type=float, default=None,
                     help="challenge 2: stride in s (default 2)")
    win.add_argument("--target", default=None,
                     help="target column (default rt_from_stimulus / externalizing)")
    win.add_argument("--trial-rule", choices=("challenge", "current"), default=None,
                     help="challenge 1: the competition's CCD trial table (default; a run's "
                     "last trial is dropped) or eegdash 0.9's (it ends at end_experiment)")
    execution = parser.add_argument_group("execution")
    execution.add_argument("--cache-dir", default=None,
                     help="window cache folder (default: <project cache>/windows)")
    execution.add_argument("--n-jobs", type=int, default=1,
                     help="recordings read in parallel (-1: all cores; default 1)")
    execution.add_argument("--backend", default=None, choices=BACKENDS,
                     help="engine of the parallel reads: joblib's loky processes (default) "
                     "or dask (a Dask cluster: --scheduler, or --n-jobs local workers)")
    execution.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="with --backend dask: a running Dask scheduler, e.g. "
                     "tcp://HOST:8786; every worker must see the release at the same path "
                     "(docs/scaling.md)")
    execution.add_argument("--cache-dtype", default="float32", metavar="DTYPE",
                     help="how the cache stores recordings: float32 (default) or float16 (half "
                     "the disk; relative error <= 2^-11 of each recording's peak, docs/cache.md)")
    execution.add_argument("--hash-content", action="store_true",
                     help="hash the recordings' bytes for the cache key (slow, thorough)")
    execution.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def window_options(args: argparse.Namespace) -> dict:
    """Keyword arguments of ``load_challenge_windows`` from parsed options."""
    return dict(
        releases=args.release, root=args.root, mini=args.mini, tasks=args.tasks,
        subjects=args.subjects, keep_excluded=args.keep_excluded, source=args.source,
        download=args.download, strict=args.strict, sfreq=args.sfreq, l_freq=args.l_freq,
        h_freq=args.h_freq, notch=tuple(args.notch or ()), reference=args.reference,
        window_s=args.window_s, stride_s=args.stride_s, target=args.target,
        trial_rule=getattr(args, "trial_rule", None),
        cache_dir=args.cache_dir, n_jobs=args.n_jobs, backend=args.backend,
        scheduler=args.scheduler, hash_content=args.hash_content, progress=not args.no_progress,
        cache_dtype=args.cache_dtype,
    )  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser, challenge: int | None = None) -> None:
    add_window_arguments(parser, challenge=challenge is None)
    parser.add_argument("--summary-json", default=None,
                        help="also write what was kept / dropped to this JSON file")


def check_parallel_arguments(args: argparse.Namespace) -> None:
    """``--n-jobs`` / ``--backend`` / ``--scheduler`` checked (and a tcp:// scheduler
    reached) before any work; ValueError with the fix."""
    from eegattn.data.preprocess import check_parallel_options, probe_scheduler

    check_parallel_options(args.n_jobs, args.backend, args.scheduler)
    if args.scheduler is not None:
        probe_scheduler(args.scheduler)


def run(args: argparse.Namespace) -> int:
    from eegattn.data.cache import describe_windows, load_challenge_windows, write_summary

    check_parallel_arguments(args)
    windows = load_challenge_windows(args.challenge, **window_options(args))
    print(describe_windows(windows))
    if args.summary_json:
        write_summary(windows, args.summary_json)
    return 0
