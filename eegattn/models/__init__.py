"""EEG regressors, built by name.

Every model subclasses braindecode's ``EEGModuleMixin`` + ``nn.Module``: input
(batch, n_chans, n_times) in volts, output (batch, n_outputs), its own input normalisation
(:mod:`eegattn.models.normalization`).

Importing this package is cheap: a model's module (and braindecode) is imported only when the
model is built or its class is accessed.
"""

from __future__ import annotations

import copy
import inspect
from importlib import import_module

import lazy_loader

# name -> (module, class)
_MODELS: dict[str, tuple[str, str]] = {
    "lightweight": ("eegattn.models.conv_attention", "ConvAttentionRegressor"),
    "eegnex": ("eegattn.models.eegnex", "NormalizedEEGNeX"),
    # the linear floor: ridge on 100 ms bin means, fitted in closed form (models/ridge.py)
    "ridge": ("eegattn.models.ridge", "BinnedRidge"),
    # challenge 2's subject-level baseline: band powers + covariance tangent space, ridge
    # (models/features.py; MNE and pyriemann fit it, closed form)
    "featureridge": ("eegattn.models.features", "FeatureRidge"),
    # braindecode's foundation backbones behind the HBN adapter (models/foundation.py)
    "foundation": ("eegattn.models.foundation", "FoundationRegressor"),
    # K registry models as one module (EEGAttentionRegressor(ensemble=K), models/ensemble.py)
    "ensemble": ("eegattn.models.ensemble", "MeanEnsemble"),
}

# preset name -> (registered model, option defaults): the same class with other defaults (as
# timm's model variants), so a preset pickles, traces and loads exactly as its model and only
# the options differ. Options given to build_model override the preset's.
_PRESETS: dict[str, tuple[str, dict[str, object]]] = {
    # the sparse-attention entry's ImprovedResponseTimeCNNWithAttention (6,163,375 parameters)
    "improved": (
        "lightweight",
        {
            "conv_channels": (256, 512, 512),
            "kernel_sizes": (7, 5, 3),
            "pool_sizes": (2, 2, 1),
            "channel_reduction": 8,
            "temporal_kernel": 7,
            "n_attention_blocks": 2,
            "pooling": "avgmax",
            "head_hidden": (256, 64),
        },
    ),
    # the entry's lightweight model without attention block and channel gate (the ablation)
    "lightweight_noattn": ("lightweight", {"n_attention_blocks": 0, "channel_reduction": None}),
    # the lightweight model re-tuned (README, "Model benchmark"): strided convolutions (stride
    # 4, then 2: 25 tokens), parameter-free position codes, average + max pooling; element
    # dropout off, whole-feature-map dropout 0.3 after each convolution stage and attention
    # weight dropout 0.5 instead (they stop the memorising that element dropout did not);
    # a position-specific read-out of 4 features per token beside the pooling (the head sees
    # when the evoked wave peaks); the entry's convolution and attention weights, 46,596 more
    # head and read-out weights
    "lightweight_fast": (
        "lightweight",
        {
            "downsample": "stride",
            "pool_sizes": (4, 2),
            "positional": "sinusoidal",
            "pooling": "avgmax",
            "dropout": 0.0,
            "channel_dropout": 0.3,
            "attention_options": {"dropout": 0.5},
            "position_readout": 4,
        },
    ),
    # braindecode's foundation architectures at their published sizes (so released weights
    # load with --init), and "_tiny" configurations of each for CPU tests and benchmarks
    # (docs/foundation.md)
    "steegformer": ("foundation", {"backbone": "steegformer"}),
    "cbramod": ("foundation", {"backbone": "cbramod"}),
    "labram": ("foundation", {"backbone": "labram"}),
    "steegformer_tiny": (
        "foundation",
        {"backbone": "steegformer",
         "backbone_options": {"embed_dim": 32, "depth": 1, "num_heads": 2, "mlp_ratio": 2,
                              "patch_size": 32}},
    ),
    "cbramod_tiny": (
        "foundation",
        {"backbone": "cbramod",
         "backbone_options": {"n_layer": 1, "nhead": 2, "dim_feedforward": 64, "emb_dim": 32,
                              "channels_kernel_stride_padding_norm": [
                                  [4, 49, 25, 24, [2, 4]], [4, 3, 1, 1, [2, 4]],
                                  [4, 3, 1, 1, [2, 4]]]}},
    ),
    "labram_tiny": (
        "foundation",
        {"backbone": "labram",
         "backbone_options": {"num_layers": 1, "num_heads": 2, "conv_out_channels": 4,
                              "mlp_ratio": 2.0}},
    ),
}


