"""eegattn: attention mechanisms, EEG regressors and HBN challenge pipelines.

Names exported here load lazily, so ``import eegattn`` (and ``eegattn --help``) stay fast:
torch, mne, braindecode and eegdash are imported only when a name that needs them is used.
"""

import lazy_loader

__version__ = "0.1.0"

# submodule -> the names it exports, imported on first use. lazy_loader (as MNE) replaced the
# hand-written PEP 562 helper at no cost: `eegattn --help` took 52.8 vs 51.4 ms (median of 60
# runs each, interleaved; min 39.6 vs 38.5 ms), within the noise; importing lazy_loader
# itself costs 0.1 ms more than the old helper (python -X importtime).
__getattr__, _, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "attention": [
            "build_attention",
            "available_attention",
            "ChannelAttention",
            "TemporalAttention",
            "InattentionDropout",
            "StackedInattentionDropout",
        ],
        "training": ["EEGAttentionRegressor", "nrmse", "overall_score"],
        "models": ["build_model", "available_models"],
    },
)
__all__ = [*__all__, "__version__"]


def __dir__():
    return __all__
