"""Check a submission zip the way the challenge server would run it, and say how to fix it.

:func:`validate_submission` runs three kinds of checks and collects every problem as a
:class:`Finding` (level, what, fix) in a :class:`ValidationReport`:

1. the zip itself: a zip at all, flat (no folders), ``submission.py`` at the top, size (warning
   above 100 MB), unsafe paths, and the ``manifest.json`` checksums written by ``eegattn
   package``;
2. ``submission.py``'s source: Python 3.10 syntax, imports the server lacks (``eegattn``,
   ``braindecode``: errors; other third-party modules: warnings), weight files it names that
   the zip lacks;
3. the harness's sequence in a fresh interpreter (``python -I``, standard library + torch,
   ``eegattn`` and ``braindecode`` made unimportable; :mod:`.templates.harness`), started in an
   empty working folder so that weights must be found next to ``submission.py``:
   ``Submission(100, DEVICE)``, ``get_model_challenge_k()``, ``.eval()``, ``model(X)`` under
   ``torch.inference_mode()`` for (B, 129, 200) volts-scale windows; output shape (B, 1),
   finite values, equal outputs for two calls, no dependence on the other windows of a batch,
   untouched input; load time and inference time per batch.

Given a release, both challenges are also scored exactly as the challenge's scoring ingestion
did (:mod:`eegattn.data.scoring`): its windows (CCD recordings of every subject, no exclusion;
challenge 2 from recordings of at least 4 s with a target), its challenge-2 crops (each
recording's own ``random.Random(42)``, ``randint(0, 200)`` per window in order), predictions
one window at a time in order for challenge 2, the official NRMSE (RMSE / population std of
the targets) and overall = 0.3 C1 + 0.7 C2; the report prints the window counts and the
selection beside the scores.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path, PurePosixPath

from eegattn.challenge import CHALLENGE_WEIGHTS, DEFAULT_TRIAL_RULE, TRIAL_RULES, crop_starts
from eegattn.submission.package import (
    CHALLENGE_N_CHANS,
    CHALLENGE_N_TIMES,
    CHALLENGE_SFREQ,
    MANIFEST_FILE,
    SUBMISSION_FILE,
    WEIGHT_FILES,
)
from eegattn.utils.check import (
    InvalidParameterError,
    check_option,
    check_positive_int,
    check_positive_number,
)

SIZE_WARN_BYTES = 100 * 1024 * 1024
DEFAULT_BATCH_SIZES = (1, 4, 128)
TIMING_BATCH = 128
#: the local scorer predicts challenge-2 windows one at a time, in order
SCORE_BATCH = {1: 128, 2: 1}
PYTHON_ENV_VAR = "EEGATTN_SUBMISSION_PYTHON"
ALLOWED_IMPORTS = {"torch", "numpy"}
SERVER_LACKS = {"eegattn", "braindecode"}
_WEIGHT_NAME = re.compile(r"^[\w.-]+\.(pt|pth|pkl|ckpt|bin|safetensors|onnx|npz|npy)$")

# harness problem code -> (level, what went wrong, fix)
_HARNESS_FIXES = {
    "no_torch": (
        "error",
        "torch cannot be imported by the validation interpreter",
        "pass --python with an interpreter that has torch",
    ),
    "bad_device": ("error", "the device is not valid", "use --device cpu or --device cuda"),
    "import_blocked": (
        "error",
        "submission.py imports a package the server does not have",
        "the zip may use only torch and numpy: pack with `eegattn package` (TorchScript "
        "models), or copy the model code into the zip next to submission.py",
    ),
    "import_failed": (
        "error",
        "importing submission.py failed",
        "make submission.py import with only the standard library, torch and numpy "
        "(Python 3.10, torch 2.2)",
    ),
    "no_submission_class": (
        "error",
        "submission.py defines no class named Submission",
        "name the class exactly `Submission`, with __init__(self, SFREQ, DEVICE)",
    ),
    "init_failed": (
        "error",
        "Submission(SFREQ=100, DEVICE) raised",
        "Submission.__init__(self, SFREQ, DEVICE) must accept 100 and a device given as a "
        "str or a torch.device",
    ),
    "missing_method": (
        "error",
        "a get_model_challenge method is missing",
        "define get_model_challenge_1(self) and get_model_challenge_2(self), each returning "
        "a torch.nn.Module",
    ),
    "weights_not_found": (
        "error",
        "the model's weight file was not found",
        "put the weight file at the top of the zip and open it relative to the module, "
        "Path(__file__).parent / NAME (the harness's working folder is not the zip's folder)",
    ),
    "load_failed": (
        "error",
        "loading the model raised",
        "weights must load under torch 2.2.2 on DEVICE: use map_location=DEVICE and a "
        "state_dict or TorchScript file (`eegattn package` does both)",
    ),
    "not_a_module": (
        "error",
        "get_model_challenge did not return a torch.nn.Module",
        "return the model itself (a torch.nn.Module)",
    ),
    "eval_failed": ("error", "model.eval() raised", "return a torch.nn.Module"),
    "wrong_device": (
        "error",
        "the model is not on DEVICE",
        "load with map_location=DEVICE and call model.to(DEVICE) before returning it",
    ),
    "forward_failed": (
        "error",
        "model(X) raised",
        "the model must accept (batch, 129, 200) float32 windows in volts on DEVICE",
    ),
    "input_modified": (
        "warning",
        "the model modifies its input batch in place",
        "do not change X in place (write x = x - m, not x -= m); the harness may reuse X",
    ),
    "output_type": (
        "error",
        "the model's output is not a tensor",
        "return a torch.Tensor of shape (batch, 1)",
    ),
    "output_shape": (
        "error",
        "the output has the wrong shape; the harness expects (batch, 1)",
        "end the model with a Linear(..., 1) or return out.reshape(-1, 1)",
    ),
    "output_dtype": (
        "error",
        "the output is not a floating-point tensor",
        "return float32 predictions",
    ),
    "non_finite": (
        "error",
        "the model outputs NaN or Inf on volts-scale windows",
        "normalise inside the model and guard the division by a channel's std (HBN's Cz "
        "reference is flat); windows arrive in volts (~1e-5), not microvolts",
    ),
    "non_deterministic": (
        "error",
        "two calls on the same batch give different outputs",
        "call eval() and remove randomness at inference (dropout, random permutations, sampling)",
    ),
    "batch_dependent": (
        "error",
        "a window's prediction depends on the other windows of its batch",
        "normalise per window, not per batch, and make sure eval() reaches every BatchNorm",
    ),
    "score_failed": (
        "error",
        "predicting the scoring windows failed",
        "see the detail; the model must accept any batch size, 1 included",
    ),
}


@dataclass
class Finding:
    """One problem (or note): ``level`` is ``error``, ``warning`` or ``info``."""

    level: str
    check: str
    message: str
    fix: str = ""
    challenge: int | None = None

    def format(self) -> str:
        where = f"challenge {self.challenge}: " if self.challenge else ""
        text = f"{self.level.upper():7s} [{self.check}] {where}{self.message}"
        if self.fix:
            text += f"\n          fix: {self.fix}"
        return text


@dataclass
class ValidationReport:
    """Everything :func:`validate_submission` found; ``ok`` when there is no error."""

    zip_path: Path
    device: str
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    size_bytes: int = 0
    python: str | None = None
    torch: str | None = None
    measurements: dict = field(default_factory=dict)
    scores: dict = field(default_factory=dict)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def add(self, level, check, message, fix="", challenge=None) -> None:
        self.findings.append(Finding(level, check, message, fix, challenge))

    def checks(self) -> set[str]:
        """Names of the checks that produced an error or a warning."""
        return {f.check for f in self.findings if f.level in ("error", "warning")}

    def format(self) -> str:
        lines = [
            f"submission {self.zip_path} ({self.size_bytes / 1e6:.2f} MB): "
            + (", ".join(self.files) if self.files else "no files")
        ]
        if self.python:
            lines.append(
                f"harness: Python {self.python}, torch {self.torch or '?'}, device {self.device}"
            )
        for k in (1, 2):
            m = self.measurements.get(f"challenge_{k}") or {}
            if "load_s" not in m:
                continue
            text = f"  challenge {k}: loaded in {m['load_s']:.2f} s"
            if m.get("n_parameters") is not None:
                text += f", {m['n_parameters']:,} parameters"
            if "infer_s" in m:
                batch = m.get("infer_batch", TIMING_BATCH)
                text += f", {1000 * m['infer_s']:.1f} ms per batch of {batch}"
                if batch != TIMING_BATCH:
                    per128 = m["infer_s"] * TIMING_BATCH / batch
                    text += f" (~{1000 * per128:.0f} ms per batch of {TIMING_BATCH})"
            lines.append(text)
        if self.scores:
            parts = []
            for k in (1, 2):
                s = self.scores.get(f"challenge_{k}")
                if s:
                    parts.append(f"challenge {k} NRMSE {s['nrmse']:.4f} ({s['n']} windows)")
            if "overall" in self.scores:
                parts.append(f"overall {self.scores['overall']:.4f}")
            where = f" on {self.scores['release']}" if self.scores.get("release") else ""
            lines.append(f"scores{where}: " + "; ".join(parts))
            for k in (1, 2):
                s = self.scores.get(f"challenge_{k}") or {}
                if s.get("selection"):
                    lines.append(f"  challenge {k}: {s['n']} windows: {s['selection']}")
        problems = [f for f in self.findings if f.level != "info"]
        notes = [f for f in self.findings if f.level == "info"]
        for f in notes:
            lines.append(f"  note: {f.message}")
        if problems:
            lines.append(f"problems ({len(problems)}):")
            lines += ["  " + f.format() for f in problems]
        n_err, n_warn = len(self.errors), len(self.warnings)
        verdict = "FAILED" if n_err else "PASSED"
        lines.append(f"result: {verdict} ({n_err} error(s), {n_warn} warning(s))")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# static checks


def _check_zip(zf: zipfile.ZipFile, report: ValidationReport) -> tuple[list[str], str | None]:
    """Zip-level checks. Returns (safe member names, folder of submission.py or None)."""
    names = zf.namelist()
    report.files = names
    safe = []
    for name in names:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or "\\" in name:
            report.add(
                "error",
                "unsafe path",
                f"the zip holds {name!r}, a path outside the unpack folder",
                "rebuild the zip from the files themselves (`eegattn package`)",
            )
            continue
        safe.append(name)
    nested = [n for n in safe if "/" in n]
    if nested:
        shown = ", ".join(nested[:5]) + (", ..." if len(nested) > 5 else "")
        fix = (
            "zip the files, not their folder: `cd FOLDER && zip ../submission.zip *` (or "
            "`zip -j`), or build it with `eegattn package`"
        )
        if any(n.startswith("__MACOSX/") or n.endswith(".DS_Store") for n in nested):
            fix += "; leave out macOS metadata (__MACOSX, .DS_Store)"
        report.add("error", "flat zip", f"the zip has folders inside: {shown}", fix)
    if report.size_bytes > SIZE_WARN_BYTES:
        report.add(
            "warning",
            "zip size",
            f"the zip is {report.size_bytes / 1e6:.0f} MB, above 100 MB",
            "the upload may be refused: shrink the models (fewer parameters)",
        )
    if SUBMISSION_FILE in safe:
        return safe, ""
    candidates = [n for n in safe if PurePosixPath(n).name == SUBMISSION_FILE]
    report.add(
        "error",
        "submission.py",
        "submission.py is not at the top of the zip"
        + (f" (found {', '.join(candidates)})" if candidates else ""),
        "put submission.py at the top level of the zip, next to the weight files",
    )
    if len(candidates) == 1:
        folder = str(PurePosixPath(candidates[0]).parent)
        report.add("info", "submission.py", f"the harness checks below ran on {folder}/ instead")
        return safe, folder
    return safe, None


def _check_manifest(zf: zipfile.ZipFile, names: list[str], report: ValidationReport) -> dict:
    if MANIFEST_FILE not in names:
        return {}
    try:
        manifest = json.loads(zf.read(MANIFEST_FILE))
        models = manifest["models"]
    except (ValueError, KeyError, TypeError):
        report.add(
            "warning", "manifest", f"{MANIFEST_FILE} is unreadable", "re-run `eegattn package`"
        )
        return {}
    for k, info in sorted(models.items()):
        name, digest = info.get("file"), info.get("sha256")
        if not name or not digest:
            continue
        if name not in names:
            continue  # reported as a missing weight file
        if hashlib.sha256(zf.read(name)).hexdigest() != digest:
            report.add(
                "error",
                "manifest",
                f"{name} differs from the file `eegattn package` wrote (sha256 mismatch)",
                "the zip was edited after packing; re-run `eegattn package`",
                int(k) if str(k).isdigit() else None,
            )
        report.add(
            "info",
            "manifest",
            f"challenge {k}: {info.get('model')} from run {info.get('run')}",
        )
    return manifest


def _imported_modules(tree: ast.AST) -> set[str]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.partition(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.partition(".")[0])
    return found


def _check_source(source: bytes, folder_names: set[str], report: ValidationReport) -> None:
    """Python 3.10 syntax, imports the server lacks, weight files named but not packed."""
    try:
        tree = ast.parse(source, filename=SUBMISSION_FILE, feature_version=(3, 10))
    except SyntaxError as err:
        report.add(
            "error",
            "python 3.10",
            f"submission.py line {err.lineno}: {err.msg}",
            "the server runs Python 3.10: use only syntax Python 3.10 accepts",
        )
        return
    local_modules = {PurePosixPath(n).stem for n in folder_names if n.endswith(".py")}
    stdlib = set(sys.stdlib_module_names)
    for module in sorted(_imported_modules(tree)):
        if module in SERVER_LACKS:
            report.add(
                "error",
                "imports",
                f"submission.py imports {module}, which the server does not have",
                _HARNESS_FIXES["import_blocked"][2],
            )
        elif module not in stdlib | ALLOWED_IMPORTS | local_modules:
            report.add(
                "warning",
                "imports",
                f"submission.py imports {module}; the server is only known to have torch "
                "2.2.2, numpy and the standard library",
                f"remove the {module} import or pack what it provides into the zip",
            )
    if not any(isinstance(n, ast.ClassDef) and n.name == "Submission" for n in tree.body):
        classes = [n.name for n in tree.body if isinstance(n, ast.ClassDef)]
        report.add(
            "error",
            "class name",
            "submission.py defines no top-level class Submission"
            + (f" (classes: {', '.join(classes)})" if classes else ""),
            _HARNESS_FIXES["no_submission_class"][2],
        )
    named = {
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and _WEIGHT_NAME.match(node.value)
    }
    for name in sorted(named - folder_names):
        challenge = next((k for k, w in WEIGHT_FILES.items() if w == name), None)
        report.add(
            "error",
            "missing weights",
            f"submission.py refers to {name}, which is not in the zip",
            f"add {name} to the zip, next to submission.py",
            challenge,
        )


# ---------------------------------------------------------------------------------------------
# scoring data


def _release_windows(release_root: Path, challenge: int, trial_rule: str):
    """The scoring ingestion's windows of one release folder (:mod:`eegattn.data.scoring`)."""
    from eegattn.data.scoring import scoring_windows

    windows = scoring_windows(challenge, release_root, trial_rule=trial_rule)
    return windows, windows.info["release_label"]


