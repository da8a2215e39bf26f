"""``EEGAttentionRegressor``: a scikit-learn regressor that trains the project's EEG models.

Design: plain PyTorch under scikit-learn's ``BaseEstimator`` + ``RegressorMixin`` rather than
skorch or braindecode's ``EEGRegressor``. Two requirements decided it:

* exact resume after SIGKILL *mid-epoch* needs the data order, the step within the epoch and
  the RNG states in the checkpoint; skorch's ``Checkpoint`` callback saves at epoch ends only
  and its iterator state is not restorable, so it would have to be rebuilt around anyway;
* pickling must survive models that do not pickle (braindecode's EEGNeX uses a weight
  parametrization) and move CUDA weights to the CPU. Owning ``__getstate__`` (state dict on
  the CPU + the constructor spec, model rebuilt on load) does both in a few lines; skorch
  pickles the module object itself.

Shapes: ``X`` (n_windows, n_chans, n_times) float, in volts (models normalise internally);
``y`` (n_windows,); ``predict`` returns (n_windows,) float32.

Subjects: ``fit(X, y, groups=subjects)`` (or a ``WindowSet``) validates early stopping on
held-out *subjects*; without them it validates on windows of the training subjects and warns
(:class:`SubjectLeakageWarning`). ``fit`` requests ``groups`` through scikit-learn's metadata
routing by default, so ``cross_validate``, ``GridSearchCV`` and ``Pipeline`` hand each fit its
training subjects when routing is enabled; see the class docstring and docs/sklearn.md.

Randomness: all of it derives from ``seed``. Model initialisation and dropout use torch's
global generator, forked (``torch.random.fork_rng``) so fitting never changes the caller's RNG
state; data order and training crops come from NumPy generators seeded by ``(seed, epoch)``;
evaluation crops from ``seed`` alone. Two fits with one seed give ``torch.equal`` weights on
the CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import math
import os
import warnings

import numpy as np
import torch
from scipy import sparse
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import r2_score
from sklearn.utils.validation import check_is_fitted
from torch import nn

from eegattn.models import member_options
from eegattn.training.augment import LABEL_MOVING, parse_augment
from eegattn.training.batches import auto_num_workers
from eegattn.training.checkpoint import checkpoint_path, load_checkpoint
from eegattn.training.distributed import current_context
from eegattn.training.finetune import (
    FINETUNE_MODES,
    check_lora_options,
    finish_finetune,
    load_init,
    prepare_finetune,
    resolve_init,
)
from eegattn.training.loop import (
    LOSSES,
    LR_SCHEDULES,
    OPTIMIZERS,
    PRECISIONS,
    ClosedFormRun,
    LoopSettings,
    TrainingLoop,
    cpu_state_dict,
    crop_windows,
    eval_offsets,
    head_criterion,
    init_output_bias,
    make_loss,
    make_optimizer,
    make_scheduler,
    negative_correlation_criterion,
    predict_module,
    random_crop_offsets,
    seeded_crop_offsets,
)
from eegattn.training.splits import train_valid_split
from eegattn.utils.check import (
    InvalidParameterError,
    check_fraction,
    check_option,
    check_positive_int,
    check_positive_number,
    validate_type,
)

__all__ = [
    "EEGAttentionRegressor",
    "SubjectLeakageWarning",
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "LOSSES",
    "resolve_device",
    "instantiate_model",
    "build_each_member",
    "model_spec",
    "make_optimizer",
    "make_scheduler",
    "make_loss",
    "check_X",
    "check_y",
    "unpack_windows",
    "random_crop_offsets",
    "seeded_crop_offsets",
    "crop_windows",
    "current_context",
]

#: bytes of windows checked per chunk, so a large memmap or cache is never loaded whole (4096
#: windows of 4 s were 0.85 GB of resident memory)
_FINITE_CHUNK_BYTES = 64 * 1024**2


#: how ensemble members differ, and how they are combined (``ensemble_split`` /
#: ``ensemble_combine``; ``eegattn train --ensemble-split / --ensemble-combine``)
ENSEMBLE_SPLITS = ("seeds", "folds", "bootstrap", "joint")
ENSEMBLE_COMBINES = ("mean", "stack", "calibrate")


def _bootstrap(train_idx: np.ndarray, groups, seed: int) -> np.ndarray:
    """A bootstrap sample of ``train_idx`` (``ensemble_split="bootstrap"``): as many windows,
    drawn with replacement within each subject so every subject keeps its share (over all
    windows without ``groups``); about 37 % of each subject's windows are left out of it."""
    # a stream of its own: the loop draws epoch e's order, crops and scales from [seed, e]
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(2,)))
    if groups is None:
        return np.sort(rng.choice(train_idx, size=len(train_idx), replace=True))
    groups = np.asarray(groups)[train_idx]
    return np.sort(np.concatenate([
        rng.choice(train_idx[groups == g], size=int(np.sum(groups == g)), replace=True)
        for g in np.unique(groups)]))


def _as_ensemble(specs, members, *, n_chans, n_times, sfreq):
    """A :class:`~eegattn.models.ensemble.MeanEnsemble` of ``specs`` holding the trained (or
    initialised) ``members``' weights."""
    with torch.random.fork_rng(devices=[]):  # building draws weights; keep the caller's
        ensemble = instantiate_model("ensemble", {"members": specs}, n_chans=n_chans,
                                     n_times=n_times, sfreq=sfreq)
    for target, member in zip(ensemble.members, members, strict=True):
        target.load_state_dict(member.state_dict())
    return ensemble


class SubjectLeakageWarning(UserWarning):
    """Early stopping validates on windows of the training subjects, so it is optimistic.

    Raised by :meth:`EEGAttentionRegressor.fit` when it gets no ``groups`` (subject ids) while
    ``early_stopping=True`` and ``valid_fraction > 0``. Silence it deliberately with
    ``warnings.filterwarnings("ignore", category=SubjectLeakageWarning)``.
    """


# --------------------------------------------------------------------------- helpers


def resolve_device(device) -> torch.device:
    """``"cpu"``, ``"cuda"``/``"cuda:N"`` (must be available) or ``"auto"``."""
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be a string such as 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(
            f"unknown device {device!r}; use 'cpu', 'cuda', 'cuda:N' or 'auto'"
        ) from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was asked for but CUDA is not available on this machine; "
                "use device='cpu' (or 'auto')"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} but only {torch.cuda.device_count()} CUDA device(s) exist"
            )
    elif dev.type != "cpu":
        raise ValueError(f"device type {dev.type!r} is not supported; use 'cpu' or 'cuda'")
    return dev


def model_spec(model) -> str:
    """A JSON-friendly name for the ``model`` parameter: the registry name or ``module:Class``."""
    if isinstance(model, str):
        return model
    cls = model if isinstance(model, type) else type(model)
    return f"{cls.__module__}:{cls.__qualname__}"


