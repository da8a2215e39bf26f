"""Scaling of the data path with the number of subjects: cache build time, disk, memory and
training throughput from the cache, on synthetic releases of growing size.

For each size (default 24, 96 and 384 subjects; ``make_release(n_subjects=N, seed=0,
tasks=(contrastChangeDetection, RestingState))``, written once under ``--data``):

- **build**: challenge-1 windows (CCD) and challenge-2 windows (CCD + RestingState, 4 s every
  2 s) built into empty cache folders, one process each (``n_jobs=1``): wall time, cache size
  on disk, peak resident memory (``ru_maxrss``, and the peak of its anonymous part, sampled:
  memory-mapped cache pages are file-backed, page cache the kernel can drop);
- **epoch**: one epoch of ``lightweight_fast`` (batch 64, no validation, challenge 2 with the
  estimator's random 2 s crops) on every window, read from the cache: windows/s and memory;
- **data path alone**: every window read from the cache in shuffled batches of 64, no model
  (the ceiling of what one process can feed a faster model, e.g. on a GPU);
- **cache vs RAM**: the same ``--subset`` consecutive windows (seeded offset) trained for one
  epoch read from the cache, and copied into RAM first (``np.asarray``), in separate
  processes, ``--repeats`` times interleaved: median windows/s of each and their ratio;
- **disk per challenge-2 window-set** against the windows materialised as float32
  (``n_windows * 129 * 400 * 4`` bytes).

The build time is fitted against the number of recordings (linear least squares: slope,
intercept, R^2) for each challenge. Every measured cell runs in its own subprocess (the driver
imports only the standard library), so each peak-memory figure is that phase's alone.
Window caches are removed after each size is measured (``--keep-cache`` keeps them); the
releases stay in ``--data`` for the next run.

Targets (issue 18), printed as PASS/FAIL: build time linear in recordings (R^2 >= 0.98 for
each challenge); peak RSS < 2 GB at every size (build and epoch); cache-read throughput >= 90 %
of in-RAM; challenge-2 disk per window-set <= 0.55x materialised.

    .venv/bin/python bench/scaling.py --sizes 6 12 --subset 512 --repeats 1      # quick check
    nohup .venv/bin/python bench/scaling.py --threads 1 --out docs/results/scaling.json \\
        --plot docs/results/scaling.png > /tmp/scaling.log 2>&1 &
    .venv/bin/python bench/scaling.py --from-json docs/results/scaling.json --plot ...  # redraw
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import _common as common  # noqa: E402  (bench/ is not a package)

CCD = "contrastChangeDetection"
REST = "RestingState"
TASKS = {1: [CCD], 2: [CCD, REST]}
N_CHANS = 129
WINDOW_SAMPLES = {1: 200, 2: 400}  # 2 s and 4 s at 100 Hz
TARGET_RSS = 2 * common.GB
TARGET_THROUGHPUT = 0.90
TARGET_DISK = 0.55
TARGET_R2 = 0.98
PHASES = ("gather", "epoch", "compare")


# ----------------------------------------------------------------------------- children
class _AnonPeak:
    """Peak of RssAnon (allocations, not file-backed pages) sampled every ``period`` s."""

    def __init__(self, period: float = 0.05):
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, args=(period,), daemon=True)

    @staticmethod
    def now() -> int:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
        return 0

    def _run(self, period: float) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.now())
            self._stop.wait(period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.now())


def _memory(anon: _AnonPeak) -> dict:
    return {"peak_rss": common.peak_rss_bytes(), "peak_anon": anon.peak}


def _child_make(spec: dict) -> dict:
    from eegattn.data.synthetic import make_release

    start = time.perf_counter()
    folder = make_release(spec["root"], n_subjects=spec["n_subjects"], seed=0,
                          tasks=tuple(TASKS[2]))
    return {"status": "ok", "folder": str(folder), "seconds": time.perf_counter() - start}


def _load(spec: dict):
    import warnings

    from eegattn.data.cache import load_challenge_windows

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skipped recordings are counted in info
        return load_challenge_windows(spec["challenge"], root=spec["root"],
                                      cache_dir=spec["cache_dir"], tasks=TASKS[spec["challenge"]],
                                      n_jobs=1, progress=False)


def _child_build(spec: dict) -> dict:
    import numpy as np  # noqa: F401  (imported before the clock, as every phase needs it)

    import eegattn.data.cache  # noqa: F401

    with _AnonPeak() as anon:
        start = time.perf_counter()
        ws = _load(spec)
        seconds = time.perf_counter() - start
    info = ws.info
    return {"status": "ok", "seconds": seconds, "n_windows": len(ws),
            "n_recordings": int(info.get("n_recordings_used") or 0),
            "n_recordings_found": int(info.get("n_recordings_found") or 0),
            "n_subjects": int(ws.metadata["subject"].nunique()),
            "x_type": type(ws.X).__name__, **_memory(anon)}


def _subset(ws, spec: dict):
    """``spec["subset"]`` consecutive windows at a seeded offset (a view of the cache)."""
    import numpy as np

    n = min(spec["subset"], len(ws))
    offset = int(np.random.default_rng(spec["seed"]).integers(0, len(ws) - n + 1))
    return ws.subset(slice(offset, offset + n))


def _child_train(spec: dict) -> dict:
    import numpy as np
    import torch

    from eegattn.training.estimator import EEGAttentionRegressor

    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    ws = _load(spec)  # from the cache built before
    if spec["mode"] != "epoch":  # the same consecutive windows in both modes
        ws = _subset(ws, spec)
    X, y = ws.X, np.asarray(ws.y)
    load_s = 0.0
    with _AnonPeak() as anon:
        if spec["mode"] == "ram":
            start = time.perf_counter()
            X = np.asarray(X)
            load_s = time.perf_counter() - start
        est = EEGAttentionRegressor(
            model="lightweight_fast", max_epochs=1, batch_size=64, early_stopping=False,
            valid_fraction=0.0, crop_n_times=200 if spec["challenge"] == 2 else None,
            seed=0, verbose=0)
        start = time.perf_counter()
        est.fit(X, y)
        fit_s = time.perf_counter() - start
    history = getattr(est, "history_", None) or [{}]
    epoch_s = history[0].get("duration_s") or fit_s
    # fit_s - epoch_s: model set-up and the estimator's NaN/Inf check of every window
    return {"status": "ok", "mode": spec["mode"], "n_windows": len(y), "fit_s": fit_s,
            "epoch_s": epoch_s, "windows_per_s": len(y) / epoch_s, "load_s": load_s,
            "x_type": type(ws.X).__name__, "threads": torch.get_num_threads(),
            **_memory(anon)}


def _child_gather(spec: dict) -> dict:
    """The data path alone: every window read from the cache in shuffled batches of 64 (as the
    loop draws them), no model: the windows/s a faster model (a GPU) could be fed at most from
    one process."""
    import numpy as np

    ws = _load(spec)
    order = np.random.default_rng(0).permutation(len(ws))
    batches = [np.sort(order[i:i + 64]) for i in range(0, len(order), 64)]
    with _AnonPeak() as anon:
        start = time.perf_counter()
        for idx in batches:
            np.asarray(ws.X[idx])
        seconds = time.perf_counter() - start
    # the compare phase's windows, read as the loop reads them, from the cache and from RAM
    sub = _subset(ws, spec)
    ram = np.asarray(sub.X)
    order = np.random.default_rng(1).permutation(len(sub))
    per_window = {}
    for name, X in (("cache", sub.X), ("ram", ram), ("cache", sub.X), ("ram", ram)):
        start = time.perf_counter()
        for i in range(0, len(order), 64):
            np.asarray(X[np.sort(order[i:i + 64])])
        ms = (time.perf_counter() - start) / len(order) * 1000
        per_window[name] = min(per_window.get(name, ms), ms)
    return {"status": "ok", "n_windows": len(ws), "seconds": seconds,
            "windows_per_s": len(ws) / seconds, "subset_cache_ms": per_window["cache"],
            "subset_ram_ms": per_window["ram"], **_memory(anon)}


CHILDREN = {"make": _child_make, "build": _child_build, "train": _child_train,
            "gather": _child_gather}


# ----------------------------------------------------------------------------- driver
def _folder_bytes(folder: Path) -> tuple[int, int]:
    """(sum of file sizes, bytes allocated on disk) under ``folder``."""
    size = blocks = 0
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            st = path.stat()
            size += st.st_size
            blocks += st.st_blocks * 512
    return size, blocks


def _count_recordings(release: Path) -> dict:
    return {task: len(list(release.glob(f"sub-*/eeg/*_task-{task}*_eeg.bdf")))
            for task in TASKS[2]}


def _fit_line(points) -> dict | None:
    """Least-squares line y = slope x + intercept through ``points`` and its R^2."""
    points = [(float(x), float(y)) for x, y in points]
    n = len(points)
    if n < 2:
        return None
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    if sxx == 0:
        return None
    slope = sum((x - mx) * (y - my) for x, y in points) / sxx
    intercept = my - slope * mx
    ss_res = sum((y - slope * x - intercept) ** 2 for x, y in points)
    ss_tot = sum((y - my) ** 2 for _, y in points)
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return {"slope_s_per_recording": slope, "intercept_s": intercept, "r2": r2, "n": n}


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _run(kind: str, spec: dict, timeout: float, env: dict) -> dict:
    result = common.run_child(__file__, {"kind": kind, **spec}, timeout, env=env)
    if result.get("status") != "ok":
        _log(f"  {kind} failed: {result.get('reason')}")
    return result


def measure_size(n: int, args, env: dict) -> dict:
    """Every measurement of one release size (see the module docstring)."""
    root = Path(args.data).resolve() / f"subjects-{n}"
    row: dict = {"n_subjects": n, "root": str(root)}
    _log(f"{n} subjects: release")
    made = _run("make", {"root": str(root), "n_subjects": n}, args.timeout, env)
    if made.get("status") != "ok":
        return {**row, "error": f"release: {made.get('reason')}"}
    release = Path(made["folder"])
    row["release"] = {"generate_s": made["seconds"], "bytes": _folder_bytes(release)[0],
                      "recordings": _count_recordings(release)}
    for challenge in args.challenges:
        cache = root / f"windows-c{challenge}"
        shutil.rmtree(cache, ignore_errors=True)  # a cold build every time
        base = {"root": str(root), "challenge": challenge, "cache_dir": str(cache)}
        _log(f"{n} subjects: challenge {challenge} build")
        build = _run("build", base, args.timeout, env)
        cell: dict = {"build": build}
        if build.get("status") == "ok":
            size, allocated = _folder_bytes(cache)
            cell["cache_bytes"], cell["cache_allocated_bytes"] = size, allocated
            # against the windows as float32 arrays (challenge 1: 200 samples, for information)
            materialised = build["n_windows"] * N_CHANS * WINDOW_SAMPLES[challenge] * 4
            cell["materialised_bytes"] = materialised
            cell["disk_ratio"] = size / materialised
            _log(f"  {build['n_windows']} windows from {build['n_recordings']} recordings in "
                 f"{build['seconds']:.1f} s, cache {common.format_bytes(size)}, peak RSS "
                 f"{common.format_bytes(build['peak_rss'])} (anon "
                 f"{common.format_bytes(build['peak_anon'])}), X {build['x_type']}")
            train = {"threads": args.threads, "subset": args.subset, "seed": n}
            if "gather" in args.phases:
                _log(f"{n} subjects: challenge {challenge} data path alone")
                cell["gather"] = gather = _run("gather", {**base, **train}, args.timeout, env)
                if gather.get("status") == "ok":
                    _log(f"  {gather['windows_per_s']:.0f} windows/s read in shuffled batches; "
                         f"subset: {gather['subset_cache_ms']:.3f} ms per window from the "
                         f"cache, {gather['subset_ram_ms']:.3f} ms from RAM")
            if "epoch" in args.phases:
                _log(f"{n} subjects: challenge {challenge} epoch from the cache")
                cell["epoch"] = epoch = _run("train", {**base, **train, "mode": "epoch"},
                                             args.timeout, env)
                if epoch.get("status") == "ok":
                    _log(f"  {epoch['n_windows']} windows at {epoch['windows_per_s']:.0f}/s, "
                         f"peak RSS {common.format_bytes(epoch['peak_rss'])} (anon "
                         f"{common.format_bytes(epoch['peak_anon'])})")
            if "compare" in args.phases:
                _compare(cell, base, train, n, args, env)
        row[f"challenge{challenge}"] = cell
        if not args.keep_cache:
            shutil.rmtree(cache, ignore_errors=True)
    return row


def _compare(cell: dict, base: dict, train: dict, n: int, args, env: dict) -> None:
    """The same windows trained from the cache and from RAM, interleaved repeats."""
    runs: dict = {"cache": [], "ram": []}
    for repeat in range(args.repeats):
        for mode in ("cache", "ram") if repeat % 2 == 0 else ("ram", "cache"):
            got = _run("train", {**base, **train, "mode": mode}, args.timeout, env)
            if got.get("status") == "ok":
                runs[mode].append(got)
    cell["subset_runs"] = runs
    if not (runs["cache"] and runs["ram"]):
        return
    rates = {mode: common.summarize([r["windows_per_s"] for r in runs[mode]]) for mode in runs}
    cell["subset_windows_per_s"] = rates
    cell["throughput_ratio"] = rates["cache"]["median"] / rates["ram"]["median"]
    paired = [c["windows_per_s"] / r["windows_per_s"]
              for c, r in zip(runs["cache"], runs["ram"])]
    cell["paired_ratios"] = paired
    gather = cell.get("gather", {})
    if gather.get("status") == "ok":  # what the data path alone predicts
        extra_s = (gather["subset_cache_ms"] - gather["subset_ram_ms"]) / 1000
        cell["predicted_ratio"] = 1.0 / (1.0 + extra_s * rates["ram"]["median"])
    _log(f"  subset of {runs['cache'][0]['n_windows']}: cache {rates['cache']['median']:.0f}/s, "
         f"RAM {rates['ram']['median']:.0f}/s, ratio {cell['throughput_ratio']:.3f} (paired "
         f"{', '.join(f'{p:.2f}' for p in paired)}; from the read times "
         f"{cell.get('predicted_ratio', float('nan')):.3f})")


def summarize_results(rows: list[dict]) -> dict:
    """Fits and target verdicts from the per-size rows."""
    out: dict = {"fits": {}, "targets": {}}
    for challenge in (1, 2):
        points = [(r[f"challenge{challenge}"]["build"]["n_recordings"],
                   r[f"challenge{challenge}"]["build"]["seconds"])
                  for r in rows if r.get(f"challenge{challenge}", {}).get("build", {})
                  .get("status") == "ok"]
        out["fits"][f"challenge{challenge}_build"] = _fit_line(points)
    fits = [f for f in out["fits"].values() if f]
    peaks = [cell[phase][key] for r in rows for c in (1, 2)
             if (cell := r.get(f"challenge{c}"))
             for phase in ("build", "epoch") for key in ("peak_rss",)
             if cell.get(phase, {}).get("status") == "ok"]
    ratios = [r[f"challenge{c}"]["throughput_ratio"] for r in rows for c in (1, 2)
              if "throughput_ratio" in r.get(f"challenge{c}", {})]
    disk = [r["challenge2"]["disk_ratio"] for r in rows if "disk_ratio" in r.get("challenge2", {})]
    out["targets"] = {
        "build_linear": {"min_r2": min((f["r2"] for f in fits), default=None),
                         "target": TARGET_R2},
        "peak_rss": {"max_bytes": max(peaks, default=None), "target_bytes": TARGET_RSS},
        "throughput_ratio": {"min": min(ratios, default=None), "target": TARGET_THROUGHPUT},
        "c2_disk_ratio": {"max": max(disk, default=None), "target": TARGET_DISK},
    }
    t = out["targets"]
    t["build_linear"]["pass"] = _at_least(t["build_linear"]["min_r2"], TARGET_R2)
    t["peak_rss"]["pass"] = _below(t["peak_rss"]["max_bytes"], TARGET_RSS)
    t["throughput_ratio"]["pass"] = _at_least(t["throughput_ratio"]["min"], TARGET_THROUGHPUT)
    t["c2_disk_ratio"]["pass"] = _below(t["c2_disk_ratio"]["max"], TARGET_DISK, inclusive=True)
    return out


def _at_least(value, target):
    return None if value is None else bool(value >= target)


def _below(value, target, inclusive: bool = False):
    if value is None:
        return None
    return bool(value <= target) if inclusive else bool(value < target)


def _cell(row: dict, challenge: int, *path, fmt="{:.1f}", scale=1.0) -> str:
    value = row.get(f"challenge{challenge}", {})
    for key in path:
        value = value.get(key, {}) if isinstance(value, dict) else {}
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return "-"
    return fmt.format(value / scale)


# ----------------------------------------------------------------------------- HBN R1-R11
#: OpenNeuro ids of the challenge's releases (eegattn.challenge.RELEASE_DATASET_IDS)
HBN_DATASETS = {"R1": "ds005505", "R2": "ds005506", "R3": "ds005507", "R4": "ds005508",
                "R5": "ds005509", "R6": "ds005510", "R7": "ds005511", "R8": "ds005512",
                "R9": "ds005514", "R10": "ds005515", "R11": "ds005516"}
BDF_BYTES_PER_HOUR = N_CHANS * 100 * 3 * 3600  # 24-bit samples at 100 Hz
F32_BYTES_PER_HOUR = N_CHANS * 100 * 4 * 3600
CCD_RUNS_PER_SUBJECT = 2.75  # assumption: 1-3 runs, most subjects 3 (the generator's draw)


def hbn_releases(csv_path: str | None = None) -> list[dict] | None:
    """Subjects, recordings, hours and 100 Hz BDF bytes of R1-R11 from eegdash's dataset
    summary (``eegdash/dataset/dataset_summary.csv``, shipped with eegdash 0.9); None when it
    is not there. R7's bytes and hours are missing there: scaled from its recordings."""
    import csv
    import importlib.util

    if csv_path is None:
        spec = importlib.util.find_spec("eegdash")  # finds the folder, imports nothing
        if spec is None or not spec.submodule_search_locations:
            return None
        csv_path = Path(list(spec.submodule_search_locations)[0]) / "dataset" / \
            "dataset_summary.csv"
    if not Path(csv_path).is_file():
        return None
    with open(csv_path, newline="", encoding="utf-8") as handle:
        table = {row["dataset"]: row for row in csv.DictReader(handle)}

    def number(row, key):
        try:
            value = float(row[key]) if row and row.get(key) else None
        except ValueError:
            return None
        return value if value else None

    out = []
    for release, dataset in HBN_DATASETS.items():
        raw = table.get(dataset)
        bdf = table.get(f"EEG2025r{release[1:]}")
        source = raw or bdf
        if source is None:
            return None
        out.append({"release": release, "subjects": int(number(source, "n_subjects")),
                    "recordings": int(number(source, "n_records")),
                    "hours": number(raw, "duration_hours_total"),
                    "bdf_bytes": number(bdf, "size_bytes")})
    for key in ("hours", "bdf_bytes"):  # per recording of the releases that have it
        known = [r for r in out if r[key]]
        per_recording = sum(r[key] for r in known) / sum(r["recordings"] for r in known)
        for r in out:
            if not r[key]:
                r[key], r[f"{key}_estimated"] = r["recordings"] * per_recording, True
    return out


