"""`make server-check`: submissions of every model family, head and attention mechanism,
validated under the challenge server's interpreter (Python 3.10, torch 2.2.2).

    .venv/bin/python tools/server_check.py [--venv .venv-server] [--python PY] [--keep DIR]

1. A separate environment, ``--venv`` (default ``.venv-server``, git-ignored), with
   ``torch==2.2.2`` and ``numpy==2.2.*`` (the server's versions; ``docs/challenge.md``) from
   the package registry, built with the first Python 3.10 found (``--python``, ``$SERVER_PYTHON``,
   ``python3.10`` on the PATH, pyenv's newest 3.10), else this machine's ``python3`` (the
   server's torch has wheels for 3.11 too; the 3.10 syntax of the packed files is checked by
   ruff and by the validator either way). pip's cache makes a rebuild fast; an environment
   that already has torch 2.2.2 is reused. When the registry serves no torch 2.2.2 for that
   interpreter, the check is skipped with one line that says so (exit 0).
2. One small run folder per configuration (``eegattn.training.runs.save_run``; untrained
   weights: what is checked is the export, not the fit): every model family of the registry
   (the convolution + attention presets, EEGNeX, the ridge floor, featureridge, the three
   foundation backbones, an ensemble), every head and every attention mechanism (plus the
   inattention dropout), packed two by two (``eegattn package``'s ``package_submission``).
3. Every zip validated with the server's interpreter (``validate_submission(python=...)``,
   what ``eegattn validate-submission --python`` runs): the harness in ``python -I`` without
   eegattn and braindecode, batches of 1, 4 and 32, determinism, batch independence.

Exit 0 when every zip passes (or the check is skipped), 1 otherwise; the time of each step is
printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SERVER_TORCH = "2.2.2"
SERVER_PINS = (f"torch=={SERVER_TORCH}", "numpy==2.2.*")

SMALL_CONV = {"conv_channels": (16, 32), "channel_reduction": 8, "head_hidden": (8,)}
#: (label, registry name, options): every family, head and attention mechanism
CONFIGS: list[tuple[str, str, dict]] = [
    ("lightweight", "lightweight", SMALL_CONV),
    ("improved", "improved", {"conv_channels": (16, 32, 32), "channel_reduction": 8,
                              "head_hidden": (8,)}),
    ("lightweight_noattn", "lightweight_noattn", {"conv_channels": (16, 32),
                                                  "head_hidden": (8,)}),
    ("lightweight_fast", "lightweight_fast", SMALL_CONV),
    ("eegnex", "eegnex", {"eegnex_options": {"filter_1": 4, "filter_2": 8}}),
    ("ridge", "ridge", {}),
    ("featureridge", "featureridge", {}),
    ("steegformer", "steegformer_tiny", {}),
    ("cbramod", "cbramod_tiny", {}),
    ("labram", "labram_tiny", {}),
    ("ensemble", "ensemble", {"members": [
        {"model": "lightweight_fast", "model_options": SMALL_CONV},
        {"model": "ridge", "model_options": {}}]}),
    ("inattention", "lightweight", {**SMALL_CONV, "inattention": True}),
    *[(f"head {head}", "lightweight_fast", {**SMALL_CONV, "head": head})
      for head in ("regression", "softargmax", "distribution")],
    ("head softargmax (eegnex)", "eegnex", {"eegnex_options": {"filter_1": 4, "filter_2": 8},
                                            "head": "softargmax"}),
]


def _attention_configs() -> list[tuple[str, str, dict]]:
    from eegattn.attention import available_attention

    out = []
    for name in available_attention():
        options = {**SMALL_CONV, "attention": name}
        if name == "neural":  # at width 32 the default projection (dim_head // 32) is 1
            options["attention_options"] = {"projection_dim": 2}
        out.append((f"attention {name}", "lightweight", options))
    return out


# ---------------------------------------------------------------------------- the interpreter
def _version(python: str) -> tuple[int, int] | None:
    try:
        out = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode:
        return None
    major, minor = out.stdout.split()
    return int(major), int(minor)


def find_python(explicit: str | None) -> tuple[str, str]:
    """(interpreter, how it was found): the server's Python 3.10 if this machine has one."""
    if explicit:
        if _version(explicit) is None:
            raise SystemExit(f"server-check: --python {explicit} does not run; give a Python "
                             "3.10 (or 3.11) interpreter")
        return explicit, "given"
    on_path = shutil.which("python3.10")
    if on_path and _version(on_path) == (3, 10):
        return on_path, "python3.10 on the PATH"
    pyenv = shutil.which("pyenv")
    if pyenv:
        latest = subprocess.run([pyenv, "latest", "3.10"], capture_output=True, text=True)
        root = subprocess.run([pyenv, "root"], capture_output=True, text=True)
        if latest.returncode == 0 and root.returncode == 0:
            candidate = Path(root.stdout.strip()) / "versions" / latest.stdout.strip() / "bin" / \
                "python3.10"
            if _version(str(candidate)) == (3, 10):
                return str(candidate), "pyenv"
    fallback = shutil.which("python3") or sys.executable
    return fallback, "no Python 3.10 here: python3 (torch 2.2.2 has Python 3.11 wheels)"


