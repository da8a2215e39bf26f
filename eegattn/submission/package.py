"""Pack two trained runs into the challenge's flat submission zip.

The server of the EEG Foundation Challenge 2025 ran Python 3.10 and torch 2.2.2, without this
project and with an older braindecode (``docs/challenge.md``, "Submission contract"). So the
zip carries no Python model code of ours: each model is exported with ``torch.jit.trace`` to a
TorchScript archive, which holds the network's operators and weights (input normalisation
included), and the packed ``submission.py`` only calls ``torch.jit.load``. Every model of the
project packs the same way, whatever its attention mechanism.

Why tracing is safe here, and what is checked before a zip is written (:func:`export_model`):

- the models run in evaluation mode on fixed-shape (batch, 129, 200) windows, so a trace
  records the same operators as any later call; the traced archive is reloaded and compared
  with the eager model on batches of 1, 4 and 128 and must agree (and repeat itself exactly);
- tracing records ``x.device`` as a constant (``torch.device("cpu")``), which would break a
  model on the server's GPU; those constants are rewired to the device of the module's input;
- braindecode's parametrizations (EEGNeX's max-norm) are folded into plain weights first, and
  its signal properties that raise ValueError (``chs_info``) are hidden from the tracer;
- draws from an explicitly seeded generator (the sparse attention's evaluation permutation)
  are stored as constants, since a trace cannot record a Generator;
- every operator of the trace is looked up in the list of operators that torch 2.2.2 lacks
  or declares differently (:mod:`eegattn.submission.templates.torch22_ops`).

Verified with a Python 3.10.13 + torch 2.2.2 interpreter (``eegattn validate-submission
--python``): archives written by torch 2.11 load and run there, for all four model families
and every attention mechanism (sparse with its tracing fix), with outputs equal to torch
2.11's within 5e-8. They use
TorchScript file format version 10, which torch 2.2 reads, and TorchScript leaves trailing
arguments at their defaults out of a saved call, so operators that only gained arguments
(``scaled_dot_product_attention``'s ``enable_gqa``) still load. Not verified here: CUDA.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import io
import json
import os
import traceback
import warnings
import zipfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from eegattn.challenge import N_CHANS, N_TIMES, SFREQ
from eegattn.utils.io import atomic_path

# the model input the server sends (eegattn.challenge; templates/ keeps its own copy)
CHALLENGE_N_CHANS = N_CHANS
CHALLENGE_N_TIMES = N_TIMES
CHALLENGE_SFREQ = SFREQ
CHALLENGE_N_OUTPUTS = 1
WEIGHT_FILES = {1: "weights_challenge_1.pt", 2: "weights_challenge_2.pt"}
SUBMISSION_FILE = "submission.py"
MANIFEST_FILE = "manifest.json"
#: batch sizes on which a traced model must match the eager model
CHECK_BATCH_SIZES = (1, 4, 128)
#: TorchScript extra file inside each weight archive that records where it came from
ARCHIVE_INFO_FILE = "eegattn.json"
# fixed timestamp so that packing the same runs twice gives the same bytes
_ZIP_DATE = (2025, 1, 1, 0, 0, 0)


@dataclass
class ExportedModel:
    """A model exported for the server: TorchScript archive bytes plus what was checked."""

    challenge: int
    archive: bytes
    info: dict
    max_abs_diff: float
    operators: list[str]
    warnings: list[str] = field(default_factory=list)


@dataclass
class PackageResult:
    """What :func:`package_submission` wrote."""

    path: Path
    size_bytes: int
    files: list[str]
    models: dict[int, dict]
    warnings: list[str]

    def summary(self) -> str:
        lines = [f"wrote {self.path} ({self.size_bytes / 1e6:.2f} MB): {', '.join(self.files)}"]
        for k, info in sorted(self.models.items()):
            opts = info.get("model_options") or {}
            opt_text = ", ".join(f"{key}={value!r}" for key, value in sorted(opts.items()))
            lines.append(
                f"  challenge {k}: {info.get('model')}"
                + (f" ({opt_text})" if opt_text else "")
                + f", run {info.get('run')}, {info.get('n_parameters', 0):,} parameters"
            )
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# run folders


def read_run_config(run_dir: str | os.PathLike) -> dict:
    """The ``config.json`` of a run folder (FileNotFoundError / ValueError when unusable)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run folder {run_dir} does not exist; pass a folder written by `eegattn train`"
        )
    path = run_dir / "config.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"run folder {run_dir} has no config.json; pass a folder written by `eegattn train`"
        )
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path} is not valid JSON ({err}); re-run the training") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path} holds a {type(config).__name__}, expected a JSON object")
    return config


