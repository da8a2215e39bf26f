"""Open HBN releases of the EEG Foundation Challenge 2025 from local BIDS folders (or eegdash).

Layout (as the challenge publishes the releases; folders that older eegdash versions wrote,
``<root>/ds0055xx-bdf[-mini]``, are read too)::

    <root>/EEG2025r<N>[mini]/participants.tsv
    <root>/EEG2025r<N>[mini]/dataset_description.json
    <root>/EEG2025r<N>[mini]/sub-<ID>/eeg/sub-<ID>_task-<task>[_run-<n>]_eeg.bdf
                                         (+ _events.tsv, _channels.tsv, _eeg.json)

``discover_recordings`` only lists files (glob + names, no MNE, fast enough to run before
every cache look-up); ``open_releases`` also reads every ``.bdf`` header and drops, with one
warning per cause that names the files, recordings that are corrupt or truncated or do not
have the 129 HBN channels (or raises with ``strict=True``). The nine subjects the challenge
excluded are removed unless ``keep_excluded=True``.

``source="eegdash"`` opens the release through ``eegdash.EEGChallengeDataset`` instead, which
downloads it into ``root`` when a network is there (``download=True``) and reads the same
local folder offline (``download=False``).
"""

from __future__ import annotations

import contextlib
import difflib
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eegattn.challenge import (
    ALL_TASKS,
    C1_SHIFT_AFTER_STIMULUS_S,
    C1_WINDOW_S,
    C2_STRIDE_S,
    C2_WINDOW_S,
    CCD_TASK,
    DEFAULT_TRIAL_RULE,
    EXCLUDED_SUBJECTS,
    RELEASE_DATASET_IDS,
    RELEASES,
    SFREQ,
    TASKS,
    TRIAL_RULES,
    check_challenge,
    default_cache_dir,
    legacy_release_folder_name,
    normalize_release,
    release_folder_name,
)
from eegattn.data.montage import HBN_CHANNELS
from eegattn.utils.check import check_option

N_CHANNELS = len(HBN_CHANNELS)  # 129
_ANNOTATION_SIGNALS = ("EDF Annotations", "BDF Annotations")
_EEG_NAME = re.compile(
    r"^sub-(?P<subject>[A-Za-z0-9]+)(?:_ses-(?P<session>[A-Za-z0-9]+))?"
    r"_task-(?P<task>[A-Za-z0-9]+)(?:_acq-[A-Za-z0-9]+)?(?:_run-(?P<run>\d+))?_eeg\.(?:bdf|edf)$"
)

HOW_TO_GET_DATA = (
    "Get a release with the AWS CLI (no account needed), e.g. for R5: "
    "`aws s3 sync --no-sign-request s3://nmdatasets/NeurIPS25/R5_L100_bdf <root>/EEG2025r5` "
    "(mini: `.../R5_mini_L100_bdf <root>/EEG2025r5mini`), or open it online with "
    "source='eegdash', or write a synthetic release with `eegattn synth --root <root>`."
)
EXPECTED_LAYOUT = (
    "expected <root>/EEG2025r<N>[mini]/participants.tsv and "
    "<root>/EEG2025r<N>[mini]/sub-<ID>/eeg/sub-<ID>_task-<task>[_run-<n>]_eeg.bdf"
)


class SkippedRecordingsWarning(UserWarning):
    """Some recordings were left out; the message says which and why."""


class CorruptRecordingError(ValueError):
    """A recording file that cannot be read; ``path`` and ``why`` name the problem."""

    def __init__(self, path, why: str):
        self.path, self.why = Path(path), why
        super().__init__(f"{path}: {why}; the file is corrupt or truncated, download it again")


@dataclass(frozen=True)
class Recording:
    """One EEG recording of a release. ``run`` is None for tasks without runs."""

    release: str
    subject: str
    task: str
    run: int | None
    path: Path  # the .bdf file
    release_dir: Path

    @property
    def events_path(self) -> Path:
        return self.path.with_name(self.path.name[: -len("_eeg.bdf")] + "_events.tsv")

    @property
    def name(self) -> str:
        """Short unique label, e.g. ``R5/sub-NDARAB793GL3_task-contrastChangeDetection_run-1``."""
        return f"{self.release}/{self.path.name[: -len('_eeg.bdf')]}"


