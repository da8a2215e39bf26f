"""The HBN EEG cap: EGI GSN-HydroCel-129 channel names, positions and scalp patterns.

HBN records 129 channels, ``E1`` .. ``E128`` plus ``Cz`` (E129), referenced to Cz, so ``Cz`` is
a flat channel in every released file. MNE ships the
layout as the standard montage ``"GSN-HydroCel-129"`` with exactly these names.

Landmarks used here (10-20 equivalents on the HydroCel-129 net): Fz = E11, Pz = E62, Oz = E75,
C3 = E36, C4 = E104 (over the left / right motor cortex), CPz = E55; E8 / E25 sit above and
E126 / E127 below the eyes.

``mne`` is imported inside the functions so that importing this module stays cheap.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

MONTAGE_NAME = "GSN-HydroCel-129"
REFERENCE_CHANNEL = "Cz"
HBN_CHANNELS: tuple[str, ...] = tuple(f"E{i}" for i in range(1, 129)) + (REFERENCE_CHANNEL,)
N_CHANNELS = len(HBN_CHANNELS)  # 129

# 10-20 landmarks on the HydroCel-129 net (channel names of this montage).
LANDMARKS: dict[str, str] = {"Fz": "E11", "Cz": "Cz", "Pz": "E62", "Oz": "E75",
                             "C3": "E36", "C4": "E104", "CPz": "E55"}
EYE_CHANNELS: tuple[str, ...] = ("E8", "E25", "E126", "E127")


@lru_cache(maxsize=1)
def _positions_cached() -> np.ndarray:
    import mne

    montage = mne.channels.make_standard_montage(MONTAGE_NAME)
    ch_pos = montage.get_positions()["ch_pos"]
    missing = [name for name in HBN_CHANNELS if name not in ch_pos]
    if missing:  # pragma: no cover - guards against a changed MNE montage
        raise ValueError(f"MNE's {MONTAGE_NAME} montage lacks channels {missing[:5]}")
    positions = np.array([ch_pos[name] for name in HBN_CHANNELS], dtype=float)
    positions.setflags(write=False)
    return positions


def channel_positions() -> np.ndarray:
    """Electrode positions in metres, shape (129, 3), in the order of ``HBN_CHANNELS``."""
    return _positions_cached().copy()


def hydrocel_montage():
    """MNE's ``GSN-HydroCel-129`` standard montage (a ``mne.channels.DigMontage``)."""
    import mne

    return mne.channels.make_standard_montage(MONTAGE_NAME)


def set_hydrocel_montage(raw, *, on_missing: str = "raise"):
    """Attach the HydroCel-129 positions to ``raw`` (in place) and return it.

    Raises ValueError when ``raw`` has channels the montage does not know, unless
    ``on_missing`` is ``"warn"`` or ``"ignore"`` (passed on to ``raw.set_montage``).
    """
    if on_missing not in ("raise", "warn", "ignore"):
        raise ValueError(f"on_missing must be 'raise', 'warn' or 'ignore', got {on_missing!r}")
    unknown = [name for name in raw.ch_names if name not in HBN_CHANNELS]
    if unknown and on_missing == "raise":
        raise ValueError(
            f"channels {unknown[:5]} are not HydroCel-129 names (E1..E128, Cz); rename them "
            "or pass on_missing='ignore'"
        )
    raw.set_montage(hydrocel_montage(), on_missing=on_missing)
    return raw


def channel_index(name: str) -> int:
    """Row of channel ``name`` (``"E62"``, ``"Cz"`` or a landmark such as ``"Pz"``)."""
    resolved = LANDMARKS.get(name, name)
    try:
        return HBN_CHANNELS.index(resolved)
    except ValueError:
        raise ValueError(
            f"unknown channel {name!r}: use E1..E128, Cz or one of {sorted(LANDMARKS)}"
        ) from None


def scalp_pattern(
    center: str | np.ndarray, width: float = 0.045, *, referenced: bool = True
) -> np.ndarray:
    """A smooth scalp topography, shape (129,): a Gaussian of the distance to ``center``.

    ``center`` is a channel / landmark name or a 3-D point in metres; ``width`` the Gaussian
    spread in metres (the head radius is about 0.095 m). With ``referenced=True`` the value at
    Cz is subtracted, as recording against a Cz reference does, so ``Cz`` is exactly 0.
    """
    if not width > 0:
        raise ValueError(f"width must be a positive distance in metres, got {width!r}")
    positions = _positions_cached()
    if isinstance(center, str):
        point = positions[channel_index(center)]
    else:
        point = np.asarray(center, dtype=float)
        if point.shape != (3,):
            raise ValueError(f"center must be a channel name or a 3-D point, got {point.shape}")
    distance = np.linalg.norm(positions - point, axis=1)
    pattern = np.exp(-0.5 * (distance / width) ** 2)
    if referenced:
        pattern = pattern - pattern[channel_index(REFERENCE_CHANNEL)]
    return pattern