def check_run_config(config: dict, challenge: int, run_dir: str | os.PathLike = "run") -> None:
    """Raise ValueError listing every way the run does not fit the challenge's input/output.

    The server sends (batch, 129, 200) windows at 100 Hz and expects (batch, 1); a model
    trained otherwise would fail there or silently predict from the wrong signal.
    """
    expected = {
        "n_chans": CHALLENGE_N_CHANS,
        "n_times": CHALLENGE_N_TIMES,
        "sfreq": CHALLENGE_SFREQ,
        "n_outputs": CHALLENGE_N_OUTPUTS,
    }
    what = {
        "n_chans": "channels",
        "n_times": "samples per window",
        "sfreq": "Hz",
        "n_outputs": "outputs",
    }
    problems = []
    for key, want in expected.items():
        if key not in config:
            problems.append(f"config.json has no {key!r} (expected {want:g})")
            continue
        got = config[key]
        if isinstance(got, bool) or not isinstance(got, int | float) or float(got) != want:
            problems.append(
                f"it was trained on {got!r} {what[key]}, the challenge uses {want:g} "
                f"(retrain with {key}={want:g})"
            )
    run_challenge = config.get("challenge")
    if run_challenge != challenge:
        if run_challenge in (1, 2):
            problems.append(
                f"it is a challenge-{run_challenge} run but was given as the challenge-"
                f"{challenge} run (swap the two run arguments)"
            )
        else:
            problems.append(
                f"config.json says challenge={run_challenge!r}; expected {challenge} "
                "(train it with `eegattn train --challenge "
                f"{challenge}`)"
            )
    if problems:
        raise ValueError(
            f"cannot pack run {run_dir} for challenge {challenge}: " + "; ".join(problems)
        )


# ---------------------------------------------------------------------------------------------
# export


def _raises_other_than_attribute_error(obj, name: str) -> bool:
    try:
        getattr(obj, name)
    except AttributeError:
        return False
    except Exception:  # noqa: BLE001 (any other error breaks torch.jit.trace's hasattr)
        return True
    return False


def _make_traceable(module) -> None:
    """Let ``torch.jit.trace`` inspect ``module`` (in place; use on a copy).

    ``torch.jit.trace`` calls ``hasattr`` on every attribute name of every module, and
    ``hasattr`` only swallows AttributeError. braindecode's ``EEGModuleMixin`` properties
    (``chs_info`` when no channel info was given, ...) raise ValueError instead, so tracing a
    braindecode model fails. On this copy such properties are overridden, on a per-instance
    subclass, by ones that return None (the forward never reads them).
    """
    cls = type(module)
    bad = [
        name
        for name in dir(cls)
        if isinstance(getattr(cls, name, None), property)
        and _raises_other_than_attribute_error(module, name)
    ]
    if not bad:
        return
    namespace = {name: property(lambda self: None) for name in bad}
    namespace.update(__module__=cls.__module__, __qualname__=cls.__qualname__)
    module.__class__ = type(cls.__name__, (cls,), namespace)


def _prepare_copy(model):
    """An evaluation-mode float32 CPU copy with parametrizations folded into the weights."""
    from torch.nn.utils import parametrize

    model = copy.deepcopy(model).cpu().float().eval()
    for module in model.modules():
        if parametrize.is_parametrized(module):
            for name in list(module.parametrizations.keys()):
                parametrize.remove_parametrizations(module, name, leave_parametrized=True)
    for module in model.modules():
        _make_traceable(module)
    return model


#: torch functions whose ``generator=`` calls become constants of the trace
_SEEDED_RANDOM_FUNCTIONS = ("randperm", "rand", "randn", "randint", "normal", "multinomial")