@dataclass(frozen=True)
class Skipped:
    """A recording left out, the file at fault and why."""

    recording: Recording
    cause: str  # short category, e.g. "corrupt or truncated .bdf"
    detail: str


# ---------------------------------------------------------------------------------------------
# Names and folders
# ---------------------------------------------------------------------------------------------
def default_data_root() -> Path:
    """Where releases are looked for when no root is given: the project's cache folder
    (environment variable ``EEGATTN_CACHE``; ``eegattn synth`` writes there too)."""
    return Path(default_cache_dir())


def normalize_subject(subject: str) -> str:
    text = str(subject).strip()
    return text[4:] if text.startswith("sub-") else text


def find_release_dir(root, release, mini: bool = False) -> Path:
    """The folder of one release under ``root``, with clear errors for a missing folder or a
    wrong layout (FileNotFoundError / ValueError).

    ``<root>/EEG2025r<N>[mini]`` (eegdash 0.9) is looked for first, then the folder older
    eegdash versions wrote, ``<root>/<dataset id>-bdf[-mini]`` (``ds005509-bdf`` for R5).
    """
    root = Path(root).expanduser()
    name = release_folder_name(release, mini)
    folder = root / name
    for candidate in (folder, root / legacy_release_folder_name(release, mini)):
        if candidate.is_dir():
            _check_layout(candidate)
            return candidate
    hints = []
    for other in (root / release_folder_name(release, not mini),
                  root / legacy_release_folder_name(release, not mini)):
        if other.is_dir():
            hints.append(f"{other} exists: pass mini={not mini}")
    original = root / RELEASE_DATASET_IDS[normalize_release(release)]
    if original.is_dir():
        hints.append(f"{original} is the original 500 Hz HBN dataset (OpenNeuro), not the "
                     "challenge's 100 Hz release")
    if not root.exists():
        hints.append(f"The root folder {root} does not exist")
    elif (root / "participants.tsv").is_file() or any(root.glob("sub-*")):
        hints.append(
            f"{root} itself looks like a release folder: pass its parent as root and name "
            f"it to {name}"
        )
    else:
        found = sorted(p.name for p in [*root.glob("EEG2025r*"), *root.glob("ds*-bdf*")]
                       if p.is_dir())
        if found:
            hints.append(f"releases present under {root}: {found}")
    raise FileNotFoundError(
        f"HBN release folder not found: {folder} (nor {legacy_release_folder_name(release, mini)}"
        f", the name older eegdash versions used; {EXPECTED_LAYOUT}). "
        + ("; ".join(hints) + ". " if hints else "")
        + HOW_TO_GET_DATA
    )


def _check_layout(folder: Path) -> None:
    subjects = [p for p in folder.glob("sub-*") if p.is_dir()]
    if not subjects:
        nested = [p for p in folder.iterdir() if p.is_dir() and any(p.glob("sub-*"))]
        hint = f"; the subjects sit one level deeper, in {nested[0]}" if nested else ""
        raise ValueError(
            f"{folder} has no sub-<ID> folders: wrong layout ({EXPECTED_LAYOUT}){hint}"
        )
    if not any(folder.glob("sub-*/eeg/*_eeg.bdf")) and not any(folder.glob("sub-*/eeg/*_eeg.edf")):
        others = sorted({p.suffix for p in folder.glob("sub-*/eeg/*_eeg.*")})
        hint = (
            f"; it holds {others} files (the original HBN release?) - the challenge releases "
            "are 100 Hz .bdf" if others else ""
        )
        raise ValueError(f"{folder} has no sub-*/eeg/*_eeg.bdf recordings: wrong layout "
                         f"({EXPECTED_LAYOUT}){hint}")


def _as_list(value) -> list | None:
    if value is None:
        return None
    if isinstance(value, (str, Path, int)):
        return [value]
    return list(value)


def _check_tasks(tasks: Sequence[str]) -> list[str]:
    out = []
    for task in tasks:
        if task not in TASKS:
            close = difflib.get_close_matches(str(task), TASKS, n=1)
            hint = f"Did you mean {close[0]!r}? " if close else ""
            check_option("tasks", task, (*TASKS, ALL_TASKS),
                         fix=f"{hint}Task names are case-sensitive; 'all' takes every task.")
        out.append(task)
    return out


def resolve_tasks(tasks) -> list[str]:
    """A task name, a list of them or ``"all"`` (every HBN task, :data:`TASKS`) -> checked
    list of task names (duplicates removed, order kept)."""
    names = _as_list(tasks) or []
    if ALL_TASKS in names:
        return list(TASKS)
    return list(dict.fromkeys(_check_tasks(names)))


