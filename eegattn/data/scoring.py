"""The windows the challenge's scoring ingestion scores, built with :mod:`eegattn.data`.

The organisers' scoring ingestion (the local scoring script published with the starter kit;
``docs/challenge.md``, "How the organisers' scoring read the data") does not select the data
as the starter kit's training code does:

- both challenges read the contrast-change-detection (CCD) recordings of the test release,
  **every** subject (the nine exclusions are a training choice) and no 129-channel filter;
- challenge 1: one window per trial with a stimulus and a response, +0.5 .. +2.5 s after the
  stimulus, under the trial table of the eegdash the competition ran (``trial_rule``);
- challenge 2: recordings of at least 400 samples with a non-missing ``externalizing``, 4 s
  windows every 2 s, and from each window a 2 s crop whose start is drawn by the recording's
  own ``random.Random(42)``, ``randint(0, 200)`` per window in window order
  (:func:`eegattn.challenge.ingestion_crop_starts`).

:func:`scoring_windows` returns those windows (challenge 2 still 4 s long, with the crop
start of each in ``metadata["crop_start"]``, so a caller can crop in chunks);
:func:`crop_scoring_windows` cuts the crops. Training keeps the starter kit's selection
(:func:`eegattn.data.cache.load_challenge_windows` excludes the nine subjects by default).

A recording without the 129 HBN channels cannot be scored by a model that takes 129 channels:
the ingestion would fail on it; here it is skipped with a warning that names it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from eegattn.challenge import (
    C2_CROP_N_TIMES,
    DEFAULT_TRIAL_RULE,
    SCORING_CROP_SEED,
    SCORING_TASK,
    check_challenge,
    ingestion_crop_starts,
    parse_release_folder,
)
from eegattn.data.windows import WindowSet

__all__ = ["scoring_windows", "crop_scoring_windows", "ingestion_crops",
           "locate_release_folder", "SELECTION"]

#: how the scoring windows were chosen, in words (printed beside the scores)
SELECTION = {
    1: "CCD trials of every subject (no exclusion), trial rule {trial_rule}",
    2: ("CCD recordings of every subject with >= 4 s and a target; one 2 s crop per 4 s "
        "window, random.Random(42) per recording"),
}


def locate_release_folder(path) -> tuple[Path, str, bool]:
    """``(folder, release, mini)`` of a release folder given as ``.../EEG2025r5[mini]`` (or the
    older ``.../ds005509-bdf[-mini]``), or as a folder holding exactly one of them."""
    path = Path(path).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"release folder {path} does not exist")
    parsed = parse_release_folder(path.name)
    if parsed is None:
        children = sorted(p for p in path.iterdir() if p.is_dir() and parse_release_folder(p.name))
        if len(children) != 1:
            raise ValueError(
                f"{path} is not a release folder (EEG2025r<N>[mini], or ds0055xx-bdf[-mini] "
                f"from older eegdash) and holds {len(children)} of them; pass one release "
                "folder"
            )
        path = children[0]
        parsed = parse_release_folder(path.name)
    release, mini = parsed
    return path, release, mini


def ingestion_crops(metadata, n_times: int, crop: int = C2_CROP_N_TIMES,
                    seed: int = SCORING_CROP_SEED) -> np.ndarray:
    """Crop start of every challenge-2 window, (n_windows,) int64, as the ingestion draws them:
    per recording (``metadata["recording"]``) a fresh ``random.Random(seed)``, one
    ``randint(0, n_times - crop)`` per window in window order (``i_window``)."""
    recordings = metadata["recording"].astype(str).to_numpy()
    order = metadata["i_window"].to_numpy() if "i_window" in metadata.columns else None
    starts = np.zeros(len(recordings), dtype=np.int64)
    for name in dict.fromkeys(recordings):  # each recording once, in order of appearance
        rows = np.flatnonzero(recordings == name)
        if order is not None:
            rows = rows[np.argsort(order[rows], kind="stable")]
        starts[rows] = ingestion_crop_starts(len(rows), n_times, crop, seed)
    return starts


def scoring_windows(challenge: int, release_dir, *, trial_rule: str = DEFAULT_TRIAL_RULE,
                    cache_dir=None, use_cache: bool = True, n_jobs: int = 1,
                    progress: bool = False) -> WindowSet:
    """The windows (and targets) the scoring ingestion scores on one release folder.

    ``release_dir``: ``.../EEG2025r<N>[mini]`` (see :func:`locate_release_folder`). Windows
    come from the window cache (``cache_dir``; ``use_cache=False`` builds them in memory).
    Challenge 2's windows stay 4 s long; ``metadata["crop_start"]`` holds each window's crop
    start (:func:`crop_scoring_windows` cuts them). ``info["selection"]`` says how they were
    chosen.
    """
    from eegattn.data.cache import load_challenge_windows

    check_challenge(challenge)
    folder, release, mini = locate_release_folder(release_dir)
    windows = load_challenge_windows(
        challenge, releases=(release,), root=folder.parent, mini=mini,
        tasks=None if challenge == 1 else [SCORING_TASK], keep_excluded=True,
        trial_rule=trial_rule if challenge == 1 else None, cache_dir=cache_dir,
        use_cache=use_cache, n_jobs=n_jobs, progress=progress,
    )  # fmt: skip
    info = dict(windows.info)
    info["selection"] = SELECTION[challenge].format(trial_rule=trial_rule)
    info["release_label"] = f"{release}{' mini' if mini else ''}"
    metadata = windows.metadata
    if challenge == 2:
        metadata = metadata.copy()
        metadata["crop_start"] = ingestion_crops(metadata, windows.n_times)
    return WindowSet(X=windows.X, y=windows.y, metadata=metadata, sfreq=windows.sfreq,
                     challenge=challenge, cache_key=windows.cache_key, info=info)


def crop_scoring_windows(windows: WindowSet, crop: int = C2_CROP_N_TIMES) -> np.ndarray:
    """The model inputs of :func:`scoring_windows`' output, (n, n_chans, crop) float32: the
    windows themselves for challenge 1, each window's ingestion crop for challenge 2."""
    if "crop_start" not in windows.metadata.columns:
        if windows.n_times != crop:
            raise ValueError(f"windows of {windows.n_times} samples carry no crop_start; give "
                             "the output of scoring_windows")
        return np.asarray(windows.X, dtype=np.float32)
    starts = windows.metadata["crop_start"].to_numpy()
    out = np.empty((len(windows), windows.n_chans, crop), dtype=np.float32)
    for i, start in enumerate(starts):
        out[i] = windows.X[i, :, start : start + crop]
    return out
