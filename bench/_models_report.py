"""bench/models.py, part 3: the driver's analysis: paired speed ratios, NRMSE over splits and
its merging, tables, target checks and the plot."""

from __future__ import annotations

import math
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)
from _models_spec import (  # noqa: E402
    LABELS,
    NRMSE_REFERENCE,
    PROJECT_MODELS,
    REFERENCE,
    TARGET_INFER_SPEEDUP,
    TARGET_MODELS,
    TARGET_PEAK_FRACTION,
    TARGET_TRAIN_SPEEDUP,
)


def _label(name: str) -> str:
    return LABELS.get(name, name)


def _stats(values) -> dict:
    return common.summarize(values) if values else {}


def _fmt_range(s: dict, digits: int = 0, unit: str = "") -> str:
    if not s:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])}{unit} ({f.format(s['min'])}-{f.format(s['max'])})"


def analyse_speed(speed: dict) -> dict:
    """Per model: windows/s, paired speed-ups vs the reference and FLOP fractions."""
    batch, peak = speed["batch"], speed["peak_flops"]
    ref_train, ref_infer = speed["train_s"].get(REFERENCE), speed["infer_s"].get(REFERENCE)
    rows = {}
    for name, info in speed["info"].items():
        row = {**info}
        if name in speed["skipped"]:
            row["skipped"] = speed["skipped"][name]
            rows[name] = row
            continue
        train, infer = speed["train_s"][name], speed["infer_s"][name]
        row["train_wps"] = _stats([batch / t for t in train])
        row["infer_wps"] = _stats([batch / t for t in infer])
        if ref_train:
            row["train_speedup"] = _stats([r / t for r, t in zip(ref_train, train, strict=True)])
            row["infer_speedup"] = _stats([r / t for r, t in zip(ref_infer, infer, strict=True)])
            # its FLOPs run at the measured matmul rate, against the reference as measured
            for kind, ref, flops in (
                ("train", ref_train, info["flops_train"]),
                ("infer", ref_infer, info["flops_forward"]),
            ):
                row[f"{kind}_at_peak"] = _stats(
                    [p / flops * r / batch for p, r in zip(peak, ref, strict=True)]
                )
        flops_s = [info["flops_train"] * batch / t for t in train]
        row["train_flops_s"] = _stats(flops_s)
        row["peak_fraction"] = _stats([f / p for f, p in zip(flops_s, peak, strict=True)])
        row["infer_peak_fraction"] = _stats(
            [info["flops_forward"] * batch / t / p for t, p in zip(infer, peak, strict=True)]
        )
        rows[name] = row
    return rows


def speed_table(rows: dict, speed: dict) -> str:
    headers = [
        "model",
        "params",
        "MFLOP/window fwd",
        "fwd+bwd",
        "train windows/s",
        "train speed-up",
        "infer windows/s",
        "infer speed-up",
        "train GFLOP/s",
        "% of matmul peak (train)",
        "speed-up at matmul rate train / infer",
    ]
    table = []
    for name, r in rows.items():
        base = [
            _label(name),
            f"{r['params']:,}",
            f"{r['flops_forward'] / 1e6:.1f}",
            f"{r['flops_train'] / 1e6:.1f}",
        ]
        if "skipped" in r:
            table.append(base + [r["skipped"]] + ["-"] * 6)
            continue
        gflops = {k: v / 1e9 for k, v in r["train_flops_s"].items() if k != "n"}
        pct = {k: 100 * v for k, v in r["peak_fraction"].items() if k != "n"}
        table.append(
            base
            + [
                _fmt_range(r["train_wps"], 1),
                _fmt_range(r.get("train_speedup", {}), 1, "x"),
                _fmt_range(r["infer_wps"], 1),
                _fmt_range(r.get("infer_speedup", {}), 1, "x"),
                _fmt_range(gflops, 1),
                _fmt_range(pct, 0, " %"),
                f"{r['train_at_peak']['median']:.1f}x / {r['infer_at_peak']['median']:.1f}x"
                if "train_at_peak" in r
                else "-",
            ]
        )
    return common.markdown_table(headers, table)


