"""Run folders: the manifest that challenge pipelines write and the submission packager reads.

A run folder ``<root>/<name>-YYYYmmdd-HHMMSS[-N]`` is always new (never an earlier run's) and
holds, once :func:`save_run` has finished:

``weights.pt``
    the model's ``state_dict`` (CPU tensors; loads with ``torch.load(weights_only=True)``).
``metrics.json``
    whatever the pipeline measured (NRMSE, mean predictor, oracle, ...).
``history.json``
    per-epoch training history, when the estimator has one.
``config.json``
    written last, so its presence marks a complete run. Keys: ``format``, ``model`` (registry
    name or ``module:Class``), ``model_options``, ``n_chans``, ``n_times`` (model input length),
    ``window_n_times``, ``sfreq``, ``n_outputs``, ``challenge``, ``seed``, ``cache_key``,
    ``split`` (the subject split, e.g. ``SubjectSplit.to_dict()``), ``estimator`` (its
    parameters), ``valid_split`` (the estimator's own early-stopping split), ``versions``
    (package versions), ``created``; plus any other keys the caller passes in ``config``.

Every file is written to a temporary name in the folder and renamed, so a killed process never
leaves a half-written file under a final name.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from eegattn.utils.io import write_json_atomic

__all__ = [
    "RUN_FORMAT",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "METRICS_NAME",
    "HISTORY_NAME",
    "check_run_name",
    "create_run_dir",
    "save_run",
    "load_run",
    "load_metrics",
    "package_versions",
]

RUN_FORMAT = 1
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "weights.pt"
METRICS_NAME = "metrics.json"
HISTORY_NAME = "history.json"
#: keys that describe how to rebuild the model; a caller's config may not contradict them
STRUCTURAL_KEYS = ("model", "model_options", "n_chans", "n_times", "sfreq", "n_outputs")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSIONED = ("eegattn", "torch", "numpy", "scikit-learn", "braindecode", "mne", "eegdash",
              "pandas")


def check_run_name(name) -> str:
    """A run name is one folder name inside the runs folder: no path separators, no '..'."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"run name {name!r} must start with a letter or digit and use only letters, "
            "digits, '.', '_' and '-' (it names one folder inside the runs folder)"
        )
    return name


def create_run_dir(root: str | os.PathLike, name: str) -> Path:
    """Create and return a new folder ``<root>/<name>-YYYYmmdd-HHMMSS`` (``-2``, ``-3``, ...
    appended on collision). Never reuses an existing folder; ``root`` is created if needed."""
    check_run_name(name)
    root = Path(root)
    if root.exists() and not root.is_dir():
        raise ValueError(f"run root {root} exists and is not a folder; choose another root")
    root.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = f"{name}-{stamp}"
    for k in range(1, 10_000):
        candidate = root / (base if k == 1 else f"{base}-{k}")
        try:
            candidate.mkdir(exist_ok=False)
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not find a free run folder name for {base} in {root}")


def package_versions() -> dict:
    """Versions of Python and the packages a run depends on (None where not installed)."""
    versions = {"python": platform.python_version()}
    for dist in _VERSIONED:
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return versions


# --------------------------------------------------------------------------- JSON helpers


