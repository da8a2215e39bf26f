"""Training augmentations by name: generic ones from ``braindecode.augmentation``, and two
that move the challenge-1 label with the signal.

Generic (``braindecode.augmentation``, not written again here; options in volts):

==================  ===================================================  ====================
name                what                                                  defaults
==================  ===================================================  ====================
channels_dropout    zero a random 20 % of the channels                    probability 0.5
gaussian_noise      add white noise (5 uV)                                probability 0.5
smooth_time_mask    zero a 200 ms stretch with smooth edges               probability 0.5
mixup               convex mix of two windows and of their targets        alpha 0.4
==================  ===================================================  ====================

Label-moving (challenge 1; they need windows cut with context, e.g. +0.3 .. +2.7 s, and a
``crop_anchor`` at the exact +0.5 s window):

``time_shift``
    each training window is cropped at a random shift ``d`` (anywhere in the context) and
    its target moves with it: a crop starting at +0.5 s + d reads a response time of RT - d.
``time_scale``
    the crop is resampled by a factor ``s`` in ``[1 - max_scale, 1 + max_scale]`` (0.1)
    around its first sample (the window start, ``label_origin_s`` = 0.5 s after the
    stimulus), and the target is rescaled the same way: RT -> 0.5 + s (RT - 0.5).

Both draw from the epoch's seeded generator (as the crops do) and are stored in checkpoints,
so a resumed run is exact; the generic transforms are re-seeded from ``(seed, epoch, step)``
before every batch for the same reason. Evaluation never augments: validation and
``predict`` read the exact window at the anchor.
"""

from __future__ import annotations

import numpy as np

from eegattn.utils.check import check_fraction, check_option

__all__ = ["AUGMENTATIONS", "LABEL_MOVING", "parse_augment", "BatchAugmenter",
           "resample_crops"]

#: name -> (braindecode class name or None for the loop's own, default options)
AUGMENTATIONS: dict[str, tuple[str | None, dict]] = {
    "channels_dropout": ("ChannelsDropout", {"probability": 0.5, "p_drop": 0.2}),
    "gaussian_noise": ("GaussianNoise", {"probability": 0.5, "std": 5e-6}),
    "smooth_time_mask": ("SmoothTimeMask", {"probability": 0.5, "mask_len_samples": 20}),
    "mixup": ("Mixup", {"alpha": 0.4}),
    "time_shift": (None, {}),
    "time_scale": (None, {"max_scale": 0.1}),
}
LABEL_MOVING = ("time_shift", "time_scale")


def parse_augment(augment) -> dict[str, dict]:
    """``None``, a list of names, or ``{name: options}`` -> ``{name: options with defaults}``."""
    if augment is None:
        return {}
    if isinstance(augment, str):
        augment = [augment]
    items = augment.items() if isinstance(augment, dict) else ((a, {}) for a in augment)
    out: dict[str, dict] = {}
    for name, options in items:
        check_option("augment", name, tuple(AUGMENTATIONS),
                     fix="Give a list of names, e.g. ['time_shift', 'channels_dropout'].")
        defaults = AUGMENTATIONS[name][1]
        options = dict(options or {})
        unknown = sorted(set(options) - set(defaults))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for "
                             f"augmentation {name!r}; valid: {', '.join(defaults) or 'none'}")
        options = {**defaults, **options}
        if name == "time_scale":
            check_fraction(options["max_scale"], "max_scale", high=0.5)
        out[name] = options
    return out


def resample_crops(X: np.ndarray, offsets: np.ndarray, crop: int,
                   scales: np.ndarray | None) -> np.ndarray:
    """Crops (b, c, crop) of windows ``X`` (b, c, n) starting at ``offsets`` (b,), each
    stretched by ``scales`` (b,) around its first sample: output sample i reads input sample
    ``offset + i / s`` (linear interpolation, the window's last sample past its end)."""
    if scales is None:
        idx = offsets[:, None] + np.arange(crop)[None, :]
        return np.take_along_axis(X, idx[:, None, :], axis=2)
    pos = offsets[:, None] + np.arange(crop)[None, :] / scales[:, None]  # (b, crop)
    pos = np.clip(pos, 0, X.shape[2] - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, X.shape[2] - 1)
    frac = (pos - lo)[:, None, :].astype(X.dtype)
    left = np.take_along_axis(X, lo[:, None, :], axis=2)
    right = np.take_along_axis(X, hi[:, None, :], axis=2)
    return left + frac * (right - left)


class BatchAugmenter:
    """The generic transforms of one training run, applied to (xb, yb) tensors."""

    def __init__(self, augment: dict[str, dict], seed: int):
        import braindecode.augmentation as bd_aug

        self.seed = seed
        self.transforms = [
            getattr(bd_aug, AUGMENTATIONS[name][0])(random_state=0, **options)
            for name, options in augment.items() if AUGMENTATIONS[name][0] is not None
        ]

    def __bool__(self) -> bool:
        return bool(self.transforms)

    def __call__(self, xb, yb, epoch: int, step: int, rank: int = 0):
        """Tensors (b, c, t) and (b,) -> augmented ones (mixup mixes the targets too)."""
        from sklearn.utils import check_random_state

        for k, transform in enumerate(self.transforms):
            # one stream per (seed, epoch, step, transform, process): the same after a resume,
            # and each data-parallel process draws its own masks
            stream = np.random.SeedSequence([self.seed, epoch, step, k, rank]).generate_state(
                1)[0]
            transform.rng = check_random_state(int(stream))
            xb, yb = transform(xb, yb)
            if isinstance(yb, tuple):  # mixup: (y, y of the partner, lambda)
                y_a, y_b, lam = yb
                yb = lam * y_a + (1 - lam) * y_b
        return xb, yb