def combine_seeds(runs: list[dict]) -> dict:
    """One NRMSE cell from the runs of one model over split/training seeds: the means of
    ``nrmse``, ``mean_predictor``, ``oracle`` and ``fit_s`` (each seed is another subject split
    and initialisation; every model sees the same splits), ``per_seed`` NRMSEs and the runs.
    Not ok if any seed failed."""
    failed = [r for r in runs if r.get("status") != "ok"]
    if failed:
        return {
            "status": "error",
            "reason": f"seed {failed[0].get('seed')}: {failed[0].get('reason')}",
            "runs": runs,
        }
    cell = {
        "status": "ok",
        "trainer": "estimator",
        "seeds": [r.get("seed") for r in runs],
        "per_seed": [r["nrmse"] for r in runs],
        "runs": runs,
    }
    for key in ("nrmse", "mean_predictor", "oracle", "fit_s"):
        if all(key in r for r in runs):
            cell[key] = sum(r[key] for r in runs) / len(runs)
    return cell


# what two NRMSE runs must share for their splits to be pooled (seeds give the splits)
MERGE_SETTINGS = ("epochs", "train_batch", "lr", "n_subjects", "test_fraction", "trainer",
                  "threads", "release_seed")


def merge_nrmse(results: list[tuple[str, dict]]) -> tuple[dict, list[str]]:
    """Pool the NRMSE runs of several benchmark JSONs (``(path, json)`` pairs) into one cell
    per model, as if one run had trained every model on every split seed. Runs are
    deterministic and EEGNeX costs ~20 min per split, so splits are added run by run, and a new
    model variant can be run alone (``--skip-reference``) and compared with the EEGNeX splits
    of earlier runs. The runs must share the release and the training settings, and no model
    may repeat a seed. A model whose seeds differ from the reference's is left out (it did not
    see the same splits). Returns (cells, notes)."""
    if len(results) < 2:
        raise ValueError("--merge-nrmse needs at least two benchmark JSON files")
    first_path, first = results[0]
    for path, data in results:
        if not isinstance(data.get("nrmse"), dict):
            raise ValueError(f"{path} holds no NRMSE results (was it run with --skip-nrmse?)")
    for path, data in results[1:]:
        for key in MERGE_SETTINGS:
            a, b = first.get("args", {}).get(key), data.get("args", {}).get(key)
            if a != b:
                raise ValueError(f"{path} was run with {key}={b}, {first_path} with {key}={a}; "
                                 "only runs with the same settings can be pooled")
        for key in ("folder", "n_windows"):
            a, b = first.get("release", {}).get(key), data.get("release", {}).get(key)
            if a != b:
                raise ValueError(f"{path} used release {key} {b}, {first_path} {a}; only runs "
                                 "on the same release can be pooled")
    runs: dict[str, list] = {}
    for _, data in results:
        for model, cell in data["nrmse"].items():
            runs.setdefault(model, []).extend(cell.get("runs", []))
    if NRMSE_REFERENCE not in runs:
        raise ValueError(f"{NRMSE_REFERENCE} is in none of the files; the target compares "
                         "against it on the same splits")
    runs[NRMSE_REFERENCE] = runs.pop(NRMSE_REFERENCE)  # last, as in a benchmark run
    for model, model_runs in runs.items():
        seeds = [r.get("seed") for r in model_runs]
        repeated = sorted({s for s in seeds if seeds.count(s) > 1})
        if repeated:
            raise ValueError(f"{model}: split seed(s) {repeated} appear in more than one file; "
                             "pool runs over different seeds")
    reference_seeds = sorted(r.get("seed") for r in runs[NRMSE_REFERENCE])
    cells, notes = {}, []
    for model, model_runs in runs.items():
        seeds = sorted(r.get("seed") for r in model_runs)
        if seeds != reference_seeds:
            notes.append(f"{model} left out: split seeds {seeds}, {NRMSE_REFERENCE}'s "
                         f"{reference_seeds}")
            continue
        cells[model] = combine_seeds(sorted(model_runs, key=lambda r: r.get("seed")))
    return cells, notes


def nrmse_table(cells: dict) -> str:
    rows = []
    reference = None
    for name, cell in cells.items():
        if cell.get("status") != "ok":
            rows.append([_label(name), f"failed: {cell.get('reason')}", "-", "-"])
            continue
        reference = reference or cell
        rows.append(
            [
                _label(name),
                f"{cell['nrmse']:.4f}",
                _per_seed(cell, "nrmse"),
                f"{cell['fit_s']:.0f} s",
            ]
        )
    if reference:
        for label, key in (
            ("mean predictor (training mean)", "mean_predictor"),
            ("synthetic oracle", "oracle"),
        ):
            if key in reference:
                rows.append([label, f"{reference[key]:.4f}", _per_seed(reference, key), "-"])
    return common.markdown_table(
        ["model", "test NRMSE (mean over seeds)", "per seed", "fit time (mean)"], rows
    )