def _torch_version(python: Path) -> str | None:
    if not python.is_file():
        return None
    out = subprocess.run([str(python), "-c", "import torch; print(torch.__version__)"],
                         capture_output=True, text=True, timeout=600)
    return out.stdout.strip().split("+")[0] if out.returncode == 0 else None


def ensure_venv(venv: Path, base_python: str) -> Path | None:
    """The server environment's interpreter, built if needed; None when the registry has no
    torch 2.2.2 for it (the check is then skipped)."""
    python = venv / "bin" / "python"
    if _torch_version(python) == SERVER_TORCH:
        print(f"server-check: reusing {venv} (torch {SERVER_TORCH})", flush=True)
        return python
    if venv.exists():
        shutil.rmtree(venv)
    start = time.perf_counter()
    subprocess.run([base_python, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *SERVER_PINS],
                         capture_output=True, text=True)
    if pip.returncode:
        text = pip.stdout + pip.stderr
        if "No matching distribution found" in text or "Could not find a version" in text:
            shutil.rmtree(venv, ignore_errors=True)
            return None
        print(text[-3000:], file=sys.stderr)
        raise SystemExit(f"server-check: pip could not install {' '.join(SERVER_PINS)} into "
                         f"{venv} (above); fix the network or pip and run it again")
    print(f"server-check: built {venv} with {' '.join(SERVER_PINS)} in "
          f"{time.perf_counter() - start:.0f} s", flush=True)
    return python


# ---------------------------------------------------------------------------- runs and zips
def make_runs(folder: Path) -> list[tuple[str, Path]]:
    import torch

    from eegattn.models import build_model
    from eegattn.training.runs import create_run_dir, save_run

    configs = CONFIGS + _attention_configs()
    if len(configs) % 2:  # zips hold two runs: one more for the last zip's challenge 2
        configs.append(("lightweight (second copy)", "lightweight", SMALL_CONV))
    runs = []
    for i, (label, name, options) in enumerate(configs):
        challenge = 1 + i % 2
        torch.manual_seed(i)
        model = build_model(name, n_times=200, **options)
        run = create_run_dir(folder, f"run{i:02d}")
        save_run(run, model, config={"model": name, "model_options": options,
                                     "challenge": challenge})
        runs.append((label, run))
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default=str(REPO / ".venv-server"))
    parser.add_argument("--python", default=os.environ.get("SERVER_PYTHON") or None,
                        help="base interpreter of the environment (default: a Python 3.10)")
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="write the runs and zips here (default: a temporary folder)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    base, how = find_python(args.python)
    print(f"server-check: base interpreter {base} ({how})", flush=True)
    python = ensure_venv(Path(args.venv).resolve(), base)
    if python is None:
        print(f"server-check: SKIPPED: the package registry serves no torch=={SERVER_TORCH} "
              f"for {base}; nothing was checked", flush=True)
        return 0
    env_s = time.perf_counter() - started

    from eegattn.submission import package_submission, validate_submission

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="server-check-"))
    work.mkdir(parents=True, exist_ok=True)
    failed = []
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            runs = make_runs(work / "runs")
            for k in range(0, len(runs), 2):
                (label1, run1), (label2, run2) = runs[k], runs[k + 1]
                zip_path = work / f"check{k // 2:02d}.zip"
                step = time.perf_counter()
                try:
                    package_submission(run1, run2, zip_path, force=True,
                                       check_batch_sizes=(1, 3))
                except ValueError as err:
                    failed.append(f"{label1} + {label2}: packing failed: {err}")
                    print(f"FAIL {label1} + {label2}: {err}", flush=True)
                    continue
                report = validate_submission(zip_path, python=str(python),
                                             batch_sizes=(1, 4, 32), timing_batch=None)
                verdict = "ok  " if report.ok else "FAIL"
                print(f"{verdict} {label1} (challenge 1) + {label2} (challenge 2): Python "
                      f"{report.python}, torch {report.torch}, "
                      f"{time.perf_counter() - step:.1f} s", flush=True)
                if not report.ok or not str(report.torch).startswith(SERVER_TORCH):
                    failed.append(f"{label1} + {label2}:\n{report.format()}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    total = time.perf_counter() - started
    print(f"server-check: {len(runs)} runs in {(len(runs) + 1) // 2} zips, environment "
          f"{env_s:.0f} s, total {total:.0f} s", flush=True)
    if failed:
        print("server-check: FAILED\n" + "\n".join(failed), file=sys.stderr)
        return 1
    print("server-check: passed", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