def _import_class(spec: str):
    module_name, _, qualname = spec.partition(":")
    try:
        obj = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot import model class {spec!r}: {exc}") from exc
    return obj


def instantiate_model(
    model, model_options: dict | None, *, n_chans: int, n_times: int, sfreq: float,
    n_outputs: int = 1,
) -> nn.Module:
    """Build the torch module described by ``model``.

    ``model`` is a registry name (``eegattn.models.build_model``), ``"module:Class"``, an
    ``nn.Module`` subclass (called as ``cls(n_chans=, n_outputs=, n_times=, sfreq=,
    **model_options)``, the braindecode signature) or an ``nn.Module`` instance (deep-copied,
    never modified).
    """
    options = dict(model_options or {})
    if isinstance(model, str) and ":" in model:
        model = _import_class(model)
    if isinstance(model, str):
        from eegattn.models import build_model

        return build_model(
            model, n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq, **options
        )
    if isinstance(model, type) and issubclass(model, nn.Module):
        try:
            return model(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq,
                         **options)
        except TypeError as exc:
            raise ValueError(
                f"cannot build {model.__name__}(n_chans=, n_outputs=, n_times=, sfreq=, "
                f"**model_options): {exc}; give the class that signature or pass an instance"
            ) from exc
    if isinstance(model, nn.Module):
        if options:
            raise ValueError(
                "model_options cannot be applied to a model instance; pass the class or a "
                "registry name instead, or leave model_options=None"
            )
        return copy.deepcopy(model)
    raise ValueError(
        f"model must be a registry name (see eegattn.models.available_models()), an nn.Module "
        f"class or an nn.Module instance, got {type(model).__name__}"
    )


def build_each_member(model, members: list[dict], *, n_chans: int, n_times: int,
                      sfreq: float, mix=None) -> None:
    """Build each distinct option dict of ``members`` once (weights thrown away), so options
    the model does not take fail in one line before any data work or training; ``mix`` (the
    ensemble mix the options came from) names the entry to change."""
    for k, options in enumerate(members):
        if options in members[:k]:
            continue
        try:
            with torch.random.fork_rng(devices=[]):  # building draws weights
                instantiate_model(model, options, n_chans=n_chans, n_times=n_times,
                                  sfreq=sfreq)
        except (TypeError, ValueError, AssertionError) as exc:
            which = "" if mix is None else (
                f" (ensemble member {k + 1}/{len(members)}: change entry {k % len(mix)} of "
                "ensemble_mix)")
            raise ValueError(f"model {model_spec(model)!r} cannot be built with options "
                             f"{options}{which}: {exc}") from exc


def _check_finite_array(name: str, arr) -> None:
    per_window = 4 * int(np.prod(arr.shape[1:])) if arr.ndim > 1 else 4
    step = max(1, _FINITE_CHUNK_BYTES // max(per_window, 1))
    for start in range(0, arr.shape[0], step):
        chunk = np.asarray(arr[start : start + step])
        finite = np.isfinite(chunk.reshape(chunk.shape[0], -1)).all(axis=1)
        if not finite.all():
            first = start + int(np.argmin(finite))
            raise ValueError(
                f"{name} contains NaN or Inf: window {first} is the first bad one "
                f"({int((~finite).sum())} bad in windows {start}..{start + len(finite) - 1}); "
                "clean or drop those windows before fitting"
            )


def check_X(X, *, n_chans: int | None = None, min_times: int | None = None,
            n_times: int | None = None):
    """Validate a window array (n_windows, n_chans, n_times) without copying it.

    Checked in this order: sparse input, dtype, shape, then finite values (in chunks, so a
    memory map is never loaded whole).
    """
    if sparse.issparse(X):
        raise TypeError(
            f"X is a sparse {type(X).__name__}; sparse input is not supported: pass dense "
            "windows (n_windows, n_chans, n_times)"
        )
    if not hasattr(X, "shape") or not hasattr(X, "dtype"):
        X = np.asarray(X)
    if X.dtype == object:  # numbers boxed as objects (e.g. from pandas): convert them
        try:
            X = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"X must hold real numbers, got objects that are not: {exc}") from exc
    if np.issubdtype(X.dtype, np.complexfloating):
        raise ValueError(f"Complex data not supported: X must hold real numbers, got {X.dtype}")
    if X.dtype.kind not in "iuf":  # integers or floats; not bool, object, time or text
        raise ValueError(f"X must hold real numbers, got dtype {X.dtype}")
    if X.ndim != 3:
        raise ValueError(
            f"X must have shape (n_windows, n_chans, n_times), got shape {tuple(X.shape)}; "
            "for one window use X[None]"
        )
    if 0 in X.shape[1:]:
        raise ValueError(
            f"X has shape {tuple(X.shape)}: windows need at least 1 channel and 1 sample"
        )
    if n_chans is not None and X.shape[1] != n_chans:
        raise ValueError(
            f"X has {X.shape[1]} channels but the estimator was fitted on {n_chans}"
        )
    if n_times is not None and X.shape[2] != n_times:
        raise ValueError(
            f"X windows have {X.shape[2]} samples but the estimator was fitted on {n_times}"
        )
    if min_times is not None and X.shape[2] < min_times:
        raise ValueError(
            f"X windows have {X.shape[2]} samples, fewer than the {min_times} the model takes"
        )
    _check_finite_array("X", X)
    return X


_LEAKAGE_MESSAGE = (
    "EEGAttentionRegressor.fit got no groups, so early stopping validates on windows of the "
    "training subjects and is optimistic (valid_split_='window'); pass groups=<one subject id "
    "per window> or a WindowSet, and under cross_validate add params={'groups': groups} or "
    "enable sklearn.set_config(enable_metadata_routing=True) (see docs/sklearn.md)"
)

_Y_MISSING = (
    "EEGAttentionRegressor requires y to be passed, but the target y is None; pass one target "
    "per window (or fit a WindowSet, which carries its targets)"
)


def check_y(y, n: int, *, warn_column: bool = False) -> np.ndarray:
    """Validate targets: (n,) or (n, 1), finite; returned as float32 (n,).

    ``warn_column``: a (n, 1) column gives scikit-learn's ``DataConversionWarning`` (as
    ``fit`` does; the warning names the caller of the caller).
    """
    if y is None:
        raise ValueError(_Y_MISSING)
    arr = np.asarray(y)
    if arr.ndim == 2 and arr.shape[1] == 1:
        if warn_column:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it was read as "
                "y.ravel(): pass y with shape (n_windows,)", DataConversionWarning, stacklevel=3,
            )
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"y must have shape (n_windows,), got {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"y has {arr.shape[0]} values but X has {n} windows; give one per window")
    try:
        arr = arr.astype(np.float32)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"y must be numeric, got dtype {arr.dtype}") from exc
    if not np.isfinite(arr).all():
        raise ValueError(
            f"y contains {int((~np.isfinite(arr)).sum())} NaN/Inf value(s); drop those windows"
        )
    return arr


