"""Content-addressed window cache and the public entry point ``load_challenge_windows``.

An entry is a folder ``<cache_dir>/<key>/`` holding

- ``X.npy``: all windows, (n_windows, n_chans, n_times) float32, read back with
  ``np.load(mmap_mode="r")`` so epochs read straight from disk and never redo MNE work;
- ``y.npy``: targets (n_windows,) float32;
- ``metadata.csv``: one row per window (dtypes restored on load);
- ``info.json``: the key's inputs, counts of what was dropped and the skipped files;
- ``manifest.json`` (written last): the byte size of every file, the SHA-256 of the small
  ones (``y.npy``, ``metadata.csv``, ``info.json``), the shape and dtype of the arrays and the
  SHA-256 of the windows' bytes.

Every read checks the manifest (sizes, array headers, the small files' checksums; the windows'
checksum only with ``verify_entry(deep=True)`` / ``eegattn cache --verify``, as hashing
gigabytes would cost more than the read). A damaged entry (a truncated ``X.npy``, an edited
``info.json``, a zeroed ``y.npy``) raises ``DamagedEntryError`` naming the folder, the problem
and the fix from ``read_entry``; ``load_challenge_windows`` warns and rebuilds it. Entries
written before manifests existed still load, with the older consistency checks only.

The key is a SHA-256 over (1) every input file: its path relative to the data root, size and
modification time in nanoseconds for the ``.bdf`` recordings, and the full content of the
small text files the windows depend on (``events.tsv`` for challenge 1, ``participants.tsv``
for challenge 2); (2) every parameter that changes the output (``WindowSpec``,
``PreprocessConfig``, release / mini / task choices); (3) a code version (this module's format,
``windows.WINDOWS_CODE_VERSION`` and the installed MNE version). Size + mtime rather than a
content hash for the recordings because hashing the ~200 GB of all releases would cost more
than the MNE work the cache saves, while any rewrite of a file (download, re-export, repair)
changes its mtime; a rewrite that keeps both size and mtime (``cp -p`` of different data) goes
unseen, so ``hash_content=True`` hashes the recordings' bytes too for the cautious. Relative
paths keep the key stable when a data folder is moved or copied with its times (``rsync -t``).

Writes are atomic: the entry is built in ``<cache_dir>/.tmp-<key>-<random>/`` and renamed into
place only once complete; a failure removes the temporary folder, and a killed run leaves only
a ``.tmp-*`` folder, which is never read. The building process holds an ``flock`` on
``.building`` inside it (released by the kernel however the process ends), so
``scan_cache`` tells a killed run's leftover from a build in progress. Source files are only
read, never written.

Maintenance (``eegattn cache``): ``scan_cache`` lists entries and leftovers with their size and
state (ok, damaged, stale: made by another format / windows code / MNE version or from
recordings that changed since, leftover, in use); ``remove_cache_paths`` deletes what the user
asked for, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import time
import uuid
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from eegattn.data import hbn
from eegattn.data.preprocess import PreprocessConfig, check_filter_settings, map_recordings
from eegattn.data.windows import (
    WINDOWS_CODE_VERSION,
    RecordingWindows,
    WindowSet,
    WindowSpec,
    finalize_metadata,
    metadata_dtypes,
    recording_windows,
)
from eegattn.utils.io import write_json_atomic

CACHE_FORMAT_VERSION = "eegattn-window-cache-1"
MANIFEST_FORMAT = "eegattn-window-cache-manifest-1"
MANIFEST_NAME = "manifest.json"
ENTRY_FILES = ("X.npy", "y.npy", "metadata.csv", "info.json")
_CHECKSUMMED = ("y.npy", "metadata.csv", "info.json")
_NPY_HEADER_BYTES = 1024  # fixed header so windows can be streamed to disk before n is known
_LOCK_NAME = ".building"
_ENTRY_RE = re.compile(r"^c[12]-[0-9a-f]{32}$")
_TMP_RE = re.compile(r"^\.tmp-c[12]-[0-9a-f]{32}-")
#: a ``.tmp-*`` folder without a lock (older eegattn, or the instant before publishing) is
#: taken for a leftover once nothing in it changed for this long
LEFTOVER_AGE_S = 3600.0


class DamagedEntryError(ValueError):
    """A cache entry whose files do not match its manifest; ``path`` and ``problems`` say
    where and what, the message says how to fix it."""

    def __init__(self, path, problems):
        self.path, self.problems = Path(path), list(problems)
        super().__init__(
            f"cache entry {self.path} is damaged: {'; '.join(self.problems)}; remove it with "
            f"`eegattn cache --remove {self.path.name} --yes --cache-dir {self.path.parent}` "
            "(or delete the folder) and the next run rebuilds it"
        )


class CacheWarning(UserWarning):
    """Something about the window cache the user should know (a damaged entry rebuilt)."""


def default_window_cache_dir() -> Path:
    """``<project cache>/windows`` (``EEGATTN_CACHE`` environment variable moves it)."""
    from eegattn.data.synthetic import default_cache_dir

    return Path(default_cache_dir()) / "windows"


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
def _sha256_file(path: Path, chunk: int = 1 << 20, offset: int = 0) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(offset)
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _mne_version() -> str:
    try:
        return importlib_metadata.version("mne")
    except importlib_metadata.PackageNotFoundError:  # pragma: no cover
        return "unknown"


def input_fingerprint(
    recordings, spec: WindowSpec, *, hash_content: bool = False
) -> list[list]:
    """JSON-able description of every input file the windows depend on (see module doc)."""
    rows: list[list] = []
    release_dirs = {}
    for rec in recordings:
        base = rec.release_dir.parent
        st = rec.path.stat()
        row = [rec.release, rec.path.relative_to(base).as_posix(), st.st_size, st.st_mtime_ns]
        if hash_content:
            row.append(_sha256_file(rec.path))
        if spec.challenge == 1:
            events = rec.events_path
            row.append(_sha256_file(events) if events.is_file() else None)
        rows.append(row)
        release_dirs[rec.release] = rec.release_dir
    if spec.challenge == 2:
        for release, folder in sorted(release_dirs.items()):
            participants = folder / "participants.tsv"
            rows.append([release, "participants.tsv",
                         _sha256_file(participants) if participants.is_file() else None])
    return rows


def cache_key(recordings, spec: WindowSpec, config: PreprocessConfig, *,
              query: dict | None = None, hash_content: bool = False) -> tuple[str, dict]:
    """The key of the entry for these inputs and parameters, and what went into it."""
    inputs = {
        "format": CACHE_FORMAT_VERSION,
        "code": WINDOWS_CODE_VERSION,
        "mne": _mne_version(),
        "spec": spec.as_dict(),
        "preprocess": config.as_dict(),
        "query": query or {},
        "hash_content": hash_content,
        "files": input_fingerprint(recordings, spec, hash_content=hash_content),
    }
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    key = f"c{spec.challenge}-{hashlib.sha256(blob).hexdigest()[:32]}"
    return key, inputs


# ---------------------------------------------------------------------------------------------
# Streaming .npy writer
# ---------------------------------------------------------------------------------------------
class NpyAppender:
    """Append float32 blocks of shape (k, *tail) to a ``.npy`` file whose first dimension is
    only known at the end. The header has a fixed size (1024 bytes, 64-aligned), written
    last, so ``np.load(path, mmap_mode="r")`` reads the result like any ``.npy``."""

    def __init__(self, path, tail_shape: tuple[int, ...], dtype=np.float32):
        self.path = Path(path)
        self.tail_shape = tuple(int(s) for s in tail_shape)
        self.dtype = np.dtype(dtype)
        self.n_rows = 0
        self._digest = hashlib.sha256()  # of the data bytes (after the header)
        self._fh = open(self.path, "wb")
        self._fh.write(b"\0" * _NPY_HEADER_BYTES)

    def append(self, block: np.ndarray) -> None:
        block = np.asarray(block)
        if block.shape[1:] != self.tail_shape or block.dtype != self.dtype:
            raise ValueError(
                f"block of shape {block.shape} / {block.dtype} does not fit an array of "
                f"(n, {self.tail_shape}) {self.dtype}"
            )
        if block.size:  # memoryview cannot cast an empty block
            data = memoryview(np.ascontiguousarray(block)).cast("B")
            self._fh.write(data)
            self._digest.update(data)
        self.n_rows += block.shape[0]

    @property
    def data_sha256(self) -> str:
        """SHA-256 of the data bytes written so far (the ``.npy`` body, header excluded)."""
        return self._digest.hexdigest()

    def close(self) -> None:
        shape = (self.n_rows, *self.tail_shape)
        header = repr({"descr": self.dtype.str, "fortran_order": False, "shape": shape})
        prefix = b"\x93NUMPY\x01\x00"
        body_len = _NPY_HEADER_BYTES - len(prefix) - 2
        text = header.encode("latin1")
        if len(text) + 1 > body_len:  # pragma: no cover - shapes are short
            raise ValueError(f"npy header too long for shape {shape}")
        text = text + b" " * (body_len - len(text) - 1) + b"\n"
        self._fh.seek(0)
        self._fh.write(prefix + struct.pack("<H", body_len) + text)
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()

    def abort(self) -> None:
        if not self._fh.closed:
            self._fh.close()


# ---------------------------------------------------------------------------------------------
# Reading and writing entries
# ---------------------------------------------------------------------------------------------
def _npy_header(path: Path) -> tuple[tuple[int, ...], str, int]:
    """``(shape, dtype, data offset)`` of a ``.npy`` file; ValueError when it is not one."""
    with open(path, "rb") as fh:
        fmt = np.lib.format
        readers = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}
        try:
            version = fmt.read_magic(fh)
            if version not in readers:
                raise ValueError(f"unsupported .npy version {version}")
            shape, fortran, dtype = readers[version](fh)
        except (ValueError, OSError, SyntaxError, TypeError) as err:
            raise ValueError(f"{path.name} has no valid .npy header ({err})") from None
        if fortran:
            raise ValueError(f"{path.name} is in Fortran order (not written by eegattn)")
        return tuple(int(n) for n in shape), np.dtype(dtype).str, fh.tell()


def _npy_record(path: Path) -> dict:
    shape, dtype, offset = _npy_header(path)
    return {"bytes": path.stat().st_size, "shape": list(shape), "dtype": dtype,
            "data_offset": offset}


def write_manifest(folder, *, key: str | None = None, x_data_sha256: str | None = None) -> Path:
    """Describe the entry's files in ``<folder>/manifest.json`` (see the module doc); ``key``:
    the entry's name (default: the folder's)."""
    folder = Path(folder)
    files = {}
    for name in ENTRY_FILES:
        path = folder / name
        record = _npy_record(path) if name.endswith(".npy") else {"bytes": path.stat().st_size}
        if name in _CHECKSUMMED:
            record["sha256"] = _sha256_file(path)
        files[name] = record
    if x_data_sha256 is None:
        x_data_sha256 = _sha256_file(folder / "X.npy", offset=files["X.npy"]["data_offset"])
    files["X.npy"]["data_sha256"] = x_data_sha256
    manifest = {"format": MANIFEST_FORMAT, "key": key or folder.name, "files": files}
    return write_json_atomic(folder / MANIFEST_NAME, manifest, indent=1)


def read_manifest(folder) -> dict | None:
    """The entry's manifest; None for an entry written before manifests existed.
    DamagedEntryError when it is unreadable."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest["files"], dict):
            raise ValueError
    except (ValueError, KeyError, AttributeError, TypeError, UnicodeDecodeError):
        raise DamagedEntryError(folder, [f"{MANIFEST_NAME} is not a valid manifest"]) from None
    return manifest