def extrapolate_hbn(rows: list[dict], summary: dict, releases: list[dict] | None) -> dict | None:
    """What R1-R11 would cost on this machine, from the largest measured size (see
    docs/scaling.md for the assumptions)."""
    if not releases or not rows:
        return None
    big = max(rows, key=lambda r: r["n_subjects"])
    c1, c2 = big.get("challenge1", {}), big.get("challenge2", {})
    if not (c1.get("build", {}).get("status") == "ok" and c2.get("build", {}).get("status")
            == "ok"):
        return None
    subjects = sum(r["subjects"] for r in releases)
    hours = sum(r["hours"] for r in releases)
    bdf = sum(r["bdf_bytes"] for r in releases)
    synthetic_hours = big["release"]["bytes"] / BDF_BYTES_PER_HOUR
    ccd_recordings = subjects * CCD_RUNS_PER_SUBJECT
    fit1 = summary["fits"].get("challenge1_build") or {}
    fit2 = summary["fits"].get("challenge2_build") or {}
    n1 = c1["build"]["n_recordings"]
    windows1 = c1["build"]["n_windows"] / n1 * ccd_recordings
    # hours of the recordings the challenge-2 windows came from (those with a target)
    used_hours = (synthetic_hours / sum(big["release"]["recordings"].values())
                  * c2["build"]["n_recordings"])
    per_hour = {"windows": c2["build"]["n_windows"] / used_hours,
                "cache_bytes": c2["cache_bytes"] / used_hours,
                "build_s": (fit2.get("slope_s_per_recording", 0) * c2["build"]["n_recordings"]
                            / used_hours)}

    def rate(cell, key):
        got = cell.get(key, {})
        return got.get("windows_per_s") if got.get("status") == "ok" else None

    out = {
        "source": "eegdash 0.9 dataset_summary.csv", "releases": releases,
        "subjects": subjects, "recordings": sum(r["recordings"] for r in releases),
        "hours": hours, "hours_from_bdf_bytes": bdf / BDF_BYTES_PER_HOUR,
        "bdf_bytes": bdf,
        "assumptions": {"ccd_runs_per_subject": CCD_RUNS_PER_SUBJECT,
                        "challenge2_scope": "every task (all hours of EEG)",
                        "build_scales_with": "challenge 1: CCD recordings; challenge 2: hours"},
        "challenge1": {
            "recordings": ccd_recordings, "windows": windows1,
            "cache_bytes": c1["cache_bytes"] / n1 * ccd_recordings,
            "build_h": (fit1.get("slope_s_per_recording", 0) * ccd_recordings
                        + fit1.get("intercept_s", 0)) / 3600,
        },
        "challenge2_per_hour_of_eeg": per_hour,
    }
    # challenge 2 over every task, for the hours eegdash lists and the hours the BDF bytes hold
    for name, h in (("challenge2", hours), ("challenge2_from_bdf_bytes", bdf / BDF_BYTES_PER_HOUR)):
        out[name] = {"hours": h, "windows": per_hour["windows"] * h,
                     "cache_bytes": per_hour["cache_bytes"] * h,
                     "build_h": per_hour["build_s"] * h / 3600}
    for name, cell in (("challenge1", c1), ("challenge2", c2),
                       ("challenge2_from_bdf_bytes", c2)):
        n = out[name]["windows"]
        train, read = rate(cell, "epoch"), rate(cell, "gather")
        out[name]["epoch_h_this_machine"] = n / train / 3600 if train else None
        out[name]["read_h_one_process"] = n / read / 3600 if read else None
    return out


