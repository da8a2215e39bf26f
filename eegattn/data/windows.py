"""Challenge windows: the CCD trial table, challenge-1 and challenge-2 windowing, ``WindowSet``.

Facts (EEG Foundation Challenge 2025 starter kit and eegdash 0.9.1):

- Challenge 1 (response time): per contrast-change-detection (CCD) trial, the first stimulus
  (``left_target`` / ``right_target``) inside ``[trial start, next trial start)`` and the first
  button press after it in the same interval. One 2 s window from +0.5 s to +2.5 s after each
  stimulus that has a response; target ``rt_from_stimulus`` in seconds.
- Challenge 2 (externalizing factor): fixed 4 s windows with a 2 s stride from the start of
  each recording (400 samples at 100 Hz); the 2 s crops are taken later by the estimator.

The trial table reproduces ``eegdash.hbn.build_trial_table`` (eegdash 0.9.1) row for row, with
vectorised look-ups instead of a loop, and adds ``stimulus_side`` / ``response_side``. The
challenge-1 windows reproduce the starter-kit path (``annotate_trials_with_target`` ->
``add_aux_anchors`` -> braindecode ``create_windows_from_events``) sample for sample; see
``challenge1_window_starts`` for the two details that path implies (microsecond onsets and
rounding onset x sfreq).

Everything here is numpy / pandas only: no MNE, so reading a cached ``WindowSet`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from eegattn.challenge import (  # the starter kit's window geometry, in seconds
    C1_SHIFT_AFTER_STIMULUS_S,
    C1_WINDOW_S,
    C2_STRIDE_S,
    C2_WINDOW_S,
    DEFAULT_TRIAL_RULE,
    TRIAL_RULES,
    check_challenge,
)
from eegattn.utils.check import check_option, check_positive_number

# events.tsv ``value`` strings of the CCD task (HBN).
TRIAL_START = "contrastTrial_start"
STIMULI = ("left_target", "right_target")
RESPONSES = ("left_buttonPress", "right_buttonPress")
END_EXPERIMENT = "end_experiment"
FEEDBACK_CORRECT = "smiley_face"
FEEDBACK_WRONG = "sad_face"
EVENTS_REQUIRED_COLUMNS = ("onset", "value")

# Bump when the windows produced for the same inputs change (part of every cache key).
WINDOWS_CODE_VERSION = "windows-1"  # the windows themselves; the cache layout
# has its own version (cache.CACHE_FORMAT_VERSION)

TRIAL_TABLE_COLUMNS = (
    "trial_start_onset",
    "trial_stop_onset",
    "stimulus_onset",
    "response_onset",
    "rt_from_stimulus",
    "rt_from_trialstart",
    "response_type",
    "correct",
    "stimulus_side",
    "response_side",
)


# ---------------------------------------------------------------------------------------------
# WindowSet
# ---------------------------------------------------------------------------------------------
@dataclass
class WindowSet:
    """Windows of one challenge with their targets and per-window metadata.

    X: (n_windows, n_chans, n_times) float32 in volts: an ndarray (built in memory), or
        from the cache an ``IndexedWindows`` (array-like; windows cut on the fly from the
        stored recordings, see ``eegattn.data.indexed``); ``np.asarray(X[idx])`` reads.
    y: (n_windows,) float32 targets.
    metadata: one row per window; columns at least ``release, subject, task, run, target``
        plus ``trial`` (challenge 1) or ``i_window`` (challenge 2), ``i_start`` / ``i_stop``
        (samples in the recording at ``sfreq``).
    sfreq: sampling frequency of the windows in Hz; challenge: 1 or 2.
    cache_key: the cache entry the windows came from (None when built in memory).
    info: what was kept and dropped (counts, skipped files), for reports.
    """

    X: np.ndarray
    y: np.ndarray
    metadata: pd.DataFrame
    sfreq: float
    challenge: int
    cache_key: str | None = None
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.challenge not in (1, 2):
            raise ValueError(f"challenge must be 1 or 2, got {self.challenge!r}")
        if self.X.ndim != 3:
            raise ValueError(f"X must be (n_windows, n_chans, n_times), got shape {self.X.shape}")
        n = self.X.shape[0]
        if self.y.shape != (n,) or len(self.metadata) != n:
            raise ValueError(
                f"X has {n} windows but y has shape {self.y.shape} and metadata "
                f"{len(self.metadata)} rows; they must match one to one"
            )

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def groups(self) -> np.ndarray:
        """Subject of every window, for subject-wise splits, shape (n_windows,)."""
        return self.metadata["subject"].to_numpy()

    @property
    def n_chans(self) -> int:
        return int(self.X.shape[1])

    @property
    def n_times(self) -> int:
        return int(self.X.shape[2])

    def subset(self, indices) -> WindowSet:
        """The windows at ``indices`` (ints, a boolean mask or a slice), in that order.

        Windows from the cache (``IndexedWindows``) stay an index table over the stored
        recordings (nothing is read); for an ndarray ``X`` a slice keeps a view (a memmap
        stays on disk) and an index array copies the selected windows into memory.
        """
        lazy = hasattr(self.X, "select")
        if isinstance(indices, slice):
            rows = np.arange(len(self))[indices]
            X = self.X.select(indices) if lazy else self.X[indices]
        else:
            rows = np.asarray(indices)
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise ValueError(
                        f"boolean mask has shape {rows.shape}, expected ({len(self)},)"
                    )
                rows = np.flatnonzero(rows)
            elif rows.size and not np.issubdtype(rows.dtype, np.integer):
                raise ValueError(f"indices must be integers, a boolean mask or a slice, got "
                                 f"dtype {rows.dtype}")
            rows = rows.astype(np.int64, copy=False).reshape(-1)
            if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
                raise ValueError(f"indices out of range for {len(self)} windows")
            X = self.X.select(rows) if lazy else self.X[rows]
        return WindowSet(
            X=X,
            y=self.y[rows],
            metadata=self.metadata.iloc[rows].reset_index(drop=True),
            sfreq=self.sfreq,
            challenge=self.challenge,
            cache_key=self.cache_key,
            info=dict(self.info),
        )


# ---------------------------------------------------------------------------------------------
# Events and the CCD trial table
# ---------------------------------------------------------------------------------------------
def read_events(path: str | Path) -> pd.DataFrame:
    """Read a BIDS ``events.tsv`` (tab-separated, ``n/a`` as missing) and check its columns.

    Raises FileNotFoundError when the file is missing and ValueError when it cannot be parsed
    or lacks ``onset`` / ``value``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"events file not found: {path}")
    try:
        events = pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot parse events file {path}: {err}") from None
    _check_event_columns(events, str(path))
    return events


