"""HBN data: synthetic releases, offline loading, windows, caches and preprocessing.

Modules: ``synthetic`` (synthetic releases with planted truth and their oracle), ``montage``
(GSN-HydroCel-129 channel names and scalp patterns), ``hbn``, ``windows``, ``cache``,
``preprocess`` (see docs/ARCHITECTURE.md).

Nothing heavy is imported here; the names below load their module on first use.
"""

from eegattn._lazy import lazy_exports

# public name -> module that defines it
_LAZY = {
    "make_release": "eegattn.data.synthetic",
    "oracle_predict": "eegattn.data.synthetic",
    "load_truth": "eegattn.data.synthetic",
    "default_cache_dir": "eegattn.data.synthetic",
    "release_folder_name": "eegattn.data.synthetic",
    "load_challenge_windows": "eegattn.data.cache",
    "WindowSet": "eegattn.data.windows",
    "ccd_trial_table": "eegattn.data.windows",
    "open_releases": "eegattn.data.hbn",
    "HBN_CHANNELS": "eegattn.data.montage",
    "set_hydrocel_montage": "eegattn.data.montage",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports('eegattn.data', _LAZY, globals())
