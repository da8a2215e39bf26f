"""Data-path benchmark: the challenge starter kit's loading vs eegattn's, cold and cached.

On a synthetic release (default: 24 subjects, ``make_release(n_subjects=24, seed=0)`` in the
project cache), each cell runs in its own subprocess and reads **every** window it produces,
checksumming it (CRC-32 of every window's bytes, combined with SHA-256 in (subject, task,
run, start) order with the targets), so lazy reads count:

- ``starter kit``: eegdash ``EEGChallengeDataset(download=False)`` -> excluded subjects removed
  -> ``annotate_trials_with_target`` + ``add_aux_anchors`` -> ``keep_only_recordings_with`` ->
  braindecode ``create_windows_from_events`` (+0.5..+2.5 s, preload) -> ``add_extras_columns``
  (challenge 1); ``create_fixed_length_windows`` (4 s / 2 s) for challenge 2;
- ``eegattn cold``: ``load_challenge_windows`` into an empty cache folder (reads the .bdf files
  with MNE, windows them and writes the cache);
- ``eegattn cached``: the same call again (memory-mapped windows from the cache).

Import time is measured separately in each child (the libraries each path needs) and excluded
from the times and ratios. Every file of the release is read once before the first cell so all
cells see the same warm page cache. Peak memory is the child's ``ru_maxrss`` (imports
included; torch alone is a few hundred MB) and the peak above the post-import baseline.

Each cell runs ``--repeats`` times (interleaved, each a fresh subprocess; the cold cell from an
empty cache) and the fastest run is reported with all run times, since a shared machine
disturbs single runs.

Targets (issue 3, set on the challenge-1 path), printed as PASS/FAIL: cold >= 3x faster than
the starter kit, cached >= 20x faster; for both challenges identical windows and targets
(equal checksums); the trial table equal to eegdash's ``build_trial_table`` on every CCD
events file of the release. Challenge-2 speed-ups are printed for information.

Usage::

    python bench/data.py                       # challenges 1 and 2, 24 subjects
    python bench/data.py --challenges 1 --n-subjects 20
    python bench/data.py --root /path/with/EEG2025r5     # an existing (synthetic) release

Outputs: markdown tables on stdout and ``bench/results/data.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)

TARGET_COLD = 3.0
TARGET_CACHED = 20.0


# ----------------------------------------------------------------------------- children
def _window_digest(entries) -> tuple[str, int]:
    """Combine per-window CRC-32s in a canonical order: ``entries`` = (key, crc, target)."""
    import hashlib

    total = hashlib.sha256()
    entries = sorted(entries, key=lambda e: e[0])
    for key, digest, target in entries:
        total.update(f"{key!r} {digest} {target:.9g};".encode())
    return total.hexdigest(), len(entries)


def _rss_parts() -> dict:
    """Current anonymous and file-backed resident memory (memory-mapped windows are
    file-backed: page cache the kernel can drop, not allocations)."""
    parts = {}
    with open("/proc/self/status", encoding="ascii") as handle:
        for line in handle:
            if line.startswith(("RssAnon:", "RssFile:")):
                parts[line.split(":")[0]] = int(line.split()[1]) * 1024
    return parts


def _child_make(spec: dict) -> dict:
    from eegattn.data.synthetic import make_release

    folder = make_release(spec["root"], n_subjects=spec["n_subjects"], seed=spec["seed"])
    return {"status": "ok", "folder": str(folder)}


def _child_starter(spec: dict) -> dict:
    import warnings
    import zlib

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    import braindecode.preprocessing  # noqa: F401
    import eegdash  # noqa: F401
    import eegdash.hbn.windows  # noqa: F401
    import mne_bids  # noqa: F401
    import numpy as np

    from eegattn.data import hbn

    import_s = time.perf_counter() - start
    base = common.peak_rss_bytes()
    start = time.perf_counter()
    windows = hbn.starter_kit_windows(spec["challenge"], spec["root"])
    entries = []
    for X, y, info in hbn.iter_starter_kit_windows(windows, spec["challenge"]):
        digest = zlib.crc32(np.ascontiguousarray(X, dtype=np.float32).data)
        entries.append(
            (
                (info["subject"], info["task"], info["run"] or 0, info["i_start"]),
                digest,
                float(np.float32(y)),
            )
        )
    return _measured(entries, start, import_s, base)


def _measured(entries, start: float, import_s: float, base: int, **extra) -> dict:
    """One path's result: checksum over its windows, wall time and memory, plus ``extra``."""
    checksum, n = _window_digest(entries)
    seconds = time.perf_counter() - start
    return {
        "status": "ok",
        "seconds": seconds,
        "import_s": import_s,
        "n_windows": n,
        "checksum": checksum,
        "peak_rss": common.peak_rss_bytes(),
        "peak_above_imports": common.peak_rss_bytes() - base,
        **_rss_parts(),
        **extra,
    }