def _check_event_columns(events: pd.DataFrame, where: str) -> None:
    missing = [c for c in EVENTS_REQUIRED_COLUMNS if c not in events.columns]
    if missing:
        raise ValueError(
            f"{where} lacks the column(s) {missing} (has {list(events.columns)}); HBN events "
            "files need 'onset' (seconds) and 'value' (event strings such as "
            f"'{TRIAL_START}')"
        )


def _numeric_onsets(events: pd.DataFrame, where: str) -> pd.Series:
    try:
        return pd.to_numeric(events["onset"], errors="raise")
    except (ValueError, TypeError):
        bad = events["onset"][pd.to_numeric(events["onset"], errors="coerce").isna()
                              & events["onset"].notna()]
        raise ValueError(
            f"{where}: column 'onset' has non-numeric values {bad.head(3).tolist()}; onsets "
            "must be seconds from the start of the recording"
        ) from None


def _first_in_interval(onsets: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Index of the first entry of sorted ``onsets`` inside ``[lo, hi)``, -1 where none."""
    idx = np.searchsorted(onsets, lo, side="left")
    found = idx < len(onsets)
    safe = np.where(found, idx, 0)
    found &= onsets[safe] < hi if len(onsets) else found
    return np.where(found, idx, -1)


def ccd_trial_table(events: pd.DataFrame, trial_rule: str = DEFAULT_TRIAL_RULE) -> pd.DataFrame:
    """One row per contrast-change-detection trial, from an events DataFrame.

    Same trials, onsets, reaction times, response types and ``correct`` values as
    eegdash's ``build_trial_table``, in the version ``trial_rule`` names:

    - rows are stably sorted by ``onset`` first (HBN files have unsorted rows);
    - a trial runs from its ``contrastTrial_start`` to the next one. The last trial of the
      run has none: ``trial_rule="challenge"`` (default; eegdash as the competition, its
      starter kit and its scoring ran it) drops it; ``trial_rule="current"`` (eegdash 0.9.1)
      ends it at the last ``end_experiment`` if that comes after it, else drops it;
    - the stimulus is the first ``left_target`` / ``right_target`` in ``[start, stop)``; the
      response is the first button press in ``[stimulus, stop)`` (``[start, stop)`` when the
      trial has no stimulus); ``correct`` is True / False from the response row's ``feedback``
      (``smiley_face`` / ``sad_face``), None otherwise;
    - ``rt_from_stimulus = response - stimulus``, ``rt_from_trialstart = response - start``
      (NaN when a part is missing).

    Extra columns: ``stimulus_side`` / ``response_side`` ("left" / "right" / None).
    Columns: ``TRIAL_TABLE_COLUMNS``; an events table without trials gives zero rows.
    """
    if not isinstance(events, pd.DataFrame):
        raise ValueError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    check_option("trial_rule", trial_rule, TRIAL_RULES)
    _check_event_columns(events, "events table")
    onset = _numeric_onsets(events, "events table")
    order = np.argsort(onset.to_numpy(dtype=float), kind="stable")  # NaN last, like pandas
    onsets = onset.to_numpy(dtype=float)[order]
    values = events["value"].to_numpy(dtype=object)[order]
    feedback = (
        events["feedback"].to_numpy(dtype=object)[order]
        if "feedback" in events.columns
        else np.full(len(order), None, dtype=object)
    )

    value_series = pd.Series(values, dtype=object)  # may mix strings, numbers and NaN
    is_trial = value_series.eq(TRIAL_START).to_numpy()
    is_stim = value_series.isin(STIMULI).to_numpy()
    is_resp = value_series.isin(RESPONSES).to_numpy()
    is_end = value_series.eq(END_EXPERIMENT).to_numpy()

    starts = onsets[is_trial]
    stops = np.append(starts[1:], np.nan) if len(starts) else starts.copy()
    if trial_rule == "current" and len(starts) and is_end.any():
        last_end = onsets[is_end][-1]
        if last_end > starts[-1]:  # False for NaN, as in eegdash
            stops[-1] = last_end
    keep = ~np.isnan(stops)
    starts, stops = starts[keep], stops[keep]

    stim_onsets, stim_values = onsets[is_stim], values[is_stim]
    resp_onsets, resp_values = onsets[is_resp], values[is_resp]
    resp_feedback = feedback[is_resp]

    i_stim = _first_in_interval(stim_onsets, starts, stops)
    has_stim = i_stim >= 0
    stimulus = np.where(has_stim, stim_onsets[np.maximum(i_stim, 0)] if len(stim_onsets)
                        else np.nan, np.nan)
    resp_from = np.where(has_stim, stimulus, starts)
    i_resp = _first_in_interval(resp_onsets, resp_from, stops)
    has_resp = i_resp >= 0
    response = np.where(has_resp, resp_onsets[np.maximum(i_resp, 0)] if len(resp_onsets)
                        else np.nan, np.nan)

    response_type = [resp_values[i] if i >= 0 else None for i in i_resp]
    correct = []
    for i in i_resp:
        fb = resp_feedback[i] if i >= 0 else None
        correct.append(True if fb == FEEDBACK_CORRECT else False if fb == FEEDBACK_WRONG else None)
    stim_type = [stim_values[i] if i >= 0 else None for i in i_stim]

    return pd.DataFrame(
        {
            "trial_start_onset": starts,
            "trial_stop_onset": stops,
            "stimulus_onset": stimulus,
            "response_onset": response,
            "rt_from_stimulus": response - stimulus,
            "rt_from_trialstart": response - starts,
            "response_type": pd.Series(response_type, dtype=object),
            "correct": pd.Series(correct, dtype=object),
            "stimulus_side": pd.Series([_side(v) for v in stim_type], dtype=object),
            "response_side": pd.Series([_side(v) for v in response_type], dtype=object),
        },
        columns=list(TRIAL_TABLE_COLUMNS),
    )


def _side(value) -> str | None:
    if not isinstance(value, str):
        return None
    return "left" if value.startswith("left") else "right" if value.startswith("right") else None


# ---------------------------------------------------------------------------------------------
# Challenge 1 windows
# ---------------------------------------------------------------------------------------------
def _annotation_onset(seconds: float) -> float:
    """An onset as MNE stores it after ``raw.set_annotations``: rounded to the microsecond.

    MNE crops annotations to the recording through ``datetime`` arithmetic, which keeps
    microseconds only; braindecode then turns the stored onset into a sample.
    """
    return timedelta(seconds=float(seconds)).total_seconds()


def challenge1_window_starts(
    stimulus_onsets: np.ndarray,
    sfreq: float,
    shift_after_stimulus_s: float = C1_SHIFT_AFTER_STIMULUS_S,
) -> np.ndarray:
    """First sample of each stimulus-locked window, shape (n,), int64.

    ``round(onset_us x sfreq) + int(shift x sfreq)``, where ``onset_us`` is the stimulus onset
    rounded to the microsecond (as MNE stores annotations) and the rounding is numpy's
    half-to-even (``mne.events_from_annotations`` via ``raw.time_as_index``), as in the
    starter kit's ``create_windows_from_events`` on ``stimulus_anchor`` annotations.
    """
    onsets = np.array([_annotation_onset(t) for t in np.asarray(stimulus_onsets, float)])
    anchors = np.round(onsets * float(sfreq)).astype(np.int64) if len(onsets) else \
        np.zeros(0, np.int64)
    return anchors + int(shift_after_stimulus_s * sfreq)


def challenge1_window_table(
    n_times: int,
    sfreq: float,
    trials: pd.DataFrame,
    *,
    shift_after_stimulus_s: float = C1_SHIFT_AFTER_STIMULUS_S,
    window_s: float = C1_WINDOW_S,
) -> tuple[pd.DataFrame, int]:
    """Stimulus-locked windows of one recording of ``n_times`` samples, as metadata only
    (see :func:`challenge1_windows`): one row per window and the number of trials dropped
    because their window leaves the recording."""
    size = int(window_s * sfreq)
    usable = trials["stimulus_onset"].notna() & trials["response_onset"].notna()
    kept = trials[usable]
    starts = challenge1_window_starts(
        kept["stimulus_onset"].to_numpy(float), sfreq, shift_after_stimulus_s
    )
    inside = (starts >= 0) & (starts + size <= n_times)
    kept, starts = kept[inside], starts[inside]
    correct = kept["correct"].map(lambda v: np.nan if v is None else float(bool(v)))
    meta = pd.DataFrame(
        {
            "trial": kept.index.to_numpy(dtype=np.int64),
            "target": kept["rt_from_stimulus"].to_numpy(float),
            "rt_from_stimulus": kept["rt_from_stimulus"].to_numpy(float),
            "rt_from_trialstart": kept["rt_from_trialstart"].to_numpy(float),
            "trial_start_onset": kept["trial_start_onset"].to_numpy(float),
            "stimulus_onset": kept["stimulus_onset"].to_numpy(float),
            "response_onset": kept["response_onset"].to_numpy(float),
            "correct": correct.to_numpy(float),
            "response_type": kept["response_type"].to_numpy(dtype=object),
            "stimulus_side": kept["stimulus_side"].to_numpy(dtype=object),
            "response_side": kept["response_side"].to_numpy(dtype=object),
            "i_start": starts,
            "i_stop": starts + size,
        }
    )
    return meta, int((~inside).sum())


def cut_windows(data: np.ndarray, starts, size: int) -> np.ndarray:
    """Windows (len(starts), n_chans, size) float32 of ``data`` (n_chans, n_times)."""
    X = np.empty((len(starts), data.shape[0], size), dtype=np.float32)
    for i, s in enumerate(np.asarray(starts, dtype=np.int64)):
        X[i] = data[:, s : s + size]
    return X


def challenge1_windows(
    data: np.ndarray,
    sfreq: float,
    trials: pd.DataFrame,
    *,
    shift_after_stimulus_s: float = C1_SHIFT_AFTER_STIMULUS_S,
    window_s: float = C1_WINDOW_S,
) -> tuple[np.ndarray, pd.DataFrame, int]:
    """Stimulus-locked windows of one recording.

    data: (n_chans, n_times) signal (volts) at ``sfreq``; trials: ``ccd_trial_table`` output.
    Returns ``X`` (n, n_chans, window) float32, per-window metadata (``trial`` = row of the
    trial table, ``target`` = ``rt_from_stimulus``, onsets, ``correct``, sides, ``i_start``,
    ``i_stop``) and the number of trials dropped because their window leaves the recording
    (the starter kit raises on those instead).
    """
    if data.ndim != 2:
        raise ValueError(f"data must be (n_chans, n_times), got shape {data.shape}")
    meta, n_outside = challenge1_window_table(
        data.shape[1], sfreq, trials, shift_after_stimulus_s=shift_after_stimulus_s,
        window_s=window_s)
    return cut_windows(data, meta["i_start"], int(window_s * sfreq)), meta, n_outside


# ---------------------------------------------------------------------------------------------
# Challenge 2 windows
# ---------------------------------------------------------------------------------------------
def challenge2_window_starts(n_times: int, sfreq: float, *, window_s: float = C2_WINDOW_S,
                             stride_s: float = C2_STRIDE_S) -> np.ndarray:
    """Starts of the fixed-length windows that fit in ``n_times`` samples (last partial one
    dropped, as braindecode ``create_fixed_length_windows(drop_last_window=True)``)."""
    size, stride = int(window_s * sfreq), int(stride_s * sfreq)
    if size < 1 or stride < 1:
        raise ValueError(f"window ({window_s} s) and stride ({stride_s} s) must each be at "
                         f"least one sample at {sfreq} Hz")
    if n_times < size:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, n_times - size + 1, stride, dtype=np.int64)


def challenge2_window_table(n_times: int, sfreq: float, target: float, *,
                            window_s: float = C2_WINDOW_S,
                            stride_s: float = C2_STRIDE_S) -> pd.DataFrame:
    """Fixed-length windows of a recording of ``n_times`` samples, as metadata only (see
    :func:`challenge2_windows`)."""
    starts = challenge2_window_starts(n_times, sfreq, window_s=window_s, stride_s=stride_s)
    size = int(window_s * sfreq)
    return pd.DataFrame(
        {
            "i_window": np.arange(len(starts), dtype=np.int64),
            "target": np.full(len(starts), float(target)),
            "i_start": starts,
            "i_stop": starts + size,
        }
    )


def challenge2_windows(
    data: np.ndarray,
    sfreq: float,
    target: float,
    *,
    window_s: float = C2_WINDOW_S,
    stride_s: float = C2_STRIDE_S,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Fixed-length windows of one recording: ``X`` (n, n_chans, window) float32 and metadata
    (``i_window``, ``target``, ``i_start``, ``i_stop``). Recordings shorter than one window
    give zero windows."""
    if data.ndim != 2:
        raise ValueError(f"data must be (n_chans, n_times), got shape {data.shape}")
    meta = challenge2_window_table(data.shape[1], sfreq, target, window_s=window_s,
                                   stride_s=stride_s)
    return cut_windows(data, meta["i_start"], int(window_s * sfreq)), meta


# ---------------------------------------------------------------------------------------------
# Per-recording extraction (runs in the joblib workers)
# ---------------------------------------------------------------------------------------------
C1_TARGETS = ("rt_from_stimulus", "rt_from_trialstart")
IDENTITY_COLUMNS = ("release", "subject", "task", "run", "recording")


@dataclass(frozen=True)
class WindowSpec:
    """Window geometry and target of one challenge (all of it enters the cache key).

    challenge 1: ``shift_after_stimulus_s`` (0.5) and ``window_s`` (2.0); target
        ``rt_from_stimulus`` (or ``rt_from_trialstart``); ``trial_rule`` (``"challenge"``
        or ``"current"``, see ``ccd_trial_table``).
    challenge 2: ``window_s`` (4.0), ``stride_s`` (2.0); target a participants.tsv column
        (``externalizing``).
    """

    challenge: int
    window_s: float | None = None
    stride_s: float | None = None
    shift_after_stimulus_s: float | None = None
    target: str | None = None
    trial_rule: str | None = None

    def __post_init__(self):
        check_challenge(self.challenge)
        one = self.challenge == 1
        defaults = {
            "window_s": C1_WINDOW_S if one else C2_WINDOW_S,
            "stride_s": None if one else C2_STRIDE_S,
            "shift_after_stimulus_s": C1_SHIFT_AFTER_STIMULUS_S if one else None,
            "target": "rt_from_stimulus" if one else "externalizing",
            "trial_rule": DEFAULT_TRIAL_RULE if one else None,
        }
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if one and self.stride_s is not None:
            raise ValueError("stride_s applies to challenge 2 only (one window per trial)")
        if not one and self.shift_after_stimulus_s is not None:
            raise ValueError("shift_after_stimulus_s applies to challenge 1 only")
        if not one and self.trial_rule is not None:
            raise ValueError("trial_rule applies to challenge 1 only (challenge 2 windows do "
                             "not depend on trials); leave it unset")
        if one:
            check_option("trial_rule", self.trial_rule, TRIAL_RULES)
        if one:
            check_option("target", self.target, C1_TARGETS, extra="for challenge 1",
                         fix="Challenge 2 reads its target from participants.tsv.")
        for name in ("window_s", "stride_s"):
            check_positive_number(getattr(self, name), name, unit="seconds", allow_none=True)

    def as_dict(self) -> dict:
        keys = ("challenge", "window_s", "stride_s", "shift_after_stimulus_s", "target")
        if self.challenge == 1:
            keys += ("trial_rule",)
        return {k: getattr(self, k) for k in keys}


@dataclass
class RecordingWindows:
    """The windows of one recording: ``X`` (n, n_chans, n_times) float32 (None when only the
    table was made), one metadata row per window, what was dropped inside it, or why the
    whole recording was skipped; ``signal`` (n_chans, n_samples) float32 and ``sfreq``: the
    preprocessed recording, when ``recording_table`` read it."""

    X: np.ndarray | None
    metadata: pd.DataFrame
    dropped: dict = field(default_factory=dict)
    skipped: object = None  # an ``hbn.Skipped`` when the recording could not be used
    signal: np.ndarray | None = None
    sfreq: float | None = None


def _identity(recording, n: int) -> dict:
    return {
        "release": [recording.release] * n,
        "subject": [recording.subject] * n,
        "task": [recording.task] * n,
        "run": pd.array([recording.run] * n, dtype="Int64"),
        "recording": [recording.name] * n,
    }


def _empty(recording, n_chans: int, size: int) -> RecordingWindows:
    return RecordingWindows(np.zeros((0, n_chans, size), np.float32), pd.DataFrame())


def recording_table(job: tuple) -> RecordingWindows:
    """Window table of one recording, reading and preprocessing it unless it is stored.

    ``job`` = ``(recording, spec, config, target_value, stored)``: ``target_value`` is the
    participant's value for challenge 2 (unused for 1); ``stored`` is None (read and
    preprocess the recording: the result carries ``signal``, float32) or ``(n_samples,
    sfreq)`` of the stored preprocessed recording (only events are read). ``X`` is None.

    Bad files never raise here: they come back as ``skipped`` so one broken recording does
    not stop a release; wrong settings (e.g. a filter above Nyquist) do raise.
    """
    from eegattn.data.hbn import Skipped
    from eegattn.data.preprocess import preprocess_recording

    recording, spec, config, target_value, stored = job
    size = int(spec.window_s * config.sfreq)
    n_chans = len(config.channels)
    trials = None
    if spec.challenge == 1:
        try:
            trials = ccd_trial_table(read_events(recording.events_path), spec.trial_rule)
        except (FileNotFoundError, ValueError) as err:
            out = _empty(recording, n_chans, size)
            out.skipped = Skipped(recording, "unusable events.tsv", str(err))
            return out
    signal = None
    if stored is None:
        try:
            data, sfreq = preprocess_recording(recording.path, config)
        except ValueError as err:
            if "Nyquist" in str(err):
                raise
            out = _empty(recording, n_chans, size)
            out.skipped = Skipped(recording, "unreadable recording", str(err))
            return out
        signal = np.ascontiguousarray(data, dtype=np.float32)
        n_samples = signal.shape[1]
    else:
        n_samples, sfreq = int(stored[0]), float(stored[1])

    if spec.challenge == 1:
        meta, n_outside = challenge1_window_table(
            n_samples, sfreq, trials, shift_after_stimulus_s=spec.shift_after_stimulus_s,
            window_s=spec.window_s,
        )  # fmt: skip
        if spec.target != "rt_from_stimulus":
            meta["target"] = meta[spec.target]
        dropped = {"trials_without_stimulus_or_response": int(
            (trials["stimulus_onset"].isna() | trials["response_onset"].isna()).sum()),
            "windows_outside_recording": n_outside}
    else:
        meta = challenge2_window_table(n_samples, sfreq, target_value, window_s=spec.window_s,
                                       stride_s=spec.stride_s)
        dropped = {}
    meta = pd.concat([pd.DataFrame(_identity(recording, len(meta))), meta], axis=1)
    return RecordingWindows(None, meta, dropped, signal=signal, sfreq=sfreq)


def recording_windows(job: tuple) -> RecordingWindows:
    """Read, preprocess and window one recording (windows materialised in ``X``). ``job`` =
    ``(recording, spec, config, target_value)``, as :func:`recording_table` without
    ``stored``."""
    result = recording_table((*job, None))
    if result.skipped is not None:
        return result
    size = int(job[1].window_s * job[2].sfreq)
    result.X = cut_windows(result.signal, result.metadata["i_start"], size)
    result.signal = None  # the windows travel back to the caller, not the recording too
    return result


def metadata_dtypes(challenge: int) -> dict[str, str]:
    """Column dtypes of challenge metadata (restored after a CSV round trip)."""
    common = {"release": "string", "subject": "string", "task": "string", "run": "Int64",
              "recording": "string", "target": "float64", "i_start": "int64",
              "i_stop": "int64"}
    if challenge == 1:
        common.update({"trial": "int64", "rt_from_stimulus": "float64",
                       "rt_from_trialstart": "float64", "trial_start_onset": "float64",
                       "stimulus_onset": "float64", "response_onset": "float64",
                       "correct": "float64", "response_type": "string",
                       "stimulus_side": "string", "response_side": "string"})
    else:
        common["i_window"] = "int64"
    return common


def finalize_metadata(frames: list[pd.DataFrame], challenge: int) -> pd.DataFrame:
    """Concatenate per-recording metadata and give every column its documented dtype."""
    dtypes = metadata_dtypes(challenge)
    frames = [f for f in frames if len(f)]
    if frames:
        meta = pd.concat(frames, ignore_index=True)
    else:
        meta = pd.DataFrame({c: pd.Series(dtype=d) for c, d in dtypes.items()})
    for column, dtype in dtypes.items():
        if column in meta.columns:
            meta[column] = meta[column].astype(dtype)
    return meta
