"""Shared helpers of the bench scripts: one subprocess per measured cell, memory guard,
statistics, extrapolation and output (markdown tables, atomic files).

Only the standard library (and the stdlib-only :mod:`eegattn.utils.io`) is imported here, so a
bench driver stays small: its children do the heavy imports. Peak memory is read in the child
with ``resource.getrusage`` (``ru_maxrss``), which on Linux carries the parent's resident size
over ``exec``: keep drivers light.
"""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from eegattn.utils.io import write_bytes_atomic

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CHILD_FLAG = "--child"
_RESULT_PREFIX = "BENCH_RESULT "
GB = 1024**3
MB = 1024**2


# ----------------------------------------------------------------------------- memory


def available_memory_bytes() -> int | None:
    """Memory available to new processes: ``MemAvailable`` from /proc/meminfo, else free
    physical pages from ``sysconf``, else None (unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def limit_memory(extra_bytes: int) -> None:
    """Cap this process's data segment at its current size + ``extra_bytes`` so a runaway
    allocation fails with an exception here instead of waking the system's OOM killer."""
    try:
        current = 0
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmData:"):
                    current = int(line.split()[1]) * 1024
        limit = current + max(0, int(extra_bytes))
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
    except (OSError, ValueError, AttributeError):
        pass  # not Linux: run without the cap


# ----------------------------------------------------------------------------- subprocesses


# glibc raises its mmap threshold after large frees, so later large tensors come from the heap,
# fragment it and stay resident: ru_maxrss then reports the allocator's high-water mark, not the
# program's. A fixed threshold (1 MiB) returns every large tensor to the system when freed.
TIGHT_MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(1024 * 1024)}


def child_env(tight_malloc: bool = True) -> dict[str, str]:
    """Extra environment for measuring children: OpenMP threads that sleep instead of
    spinning at barriers (spinning threads stall for a scheduler slice whenever another process
    holds a core: 2 ms of work then takes 250 ms on a shared 2-core machine) unless the caller
    chose a policy, and optionally :data:`TIGHT_MALLOC_ENV`."""
    env = {"OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    if tight_malloc:
        env.update(TIGHT_MALLOC_ENV)
    return env


def run_child(
    script: str | Path, spec: dict, timeout: float, env: dict[str, str] | None = None
) -> dict:
    """Run ``python script --child <json spec>`` (extra environment ``env``) and return the
    dict it reported with :func:`report_child`; on failure a dict with ``status`` "timeout" or
    "error" and a ``reason``."""
    command = [sys.executable, str(script), CHILD_FLAG, json.dumps(spec)]
    started = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "reason": f"timed out after {timeout:.0f} s"}
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(_RESULT_PREFIX):
            result = json.loads(line[len(_RESULT_PREFIX) :])
            result.setdefault("wall_s", time.perf_counter() - started)
            return result
    tail = (done.stderr or done.stdout).strip().splitlines()
    reason = tail[-1] if tail else f"exit code {done.returncode}"
    if done.returncode < 0:
        reason = f"killed by signal {-done.returncode} ({reason})"
    return {"status": "error", "reason": reason[:300]}


def child_spec() -> dict | None:
    """The spec given to this process with ``--child``, or None in the driver."""
    if len(sys.argv) == 3 and sys.argv[1] == CHILD_FLAG:
        return json.loads(sys.argv[2])
    return None


def report_child(result: dict) -> None:
    """Hand ``result`` (JSON-serialisable) back to :func:`run_child`."""
    print(_RESULT_PREFIX + json.dumps(result), flush=True)


def time_repeats(
    step: Callable[[], None], repeats: int, budget_s: float, warmup: int = 1
) -> list[float]:
    """Seconds per call of ``step``: ``warmup`` untimed calls, then up to ``repeats`` timed
    ones, stopping early (after at least one) once the timed calls exceed ``budget_s``."""
    for _ in range(warmup):
        step()
    times: list[float] = []
    while len(times) < repeats:
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        if sum(times) > budget_s:
            break
    return times


# ----------------------------------------------------------------------------- statistics


def summarize(values: Sequence[float]) -> dict:
    """Median, min, max and count of ``values``."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def extrapolate(
    points: Sequence[tuple[float, float]], x: float, min_exp: float = 1.0, max_exp: float = 2.0
) -> float | None:
    """Power-law guess ``y(x)`` from the two points with the largest ``x`` (exponent clipped to
    ``[min_exp, max_exp]``); None with fewer than one usable point. One point scales with
    ``max_exp`` (the pessimistic guess)."""
    usable = sorted((px, py) for px, py in points if px > 0 and py > 0 and px < x)
    if not usable:
        return None
    x1, y1 = usable[-1]
    exponent = max_exp
    if len(usable) >= 2:
        x0, y0 = usable[-2]
        if x1 > x0:
            exponent = min(max(math.log(y1 / y0) / math.log(x1 / x0), min_exp), max_exp)
    return y1 * (x / x1) ** exponent


# ----------------------------------------------------------------------------- output


def format_bytes(n: float) -> str:
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.0f} MB"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub markdown table; cells are converted with ``str``."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])


REPO_ROOT = Path(__file__).resolve().parents[1]


def portable(value):
    """``value`` with no machine in it: absolute paths inside the repository become relative,
    any other absolute path keeps its file name only (results are committed to docs/)."""
    if isinstance(value, dict):
        return {key: portable(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if isinstance(value, str) and value.startswith("/") and " " not in value:
        path = Path(value)
        try:
            return str(path.resolve().relative_to(REPO_ROOT))
        except ValueError:
            return path.name
    return value


def write_json(path: str | Path, result, *, indent: int = 1) -> Path:
    """Write a benchmark's result as JSON, atomically, with :func:`portable` paths."""
    return write_atomic(path, json.dumps(portable(result), indent=indent, default=str) + "\n")


def write_atomic(path: str | Path, data: bytes | str) -> Path:
    """Write ``data`` (UTF-8 if text) to ``path`` with :func:`eegattn.utils.io.write_bytes_atomic`,
    creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_bytes_atomic(path, data.encode() if isinstance(data, str) else data)


def save_figure(fig, path: str | Path) -> Path:
    """Save a matplotlib figure atomically (format from the suffix of ``path``)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix.lstrip(".") or "png", dpi=120)
    return write_atomic(path, buffer.getvalue())
