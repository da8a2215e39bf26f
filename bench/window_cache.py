"""Window cache and input pipeline: disk, float16 error, DataLoader throughput.

On a synthetic release (default ``make_release(n_subjects=8, seed=0)`` in a temporary folder,
or ``--root``), measures:

- disk: bytes of the stored recordings vs the bytes the windows would take materialised
  (format 1 stored every window), for challenge 1 (exact and with context, +0.3..+2.7 s) and
  challenge 2 (4 s every 2 s), all sharing one recording store;
- float16: every window of challenge 2 read from a float16 cache against the float32 one:
  max elementwise relative error (over samples whose float32 magnitude is at least 2**-14 of
  the recording's scale, i.e. not float16 subnormals), max absolute error relative to each
  window's peak, and RMS error relative to the signal's RMS;
- loader: windows/s of one epoch of ``lightweight_fast`` on challenge-2 cached windows (2 s
  crops), ``num_workers`` 0 vs 2, interleaved ``--repeats`` times, median reported.

Usage::

    python bench/window_cache.py                  # all three, prints a table and JSON
    python bench/window_cache.py --root DIR --repeats 5

Outputs: markdown on stdout, ``bench/results/window_cache.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common  # noqa: E402


def _disk(folder: Path, pattern: str) -> int:
    return sum(p.stat().st_size for d in folder.glob(pattern) for p in d.rglob("*")
               if p.is_file())


def measure(root: Path, cache: Path, repeats: int) -> dict:
    from eegattn.data.cache import load_challenge_windows

    out: dict = {}
    q = dict(root=root, cache_dir=cache / "f32", progress=False)
    sets = {"c1": load_challenge_windows(1, **q),
            "c1 context": load_challenge_windows(1, shift_after_stimulus_s=0.3, window_s=2.4,
                                                 **q),
            "c2": load_challenge_windows(2, **q)}
    out["disk"] = {
        "materialised_bytes": {k: int(np.prod(w.X.shape)) * 4 for k, w in sets.items()},
        "recordings_bytes": _disk(cache / "f32", "r-*"),
        "window_entries_bytes": _disk(cache / "f32", "c*-*"),
    }
    c2 = sets["c2"]
    half = load_challenge_windows(2, root=root, cache_dir=cache / "f16", progress=False,
                                  cache_dtype="float16")
    out["disk"]["recordings_bytes_float16"] = _disk(cache / "f16", "r-*")
    max_rel = max_peak = 0.0
    sq_err = sq_sig = 0.0
    for start in range(0, len(c2), 256):
        rows = np.arange(start, min(start + 256, len(c2)))
        a, b = np.asarray(c2.X[rows], np.float64), np.asarray(half.X[rows], np.float64)
        slots = half.X.index[rows, 0]
        scale = half.X.scales[slots][:, None, None]
        normal = np.abs(a) >= 2.0 ** -14 * scale
        err = np.abs(b - a)
        if normal.any():
            max_rel = max(max_rel, float((err[normal] / np.abs(a[normal])).max()))
        peak = np.abs(a).max(axis=(1, 2), keepdims=True)
        max_peak = max(max_peak, float((err / np.where(peak > 0, peak, 1)).max()))
        sq_err += float((err ** 2).sum())
        sq_sig += float((a ** 2).sum())
    out["float16"] = {"max_relative_error": max_rel, "max_error_over_window_peak": max_peak,
                      "rms_relative_error": (sq_err / sq_sig) ** 0.5,
                      "unit_roundoff": 2.0 ** -11, "n_windows": len(c2)}

    from eegattn.training.estimator import EEGAttentionRegressor

    times: dict = {0: [], 2: []}
    weights = {}
    for _ in range(repeats):
        for workers in (0, 2):
            est = EEGAttentionRegressor("lightweight_fast", max_epochs=1, batch_size=64,
                                        crop_n_times=200, verbose=0, seed=0,
                                        num_workers=workers, early_stopping=False,
                                        valid_fraction=0.0)
            started = time.perf_counter()
            est.fit(c2)
            times[workers].append(time.perf_counter() - started)
            weights[workers] = est.model_.state_dict()
    import torch

    out["loader"] = {
        "n_windows": len(c2),
        "seconds": {str(k): v for k, v in times.items()},
        "windows_per_s_median": {str(k): len(c2) / statistics.median(v)
                                 for k, v in times.items()},
        "identical_weights": all(torch.equal(weights[0][k], weights[2][k])
                                 for k in weights[0]),
        "torch_threads": torch.get_num_threads(),
    }
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="folder holding EEG2025r5 (default: a "
                        "synthetic release of --n-subjects in a temporary folder)")
    parser.add_argument("--n-subjects", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="bench/results/window_cache.json")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.root) if args.root else Path(tmp) / "data"
        if args.root is None:
            from eegattn.data.synthetic import make_release

            make_release(root, n_subjects=args.n_subjects, seed=0)
        result = measure(root, Path(tmp) / "cache", args.repeats)
    disk, f16, loader = result["disk"], result["float16"], result["loader"]
    print("| windows | materialised (format 1) |\n|---|---|")
    for name, n in disk["materialised_bytes"].items():
        print(f"| {name} | {n / 1e6:.1f} MB |")
    print(f"\nrecording store (shared by all three): {disk['recordings_bytes'] / 1e6:.1f} MB "
          f"float32, {disk['recordings_bytes_float16'] / 1e6:.1f} MB float16; window "
          f"entries {disk['window_entries_bytes'] / 1e6:.2f} MB")
    print(f"float16 vs float32 ({f16['n_windows']} challenge-2 windows): max relative "
          f"{f16['max_relative_error']:.3g}, max / window peak "
          f"{f16['max_error_over_window_peak']:.3g}, RMS relative "
          f"{f16['rms_relative_error']:.3g} (unit roundoff {f16['unit_roundoff']:.3g})")
    print(f"one epoch lightweight_fast, {loader['n_windows']} windows: "
          + ", ".join(f"num_workers {k}: {v:.0f} windows/s"
                      for k, v in loader["windows_per_s_median"].items())
          + f" (median of {args.repeats}; identical weights: {loader['identical_weights']})")
    common.write_json(args.out, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
