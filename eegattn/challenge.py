"""Facts of the EEG Foundation Challenge 2025 that the code relies on: the one home for them.

Every module that needs a release name, a task, the excluded subjects, a window's geometry, the
metric's weights or the default cache folder imports it from here; nothing else defines them.
(The submission templates in ``eegattn/submission/templates`` are the exception: they are
packed into a submission and run on the server without eegattn, so they keep their own
copies of the input shape.) The facts themselves, with their public sources, are written
up in ``docs/`` (data layout, scoring, submission contract).

Only the standard library is imported, so any module, the command line included, can use
this one without cost.

Releases and data
    :data:`RELEASES` (``R1`` .. ``R11``), :data:`TASKS`, :data:`CCD_TASK`,
    :data:`REST_TASK`, :data:`EXCLUDED_SUBJECTS` (nine subjects the starter kit leaves
    out), :data:`R5_MINI_SUBJECTS` / :data:`MINI_SIZE`, participants.tsv columns
    (:data:`HBN_TASK_COLUMNS`, :data:`FACTOR_COLUMNS`), :func:`normalize_release`,
    :func:`release_folder_name` (``EEG2025r<N>[mini]``) and its inverse
    :func:`parse_release_folder`, :data:`RELEASE_DATASET_IDS` with
    :func:`legacy_release_folder_name` (``ds005509-bdf[-mini]``, older eegdash caches),
    :data:`ALL_TASKS`, :func:`default_cache_dir`.

CCD trials
    :data:`TRIAL_RULES`: how the last trial of a run ends (``"challenge"``: eegdash as the
    competition ran it, the trial is dropped; ``"current"``: eegdash 0.9, it ends at
    ``end_experiment``); :data:`DEFAULT_TRIAL_RULE` (``"challenge"``).

Windows and model input
    :data:`SFREQ` (100 Hz), :data:`N_CHANS` (129), :data:`N_TIMES` (200 samples = 2 s, what
    a submitted model receives). Challenge 1: one window per trial, from
    :data:`C1_SHIFT_AFTER_STIMULUS_S` (+0.5 s) after the stimulus, :data:`C1_WINDOW_S` (2 s)
    long, so +0.5 .. +2.5 s. Challenge 2: :data:`C2_WINDOW_S` (4 s) windows every
    :data:`C2_STRIDE_S` (2 s), from which the model sees a :data:`C2_CROP_N_TIMES` (200
    samples = 2 s) crop: random in training, seeded (:func:`crop_starts`) at evaluation.

Scoring
    :data:`CHALLENGES` (1, 2) and :func:`check_challenge`; :data:`CHALLENGE_WEIGHTS`
    (``overall = 0.3 * NRMSE_1 + 0.7 * NRMSE_2``). The metric itself is
    :func:`eegattn.training.metrics.nrmse`. The scoring ingestion's selection:
    :data:`SCORING_TASK`, :data:`SCORING_MIN_N_TIMES` and its challenge-2 crops,
    :func:`ingestion_crop_starts` (one ``random.Random(42)`` per recording).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = [
    "C1_SHIFT_AFTER_STIMULUS_S",
    "C1_WINDOW_S",
    "C2_CROP_N_TIMES",
    "C2_STRIDE_S",
    "C2_WINDOW_S",
    "ALL_TASKS",
    "CACHE_ENV_VAR",
    "CCD_TASK",
    "CHALLENGES",
    "CHALLENGE_WEIGHTS",
    "DEFAULT_TRIAL_RULE",
    "EXCLUDED_SUBJECTS",
    "FACTOR_COLUMNS",
    "HBN_TASK_COLUMNS",
    "MINI_SIZE",
    "N_CHANS",
    "N_TIMES",
    "R5_MINI_SUBJECTS",
    "RELEASES",
    "RELEASE_DATASET_IDS",
    "REST_TASK",
    "SCORING_CROP_SEED",
    "SCORING_MIN_N_TIMES",
    "SCORING_TASK",
    "SFREQ",
    "TASKS",
    "TRIAL_RULES",
    "check_challenge",
    "crop_starts",
    "default_cache_dir",
    "ingestion_crop_starts",
    "legacy_release_folder_name",
    "normalize_release",
    "parse_release_folder",
    "release_folder_name",
]

# ---------------------------------------------------------------------------------------------
# Releases, tasks and subjects
# ---------------------------------------------------------------------------------------------
RELEASES: tuple[str, ...] = tuple(f"R{i}" for i in range(1, 12))  # R12 was never released
CCD_TASK = "contrastChangeDetection"  # challenge 1's task
REST_TASK = "RestingState"
TASKS: tuple[str, ...] = (
    "RestingState", "DespicableMe", "DiaryOfAWimpyKid", "FunwithFractals", "ThePresent",
    "contrastChangeDetection", "seqLearning6target", "seqLearning8target", "surroundSupp",
    "symbolSearch",
)  # fmt: skip
#: ``tasks="all"`` (``--tasks all``): every task of :data:`TASKS` present on disk
ALL_TASKS = "all"

#: OpenNeuro dataset id of each release (eegdash's ``const.RELEASE_TO_OPENNEURO_DATASET_MAP``;
#: the datasets at openneuro.org/datasets/<id>). eegdash up to about 0.5 cached a challenge
#: release as ``<id>-bdf`` (full) or ``<id>-bdf-mini``; 0.9 uses ``EEG2025r<N>[mini]``.
RELEASE_DATASET_IDS: dict[str, str] = {
    "R1": "ds005505", "R2": "ds005506", "R3": "ds005507", "R4": "ds005508", "R5": "ds005509",
    "R6": "ds005510", "R7": "ds005511", "R8": "ds005512", "R9": "ds005514", "R10": "ds005515",
    "R11": "ds005516",
}  # fmt: skip

#: subjects the starter kit excludes from the challenge
EXCLUDED_SUBJECTS: tuple[str, ...] = (
    "NDARWV769JM7", "NDARME789TD2", "NDARUA442ZVF", "NDARJP304NK1", "NDARTY128YLU",
    "NDARDW550GU6", "NDARLD243KRE", "NDARUJ292JXV", "NDARBA381JGH",
)  # fmt: skip

#: the 20 subjects of the R5 mini release (eegdash 0.9.1, ``const.SUBJECT_MINI_RELEASE_MAP``)
R5_MINI_SUBJECTS: tuple[str, ...] = (
    "NDARAH793FBF", "NDARAJ689BVN", "NDARAP785CTE", "NDARAU708TL8", "NDARBE091BGD",
    "NDARBE103DHM", "NDARBF851NH6", "NDARBH228RDW", "NDARBJ674TVU", "NDARBM433VER",
    "NDARCA740UC8", "NDARCU633GCZ", "NDARCU736GZ1", "NDARCU744XWL", "NDARDC843HHM",
    "NDARDH086ZKK", "NDARDL305BT8", "NDARDU853XZ6", "NDARDV245WJG", "NDAREC480KFA",
)  # fmt: skip
#: subjects in every mini release
MINI_SIZE = 20

#: participants.tsv availability columns, in HBN's order
HBN_TASK_COLUMNS: tuple[str, ...] = (
    "RestingState", "DespicableMe", "FunwithFractals", "ThePresent", "DiaryOfAWimpyKid",
    "contrastChangeDetection_1", "contrastChangeDetection_2", "contrastChangeDetection_3",
    "surroundSupp_1", "surroundSupp_2", "seqLearning6target", "seqLearning8target",
    "symbolSearch",
)  # fmt: skip
#: participants.tsv psychopathology factors (challenge 2 predicts ``externalizing``)
FACTOR_COLUMNS: tuple[str, ...] = ("p_factor", "attention", "internalizing", "externalizing")

_RELEASE_FOLDER = re.compile(r"^EEG2025r(\d+)(mini)?$")
_LEGACY_FOLDER = re.compile(r"^(ds\d{6})-bdf(-mini)?$")

#: environment variable that moves the project cache (releases, window caches)
CACHE_ENV_VAR = "EEGATTN_CACHE"


def normalize_release(release) -> str:
    """``"R5"``, ``"r5"``, ``5`` or ``"5"`` -> ``"R5"``; ValueError for anything else."""
    text = str(release).strip().upper()
    if not text.startswith("R"):
        text = "R" + text
    if text not in RELEASES:
        raise ValueError(f"unknown HBN release {release!r}: use one of {list(RELEASES)}")
    return text


def release_folder_name(release="R5", mini: bool = False) -> str:
    """``EEG2025r5`` / ``EEG2025r5mini``: the folder of a release (as eegdash names it)."""
    return f"EEG2025r{normalize_release(release)[1:]}{'mini' if mini else ''}"


def legacy_release_folder_name(release="R5", mini: bool = False) -> str:
    """``ds005509-bdf`` / ``ds005509-bdf-mini``: the folder older eegdash versions (up to
    about 0.5) cached a release in."""
    dataset = RELEASE_DATASET_IDS[normalize_release(release)]
    return f"{dataset}-bdf{'-mini' if mini else ''}"


def parse_release_folder(name: str) -> tuple[str, bool] | None:
    """``"EEG2025r5mini"`` (or the older ``"ds005509-bdf-mini"``) -> ``("R5", True)``;
    ``None`` if ``name`` is no release folder name (the inverse of
    :func:`release_folder_name` and :func:`legacy_release_folder_name`)."""
    match = _RELEASE_FOLDER.match(name)
    if match is not None and f"R{match.group(1)}" in RELEASES:
        return f"R{match.group(1)}", bool(match.group(2))
    match = _LEGACY_FOLDER.match(name)
    if match is not None:
        for release, dataset in RELEASE_DATASET_IDS.items():
            if dataset == match.group(1):
                return release, bool(match.group(2))
    return None


def default_cache_dir() -> Path:
    """Where releases and caches go: ``$EEGATTN_CACHE`` if set, else ``./cache`` (git-ignored)."""
    env = os.environ.get(CACHE_ENV_VAR, "").strip()
    return Path(env).expanduser() if env else Path.cwd() / "cache"


# ---------------------------------------------------------------------------------------------
# Windows and the model input
# ---------------------------------------------------------------------------------------------
SFREQ = 100.0  # Hz, the challenge releases (band-passed 0.5-50 Hz, downsampled)
N_CHANS = 129  # E1..E128 + Cz (GSN-HydroCel-129)
N_TIMES = 200  # samples a submitted model receives: 2 s at 100 Hz

C1_SHIFT_AFTER_STIMULUS_S = 0.5  # challenge-1 windows start 0.5 s after the stimulus ...
C1_WINDOW_S = 2.0  # ... and last 2 s: +0.5 .. +2.5 s, 200 samples
C2_WINDOW_S = 4.0  # challenge-2 windows: 4 s ...
C2_STRIDE_S = 2.0  # ... every 2 s ...
C2_CROP_N_TIMES = 200  # ... of which the model sees a 2 s crop

#: rules for the last CCD trial of a run: ``"challenge"`` (eegdash as the competition ran it:
#: a trial needs a following ``contrastTrial_start``, so the last one is dropped) and
#: ``"current"`` (eegdash 0.9: it ends at the run's ``end_experiment`` when that follows it)
TRIAL_RULES: tuple[str, ...] = ("challenge", "current")
DEFAULT_TRIAL_RULE = "challenge"


def crop_starts(n_windows: int, n_times: int, crop: int = C2_CROP_N_TIMES, seed: int = 0):
    """Seeded start sample of a ``crop``-sample crop in each of ``n_windows`` windows.

    ``numpy.random.default_rng(seed).integers(0, n_times - crop + 1, size=n_windows)``: the
    evaluation crops of challenge 2, the same in the training loop's test scores and in
    submission validation, so both score the same samples.
    """
    import numpy as np

    if n_times < crop:
        raise ValueError(f"windows of {n_times} samples are shorter than the {crop}-sample crop")
    return np.random.default_rng(seed).integers(0, n_times - crop + 1, size=n_windows)


# ---------------------------------------------------------------------------------------------
# Scoring
# ---------------------------------------------------------------------------------------------
CHALLENGES: tuple[int, ...] = (1, 2)
#: weight of each challenge's NRMSE in the overall score
CHALLENGE_WEIGHTS: dict[int, float] = {1: 0.3, 2: 0.7}

# The scoring ingestion (the local scoring script published with the starter kit): both
# challenges read the CCD recordings of the test release, no subject excluded and no channel
# filter; challenge 2 keeps recordings of at least 400 samples with a target.
SCORING_TASK = CCD_TASK
SCORING_MIN_N_TIMES = int(C2_WINDOW_S * SFREQ)  # 400 samples
SCORING_CROP_SEED = 42  # each recording's own random.Random(42)


def ingestion_crop_starts(n_windows: int, n_times: int = SCORING_MIN_N_TIMES,
                          crop: int = C2_CROP_N_TIMES, seed: int = SCORING_CROP_SEED) -> list[int]:
    """Crop starts of the ``n_windows`` challenge-2 windows of *one recording*, as the scoring
    ingestion draws them: a fresh ``random.Random(seed)`` for the recording and
    ``randint(0, n_times - crop)`` (both ends included) per window, in window order.

    (Training and the estimator's test scores use :func:`crop_starts`; only scoring needs
    the ingestion's exact draws.)
    """
    import random

    if n_times < crop:
        raise ValueError(f"windows of {n_times} samples are shorter than the {crop}-sample crop")
    rng = random.Random(seed)
    return [rng.randint(0, n_times - crop) for _ in range(int(n_windows))]


def check_challenge(challenge) -> int:
    """Return ``challenge`` if it is 1 or 2, else raise ``ValueError`` saying so."""
    if isinstance(challenge, bool) or challenge not in CHALLENGES:
        raise ValueError(
            f"challenge must be 1 or 2, got {challenge!r} (1: response time on "
            f"{CCD_TASK}, 2: the externalizing factor)"
        )
    return int(challenge)