def _crop_starts_for(windows, seed: int):
    """Crop starts of a challenge-2 scoring set: the ones ``scoring_windows`` drew (the
    ingestion's), the ingestion's draws per ``recording`` when the metadata names them, else
    seeded numpy draws (windows given without metadata)."""
    meta = getattr(windows, "metadata", None)
    X = windows.X
    if meta is not None and "crop_start" in meta.columns:
        return meta["crop_start"].to_numpy()
    if meta is not None and "recording" in meta.columns:
        from eegattn.data.scoring import ingestion_crops

        return ingestion_crops(meta, X.shape[2], CHALLENGE_N_TIMES)
    return crop_starts(X.shape[0], X.shape[2], CHALLENGE_N_TIMES, seed)


def _write_score_inputs(windows, challenge: int, scratch: Path, max_windows, seed) -> dict:
    """Write the windows (cropped for challenge 2) as raw float32 and return the job spec."""
    import numpy as np

    X, y = windows.X, np.asarray(windows.y, dtype=np.float32).reshape(-1)
    if X.ndim != 3 or X.shape[1] != CHALLENGE_N_CHANS or X.shape[0] != y.shape[0]:
        raise ValueError(
            f"challenge-{challenge} windows have shape {tuple(X.shape)} with {y.shape[0]} "
            f"targets; expected (n, {CHALLENGE_N_CHANS}, >= {CHALLENGE_N_TIMES}) and n targets"
        )
    total = X.shape[0]
    n = total if max_windows is None else min(int(max_windows), total)
    if n == 0:
        raise ValueError(f"no challenge-{challenge} windows to score")
    # a subset spreads evenly over the set (so over subjects), keeping the order; the crops
    # are drawn for the whole set first, so a window keeps its crop in a subset
    index = np.arange(total) if n == total else np.linspace(0, total - 1, n).round().astype(int)
    starts = None
    if X.shape[2] != CHALLENGE_N_TIMES:
        starts = np.asarray(_crop_starts_for(windows, seed))[index]
    x_path = scratch / f"score_c{challenge}.f32"
    with open(x_path, "wb") as fh:
        step = 256
        for i in range(0, n, step):
            chunk = np.asarray(X[index[i : i + step]], dtype=np.float32)
            if chunk.shape[2] != CHALLENGE_N_TIMES:
                chunk = np.stack(
                    [w[:, s : s + CHALLENGE_N_TIMES] for w, s in zip(chunk, starts[i:])]
                )
            fh.write(np.ascontiguousarray(chunk, dtype="<f4").tobytes())
    return {
        "x_path": str(x_path),
        "pred_path": str(scratch / f"pred_c{challenge}.f32"),
        "n": n,
        "n_chans": CHALLENGE_N_CHANS,
        "n_times": CHALLENGE_N_TIMES,
        "batch_size": SCORE_BATCH[challenge],
        "y": y[index],
        "selection": (getattr(windows, "info", None) or {}).get("selection"),
    }