def markdown(rows: list[dict], summary: dict) -> str:
    headers = ["subjects", "challenge", "recordings", "windows", "build s", "cache",
               "build peak RSS (anon)", "read windows/s", "epoch windows/s",
               "epoch peak RSS (anon)",
               "cache / RAM windows/s", "disk / materialised"]
    lines = []
    for row in rows:
        for c in (1, 2):
            cell = row.get(f"challenge{c}", {})
            build, epoch = cell.get("build", {}), cell.get("epoch", {})
            rates = cell.get("subset_windows_per_s", {})
            lines.append([
                row["n_subjects"], c, _cell(row, c, "build", "n_recordings", fmt="{:.0f}"),
                _cell(row, c, "build", "n_windows", fmt="{:,.0f}"),
                _cell(row, c, "build", "seconds"),
                common.format_bytes(cell["cache_bytes"]) if "cache_bytes" in cell else "-",
                (f"{common.format_bytes(build['peak_rss'])} "
                 f"({common.format_bytes(build['peak_anon'])})" if "peak_rss" in build else "-"),
                _cell(row, c, "gather", "windows_per_s", fmt="{:,.0f}"),
                _cell(row, c, "epoch", "windows_per_s", fmt="{:.0f}"),
                (f"{common.format_bytes(epoch['peak_rss'])} "
                 f"({common.format_bytes(epoch['peak_anon'])})" if "peak_rss" in epoch else "-"),
                (f"{rates['cache']['median']:.0f} / {rates['ram']['median']:.0f} = "
                 f"{cell['throughput_ratio']:.2f}" if rates else "-"),
                _cell(row, c, "disk_ratio", fmt="{:.3f}"),
            ])
    table = common.markdown_table(headers, lines)
    fits = []
    for name, fit in summary["fits"].items():
        if fit:
            fits.append(f"- {name}: {fit['slope_s_per_recording']:.3f} s per recording + "
                        f"{fit['intercept_s']:.2f} s, R^2 = {fit['r2']:.4f} ({fit['n']} sizes)")
    verdicts = []
    for name, target in summary["targets"].items():
        state = {True: "PASS", False: "FAIL", None: "n/a"}[target["pass"]]
        shown = {k: v for k, v in target.items() if k != "pass"}
        verdicts.append(f"- {name}: {state} {shown}")
    return "\n".join([table, "", *fits, "", *verdicts])