# ---------------------------------------------------------------------------------------------
# Discovery
# ---------------------------------------------------------------------------------------------
def discover_recordings(
    root=None,
    releases: Iterable = ("R5",),
    *,
    mini: bool = False,
    tasks: Iterable[str] | str | None = None,
    subjects: Iterable[str] | str | None = None,
    keep_excluded: bool = False,
) -> list[Recording]:
    """List the recordings of the requested releases from file names only (no reading).

    ``tasks`` / ``subjects``: None keeps all; ``subjects`` accepts ``NDAR...`` or
    ``sub-NDAR...``. Sorted by release, subject, task, run. Raises ValueError when nothing
    matches the query.
    """
    root = default_data_root() if root is None else Path(root).expanduser()
    release_list = [normalize_release(r) for r in (_as_list(releases) or [])]
    if not release_list:
        raise ValueError("no release given: pass releases=('R5',) or a list of R1..R11")
    task_list = resolve_tasks(tasks) if tasks is not None else None
    subject_set = (
        {normalize_subject(s) for s in _as_list(subjects)} if subjects is not None else None
    )
    excluded = set() if keep_excluded else set(EXCLUDED_SUBJECTS)

    found: list[Recording] = []
    n_excluded = 0
    for release in release_list:
        folder = find_release_dir(root, release, mini)
        for path in sorted(folder.glob("sub-*/eeg/sub-*_eeg.bdf")):
            match = _EEG_NAME.match(path.name)
            if match is None:
                continue
            subject, task = match["subject"], match["task"]
            if task_list is not None and task not in task_list:
                continue
            if subject_set is not None and subject not in subject_set:
                continue
            if subject in excluded:
                n_excluded += 1
                continue
            run = int(match["run"]) if match["run"] else None
            found.append(Recording(release, subject, task, run, path, folder))
    found.sort(key=lambda r: (RELEASES.index(r.release), r.subject, r.task, r.run or 0))
    if not found:
        query = (
            f"releases={release_list}, mini={mini}, tasks={task_list or 'all'}, "
            f"subjects={sorted(subject_set) if subject_set else 'all'}"
        )
        extra = f" ({n_excluded} recordings of excluded subjects left out)" if n_excluded else ""
        raise ValueError(
            f"no recordings match the query ({query}) under {root}{extra}; check the task "
            "and subject names (tasks are case-sensitive, e.g. 'contrastChangeDetection')"
        )
    return found


# ---------------------------------------------------------------------------------------------
# BDF headers
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BdfHeader:
    """What the EDF/BDF header says about a file. ``channels`` are the signals other than the
    EDF+/BDF+ annotation channel (what MNE calls the channels); ``sfreq`` their rate."""

    channels: tuple[str, ...]
    sfreq: float
    n_times: int
    bytes_per_sample: int
    # layout and calibration, used by ``read_bdf_data``
    header_bytes: int = field(default=0, repr=False)
    n_records: int = field(default=0, repr=False)
    samples_per_record: tuple[int, ...] = field(default=(), repr=False)  # every signal
    signal_index: tuple[int, ...] = field(default=(), repr=False)  # rows of ``channels``
    physical_min: tuple[float, ...] = field(default=(), repr=False)  # per channel
    physical_max: tuple[float, ...] = field(default=(), repr=False)
    digital_min: tuple[float, ...] = field(default=(), repr=False)
    digital_max: tuple[float, ...] = field(default=(), repr=False)
    units: tuple[str, ...] = field(default=(), repr=False)


def _field(text: str, width: int, n: int, start: int) -> list[str]:
    """``n`` fixed-width fields from the (latin-1 decoded) signal part of the header, read as
    MNE does: cut at NUL, decimal commas read as points."""
    return [
        text[start + width * i : start + width * (i + 1)].split("\x00")[0].strip()
        .replace(",", ".")
        for i in range(n)
    ]


