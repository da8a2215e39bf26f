"""``make_release``: check options, generate every subject (joblib workers), publish atomically."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path

import numpy as np

from eegattn.challenge import (
    CCD_TASK,
    MINI_SIZE,
    REST_TASK,
    default_cache_dir,
    release_folder_name,
)
from eegattn.data.synthetic.bids import (
    _write_dataset_files,
    _write_json,
    _write_participants,
    _write_recording,
)
from eegattn.data.synthetic.oracle import (
    _measure_latencies,
    _truth,
    c1_oracle_model,
)
from eegattn.data.synthetic.params import (
    DEFAULT_N_SUBJECTS,
    GENERATOR_VERSION,
    MARKER_NAME,
    SUPPORTED_TASKS,
    TRUTH_NAME,
    _check_release,
    _rng,
)
from eegattn.data.synthetic.signals import (
    _background_covariance,
    _raw_artifacts,
    _simulate,
    _Topographies,
    _topographies,
)
from eegattn.data.synthetic.subjects import (
    _ccd_run,
    _make_subjects,
    _presses,
    _rest_run,
    _Subject,
    _subject_ids,
)
from eegattn.data.synthetic.tasks import DEFAULT_TASKS, write_other_tasks
from eegattn.utils.check import check_positive_int


# ----------------------------------------------------------------------------------------------
# The release
# ----------------------------------------------------------------------------------------------
def _check_options(release, mini, n_subjects, seed, sfreq, raw_like, tasks, trials_per_run,
                   max_runs, rest_seconds, task_seconds) -> dict:
    release = _check_release(release)
    check_positive_int(seed, "seed", minimum=0)
    if n_subjects is None:
        n_subjects = MINI_SIZE if mini else DEFAULT_N_SUBJECTS
    if isinstance(n_subjects, bool) or not isinstance(n_subjects, (int, np.integer)):
        raise ValueError(f"n_subjects must be an integer, got {n_subjects!r}")
    if n_subjects < 1:
        raise ValueError(f"n_subjects must be at least 1, got {n_subjects}")
    if n_subjects > 2000:
        raise ValueError(f"n_subjects={n_subjects} is too many for a synthetic release (max 2000)")
    if mini and n_subjects != MINI_SIZE:
        raise ValueError(
            f"a mini release has exactly {MINI_SIZE} subjects (the real mini IDs: eegdash keeps "
            f"only those in mini mode), got n_subjects={n_subjects}; drop n_subjects / "
            "--subjects, or use the full layout (mini=False) for other sizes"
        )
    if sfreq is None:
        sfreq = 500.0 if raw_like else 100.0
    sfreq = float(sfreq)
    if not sfreq.is_integer() or not 50.0 <= sfreq <= 2000.0:
        raise ValueError(f"sfreq must be a whole number of Hz in [50, 2000], got {sfreq}")
    if raw_like and sfreq < 250.0:
        raise ValueError(
            f"raw_like needs sfreq >= 250 Hz to hold 60 Hz line noise and content above 50 Hz, "
            f"got {sfreq}; leave sfreq unset (500 Hz)"
        )
    if isinstance(tasks, str):
        tasks = (tasks,)
    tasks = tuple(tasks)
    unknown = [t for t in tasks if t not in SUPPORTED_TASKS]
    if not tasks or unknown or len(set(tasks)) != len(tasks):
        raise ValueError(
            f"tasks must be distinct names among {SUPPORTED_TASKS}, got {tasks!r}"
        )
    lo_hi = tuple(int(v) for v in trials_per_run)
    if len(lo_hi) != 2 or not 1 <= lo_hi[0] <= lo_hi[1] <= 200:
        raise ValueError(f"trials_per_run must be (low, high) with 1 <= low <= high <= 200, got "
                         f"{trials_per_run!r}")
    if isinstance(max_runs, bool) or max_runs not in (1, 2, 3):
        raise ValueError(f"max_runs must be 1, 2 or 3 (CCD has runs 1-3), got {max_runs!r}")
    if not 10.0 <= float(rest_seconds) <= 600.0:
        raise ValueError(f"rest_seconds must be in [10, 600], got {rest_seconds!r}")
    if not 10.0 <= float(task_seconds) <= 600.0:
        raise ValueError(f"task_seconds must be in [10, 600], got {task_seconds!r}")
    return {
        "release": release, "mini": bool(mini), "n_subjects": int(n_subjects), "seed": int(seed),
        "sfreq": sfreq, "raw_like": bool(raw_like), "tasks": sorted(tasks),
        "trials_per_run": list(lo_hi), "max_runs": int(max_runs),
        "rest_seconds": float(rest_seconds), "task_seconds": float(task_seconds),
        "generator_version": GENERATOR_VERSION,
    }


def _prepare_root(root) -> Path:
    root = Path(default_cache_dir() if root is None else root).expanduser()
    if root.exists() and not root.is_dir():
        raise ValueError(f"root {root} is a file, not a folder; pass a folder path")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the root folder {root} ({err}); choose a writable "
                         "--root or set EEGATTN_CACHE") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise ValueError(f"root folder {root} is not writable; choose a writable --root or set "
                         "EEGATTN_CACHE")
    return root


def read_marker(release_dir: str | Path) -> dict | None:
    """The generation parameters of a synthetic release, or None if it has no marker."""
    path = Path(release_dir) / MARKER_NAME
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _clean_stale_partials(root: Path, name: str) -> None:
    for path in [*root.glob(f".{name}.partial-*"), *root.glob(f".{name}.old-*")]:
        try:
            pid = int(path.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except PermissionError:
            pass


def make_release(
    root: str | Path | None = None,
    *,
    release: str = "R5",
    mini: bool = False,
    n_subjects: int | None = None,
    seed: int = 0,
    sfreq: float | None = None,
    raw_like: bool = False,
    tasks: tuple[str, ...] = DEFAULT_TASKS,
    force: bool = False,
    trials_per_run: tuple[int, int] = (30, 40),
    max_runs: int = 3,
    rest_seconds: float = 120.0,
    task_seconds: float = 60.0,
    n_jobs: int | None = None,
    verbose: bool = False,
) -> Path:
    """Write a synthetic release and return its folder ``<root>/EEG2025r<N>[mini]``.

    Parameters
    ----------
    root : folder that plays eegdash's ``cache_dir`` (default ``default_cache_dir()``).
    release : ``"R1"`` .. ``"R11"`` (only names the folder, IDs of mini releases and
        ``release_number``).
    mini : mini layout: the 20 real mini subject IDs (then ``n_subjects`` must be 20 or None).
    n_subjects : subjects in the full layout (default 24; 20 for mini).
    seed : everything is deterministic given the parameters.
    sfreq : sampling rate (default 100 Hz, or 500 Hz with ``raw_like``).
    raw_like : 500 Hz with line noise, drifts and muscle noise (not yet band-passed).
    tasks : HBN task names (``eegattn.challenge.TASKS``); default CCD, RestingState,
        DespicableMe and surroundSupp (``synthetic.tasks``: every task carries the subject's
        challenge-2 feature, with the task's strength ``C2_TASK_STRENGTH``).
    force : rebuild an existing synthetic release (same or other parameters).
    trials_per_run : (low, high) CCD trials per run (drawn uniformly; ~4.5 s per trial).
    max_runs : CCD runs per subject are drawn from 1..3 (75 % have 3) and capped at this.
    rest_seconds : RestingState length in s (cycles of about 40 s: 1/4 eyes open, 3/4 closed).
    task_seconds : length in s of each recording of the other tasks (movies, surroundSupp
        runs, ...).
    n_jobs : worker processes (subjects in parallel); default 1 below 8 subjects, else up to 2.
        The output does not depend on it.
    verbose : print one line per subject.

    An existing release with the same parameters (and a complete marker) is returned as is;
    one written by an older generator version is a stale cache and is rebuilt, whatever its
    parameters.
    The release is generated in a hidden temporary folder next to it and renamed at the end,
    so an interrupted run never leaves a half-written release. A folder without the marker
    (not written here, e.g. a real download) is never replaced, even with ``force``.

    Size and time: the default (24 subjects, 100 Hz, four tasks) is about 660 MB and 25 s of
    CPU; 6 subjects of CCD and RestingState with ``trials_per_run=(14, 18), max_runs=2,
    rest_seconds=20`` are 38 MB and about 2.5 s of CPU. ``raw_like`` files are 5x larger.
    """
    params = _check_options(release, mini, n_subjects, seed, sfreq, raw_like, tasks,
                            trials_per_run, max_runs, rest_seconds, task_seconds)
    jobs = _resolve_jobs(n_jobs, params["n_subjects"])
    root = _prepare_root(root)
    name = release_folder_name(params["release"], params["mini"])
    final = root / name
    if final.exists():
        marker = read_marker(final)
        if marker is None:
            raise FileExistsError(
                f"{final} exists but was not written by eegattn (no {MARKER_NAME}); it may be "
                "a real download. Move it away or choose another --root"
            )
        old_params = marker.get("params", {})
        if old_params == params and not force:
            return final
        diff = {k: (old_params.get(k), v) for k, v in params.items() if old_params.get(k) != v}
        # An older generator's output is a stale cache of ours: rebuilt without force.
        if not force and "generator_version" not in diff:
            raise FileExistsError(
                f"{final} holds a synthetic release with other parameters "
                f"(existing -> requested: {diff}); pass force=True / --force to rebuild it, or "
                "choose another --root"
            )
    _clean_stale_partials(root, name)
    tmp = root / f".{name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir()
    except OSError as err:
        raise ValueError(f"cannot write into {root} ({err}); choose a writable --root or set "
                         "EEGATTN_CACHE") from None
    try:
        _generate(tmp, params, n_jobs=jobs, verbose=verbose)
        _write_json(tmp / MARKER_NAME, {"params": params, "complete": True})
        if final.exists():  # force: move the old release aside, then swap
            old = root / f".{name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            try:
                os.replace(tmp, final)
            except OSError:
                # Another process finished the same release first.
                marker = read_marker(final)
                if marker is None or marker.get("params") != params:
                    raise
                shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _resolve_jobs(n_jobs, n_subjects: int) -> int:
    if n_jobs is None:
        return 1 if n_subjects < 8 else min(2, os.cpu_count() or 1)
    return check_positive_int(n_jobs, "n_jobs", allow_none=True)


def _generate(out: Path, params: dict, *, n_jobs: int = 1, verbose: bool = False) -> None:
    has_ccd = CCD_TASK in params["tasks"]
    seed = params["seed"]
    ids = _subject_ids(params["release"], params["mini"], params["n_subjects"], seed)
    subjects = _make_subjects(ids, seed, has_ccd)
    for s in subjects:
        s.n_ccd_runs = min(s.n_ccd_runs, params["max_runs"])
    topo = _topographies()
    pooled = np.mean([_background_covariance(s, topo) for s in subjects], axis=0)
    c1_model = c1_oracle_model(pooled, topo)

    # Release-wide irregularities: one CCD run without end_experiment, at least one unsorted.
    plan_rng = _rng(seed, 3)
    ccd_runs = [(s.index, r) for s in subjects for r in range(1, s.n_ccd_runs + 1)]
    no_end = tuple(ccd_runs[int(plan_rng.integers(len(ccd_runs)))]) if ccd_runs else None
    forced_swap = ccd_runs[0] if ccd_runs else None

    jobs = [(out, s, topo, params, c1_model, no_end, forced_swap) for s in subjects]
    if n_jobs > 1 and len(subjects) > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=n_jobs)(delayed(_generate_subject)(*job) for job in jobs)
    else:
        results = [_generate_subject(*job) for job in jobs]

    trials_all: list[dict] = []
    recordings: list[dict] = []
    available: dict[str, set[str]] = {}
    for s, (trials, recs, avail) in zip(subjects, results):
        trials_all += trials
        recordings += recs
        available[s.subject_id] = avail
        if verbose:
            print(f"  sub-{s.subject_id}: {len(recs)} recordings", flush=True)
    _write_participants(out, params["release"], subjects, available)
    _write_dataset_files(out, params["release"], params["mini"])
    _write_json(out / TRUTH_NAME,
                _truth(params, subjects, trials_all, recordings, topo, c1_model))


def _generate_subject(out: Path, s: _Subject, topo: _Topographies, params: dict,
                      c1_model: dict, no_end, forced_swap):
    """All recordings of one subject: (trial truth rows, recording rows, available columns).

    mne-bids writes into a private staging root (it rewrites participants.tsv and friends on
    every call), whose ``sub-<ID>`` folder is then moved into ``out``.
    """
    seed, sfreq, raw_like = params["seed"], params["sfreq"], params["raw_like"]
    stage = out / f".stage-{s.subject_id}"
    trials_all: list[dict] = []
    recordings: list[dict] = []
    available: set[str] = set()
    if CCD_TASK in params["tasks"]:
        for run in range(1, s.n_ccd_runs + 1):
            rng = _rng(seed, 10, s.index, run)
            lo, hi = params["trials_per_run"]
            n_trials = int(rng.integers(lo, hi + 1))
            n_swaps = int(rng.integers(0, 3))
            if (s.index, run) == forced_swap:
                n_swaps = max(n_swaps, 1)
            has_end = (s.index, run) != no_end
            rows, trials, comps, duration = _ccd_run(rng, s, run, n_trials, has_end, n_swaps)
            motor_rng = _rng(seed, 11, s.index, run)
            presses = _presses(motor_rng, rows)
            data = _simulate(rng, s, topo, int(duration * sfreq), sfreq, components=comps,
                             raw_like=raw_like, presses=presses, motor_rng=motor_rng)
            _measure_latencies(data, sfreq, trials, c1_model)
            if raw_like:
                data += _raw_artifacts(rng, topo, data.shape[1], sfreq)
            path = _write_recording(stage, s.subject_id, CCD_TASK, run, data, sfreq, rows,
                                    raw_like)
            for tr in trials:
                tr["has_end_experiment"] = has_end
            trials_all += trials
            available.add(f"{CCD_TASK}_{run}")
            recordings.append({"subject": s.subject_id, "task": CCD_TASK, "run": run,
                               "path": path.relative_to(stage).as_posix(),
                               "duration": duration})
    if REST_TASK in params["tasks"]:
        rng = _rng(seed, 20, s.index)
        rows, closed, duration = _rest_run(rng, params["rest_seconds"])
        data = _simulate(rng, s, topo, int(duration * sfreq), sfreq, eyes_closed=closed,
                         raw_like=raw_like)
        if raw_like:
            data += _raw_artifacts(rng, topo, data.shape[1], sfreq)
        path = _write_recording(stage, s.subject_id, REST_TASK, None, data, sfreq, rows,
                                raw_like)
        available.add(REST_TASK)
        recordings.append({"subject": s.subject_id, "task": REST_TASK, "run": None,
                           "path": path.relative_to(stage).as_posix(), "duration": duration})
    others, others_available = write_other_tasks(
        stage, s, topo, params, simulate=_simulate, raw_artifacts=_raw_artifacts,
        write_recording=_write_recording)
    recordings += others
    available |= others_available
    subject_dir = stage / f"sub-{s.subject_id}"
    for scans in subject_dir.glob("*_scans.tsv"):
        scans.unlink()  # HBN releases carry no scans.tsv
    os.replace(subject_dir, out / subject_dir.name)
    shutil.rmtree(stage)
    return trials_all, recordings, available