def plot(rows: list[dict], summary: dict, path: str) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 7.5))
    axes = fig.subplots(2, 2)
    colors = {1: "tab:blue", 2: "tab:orange"}
    ax = axes[0, 0]
    for c in (1, 2):
        pts = [(r[f"challenge{c}"]["build"]["n_recordings"], r[f"challenge{c}"]["build"]["seconds"])
               for r in rows if r.get(f"challenge{c}", {}).get("build", {}).get("status") == "ok"]
        if not pts:
            continue
        ax.plot(*zip(*pts), "o", color=colors[c], label=f"challenge {c}")
        fit = summary["fits"].get(f"challenge{c}_build")
        if fit:
            xs = [0, max(x for x, _ in pts)]
            ax.plot(xs, [fit["intercept_s"] + fit["slope_s_per_recording"] * x for x in xs],
                    "-", color=colors[c], alpha=0.6,
                    label=f"fit {fit['slope_s_per_recording']:.2f} s/rec, R²={fit['r2']:.3f}")
    ax.set(xlabel="recordings", ylabel="cache build time (s)", title="build time")
    ax.legend(fontsize=8)
    ax = axes[0, 1]
    for c in (1, 2):
        for phase, style in (("build", "o-"), ("epoch", "s--")):
            pts = [(r["n_subjects"], r[f"challenge{c}"][phase]["peak_rss"] / common.GB)
                   for r in rows if r.get(f"challenge{c}", {}).get(phase, {}).get("status") == "ok"]
            if pts:
                ax.plot(*zip(*pts), style, color=colors[c], label=f"c{c} {phase}")
            pts = [(r["n_subjects"], r[f"challenge{c}"][phase]["peak_anon"] / common.GB)
                   for r in rows if r.get(f"challenge{c}", {}).get(phase, {}).get("status") == "ok"]
            if pts:
                ax.plot(*zip(*pts), style, color=colors[c], alpha=0.35)
    ax.axhline(TARGET_RSS / common.GB, color="red", lw=1, ls=":", label="target 2 GB")
    ax.set(xlabel="subjects", ylabel="peak RSS (GB; faint: anonymous part)",
           title="peak memory", xscale="log")
    ax.legend(fontsize=8)
    ax = axes[1, 0]
    for c in (1, 2):
        cells = [(r["n_subjects"], r[f"challenge{c}"]) for r in rows
                 if "throughput_ratio" in r.get(f"challenge{c}", {})]
        if not cells:
            continue
        xs = [x for x, _ in cells]
        ys = [cell["throughput_ratio"] for _, cell in cells]
        paired = [[a["windows_per_s"] / b["windows_per_s"] for a, b in
                   zip(cell["subset_runs"]["cache"], cell["subset_runs"]["ram"])]
                  for _, cell in cells]  # the spread of the repeats, cache then RAM
        low = [y - min(p, default=y) for y, p in zip(ys, paired)]
        high = [max(p, default=y) - y for y, p in zip(ys, paired)]
        ax.errorbar(xs, ys, yerr=[low, high], fmt="o-", color=colors[c], capsize=3,
                    label=f"challenge {c} (bars: paired repeats)")
    ax.axhline(TARGET_THROUGHPUT, color="red", lw=1, ls=":", label="target 0.90")
    ax.set(xlabel="subjects", ylabel="windows/s from cache / in RAM", xscale="log",
           title="training throughput, lightweight_fast")
    ax.legend(fontsize=8)
    ax = axes[1, 1]
    pts = [(r["n_subjects"], r["challenge2"]["disk_ratio"]) for r in rows
           if "disk_ratio" in r.get("challenge2", {})]
    if pts:
        ax.plot(*zip(*pts), "o-", color=colors[2], label="challenge 2 cache")
    ax.axhline(TARGET_DISK, color="red", lw=1, ls=":", label="target 0.55")
    ax.set(xlabel="subjects", ylabel="disk / materialised float32 windows", xscale="log",
           title="challenge-2 disk per window-set", ylim=(0, 1.1))
    ax.legend(fontsize=8)
    sizes = sorted({r["n_subjects"] for r in rows})
    for ax in (axes[0, 1], axes[1, 0], axes[1, 1]):
        ax.set_xticks(sizes, [str(n) for n in sizes])
        ax.minorticks_off()
    fig.tight_layout()
    common.save_figure(fig, path)