def _child_ours(spec: dict) -> dict:
    import warnings
    import zlib

    warnings.simplefilter("ignore")
    start = time.perf_counter()
    if spec["mode"] == "cold":
        import mne  # noqa: F401  (the cold path reads .bdf files with MNE)
    import numpy as np

    from eegattn.data.cache import load_challenge_windows

    import_s = time.perf_counter() - start
    base = common.peak_rss_bytes()
    start = time.perf_counter()
    ws = load_challenge_windows(
        spec["challenge"],
        root=spec["root"],
        cache_dir=spec["cache_dir"],
        n_jobs=spec["n_jobs"],
        progress=False,
    )
    meta = ws.metadata
    keys = zip(meta["subject"], meta["task"], meta["run"].fillna(0).astype(int), meta["i_start"])
    entries = [
        ((s, t, int(r), int(i)), zlib.crc32(np.ascontiguousarray(ws.X[k]).data), float(ws.y[k]))
        for k, (s, t, r, i) in enumerate(keys)
    ]
    return _measured(entries, start, import_s, base,
                     from_cache=ws.cache_key is not None and spec["mode"] == "cached",
                     cache_key=ws.cache_key)


def _plain(column) -> list:
    """Values with every missing marker (None, NaN, pandas NA) as None."""
    import pandas as pd

    return [None if v is None or pd.isna(v) else v for v in column]


def _child_trials(spec: dict) -> dict:
    """The project's trial table vs eegdash's on every CCD events file of the release."""
    import warnings

    warnings.simplefilter("ignore")
    import numpy as np
    from eegdash.hbn.windows import build_trial_table

    from eegattn.data.windows import ccd_trial_table, read_events

    folder = Path(spec["root"]) / "EEG2025r5"
    files = sorted(folder.glob("sub-*/eeg/*_task-contrastChangeDetection*_events.tsv"))
    columns = (
        "trial_start_onset",
        "trial_stop_onset",
        "stimulus_onset",
        "response_onset",
        "rt_from_stimulus",
        "rt_from_trialstart",
    )
    mismatched, n_trials = [], 0
    for path in files:
        events = read_events(path)
        ours, theirs = ccd_trial_table(events), build_trial_table(events)
        same = (
            len(ours) == len(theirs)
            and all(
                np.array_equal(ours[c].to_numpy(float), theirs[c].to_numpy(float), equal_nan=True)
                for c in columns
            )
            and _plain(ours["response_type"]) == _plain(theirs["response_type"])
            and _plain(ours["correct"]) == _plain(theirs["correct"])
        )
        n_trials += len(ours)
        if not same:
            mismatched.append(path.name)
    return {"status": "ok", "n_files": len(files), "n_trials": n_trials, "mismatched": mismatched}


CHILDREN = {
    "make": _child_make,
    "starter": _child_starter,
    "ours": _child_ours,
    "trials": _child_trials,
}


