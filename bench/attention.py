"""Forward+backward time and peak memory of every registered attention mechanism, on CPU.

Every mechanism of ``eegattn.attention.available_attention()`` is built with
``build_attention(name, dim=256, heads=4)`` (neural attention with ``projection_dim=2``, once per
implementation: ``naive`` and ``chunked``) and timed on ``x`` of shape (batch, n, 256), one
forward pass plus ``out.sum().backward()`` per run, for each sequence length ``n``.

Each cell (mechanism x length) runs in its own subprocess. The child reports the median, min and
max time of its timed runs (after one warm-up run) and its peak resident memory
(``ru_maxrss``) minus the baseline after imports. Before a cell starts, its memory is estimated
(from the cells already measured for that mechanism, or from a formula) and a cell that would
not fit in the available memory prints "cannot run (needs about N GB)"; a cell whose single run
is predicted to exceed ``--cell-budget`` seconds is skipped with the reason. Children also run
under a data-segment cap and a timeout, and with a fixed glibc mmap threshold so that peak RSS
follows the program's own allocations (``--system-malloc`` turns this off) and with
``OMP_WAIT_POLICY=PASSIVE`` so that a busy shared machine does not stall every parallel region
(see _common.py).

Then the issue's targets are checked and printed as PASS/FAIL lines:
  1. sparse attention at batch 1: time(16384) / time(1024) <= 20, and faster than standard at
     every length from 4096 tokens;
  2. chunked neural attention at 2048 tokens, batch 8, forward+backward: peak memory <= 1/8 of
     naive's;
  3. chunked neural attention runs at 16384 tokens (batch 1) where naive cannot. That single
     run takes minutes on 2 cores: it runs only when predicted under ``--check-budget`` seconds
     (default 120) and is reported as SKIP otherwise; ``--check-budget 900`` runs it.

Usage::

    python bench/attention.py                      # full run (several minutes on 2 cores)
    python bench/attention.py --quick              # 2 repeats, tighter time budget
    python bench/attention.py --lengths 64 256 --mechanisms standard sparse --no-checks

Outputs: markdown tables on stdout, ``bench/results/attention.png`` (time and memory vs
length) and ``bench/results/attention.json``.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402  (bench/ is not a package)

DIM = 256
HEADS = 4
NEURAL_PROJECTION_DIM = 2
DEFAULT_LENGTHS = (64, 256, 1024, 4096, 16384)
F32 = 4

# targets of the issue
SPARSE_LENGTHS = (1024, 4096, 16384)
SPARSE_MAX_RATIO = 20.0
NEURAL_MEMORY_LENGTH, NEURAL_MEMORY_BATCH, NEURAL_MAX_MEMORY_FRACTION = 2048, 8, 1 / 8
NEURAL_LONG_LENGTH = 16384

# time predictions fit an exponent from time growth only up to cells at least this long
FIT_FROM_LENGTH = 1024
# mechanisms whose cost is linear in the sequence length (others are treated as quadratic)
LINEAR_COST = {"linear", "local", "global", "sparse"}


# ----------------------------------------------------------------------------- child side


def child_main(spec: dict) -> None:
    if spec.get("memory_cap"):
        common.limit_memory(spec["memory_cap"])
    import torch

    from eegattn.attention import available_attention, build_attention

    if spec["task"] == "list":
        common.report_child({"status": "ok", "names": available_attention()})
        return
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    torch.manual_seed(0)
    module = build_attention(spec["name"], dim=DIM, heads=HEADS, **spec["options"]).train()
    # A tiny run first, so lazy imports and thread pools are part of the baseline.
    module(torch.randn(1, min(16, spec["length"]), DIM, requires_grad=True)).sum().backward()
    module.zero_grad(set_to_none=True)
    baseline = common.peak_rss_bytes()
    try:
        x = torch.randn(spec["batch"], spec["length"], DIM, requires_grad=True)

        def step() -> None:
            module(x).sum().backward()
            module.zero_grad(set_to_none=True)
            x.grad = None

        times = common.time_repeats(step, spec["repeats"], spec["budget_s"], spec["warmup"])
    except (MemoryError, RuntimeError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        if isinstance(error, MemoryError) or "alloc" in message.lower() or "memory" in message:
            common.report_child({"status": "oom", "reason": f"out of memory: {message[:200]}"})
            return
        raise
    common.report_child(
        {
            "status": "ok",
            "time": common.summarize(times),
            "peak_bytes": max(0, common.peak_rss_bytes() - baseline),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
        }
    )


# ----------------------------------------------------------------------------- driver side


def variants(names: list[str]) -> list[tuple[str, str, dict]]:
    """(label, registry name, options) per table row; standard first."""
    rows = []
    for name in sorted(names, key=lambda n: (n != "standard", n)):
        if name == "neural":
            for impl in ("naive", "chunked"):
                options = {"projection_dim": NEURAL_PROJECTION_DIM, "implementation": impl}
                rows.append((f"neural ({impl})", name, options))
        else:
            rows.append((name, name, {}))
    return rows


def formula_memory(name: str, options: dict, batch: int, n: int) -> float:
    """Rough peak bytes of one forward+backward, before anything was measured."""
    scores = batch * HEADS * n * n * F32  # one (b, h, n, n) float32 matrix
    activations = batch * n * DIM * F32
    if name == "neural" and options.get("implementation") == "naive":
        d = options.get("projection_dim", NEURAL_PROJECTION_DIM)
        return scores * (6 * d + 6) + 20 * activations  # (b, h, n, n, 2d') pairs and friends
    if name == "additive":  # scores, weights and gradients; the tanh pairs go by query chunks
        return 6 * scores + 16 * (1 << 22) * F32 + 20 * activations
    if name in LINEAR_COST or name == "neural":
        return 60 * activations
    return 4 * scores + 20 * activations


def _growth(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Exponent k of y ~ x^k through two (x, y) points."""
    if a[0] <= 0 or b[0] <= a[0] or a[1] <= 0 or b[1] <= 0:
        return 1.0
    return math.log(b[1] / a[1]) / math.log(b[0] / a[0])