def main(argv=None) -> int:
    spec = common.child_spec()
    if spec is not None:
        common.report_child(CHILDREN[spec.pop("kind")](spec))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[24, 96, 384])
    parser.add_argument("--data", default=str(REPO / "cache" / "scaling"),
                        help="folder of the synthetic releases (git-ignored cache/ by default)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads in training")
    parser.add_argument("--subset", type=int, default=2048,
                        help="windows of the cache-vs-RAM comparison")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--challenges", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument("--phases", nargs="+", default=list(PHASES), choices=PHASES,
                        help="what to measure after each build (default: all)")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per child, seconds")
    parser.add_argument("--keep-cache", action="store_true")
    parser.add_argument("--out", default=str(common.RESULTS_DIR / "scaling.json"))
    parser.add_argument("--plot", default=None, help="write the figure here (PNG)")
    parser.add_argument("--from-json", default=None,
                        help="redraw the table and plot from this JSON, measure nothing (with "
                        "--out also rewrite the fits, verdicts and extrapolation there)")
    args = parser.parse_args(argv)
    args.out_updated = "--out" in (argv if argv is not None else sys.argv[1:])

    if args.from_json:
        payload = json.loads(Path(args.from_json).read_text())
        rows = payload["rows"]
    else:
        env = {**common.child_env(), "OMP_NUM_THREADS": str(args.threads or os.cpu_count())}
        started = time.perf_counter()
        rows = []
        payload = {"command": " ".join(sys.argv), "machine": {
            "platform": platform.platform(), "cpus": os.cpu_count(),
            "memory_bytes": common.available_memory_bytes()}, "rows": rows}
        for n in sorted(args.sizes):
            rows.append(measure_size(n, args, env))
            payload["elapsed_s"] = time.perf_counter() - started
            payload.update(summarize_results([r for r in rows if "error" not in r]))
            common.write_json(args.out, payload)  # after every size
    good = [r for r in rows if "error" not in r]
    summary = summarize_results(good)
    summary["hbn"] = extrapolate_hbn(good, summary, hbn_releases())
    payload.update(summary)
    if not args.from_json or args.out_updated:
        common.write_json(args.out, payload)
    print(markdown(good, summary))
    if args.plot:
        plot(good, summary, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
