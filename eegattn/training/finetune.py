"""Starting weights (``init``) and fine-tuning choices (``finetune``) for the estimator.

``init`` names where a model's starting weights come from:

``hf:ORG/NAME``
    a Hugging Face hub repository written by braindecode's ``push_to_hub`` /
    ``save_pretrained`` (``config.json`` + ``model.safetensors``), taken from the local hub
    cache or downloaded. Without a network the error says so in one line, and how to use a
    local folder instead.
a local folder, one of
    - what braindecode's ``save_pretrained`` writes (``config.json`` with
      ``braindecode_version`` + ``model.safetensors`` or ``pytorch_model.bin``): weights of a
      foundation *backbone*, read with the backbone class's ``from_pretrained`` and copied
      into :class:`~eegattn.models.foundation.FoundationRegressor`'s backbone;
    - an ``eegattn pretrain`` output folder (``pretrain.json``, run-format ``config.json``,
      ``weights.pt``): every weight of the model except its read-out (``pool``) and head;
    - an ``eegattn train`` run folder: every weight, head included (same task, more data).

``finetune`` says what trains afterwards: ``"full"`` (everything), ``"frozen"`` (the head
and read-out only; the backbone's weights do not change) or ``"lora"`` (low-rank adapters on
the backbone's linear layers through the ``peft`` library, plus the head). LoRA adapters are
merged into the weights when training ends, so a fitted model has its plain architecture:
it saves, loads, pickles and exports like any other.

Only the standard library is imported at module level; torch, huggingface_hub and peft inside
the functions.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "FINETUNE_MODES",
    "LORA_DEFAULTS",
    "InitSource",
    "resolve_init",
    "init_model_options",
    "load_init",
    "head_module_names",
    "prepare_finetune",
    "finish_finetune",
    "check_lora_options",
    "warn_pretrained_on",
    "PretrainedOnTestWarning",
]

FINETUNE_MODES = ("full", "frozen", "lora")
#: peft ``LoraConfig`` options the estimator accepts, with their defaults
LORA_DEFAULTS = {"r": 8, "alpha": 16, "dropout": 0.0}
HUB_PREFIX = "hf:"
PRETRAIN_MARKER = "pretrain.json"
BRAINDECODE_WEIGHTS = ("model.safetensors", "pytorch_model.bin")
#: submodules that read the prediction out of the features (never taken from a pretraining
#: folder, always trained; the rest of a model is its backbone)
HEAD_MODULES = ("pool", "head", "time_head", "eegnex.final_layer")
#: backbone parameters that are position tables over time: a longer pretrained table is cut
#: to the model's length (first rows kept) instead of refused
_TIME_TABLES = ("temporal_embedding",)
#: which foundation backbone a braindecode config.json describes, by a key only it has
_BACKBONE_KEYS = (("n_chans_pos", "steegformer"), ("channels_kernel_stride_padding_norm",
                  "cbramod"), ("neural_tokenizer", "labram"), ("conv_out_channels", "labram"))


@dataclass
class InitSource:
    """A resolved ``init``: what kind of folder, where, and what it says about the model."""

    spec: str  # what the user gave
    path: Path
    kind: str  # "braindecode" | "pretrain" | "run"
    model: str | None = None  # registry name (eegattn folders) or foundation preset
    model_options: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)  # the folder's config.json


# --------------------------------------------------------------------------- resolving


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the hub's host answers a TCP connection (a proxy counts as reachable)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY")):
        return True
    from urllib.parse import urlparse

    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _hub_folder(repo_id: str) -> Path:
    """A local snapshot of hub repo ``repo_id``: from the hub cache, else downloaded."""
    import huggingface_hub
    from huggingface_hub import snapshot_download

    with contextlib.suppress(Exception):  # not cached: fall through to a download
        return Path(snapshot_download(repo_id, local_files_only=True))
    offline = bool(getattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False))
    if offline or not _hub_reachable():
        why = "HF_HUB_OFFLINE is set" if offline else "the Hugging Face hub cannot be reached"
        raise ValueError(
            f"--init hf:{repo_id}: {why} from this machine and the repository is not in the "
            "local hub cache, so nothing can be downloaded here; on a machine with a network "
            f"run `hf download {repo_id} --local-dir DIR`, copy DIR here and pass --init DIR"
        )
    try:
        return Path(snapshot_download(repo_id))
    except Exception as err:  # noqa: BLE001 - any hub error becomes one line
        raise ValueError(
            f"--init hf:{repo_id}: the download failed ({type(err).__name__}: "
            f"{' '.join(str(err).split())[:200]}); check the repository name, or download it "
            "elsewhere and pass --init DIR"
        ) from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(
            f"{path} is not readable JSON ({err}); the --init folder is damaged"
        ) from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} holds a {type(data).__name__}, not a JSON object")
    return data


def resolve_init(init) -> InitSource:
    """Find what ``init`` (``hf:ORG/NAME`` or a folder) holds; nothing heavy is loaded.

    Raises ``ValueError`` / ``FileNotFoundError`` with one line that names the problem and the
    fix: a missing folder, a folder of another kind, a hub id without a network.
    """
    if not isinstance(init, (str, os.PathLike)):
        raise ValueError(f"init must be 'hf:ORG/NAME' or a folder path, got {init!r}")
    spec = os.fspath(init)
    if spec.startswith(HUB_PREFIX):
        repo_id = spec[len(HUB_PREFIX):]
        if repo_id.count("/") != 1 or not all(repo_id.split("/")):
            raise ValueError(f"--init {spec}: a hub id reads hf:ORG/NAME, e.g. "
                             "hf:braindecode/STEEGFormer-small")
        path = _hub_folder(repo_id)
    else:
        path = Path(spec).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"--init {spec}: no such folder; give a folder written by `eegattn pretrain`, "
                "`eegattn train` or braindecode's save_pretrained, or hf:ORG/NAME"
            )
        if not path.is_dir():
            raise ValueError(f"--init {spec} is a file; give the folder that holds it "
                             "(config.json + weights)")
    config_path = path / "config.json"
    if not config_path.is_file():
        raise ValueError(
            f"--init {spec}: {path} has no config.json; give a folder written by `eegattn "
            "pretrain`, `eegattn train` or braindecode's save_pretrained"
        )
    config = _read_json(config_path)
    if (path / "weights.pt").is_file() and "model" in config:
        kind = "pretrain" if (path / PRETRAIN_MARKER).is_file() else "run"
        return InitSource(spec, path, kind, model=str(config["model"]),
                          model_options=dict(config.get("model_options") or {}), config=config)
    if any((path / name).is_file() for name in BRAINDECODE_WEIGHTS):
        backbone = next((name for key, name in _BACKBONE_KEYS if key in config), None)
        return InitSource(spec, path, "braindecode", model=backbone, config=config)
    raise ValueError(
        f"--init {spec}: {path} has a config.json but no weights (weights.pt, "
        f"{' or '.join(BRAINDECODE_WEIGHTS)}); the folder is incomplete"
    )


def _backbone_options(source: InitSource, backbone: str) -> dict:
    """Architecture options of a braindecode checkpoint: its config.json's values of the
    backbone class's own parameters that differ from the class defaults (signal arguments,
    type-valued options and the montage-specific channel slots left out)."""
    import inspect

    from eegattn.models.foundation import BACKBONES, SIGNAL_ARGS, backbone_class

    spec = BACKBONES[backbone]
    params = inspect.signature(backbone_class(spec, "pretrained_class").__init__).parameters
    options = {}
    for key, value in source.config.items():
        p = params.get(key)
        if p is None or key in SIGNAL_ARGS or key in ("chan_pos_idx", "return_encoder_output"):
            continue
        if isinstance(p.default, type) or isinstance(value, str) and "." in value:
            continue  # an activation or norm class, stored as an import path
        default = p.default
        if isinstance(default, tuple):
            default = json.loads(json.dumps(default))
        if value != default:
            options[key] = value
    if spec.channels == "vocabulary":
        idx = source.config.get("chan_pos_idx")
        vocabulary = source.path / "steegformer_channels.json"
        if isinstance(idx, list) and len(idx) == 129:
            if idx != list(range(129)):  # the adapter's own default otherwise
                options["chan_pos_idx"] = idx  # saved from a model of the HBN cap
        elif vocabulary.is_file():
            from eegattn.models.foundation import nearest_vocabulary_slots

            names = json.loads(vocabulary.read_text(encoding="utf-8"))
            options["chan_pos_idx"] = nearest_vocabulary_slots(list(names))
    return options


def init_model_options(model, model_options, source: InitSource) -> tuple[str, dict | None]:
    """The model name and options to build so that ``source``'s weights fit.

    ``model=None`` takes the folder's model (or, for a braindecode checkpoint, the foundation
    preset its config describes). The folder's architecture options come first and the
    caller's ``model_options`` override them. A model that cannot take the weights is
    refused with the fix.
    """
    from eegattn.models import preset

    given = dict(model_options or {})
    if source.kind in ("pretrain", "run"):
        if model is None:
            model = source.model
        if preset(model)[0] != preset(source.model)[0]:
            raise ValueError(
                f"--init {source.spec} holds weights of model {source.model!r}, not "
                f"{model!r}; pass --model {source.model} (or leave --model out)"
            )
        return model, {**source.model_options, **given} or None
    # a braindecode checkpoint: only a foundation model can take it
    if model is None:
        if source.model is None:
            raise ValueError(
                f"--init {source.spec}: cannot tell which backbone its config.json describes; "
                "pass --model steegformer, cbramod or labram"
            )
        model = source.model
    base, defaults = preset(model)
    if base != "foundation":
        raise ValueError(
            f"--init {source.spec} holds braindecode backbone weights; use a foundation model "
            f"(--model steegformer, cbramod or labram), not {model!r}"
        )
    backbone = given.get("backbone", defaults.get("backbone", "steegformer"))
    if source.model is not None and source.model != backbone:
        raise ValueError(
            f"--init {source.spec} holds {source.model} weights but the model's backbone is "
            f"{backbone!r}; pass --model {source.model}"
        )
    options = {**defaults, **given}
    options["backbone_options"] = {**_backbone_options(source, backbone),
                                   **dict(given.get("backbone_options") or {})}
    return model, options


class PretrainedOnTestWarning(UserWarning):
    """The ``--init`` folder was pretrained on windows of subjects the run tests on."""


def warn_pretrained_on(source: InitSource, test_subjects) -> int:
    """Warn when ``source`` (an ``eegattn pretrain`` folder) trained on windows of any of
    ``test_subjects`` (their other tasks, without targets: transductive, not what a hidden
    test set allows). Returns how many test subjects it saw."""
    import warnings

    if source.kind != "pretrain":
        return 0
    info = _read_json(source.path / PRETRAIN_MARKER)
    seen = set(map(str, info.get("train_subjects", []))) | set(
        map(str, info.get("heldout_subjects", [])))
    test = {str(s) for s in test_subjects}
    overlap = sorted(seen & test)
    if overlap:
        warnings.warn(
            f"--init {source.spec} was pretrained on windows of {len(overlap)} of the "
            f"{len(test)} test subjects (e.g. {overlap[0]}); their test score is optimistic. "
            "Pretrain with --exclude-subjects <the test subjects> for a fair test",
            PretrainedOnTestWarning, stacklevel=2,
        )
    return len(overlap)


# --------------------------------------------------------------------------- loading


def head_module_names(module) -> list[str]:
    """Names of ``module``'s read-out and head submodules (:data:`HEAD_MODULES` that exist);
    without any, the last ``nn.Linear``."""
    from torch import nn

    names = [n for n in HEAD_MODULES if _get_submodule(module, n) is not None]
    if names:
        return names
    last = [n for n, m in module.named_modules() if isinstance(m, nn.Linear)]
    if not last:
        raise ValueError(f"{type(module).__name__} has no head or linear layer to fine-tune")
    return last[-1:]


def _get_submodule(module, name: str):
    try:
        sub = module.get_submodule(name)
    except AttributeError:
        return None
    from torch import nn

    return None if isinstance(sub, nn.Identity) else sub


def _in_head(key: str, heads: list[str]) -> bool:
    return any(key == h or key.startswith(h + ".") for h in heads)


def _copy_matching(target, state: dict, *, skip=(), what: str) -> dict:
    """Copy ``state``'s tensors into ``target``'s state dict where names match; shapes must
    match (time tables may be cut). Returns counts; raises when nothing or a wrong shape."""
    import torch

    own = target.state_dict()
    loaded, cut, mismatched = {}, [], []
    for key, value in state.items():
        if key not in own or _in_head(key, list(skip)):
            continue
        want = own[key].shape
        if value.shape != want:
            if (key.rsplit(".", 1)[-1] in _TIME_TABLES and value.dim() == len(want)
                    and value.shape[1] >= want[1] and value.shape[2:] == want[2:]):
                value = value[:, : want[1]]
                cut.append(key)
            else:
                mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(want)}")
                continue
        loaded[key] = value.to(dtype=own[key].dtype)
    if mismatched:
        raise ValueError(
            f"{what} does not fit the model: {len(mismatched)} weight(s) differ in shape "
            f"({'; '.join(mismatched[:3])}); build the model with the options the weights were "
            "trained with (eegattn train --init reads them from the folder when --model-options "
            "is left out)"
        )
    if not loaded:
        raise ValueError(f"{what} shares no weight names with the model; it was saved from "
                         "another architecture")
    with torch.no_grad():
        target.load_state_dict(loaded, strict=False)
    n_target = sum(1 for k in own if not _in_head(k, list(skip)))
    return {"loaded": len(loaded), "of": n_target, "cut_time_tables": cut}


def load_init(module, source: InitSource) -> dict:
    """Put ``source``'s weights into ``module`` (in place) and return what was loaded
    (``loaded`` tensors ``of`` the model's, outside the head for pretraining folders)."""
    import torch

    if source.kind in ("pretrain", "run"):
        try:
            state = torch.load(source.path / "weights.pt", map_location="cpu",
                               weights_only=True)
        except Exception as err:  # noqa: BLE001 - a damaged file becomes one line
            raise ValueError(f"{source.path / 'weights.pt'} cannot be read "
                             f"({type(err).__name__}); the --init folder is damaged") from None
        skip = head_module_names(module) if source.kind == "pretrain" else ()
        report = _copy_matching(module, state, skip=skip, what=f"--init {source.spec}")
        return {"kind": source.kind, **report}
    from eegattn.models.foundation import (
        BACKBONES,
        FoundationRegressor,
        backbone_class,
        quiet_braindecode,
    )

    if not isinstance(module, FoundationRegressor):
        raise ValueError(f"--init {source.spec} holds braindecode backbone weights; use a "
                         "foundation model (steegformer, cbramod, labram)")
    cls = backbone_class(BACKBONES[module.backbone_name], "pretrained_class")
    try:
        with quiet_braindecode(), contextlib.redirect_stdout(io.StringIO()):
            pretrained = cls.from_pretrained(str(source.path), local_files_only=True)
    except Exception as err:  # noqa: BLE001 - braindecode's errors vary by class
        raise ValueError(
            f"--init {source.spec}: {cls.__name__}.from_pretrained could not read the folder "
            f"({type(err).__name__}: {' '.join(str(err).split())[:200]})"
        ) from None
    state = {k: v for k, v in pretrained.state_dict().items()
             if not k.startswith("final_layer.")}
    report = _copy_matching(module.backbone, state, what=f"--init {source.spec}")
    return {"kind": source.kind, **report}


# --------------------------------------------------------------------------- fine-tuning


def check_lora_options(options) -> dict:
    """``lora_options`` with defaults: ``r`` (rank), ``alpha`` (scale numerator),
    ``dropout`` (on the adapter input)."""
    from eegattn.utils.check import check_fraction, check_positive_int, check_positive_number

    if options is not None and not isinstance(options, dict):
        raise ValueError(f"lora_options must be a dict such as {{'r': 8}}, got {options!r}")
    out = {**LORA_DEFAULTS, **(options or {})}
    unknown = sorted(set(out) - set(LORA_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown lora option(s) {', '.join(map(repr, unknown))}; valid: "
                         f"{', '.join(LORA_DEFAULTS)}")
    check_positive_int(out["r"], "lora r")
    check_positive_number(out["alpha"], "lora alpha")
    check_fraction(out["dropout"], "lora dropout", low_inclusive=True)
    return out


def _lora_targets(module, heads: list[str]) -> list[str]:
    """Full names of the backbone's ``nn.Linear`` layers that a forward calls as modules
    (``nn.MultiheadAttention`` reads its ``out_proj`` weight directly: left out)."""
    from torch import nn

    parents = {n for n, m in module.named_modules() if isinstance(m, nn.MultiheadAttention)}
    names = []
    for name, sub in module.named_modules():
        if not isinstance(sub, nn.Linear) or _in_head(name, heads):
            continue
        if name.rpartition(".")[0] in parents:
            continue
        names.append(name)
    return names


def prepare_finetune(module, finetune: str = "full", lora_options=None):
    """Set what trains: returns the module to train (``module`` itself, or for ``"lora"`` a
    ``peft`` model around it). ``frozen``: parameters outside the head stop requiring
    gradients. ``lora``: ``peft`` adds rank-``r`` adapters to the backbone's linear layers and
    freezes the rest except the head (``modules_to_save``)."""
    from eegattn.utils.check import check_option

    check_option("finetune", finetune, FINETUNE_MODES)
    heads = head_module_names(module)
    if finetune == "full":
        return module
    if finetune == "frozen":
        for name, p in module.named_parameters():
            p.requires_grad_(_in_head(name, heads))
        return module
    options = check_lora_options(lora_options)
    targets = _lora_targets(module, heads)
    if not targets:
        raise ValueError(f"finetune='lora' needs linear layers outside the head, and "
                         f"{type(module).__name__} has none; use finetune='full' or 'frozen'")
    import peft

    config = peft.LoraConfig(r=int(options["r"]), lora_alpha=options["alpha"],
                             lora_dropout=float(options["dropout"]),
                             target_modules=targets, modules_to_save=heads)
    return peft.get_peft_model(module, config)


def finish_finetune(module):
    """The trained model with its plain architecture: LoRA adapters merged into the weights
    (``merge_and_unload``), every parameter trainable again."""
    merge = getattr(module, "merge_and_unload", None)
    if callable(merge):
        module = merge()
    for p in module.parameters():
        p.requires_grad_(True)
    return module