def member_options(model_options: dict | None, mix, n_members: int) -> list[dict]:
    """Model options of each of ``n_members`` ensemble members (``EEGAttentionRegressor(
    ensemble=K, ensemble_mix=...)``): ``model_options`` for all (``mix=None``), or updated by
    the dicts of ``mix`` in turn (member k takes entry k mod len), an entry's keys replacing
    the shared ones (``head_options`` as a whole)."""
    base = dict(model_options or {})
    if mix is None:
        return [copy.deepcopy(base) for _ in range(n_members)]
    if not (isinstance(mix, (list, tuple)) and mix
            and all(isinstance(entry, dict) for entry in mix)):
        raise ValueError("ensemble_mix must be None or a non-empty list of model-option "
                         f"dicts, one per member (taken in turn), got {mix!r}")
    return [copy.deepcopy({**base, **mix[k % len(mix)]}) for k in range(n_members)]


# classes and helpers, loaded on first use (lazy_loader)
_lazy_getattr, _, _lazy_names = lazy_loader.attach(
    __name__,
    submod_attrs={
        # the one convolution + attention class; the sparse-attention entry's class names are
        # the class itself and two preset builders
        "conv_attention": [
            "ConvAttentionRegressor",
            "LightweightResponseTimeCNNWithAttention",
            "ImprovedResponseTimeCNNWithAttention",
            "LightweightResponseTimeCNN",
        ],
        "eegnex": ["NormalizedEEGNeX"],
        "ridge": ["BinnedRidge"],
        "features": ["FeatureRidge"],
        "ensemble": ["MeanEnsemble"],
        "foundation": ["FoundationRegressor"],
        "heads": ["TimeHead"],
        "normalization": ["EEGInputNormalization", "check_eeg_input"],
        "blocks": ["AttentionBlock", "ConvStage"],
    },
)

_SIGNAL_ARGS = ("n_chans", "n_outputs", "n_times", "sfreq")

__all__ = [
    "available_models",
    "build_model",
    "member_options",
    "model_class",
    "model_options",
    "preset",
    *_lazy_names,
]


def available_models() -> list[str]:
    """Names accepted by :func:`build_model` (models and presets), sorted."""
    return sorted([*_MODELS, *_PRESETS])


def preset(name: str) -> tuple[str, dict[str, object]]:
    """``(model name, option defaults)`` of a registry name; a plain model has no defaults."""
    if isinstance(name, str) and name in _PRESETS:
        base, options = _PRESETS[name]
        return base, copy.deepcopy(options)  # nested option dicts stay private
    model_class(name)  # ValueError for unknown names
    return name, {}


def model_class(name: str) -> type:
    """The class registered as ``name`` (a preset's model class; imports its module)."""
    if isinstance(name, str) and name in _PRESETS:
        name = _PRESETS[name][0]
    try:
        module, cls = _MODELS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown model {name!r}; choose one of {', '.join(available_models())}"
        ) from None
    return getattr(_import_quietly(module), cls)


def _import_quietly(module: str):
    from eegattn.utils.quiet import quiet_braindecode_import

    with quiet_braindecode_import():
        return import_module(module)


def model_options(name: str) -> dict[str, object]:
    """The model options of ``name`` (beyond the signal arguments) with their defaults (a
    preset's own defaults included)."""
    params = inspect.signature(model_class(name).__init__).parameters
    defaults = {key: p.default for key, p in params.items() if p.kind is p.KEYWORD_ONLY}
    return {**defaults, **preset(name)[1]}


def build_model(
    name: str,
    n_chans: int = 129,
    n_outputs: int = 1,
    n_times: int = 200,
    sfreq: float = 100.0,
    **options,
):
    """Build the EEG model ``name`` (see :func:`available_models`).

    Parameters
    ----------
    name : str
        ``lightweight`` or ``eegnex``, or a preset of ``lightweight``: ``improved``,
        ``lightweight_noattn``, ``lightweight_fast`` (the lightweight model with the options in
        ``_PRESETS``; options given here override the preset's).
    n_chans, n_outputs, n_times, sfreq
        Signal arguments: the model takes (batch, n_chans, n_times) windows sampled at
        ``sfreq`` Hz and returns (batch, n_outputs).
    **options
        The model's own options (see :func:`model_options`), e.g. ``attention="standard"``,
        ``attention_options={"heads": 4}``, ``inattention=True``, ``dropout=0.2``.

    Returns
    -------
    torch.nn.Module (a braindecode ``EEGModuleMixin``), in training mode.
    """
    cls = model_class(name)
    valid = model_options(name)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise ValueError(
            f"unknown option(s) {', '.join(map(repr, unknown))} for model {name!r}; "
            f"valid options: {', '.join(valid)}"
        )
    options = {**preset(name)[1], **options}
    return cls(n_chans=n_chans, n_outputs=n_outputs, n_times=n_times, sfreq=sfreq, **options)


def __getattr__(name: str):
    from eegattn.utils.quiet import quiet_braindecode_import

    with quiet_braindecode_import():  # the classes import braindecode
        return _lazy_getattr(name)


def __dir__():
    return __all__