def _per_seed(cell: dict, key: str) -> str:
    return " / ".join(f"{r[key]:.3f}" for r in cell.get("runs", [cell]) if key in r)


def summary_table(rows: dict, nrmse_cells: dict | None) -> str:
    """One row per model: the speed columns and the NRMSE (EEGNeX's from ``eegnex``)."""
    names = list(dict.fromkeys([*rows, *(nrmse_cells or {})]))
    if REFERENCE in names and NRMSE_REFERENCE in names and NRMSE_REFERENCE not in rows:
        names.remove(NRMSE_REFERENCE)  # braindecode's EEGNeX row carries the eegnex NRMSE
    table = []
    for name in names:
        r = rows.get(name, {})
        ok = "train_wps" in r
        cell = (nrmse_cells or {}).get(NRMSE_REFERENCE if name == REFERENCE else name, {})
        table.append(
            [
                "EEGNeX (braindecode; NRMSE: eegnex)" if name == REFERENCE else _label(name),
                f"{r['train_wps']['median']:.1f}" if ok else "-",
                f"{r['train_speedup']['median']:.1f}x" if ok and "train_speedup" in r else "-",
                f"{r['infer_wps']['median']:.1f}" if ok else "-",
                f"{r['infer_speedup']['median']:.1f}x" if ok and "infer_speedup" in r else "-",
                f"{r['flops_train'] / 1e6:.0f}" if "flops_train" in r else "-",
                f"{100 * r['peak_fraction']['median']:.0f} %" if ok else "-",
                f"{cell['nrmse']:.3f}" if cell.get("status") == "ok" else "-",
            ]
        )
    ref = next((c for c in (nrmse_cells or {}).values() if c.get("status") == "ok"), None)
    if ref:
        table.append(["mean predictor", *["-"] * 6, f"{ref['mean_predictor']:.3f}"])
    return common.markdown_table(
        [
            "model",
            "train win/s",
            "vs EEGNeX",
            "infer win/s",
            "vs EEGNeX",
            "MFLOP/win (train)",
            "% matmul peak",
            "test NRMSE",
        ],
        table,
    )


def nrmse_check(model: str, nrmse_cells: dict) -> tuple[str, bool | None]:
    """(text, passed) of "``model``'s mean NRMSE <= EEGNeX's" over the same split seeds."""
    a, b = nrmse_cells.get(model, {}), nrmse_cells.get(NRMSE_REFERENCE, {})
    if a.get("status") == "ok" and b.get("status") == "ok":
        n = len(a.get("per_seed", [a["nrmse"]]))
        diffs = [x - y for x, y in zip(a.get("per_seed", []), b.get("per_seed", []),
                                       strict=False)]
        wins = sum(d <= 0 for d in diffs)
        seeds = f"mean over {n} seeds, lower or equal on {wins} of {n}; " if n > 1 else ""
        if len(diffs) > 1:  # how far the mean difference is from noise
            se = statistics.stdev(diffs) / math.sqrt(len(diffs))
            seeds += f"paired difference {statistics.fmean(diffs):+.4f} (standard error " \
                     f"{se:.4f}); "
        return (
            f"{model} NRMSE {a['nrmse']:.4f} <= EEGNeX NRMSE {b['nrmse']:.4f} "
            f"({seeds}equal epoch budget)",
            a["nrmse"] <= b["nrmse"],
        )
    if model in nrmse_cells:
        return (f"{model} NRMSE <= EEGNeX NRMSE: a training run failed", False)
    return (f"{model} NRMSE <= EEGNeX NRMSE: not measured", None)