def _jsonable(value, where: str):
    """Plain JSON value: numpy scalars/arrays unwrapped, paths as str, NaN/Inf as None."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist(), where)
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise ValueError(
        f"{where} = {value!r} ({type(value).__name__}) cannot be stored in JSON; pass numbers, "
        "strings, lists or dicts"
    )


def _write_json(path: Path, obj) -> None:
    write_json_atomic(path, obj)  # NaN / Inf were already turned into None by _jsonable


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; {what}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); the run folder is damaged") from exc
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


# --------------------------------------------------------------------------- save / load


def _describe_estimator(est) -> tuple:
    """(module, structural config, extra config, history) of a fitted EEGAttentionRegressor."""
    from eegattn.training.estimator import model_spec

    module = getattr(est, "model_", None)
    if module is None:
        raise ValueError("the estimator is not fitted; call fit before save_run")
    params = est.get_params(deep=False)
    if not isinstance(params.get("model"), str):
        # a class is rebuilt from its import path; an instance cannot be rebuilt from JSON
        if not isinstance(params.get("model"), type):
            raise ValueError(
                "save_run needs an estimator whose model is a registry name or a class "
                "(an nn.Module instance cannot be rebuilt by load_run)"
            )
    fitted_model, fitted_options = est.fitted_model_spec() if hasattr(
        est, "fitted_model_spec") else (params["model"], params.get("model_options"))
    structural = {
        "model": model_spec(fitted_model),  # "ensemble" after fit(ensemble=K > 1)
        "model_options": dict(fitted_options or {}),
        "n_chans": int(est.n_chans_),
        "n_times": int(est.input_n_times_),
        "sfreq": float(est.sfreq_),
        "n_outputs": int(getattr(est, "n_outputs_", 1)),
    }
    estimator_params = {
        k: (model_spec(v) if k == "model" else v)
        for k, v in params.items()
        if k not in ("checkpoint_dir",)
    }
    extra = {
        "window_n_times": int(est.n_times_),
        "challenge": getattr(est, "challenge_", None),
        "seed": getattr(est, "seed_", params.get("seed")),
        "cache_key": getattr(est, "cache_key_", None),
        "estimator": estimator_params,
        "valid_split": {
            "kind": getattr(est, "valid_split_", None),
            "valid_subjects": getattr(est, "valid_subjects_", None),
            "folds": getattr(est, "ensemble_folds_", None),
            "n_train": getattr(est, "n_train_", None),
            "n_valid": getattr(est, "n_valid_", None),
            "best_epoch": getattr(est, "best_epoch_", None),
        },
    }
    return module, structural, extra, getattr(est, "history_", None)


def _describe_module(module, config: dict) -> tuple:
    """(module, structural config, extra, None) of a bare nn.Module, reading EEGModuleMixin
    attributes (n_chans, n_times, n_outputs, sfreq) where the config does not give them."""
    if "model" not in config:
        raise ValueError(
            "saving a bare nn.Module needs config['model'] (its registry name, e.g. "
            "'lightweight', or 'module:Class') so load_run can rebuild it"
        )
    structural = {
        "model": config["model"],
        "model_options": dict(config.get("model_options") or {}),
    }
    for key in ("n_chans", "n_times", "n_outputs", "sfreq"):
        value = config.get(key)
        if value is None:
            try:
                value = getattr(module, key)
            except (AttributeError, ValueError):
                value = None
        if value is None:
            raise ValueError(f"config[{key!r}] is required to save this model")
        structural[key] = float(value) if key == "sfreq" else int(value)
    return module, structural, {}, None


def save_run(run_dir, obj, config: dict | None = None, metrics: dict | None = None, *,
             history: list | None = None, force: bool = False) -> Path:
    """Write ``weights.pt``, ``metrics.json``, ``history.json`` and ``config.json`` into
    ``run_dir`` (from :func:`create_run_dir`).

    ``obj`` is a fitted ``EEGAttentionRegressor`` (model and shapes read from it) or an
    ``nn.Module`` (then ``config`` must name the ``model``; shapes come from ``config`` or the
    module's braindecode attributes). ``config`` adds keys (challenge, cache_key, split, ...)
    but may not contradict the model description. ``history`` overrides the estimator's.
    Existing files are refused unless ``force=True``. Returns ``run_dir``.
    """
    from torch import nn

    from eegattn.training.checkpoint import atomic_torch_save

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(
            f"run folder {run_dir} does not exist; create it with create_run_dir"
        )
    config = dict(config or {})
    metrics = dict(metrics or {})
    if isinstance(obj, nn.Module):
        module, structural, extra, est_history = _describe_module(obj, config)
    elif hasattr(obj, "get_params"):
        module, structural, extra, est_history = _describe_estimator(obj)
    else:
        raise ValueError(
            "save_run needs a fitted EEGAttentionRegressor or an nn.Module, got "
            f"{type(obj).__name__}"
        )
    for key in STRUCTURAL_KEYS:
        if key in config and _jsonable(config[key], key) != _jsonable(structural[key], key):
            raise ValueError(
                f"config[{key!r}] = {config[key]!r} contradicts the model ({structural[key]!r}); "
                "leave it out, it is read from the model"
            )
    history = history if history is not None else est_history
    full = {
        "format": RUN_FORMAT,
        **structural,
        "window_n_times": structural["n_times"],
        "challenge": None,
        "seed": None,
        "cache_key": None,
        "split": None,
        **extra,
        **{k: v for k, v in config.items() if k not in STRUCTURAL_KEYS},
        "versions": package_versions(),
        "created": _dt.datetime.now().isoformat(timespec="seconds"),
    }
    full = _jsonable(full, "config")
    metrics = _jsonable(metrics, "metrics")
    history = None if history is None else _jsonable(list(history), "history")

    targets = [WEIGHTS_NAME, METRICS_NAME, CONFIG_NAME] + ([HISTORY_NAME] if history else [])
    existing = [name for name in targets if (run_dir / name).exists()]
    if existing and not force:
        raise FileExistsError(
            f"{run_dir} already holds {', '.join(existing)}; use a new folder from "
            "create_run_dir, or force=True to overwrite"
        )
    state = {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}
    atomic_torch_save(state, run_dir / WEIGHTS_NAME)
    _write_json(run_dir / METRICS_NAME, metrics)
    if history:
        _write_json(run_dir / HISTORY_NAME, history)
    _write_json(run_dir / CONFIG_NAME, full)  # last: marks the run complete
    return run_dir


def load_metrics(run_dir) -> dict:
    """The run's ``metrics.json``."""
    return _read_json(Path(run_dir) / METRICS_NAME, "the run has no metrics")


def load_run(run_dir, *, device: str = "cpu"):
    """Rebuild a run's model: returns ``(model, config)``, the model in eval mode on ``device``.

    Raises ``FileNotFoundError`` for a missing folder / config / weights and ``ValueError`` for
    damaged files or weights that do not fit the model described in ``config.json``.
    """
    import torch

    from eegattn.training.estimator import instantiate_model, resolve_device

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist")
    config = _read_json(run_dir / CONFIG_NAME, "the run is incomplete or not a run folder")
    missing = [k for k in STRUCTURAL_KEYS if k not in config]
    if missing:
        raise ValueError(f"{run_dir / CONFIG_NAME} lacks {', '.join(missing)}; it is damaged")
    weights_path = run_dir / WEIGHTS_NAME
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path} not found; the run folder is incomplete")
    dev = resolve_device(device)
    # One line for a damaged file: torch's own message is a paragraph about weights_only and
    # trusted sources, which is no use here (eegattn only ever writes plain state dicts).
    damaged = (f"{WEIGHTS_NAME} in {run_dir} cannot be read: it is not a PyTorch state dict "
               "(damaged or not written by eegattn); re-train or restore the run folder")
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4" before failing
            warnings.simplefilter("ignore")
            state = torch.load(weights_path, map_location=dev, weights_only=True)
    except Exception as exc:  # damaged zip, truncated file, pickled objects
        raise ValueError(damaged) from exc
    if not isinstance(state, dict):
        raise ValueError(damaged)
    options = config.get("model_options") or {}
    old = _time_head_kernel_1(config["model"], options, state)
    if old != options:  # a time head saved before heads read a span of tokens: kernel 1
        warnings.warn(f"{run_dir} was trained before time heads read a span of tokens; "
                      "loading its head as head_options={'kernel': 1}", stacklevel=2)
        options = config["model_options"] = old
    model = instantiate_model(
        config["model"], options, n_chans=int(config["n_chans"]),
        n_times=int(config["n_times"]), sfreq=float(config["sfreq"]),
        n_outputs=int(config["n_outputs"]),
    )
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"{weights_path} does not match the model described in config.json: {exc}"
        ) from exc
    return model.to(dev).eval(), config


def _time_head_kernel_1(model: str, options: dict, state: dict, prefix: str = "") -> dict:
    """``options`` with ``head_options["kernel"] = 1`` where the weights under ``prefix`` hold
    a one-layer token scorer (``token_logit.weight``) and the options give no kernel: the time
    heads' layout before the kernel option existed. An ensemble's members are read one by
    one (``members.<k>.``): a mixed ensemble may hold members without a time head."""
    if model == "ensemble":
        members = [{**m, "model_options": _time_head_kernel_1(
            m["model"], m.get("model_options") or {}, state, f"{prefix}members.{k}.")}
            for k, m in enumerate(options.get("members", []))]
        return {**options, "members": members}
    head_options = options.get("head_options") or {}
    old_layout = any(key.startswith(prefix) and (key == f"{prefix}token_logit.weight"
                                                 or key.endswith(".token_logit.weight"))
                     for key in state)
    if not old_layout or "kernel" in head_options:
        return options
    return {**options, "head_options": {**head_options, "kernel": 1}}