# ----------------------------------------------------------------------------- driver
def _warm_page_cache(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                while handle.read(1 << 22):
                    pass


def _fmt_s(value) -> str:
    return f"{value:.2f} s" if isinstance(value, (int, float)) else "-"


def _best(runs: list[dict]) -> dict:
    """The fastest successful repeat (the least disturbed by other load), with all times."""
    ok = [r for r in runs if r.get("status") == "ok"]
    if not ok:
        return runs[-1]
    best = dict(min(ok, key=lambda r: r["seconds"]))
    best["all_seconds"] = [round(r["seconds"], 3) for r in ok]
    best["identical_checksums"] = len({r["checksum"] for r in ok}) == 1
    return best


def _measure(challenge: int, root: Path, cache_dir: Path, args) -> dict:
    """Repeats interleaved (starter, cold, cached), each in a fresh subprocess; the cold cell
    starts from an empty cache folder every time."""
    base = {"root": str(root), "challenge": challenge}
    runs: dict[str, list] = {"starter kit": [], "eegattn cold": [], "eegattn cached": []}
    for _ in range(args.repeats):
        runs["starter kit"].append(
            common.run_child(__file__, {**base, "kind": "starter"}, args.timeout)
        )
        shutil.rmtree(cache_dir, ignore_errors=True)
        for mode in ("cold", "cached"):
            runs[f"eegattn {mode}"].append(
                common.run_child(
                    __file__,
                    {
                        **base,
                        "kind": "ours",
                        "mode": mode,
                        "cache_dir": str(cache_dir),
                        "n_jobs": args.n_jobs,
                    },
                    args.timeout,
                )
            )
    return {name: _best(cell_runs) for name, cell_runs in runs.items()}


def _print_table(challenge: int, cells: dict) -> None:
    ref = cells["starter kit"].get("seconds")
    rows = []
    for name, cell in cells.items():
        if cell.get("status") != "ok":
            rows.append([name, f"failed: {cell.get('reason')}"] + ["-"] * 6)
            continue
        speedup = ref / cell["seconds"] if ref else None
        rows.append(
            [
                name,
                f"{cell['seconds']:.2f} s ({', '.join(f'{t:.1f}' for t in cell['all_seconds'])})",
                f"{cell['import_s']:.1f} s",
                f"{speedup:.1f}x" if speedup else "-",
                common.format_bytes(cell["peak_rss"]),
                common.format_bytes(cell["peak_above_imports"]),
                common.format_bytes(cell.get("RssFile", 0)),
                f"{cell['n_windows']} / {cell['checksum'][:12]}",
            ]
        )
    print(f"### Challenge {challenge}\n")
    print(
        common.markdown_table(
            [
                "path",
                "time, best (all runs)",
                "import",
                "vs starter kit",
                "peak RSS",
                "peak above imports",
                "file-backed RSS at end",
                "windows / checksum",
            ],
            rows,
        )
    )
    print()


def _checks(challenge: int, cells: dict) -> list[tuple[str, bool]]:
    if any(c.get("status") != "ok" for c in cells.values()):
        return [(f"challenge {challenge}: every cell ran", False)]
    ref = cells["starter kit"]["seconds"]
    cold = ref / cells["eegattn cold"]["seconds"]
    cached = ref / cells["eegattn cached"]["seconds"]
    same = (
        len({c["checksum"] for c in cells.values()}) == 1
        and len({c["n_windows"] for c in cells.values()}) == 1
        and all(c["identical_checksums"] for c in cells.values())
    )
    out = [
        (
            f"challenge {challenge}: identical windows and targets "
            f"({cells['starter kit']['n_windows']} windows, equal checksums in every run)",
            same,
        ),
        (
            f"challenge {challenge}: the cached run read the cache",
            bool(cells["eegattn cached"].get("from_cache")),
        ),
    ]
    if challenge == 1:  # the speed targets are set on the challenge-1 path
        out += [
            (
                f"challenge 1: cold {cold:.1f}x faster than the starter kit (target >= "
                f"{TARGET_COLD:g}x)",
                cold >= TARGET_COLD,
            ),
            (
                f"challenge 1: cached {cached:.1f}x faster than the starter kit (target >= "
                f"{TARGET_CACHED:g}x)",
                cached >= TARGET_CACHED,
            ),
        ]
    else:
        print(
            f"(challenge 2, no target: cold {cold:.1f}x, cached {cached:.1f}x faster than "
            "the starter kit)\n"
        )
    return out


def main() -> int:
    spec = common.child_spec()
    if spec is not None:
        try:
            common.report_child(CHILDREN[spec["kind"]](spec))
        except Exception as err:  # reported to the driver, which prints it
            common.report_child({"status": "error", "reason": f"{type(err).__name__}: {err}"})
        return 0

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--root", default=None, help="folder for the synthetic release (default: the project cache)"
    )
    parser.add_argument("--n-subjects", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--challenges", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=1,
        help="eegattn workers (default 1, as the starter kit's preprocess)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=2,
        help="runs per cell, interleaved; the fastest is reported (default 2)",
    )
    parser.add_argument("--timeout", type=float, default=1800.0, help="per cell, seconds")
    parser.add_argument("--out", default=str(common.RESULTS_DIR / "data.json"))
    args = parser.parse_args()
    if args.n_subjects < 20:
        print(f"note: the issue asks for >= 20 subjects, running {args.n_subjects}")

    repo = Path(__file__).resolve().parent.parent
    root = (
        Path(args.root)
        if args.root
        else Path(os.environ.get("EEGATTN_CACHE", "").strip() or repo / "cache")
    )
    made = common.run_child(
        __file__,
        {"kind": "make", "root": str(root), "n_subjects": args.n_subjects, "seed": args.seed},
        timeout=3600,
    )
    if made.get("status") != "ok":
        print(f"could not write the synthetic release: {made.get('reason')}")
        return 1
    folder = Path(made["folder"])
    _warm_page_cache(folder)
    n_files = sum(1 for _ in folder.glob("sub-*/eeg/*_eeg.bdf"))
    print(
        f"release {folder} ({args.n_subjects} subjects, {n_files} recordings), "
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"eegattn n_jobs={args.n_jobs}\n"
    )

    cache_dir = Path(tempfile.mkdtemp(prefix="bench-data-cache-"))
    results: dict = {
        "release": str(folder),
        "n_subjects": args.n_subjects,
        "n_jobs": args.n_jobs,
        "repeats": args.repeats,
        "challenges": {},
    }
    checks: list[tuple[str, bool]] = []
    try:
        for challenge in args.challenges:
            cells = _measure(challenge, root, cache_dir, args)
            results["challenges"][challenge] = cells
            _print_table(challenge, cells)
            checks += _checks(challenge, cells)
        if 1 in args.challenges:
            trials = common.run_child(__file__, {"kind": "trials", "root": str(root)}, args.timeout)
            results["trials"] = trials
            if trials.get("status") == "ok":
                checks.append(
                    (
                        f"trial table equal to eegdash's build_trial_table on all "
                        f"{trials['n_files']} CCD events files ({trials['n_trials']} trials)"
                        + (
                            f"; differs on {trials['mismatched'][:3]}"
                            if trials["mismatched"]
                            else ""
                        ),
                        not trials["mismatched"],
                    )
                )
            else:
                checks.append((f"trial table check failed: {trials.get('reason')}", False))
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

    print("### Targets\n")
    for text, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {text}")
    results["checks"] = [{"check": t, "pass": p} for t, p in checks]
    common.write_json(args.out, results)
    print(f"\nwrote {args.out}")
    return 0 if all(p for _, p in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