def read_bdf_header(path) -> BdfHeader:
    """Parse the EDF/BDF header of ``path`` and check the file holds all its data records.

    Raises FileNotFoundError for a missing file and ``CorruptRecordingError`` (a ValueError
    naming the file) for a corrupt header or a truncated file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recording not found: {path}")
    size = path.stat().st_size

    def bad(why: str) -> CorruptRecordingError:
        return CorruptRecordingError(path, why)

    with open(path, "rb") as fh:
        fixed = fh.read(256)
        if len(fixed) < 256:
            raise bad(f"only {size} bytes, shorter than an EDF/BDF header")
        if fixed[:8] == b"\xffBIOSEMI":
            bytes_per_sample = 3
        elif fixed[:8] == b"0       ":
            bytes_per_sample = 2
        else:
            raise bad(f"not an EDF/BDF file (starts with {fixed[:8]!r})")
        try:
            header_bytes = int(fixed[184:192].decode("ascii").strip())
            n_records = int(fixed[236:244].decode("ascii").strip())
            record_s = float(fixed[244:252].decode("ascii").strip())
            n_signals = int(fixed[252:256].decode("ascii").strip())
        except ValueError:
            raise bad("unreadable header fields") from None
        if n_signals < 1 or header_bytes != 256 * (n_signals + 1) or record_s <= 0:
            raise bad(f"inconsistent header ({n_signals} signals, {header_bytes} header bytes)")
        signals = fh.read(256 * n_signals)
        if len(signals) < 256 * n_signals:
            raise bad("header cut short")
    ns = n_signals
    signals = signals.decode("latin-1")
    labels = _field(signals, 16, ns, 0)
    units = _field(signals, 8, ns, ns * (16 + 80))
    try:
        numbers = [[float(v) for v in _field(signals, 8, ns, ns * (16 + 80 + 8 * k))]
                   for k in (1, 2, 3, 4)]  # physical min / max, digital min / max
        samples = [int(v) for v in _field(signals, 8, ns, ns * (16 + 80 + 8 * 5 + 80))]
    except ValueError:
        raise bad("unreadable signal fields (ranges or samples per record)") from None
    record_bytes = sum(samples) * bytes_per_sample
    data_bytes = size - header_bytes
    if n_records < 0:  # "-1": unknown while recording; infer from the size
        n_records = data_bytes // max(record_bytes, 1)
    if data_bytes < n_records * record_bytes:
        raise bad(
            f"truncated: {n_records} records of {record_bytes} bytes need "
            f"{header_bytes + n_records * record_bytes} bytes, the file has {size}"
        )
    eeg = [i for i, label in enumerate(labels) if label not in _ANNOTATION_SIGNALS]
    if not eeg:
        raise bad("no signal channels")
    rates = {samples[i] / record_s for i in eeg}
    if len(rates) != 1:
        raise bad(f"channels at different sampling rates {sorted(rates)}")
    return BdfHeader(
        channels=tuple(labels[i] for i in eeg),
        sfreq=float(rates.pop()),
        n_times=int(n_records * samples[eeg[0]]),
        bytes_per_sample=bytes_per_sample,
        header_bytes=header_bytes,
        n_records=int(n_records),
        samples_per_record=tuple(samples),
        signal_index=tuple(eeg),
        physical_min=tuple(numbers[0][i] for i in eeg),
        physical_max=tuple(numbers[1][i] for i in eeg),
        digital_min=tuple(numbers[2][i] for i in eeg),
        digital_max=tuple(numbers[3][i] for i in eeg),
        units=tuple(units[i] for i in eeg),
    )


_MICROVOLT_UNITS = ("\u03bcV", "\u00b5V", "\x83\xcaV", "uV")


def read_bdf_data(path, header: BdfHeader | None = None):
    """All samples of a BDF file in volts, shape (n_channels, n_times) float64, rows in
    ``header.channels`` order.

    Bit-identical to ``mne.io.read_raw_bdf(path, preload=True).get_data()`` (same int24
    decoding and the same calibration arithmetic: ``int * cal + offset`` then the unit
    scale, with MNE's ``cal = physical range / digital range`` and ``offset = physical_min
    - digital_min * cal``) but without MNE's second pass over the file for annotations: about
    twice as fast, which is most of a cold challenge-1 build. Only 24-bit BDF files whose
    channels share one rate; anything else raises ValueError (use MNE).
    """
    import numpy as np

    path = Path(path)
    header = read_bdf_header(path) if header is None else header
    if header.bytes_per_sample != 3:
        raise ValueError(f"{path}: read_bdf_data reads 24-bit BDF files only; use MNE")
    spr = header.samples_per_record
    per = spr[header.signal_index[0]]
    total = int(sum(spr))
    n_samples = header.n_records * total
    raw = np.fromfile(path, dtype=np.uint8, count=n_samples * 3, offset=header.header_bytes)
    # int24 little-endian -> int32: read each sample as the low 3 bytes of an overlapping
    # 4-byte word (the last sample by hand), then sign-extend bit 23.
    ints = np.empty(n_samples, dtype=np.int32)
    if n_samples:
        packed = np.ndarray((n_samples - 1,), dtype="<u4", buffer=raw, strides=(3,))
        np.bitwise_and(packed, (1 << 24) - 1, out=ints[:-1])
        ints[-1] = int(raw[-3]) | int(raw[-2]) << 8 | int(raw[-1]) << 16
    ints <<= 8
    ints >>= 8
    starts = np.cumsum((0,) + spr)[:-1]
    columns = np.concatenate([np.arange(starts[i], starts[i] + per) for i in header.signal_index])
    records = ints.reshape(header.n_records, total)
    first, n_cols = int(columns[0]), len(columns)
    if np.array_equal(columns, np.arange(first, first + n_cols)):
        picked = records[:, first : first + n_cols]  # channels stored side by side: a view
    else:
        picked = records[:, columns]
    n_ch = len(header.channels)
    by_channel = picked.reshape(header.n_records, n_ch, per).transpose(1, 0, 2)

    pmin, pmax = np.array(header.physical_min), np.array(header.physical_max)
    dmin, dmax = np.array(header.digital_min), np.array(header.digital_max)
    physical, digital = pmax - pmin, dmax - dmin
    digital[(~np.isfinite(digital)) | (digital == 0)] = 1  # as MNE: undefined scale -> 1
    physical[physical == 0] = 1
    cal = physical / digital
    offsets = pmin - dmin * cal
    gains = np.array([1e-6 if u in _MICROVOLT_UNITS else 1e-3 if u == "mV" else 1.0
                      for u in header.units])
    data = np.empty((n_ch, header.n_records * per), dtype=np.float64)
    np.multiply(by_channel, cal[:, None, None], out=data.reshape(n_ch, header.n_records, per))
    data += offsets[:, None]
    data *= gains[:, None]
    return data


def check_channels_names(channels: Sequence[str], expected: Sequence[str] = HBN_CHANNELS) -> str:
    """'' when ``channels`` hold exactly the ``expected`` names (any order), else why not."""
    if len(channels) != len(expected):
        return f"{len(channels)} channels instead of {len(expected)}"
    missing = sorted(set(expected) - set(channels))
    if missing:
        return f"channel names differ from the HBN cap (missing {missing[:4]}...)"
    return ""


def check_recordings(
    recordings: Sequence[Recording],
    *,
    channels: Sequence[str] = HBN_CHANNELS,
    headers: dict | None = None,
) -> tuple[list[Recording], list[Skipped]]:
    """Read every header; return the usable recordings and the skipped ones with reasons.
    ``headers``, when given, receives ``{recording: BdfHeader}`` for the usable ones."""
    ok, skipped = [], []
    for rec in recordings:
        try:
            header = read_bdf_header(rec.path)
        except CorruptRecordingError as err:
            skipped.append(Skipped(rec, "corrupt or truncated .bdf", f"{rec.path}: {err.why}"))
            continue
        except OSError as err:
            skipped.append(Skipped(rec, "corrupt or truncated .bdf", f"{rec.path}: {err}"))
            continue
        why = check_channels_names(header.channels, channels)
        if why:
            skipped.append(Skipped(rec, f"not {len(channels)} HBN channels", f"{rec.path}: {why}"))
            continue
        ok.append(rec)
        if headers is not None:
            headers[rec] = header
    return ok, skipped


def report_skipped(skipped: Sequence[Skipped], *, strict: bool = False, stacklevel: int = 2):
    """Warn once per cause, listing the files (or raise ValueError when ``strict``)."""
    if not skipped:
        return
    by_cause: dict[str, list[Skipped]] = {}
    for item in skipped:
        by_cause.setdefault(item.cause, []).append(item)
    lines = [
        f"skipped {len(items)} recording(s) ({cause}): "
        + "; ".join(item.detail for item in items[:20])
        + (f"; ... and {len(items) - 20} more" if len(items) > 20 else "")
        for cause, items in by_cause.items()
    ]
    if strict:
        raise ValueError(" | ".join(lines) + " (strict=True; pass strict=False to skip them)")
    for line in lines:
        warnings.warn(line, SkippedRecordingsWarning, stacklevel=stacklevel + 1)


def summarize_skipped(skipped: Sequence[Skipped]) -> dict:
    """JSON-able ``{cause: [detail, ...]}``."""
    out: dict[str, list[str]] = {}
    for item in skipped:
        out.setdefault(item.cause, []).append(item.detail)
    return out


# ---------------------------------------------------------------------------------------------
# Opening releases
# ---------------------------------------------------------------------------------------------
def open_releases(
    root=None,
    releases: Iterable = ("R5",),
    *,
    mini: bool = False,
    tasks: Iterable[str] | str | None = None,
    subjects: Iterable[str] | str | None = None,
    keep_excluded: bool = False,
    strict: bool = False,
    source: str = "local",
    download: bool = False,
) -> list[Recording]:
    """Recordings of one or several releases, checked (header readable, 129 HBN channels).

    ``root`` holds the ``EEG2025r<N>[mini]`` folders (default: ``default_data_root()``).
    ``source="local"`` reads the folders directly; ``source="eegdash"`` lists them through
    ``eegdash.EEGChallengeDataset`` (``download=True`` fetches missing files when online).
    Skipped recordings give one ``SkippedRecordingsWarning`` per cause naming the files, or a
    ValueError with ``strict=True``.
    """
    check_option("source", source, ("local", "eegdash"))
    if source == "local":
        found = discover_recordings(
            root, releases, mini=mini, tasks=tasks, subjects=subjects,
            keep_excluded=keep_excluded,
        )  # fmt: skip
    else:
        found = _discover_with_eegdash(
            root, releases, mini=mini, tasks=tasks, subjects=subjects,
            keep_excluded=keep_excluded, download=download,
        )  # fmt: skip
    ok, skipped = check_recordings(found)
    report_skipped(skipped, strict=strict)
    if not ok:
        raise ValueError(
            f"none of the {len(found)} matching recordings is usable (see the warnings above)"
        )
    return ok


def _discover_with_eegdash(
    root, releases, *, mini, tasks, subjects, keep_excluded, download
) -> list[Recording]:
    """List recordings through eegdash's ``EEGChallengeDataset`` (online or offline)."""
    from eegdash import EEGChallengeDataset

    root = default_data_root() if root is None else Path(root).expanduser()
    task_list = resolve_tasks(tasks) if tasks is not None else None
    excluded = set() if keep_excluded else set(EXCLUDED_SUBJECTS)
    found: list[Recording] = []
    for release in [normalize_release(r) for r in _as_list(releases) or []]:
        legacy = root / legacy_release_folder_name(release, mini)
        if not download and not (root / release_folder_name(release, mini)).is_dir() \
                and legacy.is_dir():
            raise ValueError(
                f"eegdash 0.9 reads {root / release_folder_name(release, mini)} only; {legacy} "
                f"was written by an older eegdash: rename it (`mv {legacy} "
                f"{root / release_folder_name(release, mini)}`) or use source='local', which "
                "reads both names"
            )
        kwargs = {}
        if task_list is not None:
            kwargs["task"] = task_list if len(task_list) > 1 else task_list[0]
        if subjects is not None:
            kwargs["subject"] = [normalize_subject(s) for s in _as_list(subjects)]
        try:
            dataset = EEGChallengeDataset(
                release=release, cache_dir=str(root), mini=mini, download=download, **kwargs
            )
        except ValueError as err:
            raise ValueError(f"eegdash could not open {release} under {root}: {err}") from None
        folder = root / release_folder_name(release, mini)
        for ds in dataset.datasets:
            path = Path(ds.bidspath.fpath) if getattr(ds, "bidspath", None) else None
            if path is None or (download and not path.is_file()):
                path = Path(ds.raw.filenames[0])  # triggers the download
            match = _EEG_NAME.match(path.name)
            if match is None or match["subject"] in excluded:
                continue
            run = int(match["run"]) if match["run"] else None
            found.append(Recording(release, match["subject"], match["task"], run, path, folder))
    if not found:
        raise ValueError(f"eegdash found no recordings for releases={releases} under {root}")
    found.sort(key=lambda r: (RELEASES.index(r.release), r.subject, r.task, r.run or 0))
    return found