def unpack_windows(X, y=None, groups=None):
    """Accept an array or a ``WindowSet``; return ``(X, y, groups, info)``.

    For a WindowSet, ``y`` and ``groups`` come from it (passing ``y`` as well is an error) and
    ``info`` holds its ``sfreq``, ``challenge`` and ``cache_key``.
    """
    info: dict = {}
    if hasattr(X, "X") and hasattr(X, "y") and hasattr(X, "metadata"):
        if y is not None:
            raise ValueError("X is a WindowSet, which carries its own y; do not pass y as well")
        ws = X
        if groups is None:
            groups = ws.groups
        info = {
            "sfreq": float(ws.sfreq),
            "challenge": getattr(ws, "challenge", None),
            "cache_key": getattr(ws, "cache_key", None),
        }
        X, y = ws.X, ws.y
    return X, y, groups, info


# --------------------------------------------------------------------------- estimator


class EEGAttentionRegressor(RegressorMixin, BaseEstimator):
    """Train an EEG regressor with scikit-learn conventions.

    Parameters
    ----------
    model : str | type[nn.Module] | nn.Module
        Registry name (``lightweight``, ``improved``, ``lightweight_noattn``, ``eegnex``, see
        ``eegattn.models.available_models()``), a module class taking ``(n_chans, n_outputs,
        n_times, sfreq, **model_options)``, or an instance (deep-copied at fit).
    model_options : dict | None
        Extra keyword arguments of the model constructor.
    max_epochs, batch_size, lr, weight_decay : training budget and AdamW settings.
    optimizer : {"adamw", "adam", "sgd"}
    lr_schedule : {"cosine", "constant"}
        Cosine annealing per step over ``max_epochs`` epochs, or a constant rate.
    loss : {"mse", "l1", "huber"}
    max_grad_norm : float | None
        Gradient clipping by global norm.
    early_stopping : bool
        Stop when the validation loss has not improved for ``patience`` epochs, and keep the
        best epoch's weights. Needs ``valid_fraction > 0``.
    patience : int
        Epochs without a new best validation loss before stopping.
    start_from_epoch : int | None
        Epochs up to and including this one do not count towards ``patience`` (the best
        epoch is still tracked from the first). None: half of ``max_epochs``, rounded down,
        because a cosine schedule keeps the learning rate high early on and models with
        strong dropout often improve only late in it. 0 counts from the first epoch.
    valid_fraction : float
        Fraction of *subjects* held out for validation when ``groups`` is given (a WindowSet
        always gives them); without groups, a seeded fraction of windows, with a
        :class:`SubjectLeakageWarning` when early stopping selects on them. 0 trains on all.
    crop_n_times : int | None
        Model input length. Training draws a random crop of each window every epoch; predict
        and validation use seeded crops (see :func:`seeded_crop_offsets`). Challenge 2 uses
        400-sample windows and ``crop_n_times=200``.
    crop_anchor : int | None
        With windows cut with context (challenge 1: +0.3 .. +2.7 s, 240 samples), the crop
        start of the exact window (20): training crops there (or at random shifts with
        ``time_shift``), validation and ``predict`` always there.
    augment : list | dict | None
        Training augmentations by name (:mod:`eegattn.training.augment`):
        ``channels_dropout``, ``gaussian_noise``, ``smooth_time_mask``, ``mixup`` (from
        braindecode) and the label-moving ``time_shift`` and ``time_scale`` (they need
        ``crop_anchor``); ``{name: options}`` sets options.
    sfreq : float
        Sampling rate passed to the model when X is an array (a WindowSet gives its own).
    device : str
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"``; CUDA asked but missing -> ValueError.
    seed : int
        Seeds initialisation, dropout, data order, crops and the validation split.
    verbose : int
        0 silent, 1 one line per epoch, 2 also a tqdm bar per epoch.
    checkpoint_dir : str | None
        Folder for ``last.pt``, written atomically every ``checkpoint_every`` steps (if set)
        and after each epoch. ``fit(..., resume=True)`` continues from it. Leave it None
        inside ``GridSearchCV`` / ``cross_val_score``: clones would share the folder.
    init_output_bias : bool
        Start the bias of the model's last ``Linear`` (1 output) at the training-target mean,
        so training begins at the mean predictor (NRMSE ~1) instead of predicting 0 for
        response times around 1.5 s; a time head (``head="softargmax"`` / ``"distribution"``)
        starts its prior over time bins at the targets' distribution instead. The
        architecture and state_dict keys are unchanged.
    init : str | None
        Starting weights: ``"hf:ORG/NAME"`` (a braindecode checkpoint on the Hugging Face
        hub), or a folder written by braindecode's ``save_pretrained``, ``eegattn pretrain``
        or ``eegattn train`` (see :mod:`eegattn.training.finetune`). The model must have the
        architecture of the weights (``eegattn train --init`` reads it from the folder).
    finetune : {"full", "frozen", "lora"}
        What trains: every weight; the head only (backbone weights unchanged); or low-rank
        adapters on the backbone's linear layers (``peft``) plus the head, merged into the
        weights when training ends.
    lora_options : dict | None
        ``r`` (rank, 8), ``alpha`` (16), ``dropout`` (0.0) of the LoRA adapters.
    ensemble : int
        Members to train (1: a single model). Members go through the training loop one after
        another, each with its own early stopping (or together: ``ensemble_split="joint"``),
        and become one module
        (:class:`~eegattn.models.ensemble.MeanEnsemble`): one run folder, one submission.
    ensemble_split : {"seeds", "folds", "bootstrap", "joint"}
        How members differ. ``"seeds"``: seeds ``seed .. seed + K - 1`` on one training /
        validation split. ``"folds"``: K subject folds of the training data (needs
        ``groups``); member k trains on the other folds and validates (early stopping) on
        fold k, so every window gets an out-of-fold prediction (``oof_predictions_``) and
        every subject trains K - 1 members; ``valid_fraction`` plays no part.
        ``"bootstrap"`` (bagging): as seeds, and member k trains on its own bootstrap sample
        of the training windows, drawn within each subject (every subject keeps its share;
        about 37 % of its windows are left out of each member).
        ``"joint"`` (negative correlation learning, Liu & Yao 1999): the K members (seeds
        ``seed .. seed + K - 1`` for their initial weights) train together in one loop on
        the same batches, one checkpoint, each penalised by ``ensemble_diversity`` times
        its predictions' spread around the members' mean, so that they err differently.
        Members of one configuration (no ``ensemble_mix``), no ``init`` or ``finetune``.
    ensemble_diversity : float
        The weight W in [0, 1] of the spread in the joint criterion (``ensemble_split=
        "joint"``; 0 trains the members together without the penalty; at 1 a squared-error
        loss leaves only the ensemble mean's error). The default, 0.5, was chosen on
        challenge 1's splits 10-11 against 1 (docs/experiments.md, "Members trained
        together"). Read only by ``"joint"``.
    ensemble_combine : {"mean", "stack", "calibrate"}
        ``"mean"`` of the members; ``"stack"``: non-negative weights and an intercept fitted
        on the validation subjects' member predictions (seeds or bootstrap, not folds);
        ``"calibrate"``: the mean times a slope plus an intercept, fitted on the validation
        subjects (seeds, bootstrap) or on the out-of-fold predictions (folds).
    ensemble_mix : list of dict | None
        Members of different configurations: member k's model options are
        ``model_options`` updated by entry k mod len of this list (e.g. ``[{}, {"head":
        "softargmax"}]``; :func:`eegattn.models.member_options`). None: every member has
        ``model_options``. Combines with every ``ensemble_split`` but ``"joint"``. On
        challenge 1, five mixed time heads did not beat five seeds (docs/benchmarks.md,
        "Ensembles of mixed time heads").
    num_workers : int | None
        Worker processes gathering training batches through a ``torch.utils.data``
        DataLoader (prefetched; pinned memory on CUDA); 0 gathers them in this process.
        None (auto): 0 on the CPU, where workers compete with training for the cores (measured
        in docs/cache.md), up to 4 on CUDA. Batches, crops and augmentation are drawn in the
        main process either way, so the weights do not depend on it (and a checkpoint
        resumes with any value).
    precision : str
        ``"float32"`` (default) or ``"bfloat16"``: the training forward pass under
        ``torch.autocast`` in bf16, for GPUs with bf16 tensor cores (it runs on the CPU too,
        where it is rarely faster). Validation and prediction stay float32.

    Attributes (after fit)
    ----------------------
    model_ : nn.Module (eval mode, on ``device_``); history_ : list of per-epoch dicts
    (epoch, train_loss, valid_loss, valid_nrmse, lr, duration_s); n_chans_, n_times_ (window
    length seen in fit); input_n_times_ (model input length); sfreq_; n_outputs_ (1);
    n_train_, n_valid_; valid_split_ ("subject", "window", "folds" or None); valid_subjects_
    (list or None); best_epoch_; n_epochs_; stopped_early_; device_ (str); challenge_,
    cache_key_ (from a WindowSet, else None); resumed_from_ ((epoch, step) or None); seed_;
    ensemble_members_ (members' specs, or None); members_best_epoch_; ensemble_folds_ (the
    held-out subjects of each member with ``ensemble_split="folds"``, else None);
    oof_predictions_ ((n,) out-of-fold predictions with folds, else None);
    output_bias_initialized_ (whether ``init_output_bias`` found a layer to set);
    init_report_ (what ``init`` loaded: kind, tensors loaded of the model's, or None);
    n_trainable_ (parameters that trained, adapters included);
    n_features_in_ (= n_chans_: what scikit-learn counts as features of a 3-D array,
    ``X.shape[1]``; ``predict`` must match it, while with ``crop_n_times`` it accepts windows
    of any length >= ``input_n_times_``, so n_chans * n_times would not describe its input).

    Cross-validation by subject
    ---------------------------
    ``cross_validate(est, X, y, groups=subjects, cv=subject_kfold(4))`` gives ``groups`` to
    the splitter only: scikit-learn does not pass it to ``fit``, so early stopping would
    validate on windows of the fold's own training subjects (``valid_split_ == "window"``,
    optimistic; ``fit`` warns with :class:`SubjectLeakageWarning`). ``fit`` requests
    ``groups`` through scikit-learn's metadata routing by default (``__metadata_request__fit``;
    ``set_fit_request(groups=False)`` turns that off). With scikit-learn >= 1.4 (tested with
    1.9)::

        from sklearn.model_selection import GridSearchCV, cross_validate
        from eegattn.training import subject_kfold

        est = EEGAttentionRegressor("lightweight_fast", max_epochs=2, verbose=0)
        # default configuration: groups= feeds the splitter, params= feeds every fit
        cross_validate(est, X, y, groups=subjects, cv=subject_kfold(4),
                       params={"groups": subjects})

        # metadata routing enabled: one params dict feeds the splitter and every fit, and
        # GridSearchCV / Pipeline route groups= to fit (without routing they cannot)
        import sklearn
        sklearn.set_config(enable_metadata_routing=True)
        cross_validate(est, X, y, cv=subject_kfold(4), params={"groups": subjects})
        GridSearchCV(est, {"lr": [1e-3, 3e-3]}, cv=subject_kfold(4)).fit(X, y, groups=subjects)

    Every fold then has ``valid_split_ == "subject"``. See docs/sklearn.md.
    """

    # groups are subject ids, the meaning splitters give them: fit asks for them whenever
    # metadata routing is enabled, without a set_fit_request(groups=True) call
    __metadata_request__fit = {"groups": True}

    def __init__(
        self,
        model="lightweight",
        model_options=None,
        max_epochs=20,
        batch_size=64,
        lr=1e-3,
        weight_decay=1e-2,
        optimizer="adamw",
        lr_schedule="cosine",
        loss="mse",
        max_grad_norm=None,
        early_stopping=True,
        patience=5,
        start_from_epoch=None,
        valid_fraction=0.2,
        crop_n_times=None,
        sfreq=100.0,
        device="cpu",
        seed=0,
        verbose=1,
        checkpoint_dir=None,
        checkpoint_every=None,
        init_output_bias=True,
        init=None,
        finetune="full",
        lora_options=None,
        augment=None,
        crop_anchor=None,
        ensemble=1,
        ensemble_combine="mean",
        ensemble_split="seeds",
        ensemble_mix=None,
        ensemble_diversity=0.5,
        num_workers=None,
        precision="float32",
    ):
        self.model = model
        self.model_options = model_options
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.lr_schedule = lr_schedule
        self.loss = loss
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.patience = patience
        self.start_from_epoch = start_from_epoch
        self.valid_fraction = valid_fraction
        self.crop_n_times = crop_n_times
        self.sfreq = sfreq
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.init_output_bias = init_output_bias
        self.init = init
        self.finetune = finetune
        self.lora_options = lora_options
        self.augment = augment
        self.crop_anchor = crop_anchor
        self.ensemble = ensemble
        self.ensemble_combine = ensemble_combine
        self.ensemble_split = ensemble_split
        self.ensemble_mix = ensemble_mix
        self.ensemble_diversity = ensemble_diversity
        self.num_workers = num_workers
        self.precision = precision

    # ------------------------------------------------------------------ validation

    def _patience_start(self) -> int:
        """The last epoch that does not count towards ``patience``."""
        if self.start_from_epoch is None:
            return int(self.max_epochs) // 2
        return int(self.start_from_epoch)

    def _check_params(self) -> None:
        """Check every parameter once, at ``fit`` (``__init__`` only stores them).

        Messages read as :mod:`eegattn.utils.check` writes them ("Invalid value for the
        'max_epochs' parameter. It must be a positive integer, but got 0."); the errors are
        :class:`~eegattn.utils.check.InvalidParameterError`, a ``ValueError``.
        """
        check_positive_int(self.max_epochs, "max_epochs")
        check_positive_int(self.batch_size, "batch_size")
        if self.early_stopping:
            check_positive_int(self.patience, "patience")
        check_positive_int(self.start_from_epoch, "start_from_epoch", minimum=0, allow_none=True)
        check_positive_int(self.checkpoint_every, "checkpoint_every", allow_none=True)
        check_positive_int(self.crop_n_times, "crop_n_times", allow_none=True)
        check_positive_int(self.crop_anchor, "crop_anchor", minimum=0, allow_none=True)
        check_positive_int(self.num_workers, "num_workers", minimum=0, allow_none=True)
        check_option("precision", self.precision, PRECISIONS)
        augment = parse_augment(self.augment)
        check_positive_int(self.ensemble, "ensemble")
        if self.ensemble > 1 and not (isinstance(self.model, str) and ":" not in self.model):
            raise InvalidParameterError(
                "an ensemble rebuilds its members by registry name; give model as a name from "
                "eegattn.models.available_models(), or train the members yourself")
        if self.ensemble_mix is not None and self.ensemble < 2:
            raise InvalidParameterError(
                "ensemble_mix sets the options of each ensemble member; set ensemble >= 2")
        try:
            members = member_options(self.model_options, self.ensemble_mix, self.ensemble)
        except ValueError as exc:
            raise InvalidParameterError(str(exc)) from None
        if "mixup" in augment and any(m.get("head") == "distribution" for m in members):
            raise InvalidParameterError(
                "mixup mixes two response times into one, but the distribution head's target "
                "would need both peaks; use another augmentation or head")
        check_option("ensemble_combine", self.ensemble_combine, ENSEMBLE_COMBINES)
        check_option("ensemble_split", self.ensemble_split, ENSEMBLE_SPLITS)
        folds = self.ensemble_split == "folds"
        if self.ensemble_split != "seeds" and self.ensemble < 2:
            per = {"folds": "one member per subject fold",
                   "bootstrap": "one member per bootstrap sample",
                   "joint": "members together"}[self.ensemble_split]
            raise InvalidParameterError(
                f"ensemble_split={self.ensemble_split!r} trains {per}; set ensemble >= 2")
        # above 1 the members gain more by spreading than by fitting: the loss has no floor
        check_fraction(self.ensemble_diversity, "ensemble_diversity", low_inclusive=True,
                       high_inclusive=True)
        if self.ensemble_split == "joint" and (self.ensemble_mix is not None
                                               or self.init is not None
                                               or self.finetune != "full"):
            raise InvalidParameterError(
                "ensemble_split='joint' trains members of one configuration from scratch "
                "together; drop ensemble_mix, init and finetune, or use ensemble_split="
                "'seeds'")
        if self.ensemble_split == "joint" and self.loss != "mse":
            raise InvalidParameterError(
                f"ensemble_split='joint' with loss={self.loss!r}: a loss that grows slower "
                "than the squared spread lets members spread without limit; use loss='mse'")
        if folds and self.ensemble_combine == "stack":
            raise InvalidParameterError(
                "with ensemble_split='folds' each window has one out-of-fold prediction, not "
                "one per member, so there is nothing to weigh; use ensemble_combine="
                "'calibrate' (a slope and intercept on the out-of-fold predictions) or 'mean'")
        if not folds and self.ensemble_combine != "mean" and self.valid_fraction == 0:
            raise InvalidParameterError(
                f"ensemble_combine={self.ensemble_combine!r} is fitted on the validation "
                "subjects; set valid_fraction > 0, use ensemble_split='folds' (out-of-fold "
                "predictions) or 'mean'")
        if self.crop_anchor is not None and self.crop_n_times is None:
            raise InvalidParameterError(
                "crop_anchor is the crop start of the exact window inside longer windows; "
                "set crop_n_times too (200 for the challenge's 2 s windows)")
        moving = sorted(set(augment) & set(LABEL_MOVING))
        if moving and self.crop_anchor is None:
            raise InvalidParameterError(
                f"augmentation {', '.join(moving)} moves the target with the crop and needs "
                "windows cut with context plus crop_n_times and crop_anchor (e.g. windows "
                "+0.3..+2.7 s: crop_n_times=200, crop_anchor=20)")
        check_positive_number(self.lr, "lr")
        check_fraction(self.weight_decay, "weight_decay", high=math.inf, low_inclusive=True)
        check_option("optimizer", self.optimizer, OPTIMIZERS)
        check_option("lr_schedule", self.lr_schedule, (*LR_SCHEDULES, None))
        check_option("loss", self.loss, LOSSES)
        check_positive_number(self.max_grad_norm, "max_grad_norm", allow_none=True)
        check_fraction(self.valid_fraction, "valid_fraction", low_inclusive=True)
        # subject folds are their members' validation sets: valid_fraction plays no part
        if self.early_stopping and self.valid_fraction == 0 and not folds:
            raise InvalidParameterError(
                "early_stopping=True needs a validation split; set valid_fraction > 0 or "
                "early_stopping=False"
            )
        check_positive_number(self.sfreq, "sfreq", unit="Hz")
        validate_type(self.model_options, (dict, None), "model_options")
        validate_type(self.seed, (int, np.integer, None), "seed")
        validate_type(self.init, (str, os.PathLike, None), "init",
                      fix="Give 'hf:ORG/NAME' or a folder path.")
        check_option("finetune", self.finetune, FINETUNE_MODES)
        if self.finetune == "lora":
            check_lora_options(self.lora_options)

    def _split(self, n: int, groups, seed: int):
        """Return (train_idx, valid_idx, kind, valid_subjects)."""
        frac = float(self.valid_fraction)
        if frac == 0.0:
            return np.arange(n), np.zeros(0, dtype=np.int64), None, None
        if groups is not None:  # checked by fit: one subject id per window
            n_subjects = np.unique(groups).size
            if n_subjects < 2:
                raise ValueError(
                    f"a subject-wise validation split needs at least 2 subjects, got "
                    f"{n_subjects}; pass more subjects, or valid_fraction=0 with "
                    "early_stopping=False"
                )
            train_idx, valid_idx = train_valid_split(groups, valid_fraction=frac, seed=seed)
            valid_subjects = np.unique(groups[valid_idx]).tolist()
            return train_idx, valid_idx, "subject", valid_subjects
        n_valid = max(1, int(round(frac * n)))
        if n - n_valid < 2:
            raise ValueError(
                f"{n} windows are too few for a validation split of {frac}; pass more "
                "windows, or valid_fraction=0 with early_stopping=False"
            )
        perm = np.random.default_rng([seed, 1]).permutation(n)
        return np.sort(perm[n_valid:]), np.sort(perm[:n_valid]), "window", None

    def _fingerprint(self, X, y, groups) -> dict:
        """What must match for a checkpoint to be resumed: data summary and training params."""
        params = {
            k: repr(v) for k, v in self.get_params(deep=False).items()
            if k not in ("verbose", "device", "checkpoint_dir", "checkpoint_every", "model",
                         "num_workers")
        }
        params["model"] = model_spec(self.model)
        if self.ensemble_split != "joint":  # read by joint only: older checkpoints resume
            params.pop("ensemble_diversity")
        return {
            "shape": list(X.shape),
            "y_sum": float(np.sum(y, dtype=np.float64)),
            "y_weighted": float(np.dot(y.astype(np.float64), np.arange(len(y)) % 97)),
            "n_groups": -1 if groups is None else int(np.unique(np.asarray(groups)).size),
            "params": params,
        }

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, groups=None, *, resume=False):
        """Train on ``X`` (n, n_chans, n_times) and ``y`` (n,), or on a ``WindowSet``.

        ``groups`` (n,) holds subject ids for the subject-wise validation split; without them
        (and with ``early_stopping=True``, ``valid_fraction > 0``) the split is by window and
        a :class:`SubjectLeakageWarning` says so. ``fit`` requests ``groups`` through metadata
        routing (see the class docstring). X and y are never modified. With
        ``resume=True`` training continues from ``checkpoint_dir/last.pt`` if it exists (a
        finished run is restored without training); otherwise an existing checkpoint there is
        refused rather than overwritten. Returns ``self``.
        """
        self._check_params()
        # the init folder (or hub snapshot) is found before any data work
        init_source = None if self.init is None else resolve_init(self.init)
        X, y, groups, info = unpack_windows(X, y, groups)
        if y is None:
            raise ValueError(_Y_MISSING)
        X = check_X(X)
        n, n_chans, n_times = X.shape
        if n < 2:
            raise ValueError(f"fit needs at least 2 windows, got {n}")
        y = check_y(y, n, warn_column=True)
        if groups is not None:
            groups = np.asarray(groups)
            if groups.shape != (n,):
                raise ValueError(f"groups has shape {groups.shape} but X has {n} windows; give "
                                 "one subject id per window")
        crop = self.crop_n_times
        if crop is not None and crop > n_times:
            raise ValueError(
                f"crop_n_times={crop} is longer than the windows ({n_times} samples); use "
                "crop_n_times <= n_times or None"
            )
        if set(parse_augment(self.augment)) & set(LABEL_MOVING) and crop >= n_times:
            raise ValueError(
                f"time_shift/time_scale need windows longer than the {crop}-sample crop; cut "
                "them with context (e.g. +0.3..+2.7 s, 240 samples)")
        if self.crop_anchor is not None and self.crop_anchor + crop > n_times:
            raise ValueError(
                f"crop_anchor={self.crop_anchor} + crop_n_times={crop} runs past the windows "
                f"({n_times} samples); cut the windows with more context or lower the anchor")
        input_n_times = crop if crop is not None else n_times
        sfreq = float(info.get("sfreq", self.sfreq))
        device = resolve_device(self.device)
        # with an initialised process group (eegattn train under torchrun): data-parallel
        dist = current_context(device)
        device = dist.device or device
        if dist.world_size > 1 and int(self.batch_size) < 2 * dist.world_size:
            raise ValueError(
                f"batch_size={self.batch_size} is the global batch of {dist.world_size} "
                f"processes; use at least {2 * dist.world_size} so each gets two windows"
            )
        if resume and self.checkpoint_dir is None:
            raise ValueError("resume=True needs checkpoint_dir to be set")
        n_members = int(self.ensemble)
        joint = self.ensemble_split == "joint"  # members trained together: one loop
        # one checkpoint folder per ensemble member (member-K/), else the folder itself
        member_dirs = [None] * (1 if joint else n_members) if self.checkpoint_dir is None else (
            [str(self.checkpoint_dir)] if n_members == 1 or joint else
            [os.path.join(str(self.checkpoint_dir), f"member-{k}") for k in range(n_members)])
        fingerprint = self._fingerprint(X, y, groups)
        member_states = []
        for folder in member_dirs:  # all checked before any training
            found = None if folder is None else load_checkpoint(folder)
            if found is not None and not resume:
                raise FileExistsError(
                    f"{checkpoint_path(folder)} exists; pass resume=True to continue it, or "
                    "delete it / choose another checkpoint_dir")
            if found is not None and found["fingerprint"] != fingerprint:
                raise ValueError(
                    f"the checkpoint in {folder} was written for other data or other training "
                    "parameters; resume with the same ones or use another checkpoint_dir")
            member_states.append(found)
        state = member_states[0]  # member 0 (seed + 0) holds the run's seed
        if state is not None:
            seed = int(state["seed"])  # seed=None drew one; the resumed run must reuse it
        elif self.seed is not None:
            seed = int(self.seed)
        else:
            seed = int(np.random.SeedSequence().entropy % (2**31))
        seed = int(dist.broadcast_object(seed))  # seed=None: every process uses rank 0's draw

        if self.ensemble_split == "folds":
            member_splits = self._folds(n, groups, seed, n_members)
            train_idx, valid_idx = np.arange(n), np.zeros(0, dtype=np.int64)
            split_kind, valid_subjects = "folds", None
        else:
            train_idx, valid_idx, split_kind, valid_subjects = self._split(n, groups, seed)
            member_splits = [(train_idx, valid_idx)] * n_members
            if self.ensemble_split == "bootstrap":
                member_splits = [(_bootstrap(train_idx, groups, seed + k), valid_idx)
                                 for k in range(n_members)]
        if min(len(t) for t, _ in member_splits) < 2:
            raise ValueError(
                f"only {min(len(t) for t, _ in member_splits)} training window(s) after the "
                "validation split; "
                "use more data or a smaller valid_fraction"
            )

        settings = LoopSettings(
            max_epochs=int(self.max_epochs), batch_size=int(self.batch_size),
            lr=float(self.lr), weight_decay=float(self.weight_decay), optimizer=self.optimizer,
            lr_schedule=self.lr_schedule, loss=self.loss,
            max_grad_norm=None if self.max_grad_norm is None else float(self.max_grad_norm),
            early_stopping=bool(self.early_stopping), patience=int(self.patience),
            patience_start=self._patience_start(),
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            checkpoint_every=(None if self.checkpoint_every is None
                              else int(self.checkpoint_every)),
            verbose=int(self.verbose),
            augment=parse_augment(self.augment), crop_anchor=self.crop_anchor, sfreq=sfreq,
            num_workers=(auto_num_workers(device) if self.num_workers is None
                         else int(self.num_workers)),
            precision=self.precision,
        )
        member_specs = [{"model": model_spec(self.model), "model_options": options}
                        for options in member_options(self.model_options, self.ensemble_mix,
                                                      n_members)]
        if self.ensemble_mix is not None:  # every member builds, before any of them trains
            build_each_member(self.model, [m["model_options"] for m in member_specs],
                              n_chans=n_chans, n_times=input_n_times, sfreq=sfreq,
                              mix=self.ensemble_mix)
        members, runs = [], []
        if joint:
            if self.verbose and dist.is_main:
                print(f"ensemble of {n_members} members trained together (seeds {seed}.."
                      f"{seed + n_members - 1}, diversity {self.ensemble_diversity})",
                      flush=True)
            module, run, bias_initialized, init_report, n_trainable = self._train_member(
                None, settings, state, seed, X, y, groups, train_idx, valid_idx, split_kind,
                crop, n_chans, input_n_times, sfreq, device, dist, fingerprint, None,
                joint=member_specs)
            members, runs = list(module.members), [run]
        for k, (member_train, member_valid) in enumerate([] if joint else member_splits):
            # an ensemble's members: seeds seed, seed + 1, ...; one split each (the same one,
            # or subject fold k held out); own checkpoints
            member_seed = seed + k
            member_settings = dataclasses.replace(settings, checkpoint_dir=member_dirs[k])
            member_state = member_states[k]
            if n_members > 1 and self.verbose and dist.is_main:
                data = ""
                if self.ensemble_split == "folds":
                    data = f", subject fold {k + 1} held out"
                elif self.ensemble_split == "bootstrap":
                    data = f", {np.unique(member_train).size} distinct training windows"
                print(f"ensemble member {k + 1}/{n_members} (seed {member_seed}{data})",
                      flush=True)
            module, run, bias_initialized, init_report, n_trainable = self._train_member(
                member_specs[k]["model_options"], member_settings, member_state, member_seed,
                X, y, groups, member_train,
                member_valid, split_kind, crop, n_chans, input_n_times, sfreq, device, dist,
                fingerprint, init_source, warn=k == 0)
            members.append(module)
            runs.append(run)
        oof = None
        if n_members > 1:
            module, oof = self._combine(members, member_specs, member_splits, X, y, crop,
                                        n_chans, input_n_times, sfreq, seed, device)
            history = run.history if joint else [
                {"member": k, **record} for k, r in enumerate(runs) for record in r.history]
            run = runs[0]
        else:
            history = run.history

        self.model_ = module.eval()
        self.history_ = history
        self.n_chans_ = int(n_chans)
        self.n_features_in_ = int(n_chans)
        self.n_times_ = int(n_times)
        self.input_n_times_ = int(input_n_times)
        self.sfreq_ = sfreq
        self.n_outputs_ = 1
        self.n_train_ = int(len(train_idx))
        self.n_valid_ = int(len(valid_idx))
        self.valid_split_ = split_kind
        self.valid_subjects_ = valid_subjects
        self.best_epoch_ = run.best_epoch if n_members == 1 or joint else None
        self.n_epochs_ = len(run.history) if n_members == 1 or joint else None
        self.members_best_epoch_ = [r.best_epoch for r in runs] * (n_members if joint else 1)
        self.ensemble_members_ = member_specs if n_members > 1 else None
        self.ensemble_folds_ = (None if split_kind != "folds" else
                                [np.unique(groups[v]).tolist() for _, v in member_splits])
        self.oof_predictions_ = oof
        self.stopped_early_ = run.stopped_early
        self.device_ = str(device)
        self.challenge_ = info.get("challenge")
        self.cache_key_ = info.get("cache_key")
        self.resumed_from_ = run.resumed_from
        self.seed_ = seed
        self.output_bias_initialized_ = bias_initialized
        self.init_report_ = init_report
        self.n_trainable_ = int(n_trainable) // (n_members if joint else 1)  # per member
        return self

    def _train_member(self, model_options, settings, state, seed, X, y, groups, train_idx,
                      valid_idx, split_kind, crop, n_chans, input_n_times, sfreq, device, dist,
                      fingerprint, init_source, warn=True, joint=None):
        """Build one model (``model_options``) from ``seed`` and train it (the loop, or a
        closed-form fit); with ``joint`` (the members' specs), the members as one
        :class:`~eegattn.models.ensemble.MeanEnsemble`, trained together."""
        cuda_devices = [device.index or 0] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            parts = []  # the model, or the joint ensemble's members
            for k, options in enumerate([model_options] if joint is None else
                                        [m["model_options"] for m in joint]):
                # the same initialisation on every process; joint member k starts as seeds'
                # member k would
                torch.manual_seed(seed + k)
                parts.append(instantiate_model(
                    self.model, options, n_chans=n_chans, n_times=input_n_times,
                    sfreq=sfreq,
                ))
            init_report = None if init_source is None else load_init(parts[0], init_source)
            bias_initialized = bool(self.init_output_bias) and all(
                [init_output_bias(part, y[train_idx]) for part in parts])
            # joint: the loop's dropout stream goes on from the last member's build
            module = parts[0] if joint is None else _as_ensemble(
                joint, parts, n_chans=n_chans, n_times=input_n_times, sfreq=sfreq)
            if joint is None:
                # a head's own criterion, read before peft wraps the head (LoRA hides it)
                criterion = head_criterion(module)
            else:
                module.joint = True  # training forwards give every member's output
                criterion = negative_correlation_criterion(
                    module.members, make_loss(self.loss), float(self.ensemble_diversity),
                    float(np.var(y[train_idx])) or 1.0)
            # frozen backbone or LoRA adapters (a peft model around `module`), merged after
            module = prepare_finetune(module, self.finetune, self.lora_options)
            n_trainable = sum(p.numel() for p in module.parameters() if p.requires_grad)
            if warn and split_kind == "window" and self.early_stopping and dist.is_main:
                # stacklevel 3: the warning points at the caller of fit
                warnings.warn(_LEAKAGE_MESSAGE, SubjectLeakageWarning, stacklevel=3)
            module.to(device)
            if dist.rank > 0:  # each process its own dropout stream; rank 0 keeps seed's
                torch.manual_seed(seed + 1_000_003 * dist.rank)
            if hasattr(module, "fit_closed_form"):  # the ridge floor: no gradient steps
                run = ClosedFormRun(settings, module, X, y, train_idx, valid_idx, crop=crop,
                                    seed=seed, device=device, groups=groups)
            else:
                run = TrainingLoop(settings, module, X, y, train_idx, valid_idx, crop=crop,
                                   seed=seed, device=device, fingerprint=fingerprint,
                                   dist=dist, criterion=criterion)
                if state is not None:
                    run.load(state)
            run.run()
            module = finish_finetune(module)
        return module, run, bias_initialized, init_report, n_trainable

    def _folds(self, n: int, groups, seed: int, k: int) -> list:
        """(train_idx, valid_idx) of ``k`` subject folds, shuffled by ``seed``."""
        from eegattn.training.splits import subject_kfold

        if groups is None:
            raise ValueError(
                "ensemble_split='folds' holds out subjects; pass groups= (one subject id per "
                "window) or a WindowSet, or use ensemble_split='seeds'")
        n_subjects = np.unique(groups).size  # groups checked by fit
        if n_subjects < k:
            raise ValueError(
                f"ensemble={k} subject folds need at least {k} subjects, got {n_subjects}; "
                "use fewer members or ensemble_split='seeds'")
        return list(subject_kfold(k, seed=seed).split(np.zeros(n), groups=groups))

    def _combine(self, members, specs, member_splits, X, y, crop, n_chans, input_n_times,
                 sfreq, seed, device):
        """The members as one :class:`~eegattn.models.ensemble.MeanEnsemble` (the mean, the
        stacker or the calibrated mean, fitted on held-out predictions), and the out-of-fold
        predictions (n,) with subject folds (else None)."""
        from eegattn.models.ensemble import stack_weights

        ensemble = _as_ensemble(specs, members, n_chans=n_chans, n_times=input_n_times,
                                sfreq=sfreq).to(device)

        def predict(member, idx):  # the exact window of held-out windows
            offsets = eval_offsets(len(idx), X.shape[2], crop, self.crop_anchor, seed)
            return predict_module(member, X, idx, offsets, crop, int(self.batch_size), device)

        k = len(members)
        oof = None
        if self.ensemble_split == "folds":  # each window from the member that never saw it
            oof = np.full(len(y), np.nan, dtype=np.float32)
            for member, (_, idx) in zip(members, member_splits, strict=True):
                oof[idx] = predict(member, idx)
            held_out, y_held = oof[:, None], y
        elif self.ensemble_combine != "mean":  # every member on the validation subjects
            idx = member_splits[0][1]
            held_out = np.stack([predict(m, idx) for m in members], 1)
            y_held = y[idx]
        if self.ensemble_combine == "stack":
            ensemble.set_combination(*stack_weights(held_out, y_held))
        elif self.ensemble_combine == "calibrate":
            # one input, the mean (or the out-of-fold prediction): slope >= 0 and intercept
            (slope,), intercept = stack_weights(held_out.mean(1, keepdims=True), y_held)
            ensemble.set_combination(np.full(k, slope / k), intercept)
        return ensemble, oof

    # ------------------------------------------------------------------ predict

    def predict(self, X) -> np.ndarray:
        """Predictions (n,) float32 for windows (n, n_chans, n_times) or a WindowSet.

        With ``crop_n_times``, windows longer than the model input get seeded crops
        (:func:`seeded_crop_offsets` with ``seed``); windows of exactly the input length are
        used as they are.
        """
        X, offsets, crop, device = self._predict_inputs(X)
        return predict_module(self.model_, X, np.arange(X.shape[0]), offsets, crop,
                              int(self.batch_size), device)

    def predict_members(self, X) -> np.ndarray:
        """Each ensemble member's predictions (n, K) before they are combined (K = 1 for a
        single model): their spread says how much the members disagree on a window."""
        X, offsets, crop, device = self._predict_inputs(X)
        members = getattr(self.model_, "members", [self.model_])
        return np.stack([predict_module(m, X, np.arange(X.shape[0]), offsets, crop,
                                        int(self.batch_size), device) for m in members], 1)

    def _predict_inputs(self, X):
        """Checked windows, their crop offsets and length (None: as they are), the device."""
        check_is_fitted(self, "model_")
        X, _, _, _ = unpack_windows(X)
        if self.crop_n_times is None:
            X = check_X(X, n_chans=self.n_chans_, n_times=self.n_times_)
        else:
            X = check_X(X, n_chans=self.n_chans_, min_times=self.input_n_times_)
        device = resolve_device(self.device)
        if next(iter(self.model_.parameters()), torch.empty(0)).device != device:
            self.model_.to(device)
        n = X.shape[0]
        if (self.crop_anchor is not None and X.shape[2] not in (self.n_times_,
                                                                self.input_n_times_)):
            raise ValueError(
                f"X windows have {X.shape[2]} samples; this estimator reads the exact window "
                f"at sample {self.crop_anchor} of {self.n_times_}-sample windows (or takes "
                f"{self.input_n_times_}-sample windows as they are)")
        offsets = eval_offsets(n, X.shape[2], self.input_n_times_, self.crop_anchor,
                               self.seed_)
        return X, offsets, None if offsets is None else self.input_n_times_, device

    def score(self, X, y=None, sample_weight=None) -> float:
        """R² of ``predict(X)`` (scikit-learn's regressor convention); y may come from X."""
        X, y, _, _ = unpack_windows(X, y)
        y = check_y(y, X.shape[0])
        return float(r2_score(y, self.predict(X), sample_weight=sample_weight))

    # ------------------------------------------------------------------ pickling

    def fitted_model_spec(self) -> tuple:
        """``(model, model_options)`` that rebuild ``model_``: the estimator's own, or the
        ``"ensemble"`` of its members after ``fit(ensemble=K > 1)``."""
        members = getattr(self, "ensemble_members_", None)
        if members:
            return "ensemble", {"members": members}
        return self.model, self.model_options

    def __getstate__(self):
        state = super().__getstate__()
        module = state.get("model_")
        if isinstance(module, nn.Module):
            # the module itself may not pickle (EEGNeX's parametrization) and may sit on CUDA:
            # keep a CPU state dict and rebuild the module from the constructor spec on load
            state = dict(state)
            state["model_"] = None
            state["_model_state_cpu"] = cpu_state_dict(module)
        return state

    def __setstate__(self, state):
        state = dict(state)
        weights = state.pop("_model_state_cpu", None)
        super().__setstate__(state)
        if weights is None:
            return
        if str(self.device).startswith("cuda") and not torch.cuda.is_available():
            warnings.warn(
                f"this estimator was saved with device={self.device!r} but CUDA is not "
                "available here; it was loaded on the CPU (device='cpu')",
                UserWarning,
                stacklevel=2,
            )
            self.device = "cpu"
        model, options = self.fitted_model_spec()
        module = instantiate_model(
            model, options, n_chans=self.n_chans_, n_times=self.input_n_times_,
            sfreq=self.sfreq_,
        )
        module.load_state_dict(weights)
        self.model_ = module.to(resolve_device(self.device)).eval()
        self.device_ = str(resolve_device(self.device))