@contextlib.contextmanager
def _seeded_randomness_as_constants():
    """While tracing, compute ``torch.<random>(..., generator=g)`` calls eagerly, as constants.

    A model that draws from an explicitly seeded generator in evaluation (the sparse
    attention's fixed permutation) is deterministic by design, but a trace cannot record a
    Generator argument ("Unsupported value kind"). Its draw is therefore made with tracing
    paused, so the trace stores the result. A generator that is not re-seeded would give the
    eager model a different draw at every call, which the comparison in :func:`export_model`
    catches.
    """
    import torch

    def constant_when_seeded(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            if kwargs.get("generator") is None or not torch.jit.is_tracing():
                return function(*args, **kwargs)
            state = torch._C._get_tracing_state()
            torch._C._set_tracing_state(None)
            try:
                return function(*args, **kwargs)
            finally:
                torch._C._set_tracing_state(state)

        return wrapper

    originals = {name: getattr(torch, name) for name in _SEEDED_RANDOM_FUNCTIONS}
    try:
        for name, function in originals.items():
            setattr(torch, name, constant_when_seeded(function))
        yield
    finally:
        for name, function in originals.items():
            setattr(torch, name, function)


def _failing_frame(err: BaseException) -> str:
    """' at FILE:LINE' of the innermost frame outside torch where ``err`` was raised."""
    frames = [
        f
        for f in traceback.extract_tb(err.__traceback__)
        if f"{os.sep}torch{os.sep}" not in f.filename
    ]
    if not frames:
        return ""
    frame = frames[-1]
    parts = Path(frame.filename).parts
    short = "/".join(parts[parts.index("eegattn") :]) if "eegattn" in parts else frame.filename
    return f" (at {short}:{frame.lineno})"


def _graph_nodes(block):
    for node in block.nodes():
        yield node
        for sub in node.blocks():
            yield from _graph_nodes(sub)


def _rewire_device_constants(traced) -> int:
    """Replace ``torch.device("cpu")`` constants by the device of each method's first input.

    A trace turns ``torch.arange(n, device=x.device)`` into a constant CPU device, so the
    archive would build CPU tensors next to CUDA ones on a GPU server. Returns how many
    constants were rewired.
    """
    count = 0
    for module in traced.modules():
        try:
            graph = module.graph
        except (AttributeError, RuntimeError):  # a submodule the forward never called
            continue
        tensor_inputs = [v for v in graph.inputs() if v.type().kind() == "TensorType"]
        for node in list(_graph_nodes(graph)):
            if node.kind() != "prim::Constant" or node.output().type().kind() != "DeviceObjType":
                continue
            if not tensor_inputs:
                continue  # reported by the check that follows
            device = graph.create("prim::device", [tensor_inputs[0]])
            device.output().setType(node.output().type())
            device.insertBefore(node)
            node.output().replaceAllUsesWith(device.output())
            node.destroy()
            count += 1
    return count


def _added_arguments_left_at_default(node, schema: str, n_old: int) -> bool:
    """True when every argument of ``node`` past the first ``n_old`` is a constant equal to
    its schema default (TorchScript then leaves it out of the saved call)."""
    import torch

    arguments = torch._C.parse_schema(schema).arguments
    inputs = list(node.inputs())
    for argument, value in zip(arguments[n_old:], inputs[n_old:]):
        if not argument.has_default_value() or value.node().kind() != "prim::Constant":
            return False
        if value.toIValue() != argument.default_value:
            return False
    return True


def _operator_problems(graph, torch_version: str) -> tuple[list[str], list[str], list[str]]:
    """(operators used, errors, warnings) for loading ``graph`` with torch 2.2."""
    from eegattn.submission.templates.torch22_ops import (
        CHANGED_SINCE_TORCH22,
        NEW_SINCE_TORCH22,
        TORCH_VERSION_COMPARED,
    )

    used, errors, warns = set(), [], []
    for node in _graph_nodes(graph):
        kind = node.kind()
        if kind == "prim::Constant" and node.output().type().kind() == "DeviceObjType":
            errors.append(
                "the trace keeps a fixed device constant that could not be tied to an input; "
                "create tensors with torch.zeros_like / x.new_zeros or register them as buffers"
            )
        if kind.startswith("prim::"):
            continue
        try:
            schema = node.schema()
        except RuntimeError:
            schema = "(no schema)"
        key = kind if schema == "(no schema)" else schema.split("(", 1)[0]
        used.add(key)
        if key in NEW_SINCE_TORCH22:
            errors.append(
                f"operator {key} does not exist in torch 2.2 (the server's version); replace "
                "the layer that uses it"
            )
        elif key in CHANGED_SINCE_TORCH22:
            n_old = CHANGED_SINCE_TORCH22[key]
            if n_old is None:
                warns.append(
                    f"operator {key} is declared differently in torch 2.2 and this call may "
                    "not load there; check with `eegattn validate-submission --python <a "
                    "Python 3.10 + torch 2.2 interpreter>`"
                )
            elif not _added_arguments_left_at_default(node, schema, n_old):
                errors.append(
                    f"the call to {key} passes an argument torch 2.2 does not have (only its "
                    f"first {n_old} exist there); leave the newer arguments at their defaults"
                )
    if not torch_version.startswith(TORCH_VERSION_COMPARED):
        warns.append(
            f"the torch 2.2 operator list was made with torch {TORCH_VERSION_COMPARED}, this is "
            f"torch {torch_version}; operators added since are not checked"
        )
    return sorted(used), sorted(set(errors)), sorted(set(warns))


def _check_inputs(batch: int, n_chans: int, n_times: int, seed: int):
    """Volts-scale random windows (~20 uV) with a flat last channel (like HBN's Cz)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n_chans, n_times, generator=generator) * 20e-6
    x[:, -1] = 0.0
    return x


def export_model(
    model,
    *,
    challenge: int = 1,
    n_chans: int = CHALLENGE_N_CHANS,
    n_times: int = CHALLENGE_N_TIMES,
    n_outputs: int = CHALLENGE_N_OUTPUTS,
    info: dict | None = None,
    batch_sizes: tuple[int, ...] = CHECK_BATCH_SIZES,
    seed: int = 0,
) -> ExportedModel:
    """Trace ``model`` for the server and check the archive; ValueError on any problem.

    Parameters
    ----------
    model : torch.nn.Module
        Takes (batch, n_chans, n_times) float32 volts, returns (batch, n_outputs). Not
        modified (a copy is traced).
    info : dict, optional
        JSON-serialisable description stored in the archive as ``eegattn.json``.
    batch_sizes : tuple of int
        Batch sizes on which the reloaded archive must match the eager model.

    Returns
    -------
    ExportedModel with the archive bytes (``torch.jit.save`` format).
    """
    import torch

    name = f"challenge-{challenge} model"
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"{name}: expected a torch.nn.Module, got {type(model).__name__}")
    eager = _prepare_copy(model)
    example = _check_inputs(2, n_chans, n_times, seed)
    with warnings.catch_warnings(), torch.no_grad(), _seeded_randomness_as_constants():
        # TracerWarnings flag Python-side branching; the comparisons below decide.
        warnings.simplefilter("ignore")
        try:
            traced = torch.jit.trace(eager, example, check_trace=False)
        except Exception as err:  # noqa: BLE001 (tracing raises many types)
            raise ValueError(
                f"{name} ({type(model).__name__}) cannot be traced with torch.jit.trace"
                f"{_failing_frame(err)}: {type(err).__name__}: {str(err).strip()[:300]}. "
                "Under tracing, sizes (x.shape[i], numel()) are tensors: its forward must use "
                "tensor operations, or int() before Python arithmetic on sizes, and no numpy"
            ) from err
    n_rewired = _rewire_device_constants(traced)

    buffer = io.BytesIO()
    extra = {ARCHIVE_INFO_FILE: json.dumps(info or {}, sort_keys=True, default=str)}
    torch.jit.save(traced, buffer, _extra_files=extra)
    archive = buffer.getvalue()
    loaded = torch.jit.load(io.BytesIO(archive), map_location="cpu")

    operators, errors, warns = _operator_problems(loaded.inlined_graph, torch.__version__)
    if n_rewired:
        warns.append(
            f"{n_rewired} fixed device constant(s) in the trace were tied to the input's device"
        )
    max_diff = 0.0
    for i, batch in enumerate(batch_sizes):
        x = _check_inputs(batch, n_chans, n_times, seed + 1 + i)
        with torch.no_grad(), torch.jit.optimized_execution(False):
            want = eager(x)
            got = loaded(x)
            again = loaded(x)
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (batch, n_outputs):
            shape = tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__
            errors.append(
                f"for a batch of {batch} it returns {shape}, the server expects "
                f"({batch}, {n_outputs})"
            )
            break
        if not bool(torch.isfinite(got).all()):
            errors.append(f"it returns NaN or Inf on a batch of {batch} random volts-scale windows")
            break
        if not torch.equal(got, again):
            errors.append(
                "two calls on the same batch give different outputs (randomness left in "
                "evaluation mode, e.g. a random permutation or dropout); make eval() deterministic"
            )
            break
        diff = float((got - want).abs().max())
        scale = float(want.abs().max()) + 1e-6
        max_diff = max(max_diff, diff)
        if diff > 1e-4 * scale + 1e-5:
            errors.append(
                f"the traced model differs from the eager model by {diff:.3g} on a batch of "
                f"{batch} (outputs up to {scale:.3g}); its forward branches on data or on the "
                "batch size, which a trace freezes; make that branch tensor-only"
            )
            break
    if errors:
        raise ValueError(f"cannot export the {name} ({type(model).__name__}): " + "; ".join(errors))
    return ExportedModel(
        challenge=challenge,
        archive=archive,
        info=dict(info or {}),
        max_abs_diff=max_diff,
        operators=operators,
        warnings=warns,
    )


# ---------------------------------------------------------------------------------------------
# zip


def _submission_source(models: dict[int, dict]) -> str:
    template = resources.files("eegattn.submission.templates").joinpath("submission.py")
    source = template.read_text(encoding="utf-8")
    lines = []
    for k, info in sorted(models.items()):
        opts = info.get("model_options") or {}
        opt_text = ", ".join(f"{key}={value!r}" for key, value in sorted(opts.items()))
        line = f"- challenge {k}: {info.get('model', '?')}"
        if opt_text:
            line += f" ({opt_text})"
        line += f"; run {info.get('run', '?')}"
        # keep the docstring a plain string literal
        lines.append(line.replace("\\", "/").replace('"""', "'''"))
    return source.replace("__EEGATTN_MODELS__", "\n".join(lines))


def _zip_entry(name: str) -> zipfile.ZipInfo:
    entry = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
    entry.compress_type = zipfile.ZIP_DEFLATED
    entry.external_attr = 0o644 << 16
    return entry


def _check_out_path(out_zip: Path, force: bool) -> None:
    if out_zip.suffix.lower() != ".zip":
        raise ValueError(f"output {out_zip} must end in .zip (e.g. -o submission.zip)")
    if out_zip.exists() and not force:
        raise FileExistsError(
            f"{out_zip} already exists; choose another -o path or pass --force (force=True) to "
            "replace it"
        )
    if out_zip.is_dir():
        raise FileExistsError(f"{out_zip} is a folder; give a file name ending in .zip")


def write_submission_zip(
    exported: dict[int, ExportedModel], out_zip: str | os.PathLike, *, force: bool = False
) -> PackageResult:
    """Write the flat zip: ``submission.py``, both weight archives and ``manifest.json``.

    Written to a temporary file in the destination folder, then renamed; an existing zip is
    replaced only with ``force=True``.
    """
    import torch

    from eegattn import __version__

    out_zip = Path(out_zip)
    if sorted(exported) != [1, 2]:
        raise ValueError(f"need exported models for challenges 1 and 2, got {sorted(exported)}")
    _check_out_path(out_zip, force)
    out_zip.parent.mkdir(parents=True, exist_ok=True)

    models = {k: e.info for k, e in exported.items()}
    manifest = {
        "format": 1,
        "packed_by": f"eegattn {__version__}",
        "torch_version": torch.__version__,
        "input": {
            "shape": ["batch", CHALLENGE_N_CHANS, CHALLENGE_N_TIMES],
            "sfreq": CHALLENGE_SFREQ,
            "units": "volts",
        },
        "models": {
            str(k): {
                **e.info,
                "file": WEIGHT_FILES[k],
                "sha256": hashlib.sha256(e.archive).hexdigest(),
                "operators": e.operators,
                "max_abs_diff_vs_eager": e.max_abs_diff,
            }
            for k, e in sorted(exported.items())
        },
    }
    contents = {
        SUBMISSION_FILE: _submission_source(models).encode("utf-8"),
        WEIGHT_FILES[1]: exported[1].archive,
        WEIGHT_FILES[2]: exported[2].archive,
        MANIFEST_FILE: (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8"),
    }
    try:  # an existing zip is replaced only with force, even if it appeared meanwhile
        with atomic_path(out_zip, overwrite=force) as tmp:
            with zipfile.ZipFile(tmp, "w") as zf:
                for name, data in contents.items():
                    zf.writestr(_zip_entry(name), data)
    except FileExistsError:
        raise FileExistsError(
            f"{out_zip} already exists; choose another -o path or pass --force (force=True) to "
            "replace it"
        ) from None
    warns = [f"challenge {k}: {w}" for k, e in sorted(exported.items()) for w in e.warnings]
    return PackageResult(
        path=out_zip,
        size_bytes=out_zip.stat().st_size,
        files=list(contents),
        models=models,
        warnings=warns,
    )


def package_models(
    model_c1,
    model_c2,
    out_zip: str | os.PathLike,
    *,
    force: bool = False,
    info_c1: dict | None = None,
    info_c2: dict | None = None,
    check_batch_sizes: tuple[int, ...] = CHECK_BATCH_SIZES,
) -> PackageResult:
    """Pack two in-memory models (each (batch, 129, 200) volts -> (batch, 1)) into a zip."""
    _check_out_path(Path(out_zip), force)
    exported = {}
    for k, model, info in ((1, model_c1, info_c1), (2, model_c2, info_c2)):
        info = dict(info or {})
        info.setdefault("model", type(model).__name__)
        info.setdefault("n_parameters", sum(p.numel() for p in model.parameters()))
        exported[k] = export_model(model, challenge=k, info=info, batch_sizes=check_batch_sizes)
    return write_submission_zip(exported, out_zip, force=force)


def package_submission(
    run_c1: str | os.PathLike,
    run_c2: str | os.PathLike,
    out_zip: str | os.PathLike,
    force: bool = False,
    *,
    check_batch_sizes: tuple[int, ...] = CHECK_BATCH_SIZES,
) -> PackageResult:
    """Build the challenge's flat submission zip from two run folders.

    Parameters
    ----------
    run_c1, run_c2 : path
        Run folders of a challenge-1 and a challenge-2 training (``config.json`` +
        ``weights.pt``, see ``eegattn.training.runs``). Each must be trained on 129 channels x
        200 samples at 100 Hz with one output, for its own challenge.
    out_zip : path
        Zip to write (``.zip``). Never overwritten unless ``force=True``, which replaces it
        atomically.
    check_batch_sizes : tuple of int
        Batch sizes on which each exported model must match its eager model.

    Returns
    -------
    PackageResult (path, size, files, per-model info, warnings).
    """
    from eegattn.training.runs import load_run

    out_zip = Path(out_zip)
    _check_out_path(out_zip, force)
    configs = {}
    for k, run in ((1, run_c1), (2, run_c2)):
        configs[k] = read_run_config(run)
        check_run_config(configs[k], k, run)
    exported = {}
    for k, run in ((1, run_c1), (2, run_c2)):
        model, config = load_run(run)
        info = {
            "run": Path(run).resolve().name,
            "model": config.get("model"),
            "model_options": config.get("model_options") or {},
            "challenge": k,
            "seed": config.get("seed"),
            "cache_key": config.get("cache_key"),
            "trained_with": config.get("versions"),
            "n_parameters": sum(p.numel() for p in model.parameters()),
        }
        exported[k] = export_model(model, challenge=k, info=info, batch_sizes=check_batch_sizes)
    return write_submission_zip(exported, out_zip, force=force)