# ---------------------------------------------------------------------------------------------
# Participants
# ---------------------------------------------------------------------------------------------
def normalize_column(name) -> str:
    """A participants.tsv column name as eegdash matches it (``bids_metadata.normalize_key``):
    lower case, every run of other characters than ``a-z0-9`` one ``_``, no ``_`` at either
    end. ``"Externalizing"``, ``"p-factor"`` and ``" P_Factor "`` -> ``externalizing``,
    ``p_factor``, ``p_factor``."""
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


def read_participants(release_dir) -> dict[str, dict]:
    """``participants.tsv`` of a release as ``{subject: {column: value}}`` (IDs without
    ``sub-``; ``n/a`` -> NaN). FileNotFoundError when the file is missing. Columns keep
    their spelling; :func:`participant_value` finds them as eegdash does (case and
    punctuation normalised, :func:`normalize_column`), the ID column included."""
    import pandas as pd

    path = Path(release_dir) / "participants.tsv"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: every release folder needs its participants.tsv (targets such "
            f"as 'externalizing' come from it); {EXPECTED_LAYOUT}"
        )
    table = pd.read_csv(path, sep="\t")
    ids = [c for c in table.columns
           if normalize_column(c) in ("participant_id", "participant", "subject")]
    if not ids:
        raise ValueError(f"{path} has no 'participant_id' column (has {list(table.columns)}); "
                         "the first column must name the participants (sub-<ID>)")
    table[ids[0]] = table[ids[0]].astype(str).map(normalize_subject)
    return {row.pop(ids[0]): row for row in table.to_dict("records")}