# ---------------------------------------------------------------------------------------------
# the harness subprocess


def _run_harness(job: dict, python: str, cwd: Path, timeout: float) -> tuple[dict, str]:
    runner = resources.files("eegattn.submission.templates").joinpath("harness.py")
    with resources.as_file(runner) as runner_path:
        job_path = cwd.parent / "job.json"
        job_path.write_text(json.dumps(job))
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        try:
            proc = subprocess.run(
                [python, "-I", str(runner_path), str(job_path)],
                cwd=cwd,
                env=env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
            output = (proc.stdout + proc.stderr)[-4000:]
        except subprocess.TimeoutExpired as err:
            output = f"TIMEOUT after {timeout:.0f} s\n" + str(err.stdout or "")[-2000:]
        except OSError as err:
            raise FileNotFoundError(f"cannot start the interpreter {python}: {err}") from None
    result_path = Path(job["result_path"])
    result = json.loads(result_path.read_text()) if result_path.is_file() else {}
    return result, output


def _harness_findings(result: dict, output: str, report: ValidationReport) -> None:
    if not result:
        report.add(
            "error",
            "harness",
            "the harness process ended without a result: " + output.strip()[-800:],
            "run `python -c 'import torch'` with the same interpreter to see what is missing",
        )
        return
    report.python = result.get("python")
    report.torch = result.get("torch")
    for p in result.get("problems", []):
        level, what, fix = _HARNESS_FIXES.get(p["code"], ("error", p["code"], ""))
        message = f"{what}: {p['detail']}"
        if p["code"] == "no_submission_class" and p.get("classes"):
            message += f" (classes: {', '.join(p['classes'])})"
        check = {"no_submission_class": "class name", "import_blocked": "imports"}.get(
            p["code"], p["code"].replace("_", " ")
        )
        report.add(level, check, message, fix, p.get("challenge"))
    if not result.get("done"):
        report.add(
            "error",
            "harness",
            "the harness did not finish: " + output.strip()[-800:],
            "a crash or a time-out in the submission's code; run it by hand to see",
        )
    report.measurements = result.get("measurements", {})


# ---------------------------------------------------------------------------------------------
# entry point


def validate_submission(
    zip_path: str | os.PathLike,
    release_root: str | os.PathLike | None = None,
    device: str = "cpu",
    *,
    windows: dict | None = None,
    trial_rule: str = DEFAULT_TRIAL_RULE,
    python: str | None = None,
    batch_sizes: tuple[int, ...] = DEFAULT_BATCH_SIZES,
    timing_batch: int | None = TIMING_BATCH,
    max_windows: int | None = None,
    seed: int = 0,
    timeout: float = 1800.0,
) -> ValidationReport:
    """Validate a submission zip; every problem found is in the report, with its fix.

    Parameters
    ----------
    zip_path : path
        The zip to check.
    release_root : path, optional
        A release folder (``.../EEG2025r5`` or ``.../EEG2025r5mini``): both challenges are
        scored on the windows and crops the challenge's scoring ingestion used
        (:func:`eegattn.data.scoring.scoring_windows`: every subject, CCD only).
    device : str
        ``cpu`` or ``cuda`` (``cuda:N``): the harness's DEVICE.
    windows : dict, optional
        ``{1: windows_c1, 2: windows_c2}`` objects with ``X`` (n, 129, n_times) volts and
        ``y`` (n,), e.g. ``WindowSet``; scored instead of ``release_root``'s. Challenge-2
        windows longer than 200 samples get a 200-sample crop: the ingestion's per-recording
        draws when their metadata has a ``recording`` column, else seeded numpy draws.
    trial_rule : str
        ``"challenge"`` (default, the competition's trial table) or ``"current"`` (eegdash
        0.9's), for challenge 1's scoring windows (see ``ccd_trial_table``).
    python : str, optional
        Interpreter for the harness (default: ``$EEGATTN_SUBMISSION_PYTHON`` or this one);
        point it at a Python 3.10 + torch 2.2 environment to reproduce the server exactly.
    batch_sizes : tuple of int
        Random batches sent to each model (the largest one is also repeated and timed).
    timing_batch : int or None
        Batch size of the reported inference time (None: the largest of ``batch_sizes``).
    max_windows : int, optional
        Score at most this many windows per challenge, evenly spread over the set.
    seed : int
        Seed of the random batches (and of challenge-2 crops of windows without metadata).
    timeout : float
        Seconds before the harness process is stopped.

    Returns
    -------
    ValidationReport (``ok`` is False when any error was found; ``format()`` for people).
    """
    zip_path = Path(zip_path)
    if not zip_path.is_file():
        raise FileNotFoundError(f"submission zip {zip_path} does not exist")
    if not batch_sizes:
        raise InvalidParameterError("batch_sizes is empty; give at least one batch size")
    for b in batch_sizes:
        check_positive_int(b, "batch_sizes")
    check_positive_int(timing_batch, "timing_batch", allow_none=True)
    check_positive_int(max_windows, "max_windows", allow_none=True)
    check_positive_int(seed, "seed", minimum=0)
    check_positive_number(timeout, "timeout", unit="seconds")
    check_option("trial_rule", trial_rule, TRIAL_RULES)
    python = python or os.environ.get(PYTHON_ENV_VAR) or sys.executable
    report = ValidationReport(zip_path=zip_path, device=str(device))
    report.size_bytes = zip_path.stat().st_size
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available() and python == sys.executable:
            raise ValueError("CUDA is not available on this machine; use --device cpu")
    if not zipfile.is_zipfile(zip_path):
        report.add(
            "error",
            "zip",
            f"{zip_path.name} is not a zip archive",
            "build it with `eegattn package` (or `zip`)",
        )
        return report

    with tempfile.TemporaryDirectory(prefix="eegattn-validate-") as tmp:
        scratch = Path(tmp)
        unpacked, workdir = scratch / "unpacked", scratch / "workdir"
        unpacked.mkdir()
        workdir.mkdir()
        with zipfile.ZipFile(zip_path) as zf:
            names, folder = _check_zip(zf, report)
            _check_manifest(zf, names, report)
            for name in names:
                zf.extract(name, unpacked)
        if folder is None:
            return report
        sub_dir = unpacked / folder if folder else unpacked
        folder_names = {
            n[len(folder) + 1 :] if folder else n
            for n in names
            if (not folder and "/" not in n) or (folder and n.startswith(folder + "/"))
        }
        _check_source((sub_dir / SUBMISSION_FILE).read_bytes(), folder_names, report)

        scoring, score_specs = windows, {}
        release_label = None
        if scoring is None and release_root is not None:
            scoring = {}
            for k in (1, 2):
                scoring[k], release_label = _release_windows(Path(release_root), k, trial_rule)
        for k, w in sorted((scoring or {}).items()):
            score_specs[k] = _write_score_inputs(w, int(k), scratch, max_windows, seed)

        job = {
            "submission_dir": str(sub_dir),
            "device": str(device),
            "sfreq": int(CHALLENGE_SFREQ),
            "batch_sizes": [int(b) for b in batch_sizes],
            "timing_batch": timing_batch,
            "seed": int(seed),
            "result_path": str(scratch / "result.json"),
            "score": {
                str(k): {key: v for key, v in s.items() if key != "y"}
                for k, s in score_specs.items()
            },
        }
        start = time.perf_counter()
        result, output = _run_harness(job, python, workdir, timeout)
        report.measurements["harness_s"] = time.perf_counter() - start
        _harness_findings(result, output, report)
        report.measurements["harness_s"] = time.perf_counter() - start
        _score(score_specs, report, release_label)
    return report


def _score(score_specs: dict, report: ValidationReport, release_label: str | None) -> None:
    import numpy as np

    from eegattn.training.metrics import nrmse

    for k, spec in sorted(score_specs.items()):
        pred_path = Path(spec["pred_path"])
        if not pred_path.is_file():
            continue
        pred = np.fromfile(pred_path, dtype="<f4")
        if pred.size != spec["n"]:
            continue  # the harness reported why
        try:
            value = nrmse(spec["y"], pred)
        except ValueError as err:
            report.add("warning", "score", f"challenge {k} cannot be scored: {err}")
            continue
        report.scores[f"challenge_{k}"] = {"nrmse": value, "n": int(spec["n"])}
        if spec.get("selection"):
            report.scores[f"challenge_{k}"]["selection"] = spec["selection"]
    if all(f"challenge_{k}" in report.scores for k in (1, 2)):
        report.scores["overall"] = sum(
            w * report.scores[f"challenge_{k}"]["nrmse"] for k, w in CHALLENGE_WEIGHTS.items()
        )
    if release_label and report.scores:
        report.scores["release"] = release_label
