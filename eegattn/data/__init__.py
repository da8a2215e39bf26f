"""HBN data: synthetic releases, offline loading, windows, caches and preprocessing.

Modules: ``synthetic`` (synthetic releases with planted truth and their oracle), ``montage``
(GSN-HydroCel-129 channel names and scalp patterns), ``hbn``, ``windows``, ``cache``,
``preprocess`` (see docs/ARCHITECTURE.md).

Nothing heavy is imported here; the names below load their module on first use.
"""

import lazy_loader

# submodule -> the names it exports, imported on first use (lazy_loader)
__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "synthetic": [
            "make_release",
            "oracle_predict",
            "load_truth",
            "default_cache_dir",
            "release_folder_name",
        ],
        "cache": ["load_challenge_windows"],
        "windows": ["WindowSet", "ccd_trial_table"],
        "hbn": ["open_releases"],
        "montage": ["HBN_CHANNELS", "set_hydrocel_montage"],
    },
)