def participant_value(participants: dict[str, dict], subject: str, column: str) -> float:
    """A numeric participant column (NaN when the subject or the value is missing)."""
    row = participants.get(subject)
    if row is None:
        return float("nan")
    key = _find_column(row, column)
    try:
        return float(row[key])
    except (TypeError, ValueError):
        return float("nan")


def _find_column(row: dict, column: str) -> str:
    """The key of ``row`` that names ``column``: the first one, in the file's column order,
    equal to it once both are normalised (as eegdash matches participants.tsv columns)."""
    wanted = normalize_column(column)
    for key in row:
        if normalize_column(key) == wanted:
            return key
    raise ValueError(
        f"participants.tsv has no column {column!r} (compared as {wanted!r}, case and "
        f"punctuation ignored); available: {sorted(row)}"
    )


__all__ = [
    "EXCLUDED_SUBJECTS", "RELEASES", "TASKS", "CCD_TASK", "Recording", "Skipped", "BdfHeader",
    "SkippedRecordingsWarning", "normalize_release", "release_folder_name", "find_release_dir",
    "discover_recordings", "read_bdf_header", "check_recordings", "report_skipped",
    "open_releases", "read_participants", "participant_value", "default_data_root",
    "summarize_skipped", "check_channels_names", "CorruptRecordingError", "read_bdf_data",
    "normalize_column", "resolve_tasks",
]  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The starter kit's path, for verification and benchmarks
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def eegdash_trial_rule(trial_rule: str = DEFAULT_TRIAL_RULE):
    """Run eegdash's CCD helpers under ``trial_rule`` (for the verification paths below).

    ``"current"`` leaves eegdash 0.9 as it is. ``"challenge"`` hands its
    ``annotate_trials_with_target`` the competition-era trial table: eegdash 0.9's
    ``build_trial_table`` on the events without their ``end_experiment`` rows. That is exact:
    0.9 reads ``end_experiment`` only to close the last trial, and without it the last trial
    has no end and is dropped, as the competition-era code dropped it.
    """
    check_option("trial_rule", trial_rule, TRIAL_RULES)
    from eegdash.hbn import windows as eegdash_windows

    if trial_rule == "current":
        yield
        return
    original = eegdash_windows.build_trial_table

    def challenge_era(events_df):
        return original(events_df[events_df["value"] != "end_experiment"])

    eegdash_windows.build_trial_table = challenge_era
    try:
        yield
    finally:
        eegdash_windows.build_trial_table = original