def target_checks(rows: dict, nrmse_cells: dict | None) -> list[tuple[str, bool | None]]:
    """(text, passed) per target; passed None = not measured in this run."""
    checks: list[tuple[str, bool | None]] = []
    for model in TARGET_MODELS:
        r = rows.get(model, {})
        for key, target, what in (
            ("train_speedup", TARGET_TRAIN_SPEEDUP, "trains"),
            ("infer_speedup", TARGET_INFER_SPEEDUP, "infers"),
        ):
            s = r.get(key)
            if not s:
                checks.append(
                    (f"{model} {what} >= {target:g}x faster than EEGNeX: not measured", None)
                )
                continue
            at_peak = r[key.replace("speedup", "at_peak")]["median"]
            checks.append(
                (
                    f"{model} {what} {s['median']:.1f}x faster than EEGNeX (paired median, "
                    f"range {s['min']:.1f}-{s['max']:.1f}x; target >= {target:g}x; at the "
                    f"measured matmul rate its FLOPs would give {at_peak:.1f}x)",
                    s["median"] >= target,
                )
            )
        if nrmse_cells is None:
            checks.append((f"{model} NRMSE <= EEGNeX NRMSE: not measured", None))
            continue
        checks.append(nrmse_check(model, nrmse_cells))
    for name in PROJECT_MODELS:
        s = rows.get(name, {}).get("peak_fraction")
        if not s:
            checks.append(
                (f"{name} reaches >= 50 % of the matmul peak in training: not measured", None)
            )
            continue
        checks.append(
            (
                f"{name} training reaches {100 * s['median']:.0f} % of the measured "
                f"matmul FLOP/s (range {100 * s['min']:.0f}-{100 * s['max']:.0f} %; "
                f"target >= {100 * TARGET_PEAK_FRACTION:.0f} %)",
                s["median"] >= TARGET_PEAK_FRACTION,
            )
        )
    return checks


def plot(rows: dict, nrmse_cells: dict | None, peak: dict, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n, r in rows.items() if "skipped" not in r]
    labels = [_label(n).replace(" (", "\n(") for n in names]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    if not names:
        for ax in axes[:2]:
            ax.text(0.5, 0.5, "speed not measured", ha="center", va="center")
            ax.set_axis_off()
    else:
        _plot_speed(axes[0], axes[1], rows, names, labels, peak)
    _plot_nrmse(axes[2], nrmse_cells)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    common.save_figure(fig, path)
    plt.close(fig)


def _plot_speed(ax, ax_peak, rows, names, labels, peak) -> None:
    width = 0.4
    for offset, key, what in (
        (-width / 2, "train_wps", "training"),
        (width / 2, "infer_wps", "inference"),
    ):
        med = [rows[n][key]["median"] for n in names]
        err = [
            [m - rows[n][key]["min"] for n, m in zip(names, med, strict=True)],
            [rows[n][key]["max"] - m for n, m in zip(names, med, strict=True)],
        ]
        ax.bar([i + offset for i in range(len(names))], med, width, yerr=err, capsize=3, label=what)
    ax.set_yscale("log")
    ax.set_xticks(range(len(names)), labels, fontsize=7)
    ax.set_ylabel("windows / s (median, min-max)")
    ax.legend()
    ax.set_title("throughput")

    ax = ax_peak
    pct = [100 * rows[n]["peak_fraction"]["median"] for n in names]
    ax.bar(range(len(names)), pct, color="tab:green")
    ax.axhline(100 * TARGET_PEAK_FRACTION, color="k", ls="--", lw=1, label="target 50 %")
    ax.set_xticks(range(len(names)), labels, fontsize=7)
    ax.set_ylabel("% of measured matmul FLOP/s (training)")
    ax.set_title(f"FLOP efficiency (peak {peak['median'] / 1e9:.0f} GFLOP/s)")
    ax.legend()


def _plot_nrmse(ax, nrmse_cells) -> None:
    if nrmse_cells:
        ok = {n: c for n, c in nrmse_cells.items() if c.get("status") == "ok"}
        ax.bar(range(len(ok)), [c["nrmse"] for c in ok.values()], color="tab:purple")
        ax.set_xticks(range(len(ok)), [_label(n).replace(" (", "\n(") for n in ok], fontsize=7)
        any_cell = next(iter(ok.values()), None)
        if any_cell:
            ax.axhline(any_cell["mean_predictor"], color="k", ls="--", lw=1, label="mean predictor")
            if "oracle" in any_cell:
                ax.axhline(any_cell["oracle"], color="tab:red", ls=":", lw=1, label="oracle")
            ax.legend(loc="lower right")
        ax.set_ylabel("test NRMSE (challenge 1, held-out subjects)")
        ax.set_title("NRMSE at an equal epoch budget")
    else:
        ax.text(0.5, 0.5, "NRMSE not measured", ha="center", va="center")
        ax.set_axis_off()