class Bench:
    """Runs cells, remembers their results, predicts the next ones."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.script = Path(__file__).resolve()
        self.results: dict[tuple[str, int, int], dict] = {}

    def _history(self, label: str, batch: int, key: str) -> list[tuple[float, float]]:
        """(length, value) of the measured cells of one row: fastest time or peak bytes."""
        points = []
        for (lab, b, n), res in self.results.items():
            if lab == label and b == batch and res.get("status") == "ok":
                value = res["time"]["min"] if key == "time" else res["peak_bytes"]
                points.append((n, value))
        return points

    def predicted_time(self, label, batch, n) -> float | None:
        """Seconds one run of the cell is expected to take, from the row's longest shorter cell.

        Power law with the exponent (clipped to [1, 2]) of the larger of: the time growth of
        the last two cells when the last is at least ``FIT_FROM_LENGTH`` tokens (below that,
        fixed costs hide the quadratic term), and the memory growth of the last two cells
        (a mechanism that materialises n^2 entries also spends n^2 time). Linear otherwise.
        """
        times = sorted(p for p in self._history(label, batch, "time") if p[0] < n)
        if not times:
            return None
        exponent = 1.0
        if len(times) >= 2 and times[-1][0] >= FIT_FROM_LENGTH:
            exponent = max(exponent, _growth(times[-2], times[-1]))
        memory = sorted(
            p for p in self._history(label, batch, "memory") if p[0] < n and p[1] > 4 * common.MB
        )
        if len(memory) >= 2:
            exponent = max(exponent, _growth(memory[-2], memory[-1]))
        exponent = min(exponent, 2.0)
        last_n, last_t = times[-1]
        return last_t * (n / last_n) ** exponent

    def predicted_memory(self, label, name, options, batch, n) -> tuple[float, str]:
        measured = [(x, y) for x, y in self._history(label, batch, "memory") if y > 4 * common.MB]
        if len(measured) >= 2:
            guess = common.extrapolate(measured, n)
            if guess is not None:
                return 1.25 * guess, "extrapolated"
        return formula_memory(name, options, batch, n), "formula"

    def cell(
        self,
        label,
        name,
        options,
        batch,
        n,
        *,
        repeats=None,
        budget_s=None,
        warmup=None,
        budget_flag="--cell-budget",
    ) -> dict:
        """Measure one cell (cached) unless the memory guard or the time budget rules it out."""
        key = (label, batch, n)
        if key in self.results:
            return self.results[key]
        args = self.args
        repeats = repeats or args.repeats
        budget_s = budget_s or args.cell_budget
        available = common.available_memory_bytes()
        need, how = self.predicted_memory(label, name, options, batch, n)
        if available is not None and need > args.memory_fraction * available:
            result = {
                "status": "cannot",
                "need_bytes": need,
                "reason": f"cannot run (needs about {need / common.GB:.1f} GB, {how}; "
                f"{available / common.GB:.1f} GB available)",
            }
            return self._store(key, result)
        guess_s = self.predicted_time(label, batch, n)
        if guess_s is not None and guess_s > budget_s:
            result = {
                "status": "skipped",
                "predicted_s": guess_s,
                "reason": f"skipped: one run predicted ~{guess_s:.0f} s > cell budget "
                f"{budget_s:.0f} s ({budget_flag})",
            }
            return self._store(key, result)
        spec = {
            "task": "cell",
            "name": name,
            "options": options,
            "batch": batch,
            "length": n,
            "repeats": repeats,
            "budget_s": budget_s,
            "warmup": warmup if warmup is not None else int(guess_s is None or guess_s <= 2.0),
            "threads": args.threads,
            "memory_cap": int(args.memory_fraction * available) if available else None,
        }
        if guess_s is None:  # nothing to go by (first lengths, other batch sizes)
            timeout = args.timeout
        else:  # a quadratic cost may be 4x the linear guess; repeats stop at the budget
            expected = 4 * guess_s * (1 + spec["warmup"]) + 2 * budget_s
            timeout = min(args.timeout, 60.0 + expected)
        env = common.child_env(tight_malloc=not args.system_malloc)
        result = common.run_child(self.script, spec, timeout, env)
        return self._store(key, result)

    def _store(self, key, result) -> dict:
        self.results[key] = result
        label, batch, n = key
        if result["status"] == "ok":
            t = result["time"]
            text = (
                f"{t['median'] * 1e3:9.1f} ms (n={t['n']}), "
                f"{result['peak_bytes'] / common.MB:7.0f} MB"
            )
        else:
            text = result["reason"]
        print(f"  {label:<18} batch {batch:<2} n={n:<6} {text}", file=sys.stderr, flush=True)
        return result


def time_cell(result: dict | None) -> str:
    if result is None:
        return ""
    if result["status"] == "ok":
        t = result["time"]
        ms = [t[k] * 1e3 for k in ("median", "min", "max")]
        digits = 1 if ms[2] < 1000 else 0
        return f"{ms[0]:.{digits}f} ({ms[1]:.{digits}f}-{ms[2]:.{digits}f})"
    if result["status"] == "cannot":
        return f"cannot run (~{result['need_bytes'] / common.GB:.0f} GB)"
    return result["status"]


def memory_cell(result: dict | None) -> str:
    if result is None:
        return ""
    if result["status"] == "ok":
        return f"{result['peak_bytes'] / common.MB:.0f}"
    return time_cell(result)


def print_tables(bench: Bench, rows, lengths, batch) -> None:
    headers = ["mechanism"] + [f"n={n}" for n in lengths]
    table_time, table_mem = [], []
    for label, _, _ in rows:
        cells = [bench.results.get((label, batch, n)) for n in lengths]
        table_time.append([label] + [time_cell(c) for c in cells])
        table_mem.append([label] + [memory_cell(c) for c in cells])
    print(f"\n### Forward+backward time, ms: median (min-max), batch {batch}\n")
    print(common.markdown_table(headers, table_time))
    print(f"\n### Peak memory above the post-import baseline, MB, batch {batch}\n")
    print(common.markdown_table(headers, table_mem))
    notes = sorted(
        {
            f"- {label}, n={n}: {res['reason']}"
            for (label, b, n), res in bench.results.items()
            if b == batch and res["status"] != "ok" and n in lengths
        }
    )
    if notes:
        print("\n" + "\n".join(notes))


def run_checks(bench: Bench, rows) -> list[tuple[bool | None, str]]:
    """(passed, text) per target; passed is None when the target could not be measured."""
    labels = {label: (name, options) for label, name, options in rows}
    lines: list[tuple[bool | None, str]] = []

    def ok(result):
        return result is not None and result["status"] == "ok"

    def median(result):
        return result["time"]["median"]

    # 1. sparse at batch 1
    if "sparse" in labels and "standard" in labels:
        sp = {n: bench.cell("sparse", "sparse", {}, 1, n) for n in SPARSE_LENGTHS}
        st = {}
        for n in SPARSE_LENGTHS[1:]:
            st[n] = bench.cell("standard", "standard", {}, 1, n)
            if st[n]["status"] == "skipped":  # the baseline deserves one run (--check-budget)
                del bench.results[("standard", 1, n)]
                st[n] = bench.cell(
                    "standard",
                    "standard",
                    {},
                    1,
                    n,
                    repeats=1,
                    budget_s=bench.args.check_budget,
                    warmup=0,
                    budget_flag="--check-budget",
                )
        lo, hi = SPARSE_LENGTHS[0], SPARSE_LENGTHS[-1]
        if ok(sp[lo]) and ok(sp[hi]):
            ratio = median(sp[hi]) / median(sp[lo])
            lines.append(
                (
                    ratio <= SPARSE_MAX_RATIO,
                    f"sparse, batch 1: time({hi}) / time({lo}) = {ratio:.1f} "
                    f"(target <= {SPARSE_MAX_RATIO:.0f})",
                )
            )
        else:
            lines.append((False, f"sparse, batch 1: not measured at {lo} and {hi} tokens"))
        for n in SPARSE_LENGTHS[1:]:
            if not ok(sp[n]):
                lines.append((False, f"sparse, batch 1, n={n}: not measured"))
            elif ok(st[n]):
                a, b = median(sp[n]), median(st[n])
                lines.append(
                    (
                        a < b,
                        f"sparse beats standard at n={n}, batch 1: "
                        f"{a * 1e3:.1f} ms vs {b * 1e3:.1f} ms ({b / a:.2f}x)",
                    )
                )
            elif st[n]["status"] == "cannot" or (
                st[n]["status"] == "skipped" and st[n]["predicted_s"] > median(sp[n])
            ):
                lines.append(
                    (
                        True,
                        f"sparse beats standard at n={n}, batch 1: sparse "
                        f"{median(sp[n]) * 1e3:.1f} ms; standard {st[n]['reason']}",
                    )
                )
            else:
                lines.append((False, f"standard at n={n}: {st[n]['reason']}"))
    # 2. chunked vs naive neural memory at 2048 tokens, batch 8
    if "neural (naive)" in labels and "neural (chunked)" in labels:
        n, b = NEURAL_MEMORY_LENGTH, NEURAL_MEMORY_BATCH
        # memory is what is checked: one run each
        naive = bench.cell("neural (naive)", *labels["neural (naive)"], b, n, repeats=1, warmup=0)
        chunked = bench.cell(
            "neural (chunked)", *labels["neural (chunked)"], b, n, repeats=1, warmup=0
        )
        if ok(naive) and ok(chunked):
            fraction = chunked["peak_bytes"] / max(1, naive["peak_bytes"])
            lines.append(
                (
                    fraction <= NEURAL_MAX_MEMORY_FRACTION,
                    f"neural at n={n}, batch {b}: chunked peak "
                    f"{common.format_bytes(chunked['peak_bytes'])} = {fraction:.3f} of naive "
                    f"{common.format_bytes(naive['peak_bytes'])} (target <= 1/8 = 0.125)",
                )
            )
        elif ok(chunked) and naive["status"] == "cannot":
            fraction = chunked["peak_bytes"] / naive["need_bytes"]
            lines.append(
                (
                    fraction <= NEURAL_MAX_MEMORY_FRACTION,
                    f"neural at n={n}, batch {b}: naive {naive['reason']}; chunked peak "
                    f"{common.format_bytes(chunked['peak_bytes'])} = {fraction:.3f} of that "
                    "estimate (target <= 0.125)",
                )
            )
        else:
            reason = chunked.get("reason") or naive.get("reason")
            lines.append((False, f"neural at n={n}, batch {b}: not measured ({reason})"))
        # 3. chunked runs at 16384 tokens where naive cannot
        n = NEURAL_LONG_LENGTH
        naive = bench.cell("neural (naive)", *labels["neural (naive)"], 1, n)
        chunked = bench.cell("neural (chunked)", *labels["neural (chunked)"], 1, n)
        if chunked["status"] == "skipped":  # the table's budget: the check has its own
            del bench.results[("neural (chunked)", 1, n)]
            chunked = bench.cell(
                "neural (chunked)",
                *labels["neural (chunked)"],
                1,
                n,
                repeats=1,
                budget_s=bench.args.check_budget,
                warmup=0,
                budget_flag="--check-budget",
            )
        naive_fails = naive["status"] in ("cannot", "oom")
        if ok(chunked):
            lines.append(
                (
                    naive_fails,
                    f"neural at n={n}, batch 1: chunked runs "
                    f"({median(chunked):.1f} s, {common.format_bytes(chunked['peak_bytes'])}); "
                    f"naive: {naive.get('reason') or 'also runs'}",
                )
            )
        elif chunked["status"] == "skipped":
            lines.append(
                (
                    None,
                    f"neural at n={n}, batch 1: chunked not run: {chunked['reason']}",
                )
            )
        else:
            lines.append((False, f"neural at n={n}, batch 1: chunked {chunked['reason']}"))
    return lines


def save_plot(bench: Bench, rows, lengths, batch, path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot", file=sys.stderr)
        return None
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(12, 5))
    for label, _, _ in rows:
        points = [
            (n, res["time"]["median"] * 1e3, res["peak_bytes"] / common.MB)
            for n in lengths
            if (res := bench.results.get((label, batch, n))) and res["status"] == "ok"
        ]
        if not points:
            continue
        ns, ms, mb = zip(*points, strict=True)
        style = "--" if label.startswith("neural") else "-"
        ax_time.plot(ns, ms, style, marker="o", label=label)
        ax_mem.plot(ns, [max(m, 0.1) for m in mb], style, marker="o", label=label)
    for ax, what in ((ax_time, "forward+backward time (ms)"), (ax_mem, "peak memory (MB)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_ylabel(what)
        ax.grid(True, which="both", alpha=0.3)
    ax_time.legend(fontsize=8)
    fig.suptitle(f"Attention on CPU: dim {DIM}, {HEADS} heads, batch {batch}")
    fig.tight_layout()
    common.save_figure(fig, path)
    plt.close(fig)
    return path


def load_note(when: str) -> str:
    """The load average, with a warning when other work competes for the cores."""
    try:
        load = os.getloadavg()[0]
    except OSError:
        return f"load average {when}: unknown"
    cores = os.cpu_count() or 1
    note = f"load average {when}: {load:.1f} on {cores} cores"
    if load > cores:
        note += " (other processes compete for the CPU: times are inflated and noisy)"
    return note


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=None, help="timed runs (default 5, quick 2)")
    parser.add_argument(
        "--quick", action="store_true", help="2 repeats and a 5 s cell budget (a quick look)"
    )
    parser.add_argument(
        "--cell-budget",
        type=float,
        default=None,
        help="seconds of timed runs per cell; a cell whose single run is predicted to take "
        "longer is skipped (default 15, quick 5)",
    )
    parser.add_argument("--mechanisms", nargs="+", default=None, help="registry names")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default torch's)")
    parser.add_argument(
        "--memory-fraction",
        type=float,
        default=0.7,
        help="a cell may use at most this fraction of the available memory",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="max seconds per cell")
    parser.add_argument(
        "--check-budget",
        type=float,
        default=None,
        help="seconds one run of the long-sequence neural check may be predicted to take "
        "(default 120, quick 60; about 3 minutes on a quiet 2-core machine: try 900)",
    )
    parser.add_argument(
        "--system-malloc",
        action="store_true",
        help="keep glibc's adaptive mmap threshold in the children (peak RSS then includes "
        "heap fragmentation; see bench/_common.py)",
    )
    parser.add_argument("--no-checks", action="store_true", help="skip the target checks")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument(
        "--out",
        type=Path,
        default=common.RESULTS_DIR / "attention.png",
        help="where the plot goes; the JSON is written beside it with a .json suffix "
        "(either suffix may be given)",
    )
    args = parser.parse_args(argv)
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.cell_budget is None:
        args.cell_budget = 5.0 if args.quick else 15.0
    if args.check_budget is None:
        args.check_budget = 60.0 if args.quick else 120.0
    for name, value in (("--batch", args.batch), ("--repeats", args.repeats)):
        if value < 1:
            parser.error(f"{name} must be >= 1, got {value}")
    if any(n < 1 for n in args.lengths):
        parser.error("--lengths must be positive")
    if not 0 < args.memory_fraction <= 1:
        parser.error("--memory-fraction must be in (0, 1]")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    listing = common.run_child(Path(__file__).resolve(), {"task": "list"}, timeout=300)
    if listing["status"] != "ok":
        print(f"cannot import eegattn.attention: {listing['reason']}", file=sys.stderr)
        return 1
    names = listing["names"]
    if args.mechanisms:
        unknown = sorted(set(args.mechanisms) - set(names))
        if unknown:
            print(f"unknown mechanisms {unknown}; choose among {names}", file=sys.stderr)
            return 2
        names = [n for n in names if n in args.mechanisms or n == "standard"]
    rows = variants(names)
    lengths = sorted(set(args.lengths))
    bench = Bench(args)
    command = " ".join([Path(sys.executable).name, *sys.argv])
    print(f"# Attention benchmark\n\n`{command}`\n")
    print(
        f"CPU: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"dim {DIM}, heads {HEADS}, batch {args.batch}, forward + backward of out.sum(); "
        f"up to {args.repeats} timed runs per cell (after one warm-up run when a run is quick), "
        f"cell budget {args.cell_budget:.0f} s"
    )
    print(load_note("at start"))
    print("measuring...", file=sys.stderr)
    for n in lengths:  # by length, so each prediction can use the shorter lengths
        for label, name, options in rows:
            bench.cell(label, name, options, args.batch, n)
    # checks before the tables: they may add cells (one run of a skipped baseline)
    checks = [] if args.no_checks else run_checks(bench, rows)
    print(load_note("at the end"))
    print_tables(bench, rows, lengths, args.batch)
    if not args.no_checks:
        print("\n### Targets\n")
        for passed, text in checks:
            verdict = "SKIP" if passed is None else "PASS" if passed else "FAIL"
            print(f"- {verdict}: {text}")
    if not args.no_plot:
        path = save_plot(bench, rows, lengths, args.batch, args.out.with_suffix(".png"))
        if path:
            print(f"\nplot: {path}")
    summary = [
        {"mechanism": label, "batch": b, "length": n, **res}
        for (label, b, n), res in sorted(bench.results.items())
    ]
    common.write_json(args.out.with_suffix(".json"), summary)
    print(f"total {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    spec = common.child_spec()
    if spec is not None:
        child_main(spec)
    else:
        sys.exit(main())