def verify_entry(folder, *, deep: bool = False) -> list[str]:
    """What is wrong with the entry in ``folder`` (empty list: nothing found).

    Checks every file against the manifest: present, byte size, the arrays' shape and dtype,
    the SHA-256 of the small files; with ``deep=True`` also the SHA-256 of the windows (reads
    all of ``X.npy``). An entry without a manifest (older eegattn) gets the consistency checks
    of its arrays and ``info.json`` only.
    """
    folder = Path(folder)
    try:
        manifest = read_manifest(folder)
    except DamagedEntryError as err:
        return err.problems
    problems = [f"{name} is missing" for name in ENTRY_FILES if not (folder / name).is_file()]
    if problems:
        return problems
    try:
        info = json.loads((folder / "info.json").read_text())
        n = int(info["n_windows"])
        int(info["challenge"]), float(info["sfreq"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        info, n = None, None
    if manifest is None:  # written before manifests: check what can be checked
        if info is None:
            return ["info.json is not valid (not JSON or lacks n_windows / challenge / sfreq)"]
        for name in ("X.npy", "y.npy"):
            try:
                shape, dtype, offset = _npy_header(folder / name)
            except ValueError as err:
                problems.append(str(err))
                continue
            expected = offset + int(np.prod(shape)) * np.dtype(dtype).itemsize
            size = (folder / name).stat().st_size
            if size != expected:
                problems.append(f"{name} has {size} bytes, its header needs {expected} "
                                "(truncated or overwritten)")
            elif shape[:1] != (n,):
                problems.append(f"{name} holds {shape[0] if shape else 0} rows, info.json "
                                f"says {n} windows")
        return problems
    if manifest.get("key") != folder.name:
        return [f"{MANIFEST_NAME} describes entry {manifest.get('key')}, not {folder.name} (a "
                "renamed or copied folder)"]
    records = manifest["files"]
    for name in ENTRY_FILES:
        record = records.get(name) or {}
        path = folder / name
        size = path.stat().st_size
        if size != record.get("bytes"):
            how = "truncated" if size < (record.get("bytes") or 0) else "overwritten"
            problems.append(f"{name} has {size} bytes, the manifest says {record.get('bytes')} "
                            f"({how})")
            continue
        if name.endswith(".npy"):
            try:
                shape, dtype, _ = _npy_header(path)
            except ValueError as err:
                problems.append(str(err))
                continue
            if list(shape) != record.get("shape") or dtype != record.get("dtype"):
                problems.append(f"{name} holds {dtype} {list(shape)}, the manifest says "
                                f"{record.get('dtype')} {record.get('shape')}")
                continue
        if name in _CHECKSUMMED and _sha256_file(path) != record.get("sha256"):
            problems.append(f"{name} does not match its checksum (zeroed, edited or "
                            "overwritten)")
    if not problems and info is None:
        problems.append("info.json is not valid (not JSON or lacks n_windows / challenge / "
                        "sfreq)")
    if not problems and deep:
        x = records["X.npy"]
        if _sha256_file(folder / "X.npy", offset=x["data_offset"]) != x.get("data_sha256"):
            problems.append("X.npy does not match its checksum (the windows were changed)")
    return problems


def read_entry(folder) -> WindowSet:
    """Open a finished cache entry (windows memory-mapped, read-only).

    Raises ``DamagedEntryError`` (a ValueError naming the folder, the problem and the fix)
    when the files do not match the entry's manifest (see ``verify_entry``).
    """
    folder = Path(folder)
    problems = verify_entry(folder)
    if problems:
        raise DamagedEntryError(folder, problems)
    info = json.loads((folder / "info.json").read_text())
    n = int(info["n_windows"])
    X = np.load(folder / "X.npy", mmap_mode="r") if n else np.load(folder / "X.npy")
    y = np.load(folder / "y.npy")
    dtypes = metadata_dtypes(int(info["challenge"]))
    try:
        meta = pd.read_csv(folder / "metadata.csv",
                           dtype={c: d for c, d in dtypes.items() if d in ("string",)})
        for column, dtype in dtypes.items():
            if column in meta.columns:
                meta[column] = meta[column].astype(dtype)
    except (ValueError, TypeError, pd.errors.ParserError) as err:
        raise DamagedEntryError(folder, [f"metadata.csv cannot be read ({err})"]) from None
    if X.shape[0] != n or y.shape != (n,) or len(meta) != n:
        raise DamagedEntryError(folder, [
            f"its files are inconsistent (X {X.shape}, y {y.shape}, {len(meta)} metadata rows, "
            f"info.json says {n})"])
    info["path"] = str(folder)
    return WindowSet(X=X, y=y, metadata=meta, sfreq=float(info["sfreq"]),
                     challenge=int(info["challenge"]), cache_key=folder.name, info=info)


def write_summary(windows: WindowSet, path) -> Path:
    """Write ``windows.info`` (counts, skipped files, key inputs) as JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json_atomic(path, {"n_windows": len(windows), **windows.info}, indent=1,
                             default=str, allow_nan=True)


def describe_windows(windows: WindowSet) -> str:
    """A few lines for people: sizes, target summary, what was dropped, where it lives."""
    meta, info = windows.metadata, windows.info
    y = np.asarray(windows.y, dtype=float)
    lines = [
        f"challenge {windows.challenge}: {len(windows)} windows of {windows.n_chans} channels "
        f"x {windows.n_times} samples at {windows.sfreq:g} Hz, from "
        f"{meta['recording'].nunique()} recordings of {meta['subject'].nunique()} subjects "
        f"(releases {', '.join(sorted(meta['release'].unique()))}; tasks "
        f"{', '.join(sorted(meta['task'].unique()))})",
        f"target: mean {y.mean():.4g}, std {y.std():.4g}, min {y.min():.4g}, max {y.max():.4g}",
    ]
    if info.get("dropped"):
        lines.append("dropped: " + ", ".join(f"{k} {v}" for k, v in info["dropped"].items()))
    if info.get("n_skipped"):
        lines.append("skipped recordings: "
                     + ", ".join(f"{k}: {v}" for k, v in info["n_skipped"].items()))
    lines.append(f"cache: {info['path']}" if info.get("path") else "cache: not used")
    return "\n".join(lines)


def _drop_non_finite(result: RecordingWindows, channels, strict: bool):
    """Drop the windows of one recording that hold NaN or Inf (samples or target), with a
    warning that names the first bad window; ``strict`` raises instead. Returns the result
    and the message (None when all windows are finite)."""
    X, meta = result.X, result.metadata
    finite = np.isfinite(X).all(axis=(1, 2)) if len(X) else np.ones(0, bool)
    target_ok = np.isfinite(meta["target"].to_numpy(dtype=float)) if len(meta) else finite
    good = finite & target_ok
    if good.all():
        return result, None
    first = int(np.flatnonzero(~good)[0])
    row = meta.iloc[first]
    where = f"window {first} of {row['recording']} (samples {row['i_start']}..{row['i_stop']}"
    if not finite[first]:
        bad = ~np.isfinite(X[first])
        channel, sample = (int(i[0]) for i in np.nonzero(bad))
        where += f", channel {channels[channel]}, sample {int(row['i_start']) + sample})"
        what = "NaN or Inf samples"
    else:
        where += ")"
        what = f"a NaN or Inf target ({row['target']})"
    n_bad = int((~good).sum())
    message = (f"{n_bad} of {len(X)} window(s) hold NaN or Inf; the first is {where}, with "
               f"{what}")
    if strict:
        raise ValueError(f"{message}; repair or leave out that recording (strict=True; pass "
                         "strict=False to drop those windows)")
    warnings.warn(f"{message}; those windows were dropped", hbn.SkippedRecordingsWarning,
                  stacklevel=4)
    dropped = dict(result.dropped)
    dropped["windows_with_nan_or_inf"] = dropped.get("windows_with_nan_or_inf", 0) + n_bad
    return RecordingWindows(X[good], meta[good].reset_index(drop=True), dropped), message


def _write_entry_files(tmp: Path, results, spec, config, strict: bool = False) -> dict:
    """Stream per-recording windows into ``tmp``; returns the counts for ``info.json``."""
    size = int(spec.window_s * config.sfreq)
    writer = NpyAppender(tmp / "X.npy", (len(config.channels), size))
    frames, skipped, dropped, non_finite = [], [], {}, []
    try:
        for result in results:
            if result.skipped is not None:
                skipped.append(result.skipped)
                continue
            result, message = _drop_non_finite(result, config.channels, strict)
            if message:
                non_finite.append(message)
            writer.append(result.X)
            frames.append(result.metadata)
            for name, count in result.dropped.items():
                dropped[name] = dropped.get(name, 0) + count
    except BaseException:
        writer.abort()
        raise
    writer.close()
    meta = finalize_metadata(frames, spec.challenge)
    np.save(tmp / "y.npy", meta["target"].to_numpy(np.float32))
    meta.to_csv(tmp / "metadata.csv", index=False)
    return {"n_windows": int(writer.n_rows), "dropped": dropped, "non_finite": non_finite,
            "worker_skipped": skipped, "x_data_sha256": writer.data_sha256}


# ---------------------------------------------------------------------------------------------
# Public entry point
# ---------------------------------------------------------------------------------------------
def load_challenge_windows(
    challenge: int,
    releases=("R5",),
    root=None,
    *,
    mini: bool = False,
    tasks=None,
    subjects=None,
    keep_excluded: bool = False,
    source: str = "local",
    download: bool = False,
    cache_dir=None,
    use_cache: bool = True,
    hash_content: bool = False,
    n_jobs: int | None = 1,
    backend: str | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    strict: bool = False,
    sfreq: float = 100.0,
    l_freq: float | None = None,
    h_freq: float | None = None,
    notch=(),
    reference: str | None = None,
    window_s: float | None = None,
    stride_s: float | None = None,
    shift_after_stimulus_s: float | None = None,
    target: str | None = None,
    trial_rule: str | None = None,
) -> WindowSet:
    """Challenge windows of local HBN releases, built once and then read from the cache.

    challenge: 1 (response time, CCD trials) or 2 (``externalizing``, fixed windows).
    releases / root / mini / tasks / subjects / keep_excluded / source / download: which
        recordings (``hbn.discover_recordings``; challenge 1 uses contrastChangeDetection
        only, challenge 2 defaults to it and takes any HBN tasks, or ``"all"``). ``root``
        holds the ``EEG2025r<N>[mini]`` folders.
    cache_dir: where entries live (default ``<project cache>/windows``); use_cache=False
        builds in memory and writes nothing. hash_content: hash recording bytes for the key.
    n_jobs / backend / scheduler / progress: parallel reading (``preprocess.map_recordings``;
        ``backend="dask"`` with ``scheduler`` a Dask scheduler address runs on that cluster).
    strict: raise instead of skipping bad recordings (corrupt / truncated .bdf, not 129
        channels, unusable events.tsv, missing target, shorter than a window).
    sfreq / l_freq / h_freq / notch / reference: ``PreprocessConfig``.
    window_s / stride_s / shift_after_stimulus_s / target / trial_rule: ``WindowSpec``
        (starter-kit defaults: challenge 1 +0.5..+2.5 s after the stimulus and the
        challenge's trial rule, challenge 2 4 s every 2 s).

    Returns a ``WindowSet``; ``X`` is a read-only memmap when it comes from the cache.
    ``info`` holds the counts of dropped trials / recordings and the skipped files.
    """
    spec = WindowSpec(challenge, window_s=window_s, stride_s=stride_s,
                      shift_after_stimulus_s=shift_after_stimulus_s, target=target,
                      trial_rule=trial_rule)
    config = PreprocessConfig(sfreq=sfreq, l_freq=l_freq, h_freq=h_freq, notch=notch,
                              reference=reference)
    tasks = _challenge_tasks(challenge, tasks)
    if source == "local":
        recordings = hbn.discover_recordings(root, releases, mini=mini, tasks=tasks,
                                             subjects=subjects, keep_excluded=keep_excluded)
    elif source == "eegdash":
        recordings = hbn._discover_with_eegdash(
            root, releases, mini=mini, tasks=tasks, subjects=subjects,
            keep_excluded=keep_excluded, download=download,
        )  # fmt: skip
    else:
        raise ValueError(f"source must be 'local' or 'eegdash', got {source!r}")
    query = {"releases": sorted({r.release for r in recordings}), "mini": mini,
             "tasks": tasks, "keep_excluded": keep_excluded}
    key, key_inputs = cache_key(recordings, spec, config, query=query,
                                hash_content=hash_content)

    if use_cache:
        cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
        final = cache_dir / key
        if final.exists():
            try:
                windows = read_entry(final)
            except DamagedEntryError as err:
                warnings.warn(f"{err.path} is damaged ({'; '.join(err.problems)}); rebuilding "
                              "it", CacheWarning, stacklevel=2)
            else:
                _rewarn(windows.info, strict)
                return windows

    usable, skipped = _select_recordings(recordings, spec, config)
    hbn.report_skipped(skipped, strict=strict)
    jobs = [(rec, spec, config, target_value) for rec, target_value in usable]
    results = map_recordings(recording_windows, jobs, n_jobs=n_jobs, backend=backend,
                             scheduler=scheduler, progress=progress,
                             desc=f"challenge {challenge} windows")
    base_info = {
        "challenge": challenge, "sfreq": config.sfreq, "key": key,
        "n_recordings_found": len(recordings), "n_recordings_used": None,
        "source_root": _source_root(recordings), "inputs": key_inputs,
    }  # fmt: skip

    if not use_cache:
        return _build_in_memory(results, spec, config, base_info, skipped, strict, len(usable))

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with _build_lock(tmp):
            counts = _write_entry_files(tmp, results, spec, config, strict)
            worker_skipped = counts.pop("worker_skipped")
            x_sha = counts.pop("x_data_sha256")
            hbn.report_skipped(worker_skipped, strict=strict)
            all_skipped = list(skipped) + list(worker_skipped)
            info = _finish_info(base_info, counts, all_skipped, len(usable))
            if info["n_windows"] == 0:
                raise ValueError(_no_windows_message(info))
            (tmp / "info.json").write_text(json.dumps(info, indent=1, default=str))
            write_manifest(tmp, key=key, x_data_sha256=x_sha)
        _publish_entry(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_entry(final)


def _source_root(recordings) -> str | None:
    """The folder the recordings' relative paths start from (for ``scan_cache``'s check that
    an entry's inputs still exist unchanged), None when they come from several."""
    roots = {str(rec.release_dir.parent.resolve()) for rec in recordings}
    return roots.pop() if len(roots) == 1 else None


@contextlib.contextmanager
def _build_lock(tmp: Path):
    """Hold an exclusive ``flock`` on ``tmp/.building`` while the entry is built. The kernel
    drops it when the process ends, killed or not, so ``scan_cache`` can tell a leftover (lock
    free) from a build in progress (lock held). The lock file goes before publishing."""
    lock = tmp / _LOCK_NAME
    fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o666)
    try:
        with contextlib.suppress(ImportError, OSError):  # no fcntl (Windows): age rule only
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield
        lock.unlink()
    finally:
        os.close(fd)


def _publish_entry(tmp: Path, final: Path) -> None:
    """Rename the finished ``tmp`` to ``final``. If ``final`` exists it is either a twin that
    a concurrent run finished (kept; ``tmp`` is dropped) or a damaged entry being rebuilt
    (moved aside, replaced, then deleted)."""
    try:
        os.replace(tmp, final)
        return
    except OSError:
        if not final.exists():  # not a concurrent twin or a damaged entry: a real error
            raise
    if not verify_entry(final):
        shutil.rmtree(tmp, ignore_errors=True)  # another run finished the same entry
        return
    trash = final.with_name(f".tmp-{final.name}-damaged-{uuid.uuid4().hex[:8]}")
    os.replace(final, trash)
    os.replace(tmp, final)
    shutil.rmtree(trash, ignore_errors=True)


def _challenge_tasks(challenge: int, tasks) -> list[str]:
    if challenge == 1:
        if tasks is not None and list(hbn._as_list(tasks)) != [hbn.CCD_TASK]:
            raise ValueError(
                f"challenge 1 uses the {hbn.CCD_TASK} task only (response times), got "
                f"tasks={tasks!r}; leave tasks unset"
            )
        return [hbn.CCD_TASK]
    if tasks is None:
        return [hbn.CCD_TASK]
    return hbn.resolve_tasks(tasks)


def _select_recordings(recordings, spec: WindowSpec, config: PreprocessConfig):
    """Header checks (+ target and length for challenge 2): ``[(recording, target)]``,
    skipped."""
    headers: dict = {}
    ok, skipped = hbn.check_recordings(recordings, channels=config.channels, headers=headers)
    for rate in sorted({h.sfreq for h in headers.values()}):  # refuse bad filters up front
        check_filter_settings(config, rate)
    usable = []
    participants: dict[Path, dict] = {}
    for rec in ok:
        target_value = None
        if spec.challenge == 2:
            if rec.release_dir not in participants:
                participants[rec.release_dir] = hbn.read_participants(rec.release_dir)
            target_value = hbn.participant_value(participants[rec.release_dir], rec.subject,
                                                 spec.target)
            if not np.isfinite(target_value):
                skipped.append(hbn.Skipped(rec, f"no {spec.target} target",
                                           f"{rec.name}: {spec.target} is missing (NaN)"))
                continue
            header = headers[rec]
            duration = header.n_times / header.sfreq
            if int(duration * config.sfreq) < int(spec.window_s * config.sfreq):
                skipped.append(hbn.Skipped(
                    rec, f"shorter than {spec.window_s:g} s",
                    f"{rec.name}: {duration:.2f} s"))
                continue
        usable.append((rec, target_value))
    return usable, skipped


def _finish_info(base_info: dict, counts: dict, skipped, n_usable: int) -> dict:
    info = dict(base_info)
    info.update(counts)
    info["n_recordings_used"] = n_usable - sum(
        1 for s in skipped if s.cause in ("unusable events.tsv", "unreadable recording"))
    info["skipped"] = hbn.summarize_skipped(skipped)
    info["n_skipped"] = {cause: len(items) for cause, items in info["skipped"].items()}
    return info


def _no_windows_message(info: dict) -> str:
    return (
        f"no windows: {info['n_recordings_found']} recordings found, "
        f"{info['n_recordings_used']} usable, skipped {info['n_skipped']}, dropped "
        f"{info.get('dropped', {})}; check the release and the task"
    )


def _build_in_memory(results, spec, config, base_info, skipped, strict, n_usable) -> WindowSet:
    blocks, frames, worker_skipped, dropped, non_finite = [], [], [], {}, []
    for result in results:
        result: RecordingWindows
        if result.skipped is not None:
            worker_skipped.append(result.skipped)
            continue
        result, message = _drop_non_finite(result, config.channels, strict)
        if message:
            non_finite.append(message)
        blocks.append(result.X)
        frames.append(result.metadata)
        for name, count in result.dropped.items():
            dropped[name] = dropped.get(name, 0) + count
    hbn.report_skipped(worker_skipped, strict=strict)
    size = int(spec.window_s * config.sfreq)
    X = np.concatenate(blocks) if blocks else np.zeros((0, len(config.channels), size),
                                                       np.float32)
    meta = finalize_metadata(frames, spec.challenge)
    info = _finish_info(base_info, {"n_windows": len(X), "dropped": dropped,
                                    "non_finite": non_finite},
                        list(skipped) + worker_skipped, n_usable)
    if len(X) == 0:
        raise ValueError(_no_windows_message(info))
    return WindowSet(X=X, y=meta["target"].to_numpy(np.float32), metadata=meta,
                     sfreq=config.sfreq, challenge=spec.challenge, cache_key=None, info=info)


def _rewarn(info: dict, strict: bool) -> None:
    """Repeat, for a cache hit, the warnings the build gave about skipped recordings."""
    skipped = info.get("skipped") or {}
    lines = [f"skipped {len(v)} recording(s) ({cause}): " + "; ".join(v[:20])
             for cause, v in skipped.items()]
    lines += [f"{line}; those windows were dropped" for line in info.get("non_finite") or ()]
    if not lines:
        return
    if strict:
        raise ValueError(" | ".join(lines) + " (strict=True; pass strict=False to skip them)")
    for line in lines:
        warnings.warn(line + " (from the cache)", hbn.SkippedRecordingsWarning, stacklevel=3)


def clear_temporary(cache_dir=None) -> int:
    """Remove ``.tmp-*`` folders left by killed runs; returns how many were removed. Only
    call it when no other run is writing to ``cache_dir`` (``scan_cache`` tells leftovers from
    builds in progress)."""
    cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
    removed = 0
    for path in cache_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


# ---------------------------------------------------------------------------------------------
# Maintenance: list, check, remove (``eegattn cache``)
# ---------------------------------------------------------------------------------------------
#: states ``scan_cache`` gives; the last three are what ``--clean`` removes
STATES = ("ok", "in use", "damaged", "stale", "leftover")
REMOVABLE = ("damaged", "stale", "leftover")


@dataclass
class CacheItem:
    """One folder of the window cache: an entry or a temporary (``.tmp-*``) folder.

    state: ``ok`` (usable), ``in use`` (a temporary folder a run is building), ``damaged``
    (files do not match the manifest), ``stale`` (can never be used again: made by another
    cache format, windows code or MNE version, or its recordings changed or are gone),
    ``leftover`` (a temporary folder of a killed run). ``detail`` says why.
    """

    path: Path
    kind: str  # "entry" or "temporary"
    state: str
    size: int
    modified: float
    challenge: int | None = None
    n_windows: int | None = None
    detail: str = ""
    problems: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def removable(self) -> bool:
        return self.state in REMOVABLE


def _folder_stats(folder: Path) -> tuple[int, float]:
    """Total bytes of the files under ``folder`` and the newest modification time."""
    size, newest = 0, folder.stat().st_mtime
    for path in folder.rglob("*"):
        with contextlib.suppress(OSError):
            st = path.lstat()
            if path.is_file():
                size += st.st_size
            newest = max(newest, st.st_mtime)
    return size, newest


def _staleness(info: dict) -> str | None:
    """Why an entry can never be hit again, or None."""
    inputs = info.get("inputs") or {}
    now = {"format": CACHE_FORMAT_VERSION, "code": WINDOWS_CODE_VERSION, "mne": _mne_version()}
    what = {"format": "cache format", "code": "windows code", "mne": "MNE"}
    for name, current in now.items():
        if inputs.get(name) != current:
            return f"made with {what[name]} {inputs.get(name)} (now {current})"
    root = info.get("source_root")
    if not root or not Path(root).is_dir():
        return None  # data moved or unmounted: the entry may serve it elsewhere, keep it
    rows = [r for r in inputs.get("files") or () if len(r) >= 4 and isinstance(r[2], int)]
    changed = 0
    for row in rows:
        try:
            st = (Path(root) / row[1]).stat()
        except OSError:
            changed += 1
            continue
        changed += (st.st_size, st.st_mtime_ns) != (row[2], row[3])
    if changed:
        return f"{changed} of its {len(rows)} recordings under {root} changed or are gone"
    return None


def _temporary_state(folder: Path, newest: float) -> tuple[str, str]:
    """``("in use" | "leftover", why)`` of a ``.tmp-*`` folder (see ``_build_lock``)."""
    try:
        fd = os.open(folder / _LOCK_NAME, os.O_RDWR)
    except OSError:
        fd = None
    if fd is not None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: the age rule below
            os.close(fd)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return "in use", "a running process is building it"
            else:
                return "leftover", "left by a run that was killed or crashed"
            finally:
                os.close(fd)
    age = time.time() - newest
    if age > LEFTOVER_AGE_S:
        return "leftover", f"nothing changed in it for {age / 3600:.1f} h"
    return "in use", (f"changed {age / 60:.0f} min ago, may be a run building it (counts as a "
                      f"leftover after {LEFTOVER_AGE_S / 3600:g} h)")


def inspect_entry(folder, *, deep: bool = False) -> CacheItem:
    """The ``CacheItem`` of one entry folder (state ok, damaged or stale)."""
    folder = Path(folder)
    size, newest = _folder_stats(folder)
    item = CacheItem(folder, "entry", "ok", size, newest)
    try:
        info = json.loads((folder / "info.json").read_text())
        item.challenge, item.n_windows = int(info["challenge"]), int(info["n_windows"])
    except (OSError, ValueError, KeyError, TypeError):
        info = None
    item.problems = verify_entry(folder, deep=deep)
    if item.problems:
        item.state = "damaged"
        item.detail = "; ".join(item.problems)
        return item
    if not (folder / MANIFEST_NAME).is_file():
        item.detail = "no checksums (written by an older eegattn)"
    stale = _staleness(info or {})
    if stale:
        item.state, item.detail = "stale", stale
    return item


def scan_cache(cache_dir=None, *, deep: bool = False) -> list[CacheItem]:
    """Every entry and temporary folder in ``cache_dir`` (default: the project's window cache),
    entries first, oldest first. Other files and folders there are not the cache's and are
    never listed or touched. ``deep=True`` also checks the windows' checksums (reads all)."""
    cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    items = []
    for path in sorted(cache_dir.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        if _ENTRY_RE.match(path.name):
            items.append(inspect_entry(path, deep=deep))
        elif _TMP_RE.match(path.name):
            size, newest = _folder_stats(path)
            state, why = _temporary_state(path, newest)
            items.append(CacheItem(path, "temporary", state, size, newest, detail=why))
    items.sort(key=lambda item: (item.kind != "entry", item.modified))
    return items


def remove_cache_items(items) -> list[CacheItem]:
    """Delete these cache folders; returns those removed. A temporary folder is checked again
    right before (a run may have started building in it since the scan) and kept if in use."""
    removed = []
    for item in items:
        path = Path(item.path)
        if not (_ENTRY_RE.match(path.name) or _TMP_RE.match(path.name)):
            raise ValueError(f"{path} is not a window-cache folder; refusing to delete it")
        if not path.exists():
            continue
        if item.kind == "temporary" and _temporary_state(path, _folder_stats(path)[1])[0] \
                == "in use":
            continue
        shutil.rmtree(path)
        removed.append(item)
    return removed


__all__ = [
    "load_challenge_windows", "cache_key", "input_fingerprint", "read_entry", "NpyAppender",
    "default_window_cache_dir", "clear_temporary", "CACHE_FORMAT_VERSION", "describe_windows",
    "write_summary", "verify_entry", "write_manifest", "read_manifest", "DamagedEntryError",
    "CacheWarning", "CacheItem", "scan_cache", "inspect_entry", "remove_cache_items",
]  # fmt: skip