def starter_kit_windows(
    challenge: int,
    root,
    release: str = "R5",
    *,
    mini: bool = False,
    task: str = CCD_TASK,
    target: str = "externalizing",
    trial_rule: str = DEFAULT_TRIAL_RULE,
):
    """The challenge starter kit's windows (eegdash + braindecode), as a braindecode
    ``BaseConcatDataset`` of windows; read them with ``iter_starter_kit_windows``.

    Challenge 1: ``EEGChallengeDataset(download=False)`` -> excluded subjects removed ->
    ``annotate_trials_with_target`` + ``add_aux_anchors`` -> ``keep_only_recordings_with``
    -> ``create_windows_from_events`` on ``stimulus_anchor`` (+0.5 s .. +2.5 s, 200 samples)
    -> ``add_extras_columns``, under ``trial_rule`` (:func:`eegdash_trial_rule`). Challenge 2:
    recordings with 129 channels, >= 4 s and a finite target -> ``create_fixed_length_windows``
    (400 samples, stride 200, last partial dropped). Offline only (the folder
    ``<root>/EEG2025r<N>[mini]`` must exist).
    """
    import math

    from braindecode.datasets import BaseConcatDataset
    from braindecode.preprocessing import (
        Preprocessor,
        create_fixed_length_windows,
        create_windows_from_events,
        preprocess,
    )
    from eegdash import EEGChallengeDataset
    from eegdash.hbn.windows import (
        add_aux_anchors,
        add_extras_columns,
        annotate_trials_with_target,
        keep_only_recordings_with,
    )

    check_challenge(challenge)
    release = normalize_release(release)
    find_release_dir(root, release, mini)
    fields = ["subject", "session", "run", "task", target] if challenge == 2 else None
    kwargs = {"description_fields": fields} if fields else {}
    dataset = EEGChallengeDataset(release=release, cache_dir=str(root), mini=mini,
                                  download=False, task=task, **kwargs)
    sfreq = int(SFREQ)
    if challenge == 1:
        dataset = BaseConcatDataset([
            ds for ds in dataset.datasets
            if not any(sub in str(ds.raw.filenames[0]) for sub in EXCLUDED_SUBJECTS)
        ])  # fmt: skip
        with eegdash_trial_rule(trial_rule):
            preprocess(dataset, [
                Preprocessor(annotate_trials_with_target, target_field="rt_from_stimulus",
                             epoch_length=2.0, require_stimulus=True, require_response=True,
                             apply_on_array=False),
                Preprocessor(add_aux_anchors, apply_on_array=False),
            ], n_jobs=1)  # fmt: skip
        dataset = keep_only_recordings_with("stimulus_anchor", dataset)
        windows = create_windows_from_events(
            dataset, mapping={"stimulus_anchor": 0},
            trial_start_offset_samples=int(C1_SHIFT_AFTER_STIMULUS_S * sfreq),
            trial_stop_offset_samples=int((C1_SHIFT_AFTER_STIMULUS_S + C1_WINDOW_S) * sfreq),
            window_size_samples=int(C1_WINDOW_S * sfreq), window_stride_samples=sfreq,
            preload=True,
        )  # fmt: skip
        return add_extras_columns(windows, dataset, desc="stimulus_anchor", keys=(
            "target", "rt_from_stimulus", "rt_from_trialstart", "stimulus_onset",
            "response_onset", "correct", "response_type"))  # fmt: skip
    dataset = BaseConcatDataset([
        ds for ds in dataset.datasets
        if ds.description["subject"] not in EXCLUDED_SUBJECTS
        and ds.raw.n_times >= C2_WINDOW_S * sfreq and len(ds.raw.ch_names) == N_CHANNELS
        and not math.isnan(float(ds.description[target]))
    ])  # fmt: skip
    return create_fixed_length_windows(dataset, window_size_samples=int(C2_WINDOW_S * sfreq),
                                       window_stride_samples=int(C2_STRIDE_S * sfreq),
                                       drop_last_window=True)


def iter_starter_kit_windows(windows, challenge: int, target: str = "externalizing"):
    """Read every window of ``starter_kit_windows`` as the starter kit's data loader does;
    yields ``(X (n_chans, n_times) float32, y float, info dict)`` with ``subject``, ``task``,
    ``run``, ``i_start`` (sample of the window start in the recording)."""
    import numpy as np

    for ds in windows.datasets:
        desc = ds.description
        run = desc.get("run")
        run = None if run is None or (isinstance(run, float) and run != run) else int(run)
        for i in range(len(ds)):
            X, y, inds = ds[i]
            value = float(np.ravel(y)[0]) if challenge == 1 else float(desc[target])
            yield X, value, {"subject": str(desc["subject"]), "task": str(desc["task"]),
                             "run": run, "i_start": int(inds[1])}
