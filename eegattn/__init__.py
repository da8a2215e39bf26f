"""eegattn: attention mechanisms, EEG regressors and HBN challenge pipelines.

Names exported here load lazily, so ``import eegattn`` (and ``eegattn --help``) stay fast:
torch, mne, braindecode and eegdash are imported only when a name that needs them is used.
"""

from eegattn._lazy import lazy_exports

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY = {
    "build_attention": "eegattn.attention",
    "available_attention": "eegattn.attention",
    "ChannelAttention": "eegattn.attention",
    "TemporalAttention": "eegattn.attention",
    "InattentionDropout": "eegattn.attention",
    "StackedInattentionDropout": "eegattn.attention",
    "EEGAttentionRegressor": "eegattn.training",
    "nrmse": "eegattn.training",
    "overall_score": "eegattn.training",
    "build_model": "eegattn.models",
    "available_models": "eegattn.models",
}

__all__ = sorted(_LAZY) + ["__version__"]


__getattr__, __dir__ = lazy_exports('eegattn', _LAZY, globals())
