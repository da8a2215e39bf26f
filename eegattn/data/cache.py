"""Content-addressed window cache and the public entry point ``load_challenge_windows``.

Layout (format ``eegattn-window-cache-2``): each preprocessed recording is stored once, and
windows are an index table over the stored recordings, cut on the fly when read.

``<cache_dir>/r-<32 hex>/``, a **recording entry**: one preprocessed recording,

- ``data.npy``: (n_chans, n_samples), float32 (default) or float16 (``cache_dtype``; stored
  as ``signal / scale`` with ``scale`` a power of two, so the peak sits near 2**15 and the
  upcast + rescale on read is exact; the rounding error is measured in docs/cache.md);
- ``info.json``: the key's inputs, ``sfreq``, ``n_samples``, ``scale``, the runs of samples
  holding NaN or Inf (so windows over them are dropped without reading the data again);
- ``manifest.json`` (written last): byte sizes, array headers, the SHA-256 of ``info.json``
  and of the data bytes.

Its key hashes the recording's fingerprint (path relative to the data root, size, mtime in
nanoseconds, the content's SHA-256 with ``hash_content=True``), the ``PreprocessConfig``, the
stored dtype, this module's format and the MNE version: not the windows. Two window
specifications over the same recordings and preprocessing (challenge 1 exact and with
context, challenge 2 with another stride, challenge 1 and 2 over the CCD runs) share them.

``<cache_dir>/c<challenge>-<32 hex>/``, a **window entry**:

- ``index.npy``: (n_windows, 2) int64, recording slot and first sample of every window;
- ``y.npy``: targets (n_windows,) float32; ``metadata.csv``: one row per window;
- ``info.json``: the key's inputs, counts of what was dropped, the skipped files, the
  recording entries it reads (``recordings``, in slot order) and the window length;
- ``manifest.json`` (written last): sizes, headers and SHA-256 of every file, and the data
  checksum of each recording it reads.

Its key is a SHA-256 over (1) every input file: the recordings' fingerprints and the full
content of the small text files the windows depend on (``events.tsv`` for challenge 1,
``participants.tsv`` for challenge 2); (2) every parameter that changes the output
(``WindowSpec``, ``PreprocessConfig``, cache dtype, release / mini / task choices); (3) a code
version (this module's format, ``windows.WINDOWS_CODE_VERSION``, the MNE version). Size +
mtime rather than a content hash for the recordings because hashing the ~200 GB of all
releases would cost more than the MNE work the cache saves, while any rewrite of a file
(download, re-export, repair) changes its mtime; a rewrite that keeps both size and mtime
(``cp -p`` of different data) goes unseen, so ``hash_content=True`` hashes the recordings'
bytes too for the cautious. Relative paths keep the keys stable when a data folder is moved
or copied with its times (``rsync -t``).

``read_entry`` returns a ``WindowSet`` whose ``X`` is an ``IndexedWindows``
(``eegattn.data.indexed``): shape (n, n_chans, n_times), float32 reads gathered from the
recordings' memory maps, lazy subsets.

Every read checks the manifests of the window entry and of each recording it reads (sizes,
array headers, the small files' checksums; the recordings' data checksum only with
``verify_entry(deep=True)`` / ``eegattn cache --verify``, as hashing gigabytes would cost more
than the read). A damaged entry (a truncated ``data.npy``, an edited ``info.json``, a zeroed
``y.npy``, a recording removed) raises ``DamagedEntryError`` naming the folder, the problem and
the fix from ``read_entry``; ``load_challenge_windows`` warns and rebuilds what is damaged.

Writes are atomic: every entry is built in ``<cache_dir>/.tmp-<key>-<random>/`` (files
fsynced) and renamed into place only once complete, manifest last; a failure removes the
temporary folder, and a killed run leaves only ``.tmp-*`` folders, which are never read.
Recording entries are published one by one while a window entry is built: each is complete
and valid on its own, so a build that fails half-way keeps them for the next run and
publishes no window entry. The building process holds an ``flock`` on ``.building`` inside
the temporary folder (released by the kernel however the process ends), so ``scan_cache``
tells a killed run's leftover from a build in progress. Source files are only read.

Maintenance (``eegattn cache``): ``scan_cache`` lists window entries, recording entries and
leftovers with their size and state (ok, damaged, stale: made by another format / windows code
/ MNE version or from recordings that changed since, leftover, in use); ``remove_cache_paths``
deletes what the user asked for, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import shutil
import time
import uuid
import warnings
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path

import numpy as np
import pandas as pd

from eegattn.data import hbn
from eegattn.data.indexed import IndexedWindows
from eegattn.data.preprocess import PreprocessConfig, check_filter_settings, map_recordings
from eegattn.data.windows import (
    WINDOWS_CODE_VERSION,
    RecordingWindows,
    WindowSet,
    WindowSpec,
    finalize_metadata,
    metadata_dtypes,
    recording_table,
    recording_windows,
)
from eegattn.utils.check import check_option
from eegattn.utils.io import write_json_atomic

CACHE_FORMAT_VERSION = "eegattn-window-cache-2"  # 1: every window materialised in X.npy
MANIFEST_FORMAT = "eegattn-window-cache-manifest-2"
MANIFEST_NAME = "manifest.json"
CACHE_DTYPES = ("float32", "float16")
ENTRY_FILES = ("index.npy", "y.npy", "metadata.csv", "info.json")
RECORDING_FILES = ("data.npy", "info.json")
_LOCK_NAME = ".building"
_ENTRY_RE = re.compile(r"^c[12]-[0-9a-f]{32}$")
_RECORDING_RE = re.compile(r"^r-[0-9a-f]{32}$")
_TMP_RE = re.compile(r"^\.tmp-(c[12]|r)-[0-9a-f]{32}-")
#: float16 recordings are scaled so that their peak lies in [2**14, 2**15): far from the
#: float16 maximum (65504), with 2**29 of range above the subnormals
_F16_PEAK_EXPONENT = 15
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


def recording_fingerprint(rec, *, hash_content: bool = False) -> list:
    """``[release, path relative to the data root, size, mtime_ns (, sha256)]`` of a
    recording file (see the module doc)."""
    st = rec.path.stat()
    row = [rec.release, rec.path.relative_to(rec.release_dir.parent).as_posix(), st.st_size,
           st.st_mtime_ns]
    if hash_content:
        row.append(_sha256_file(rec.path))
    return row


def input_fingerprint(recordings, spec: WindowSpec, *, hash_content: bool = False,
                      rows: dict | None = None) -> list[list]:
    """JSON-able description of every input file the windows depend on (see module doc);
    ``rows``: recording fingerprints already computed, by recording."""
    out: list[list] = []
    release_dirs = {}
    for rec in recordings:
        row = list(rows[rec]) if rows and rec in rows else \
            recording_fingerprint(rec, hash_content=hash_content)
        if spec.challenge == 1:
            events = rec.events_path
            row.append(_sha256_file(events) if events.is_file() else None)
        out.append(row)
        release_dirs[rec.release] = rec.release_dir
    if spec.challenge == 2:
        for release, folder in sorted(release_dirs.items()):
            participants = folder / "participants.tsv"
            out.append([release, "participants.tsv",
                        _sha256_file(participants) if participants.is_file() else None])
    return out


def _hash_key(prefix: str, inputs: dict) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str).encode()
    return f"{prefix}-{hashlib.sha256(blob).hexdigest()[:32]}"


def cache_key(recordings, spec: WindowSpec, config: PreprocessConfig, *,
              query: dict | None = None, hash_content: bool = False,
              cache_dtype: str = "float32", rows: dict | None = None) -> tuple[str, dict]:
    """The key of the window entry for these inputs and parameters, and what went into it."""
    inputs = {
        "format": CACHE_FORMAT_VERSION,
        "code": WINDOWS_CODE_VERSION,
        "mne": _mne_version(),
        "spec": spec.as_dict(),
        "preprocess": config.as_dict(),
        "dtype": cache_dtype,
        "query": query or {},
        "hash_content": hash_content,
        "files": input_fingerprint(recordings, spec, hash_content=hash_content, rows=rows),
    }
    return _hash_key(f"c{spec.challenge}", inputs), inputs


def recording_key(fingerprint: list, config: PreprocessConfig, *,
                  cache_dtype: str = "float32") -> tuple[str, dict]:
    """The key of a recording entry (``recording_fingerprint`` row, preprocessing, dtype) and
    what went into it. Window parameters are not part of it: every window entry over this
    recording and preprocessing reads the same stored array."""
    inputs = {
        "format": CACHE_FORMAT_VERSION,
        "mne": _mne_version(),
        "preprocess": config.as_dict(),
        "dtype": cache_dtype,
        "hash_content": len(fingerprint) > 4,
        "files": [list(fingerprint)],
    }
    return _hash_key("r", inputs), inputs


# ---------------------------------------------------------------------------------------------
# Files, manifests, checks
# ---------------------------------------------------------------------------------------------
def _save_npy(path: Path, array: np.ndarray) -> str:
    """Write ``array`` as ``.npy`` and fsync it; returns the SHA-256 of its data bytes."""
    array = np.ascontiguousarray(array)
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, array, allow_pickle=False)
        fh.flush()
        os.fsync(fh.fileno())
    return hashlib.sha256(array.data).hexdigest()


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


def _kind_files(folder: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(files, files checksummed on every read) of an entry folder, by its name."""
    if _RECORDING_RE.match(folder.name):
        return RECORDING_FILES, ("info.json",)
    return ENTRY_FILES, ENTRY_FILES


def write_manifest(folder, *, key: str | None = None, data_sha256: str | None = None,
                   recordings: dict | None = None) -> Path:
    """Describe the entry's files in ``<folder>/manifest.json`` (see the module doc); ``key``:
    the entry's name (default: the folder's); ``data_sha256``: of a recording's data bytes
    (computed when None); ``recordings``: {recording key: its data SHA-256} of a window
    entry."""
    folder = Path(folder)
    key = key or folder.name
    names, checksummed = _kind_files(Path(key))
    files = {}
    for name in names:
        path = folder / name
        record = {"bytes": path.stat().st_size}
        if name.endswith(".npy"):
            shape, dtype, offset = _npy_header(path)
            record.update(shape=list(shape), dtype=dtype, data_offset=offset)
        if name in checksummed:
            record["sha256"] = _sha256_file(path)
        files[name] = record
    if "data.npy" in files:
        files["data.npy"]["data_sha256"] = data_sha256 or _sha256_file(
            folder / "data.npy", offset=files["data.npy"]["data_offset"])
    manifest = {"format": MANIFEST_FORMAT, "key": key, "files": files}
    if recordings is not None:
        manifest["recordings"] = dict(recordings)
    return write_json_atomic(folder / MANIFEST_NAME, manifest, indent=1)


def read_manifest(folder) -> dict:
    """The entry's manifest; DamagedEntryError when it is missing or unreadable."""
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise DamagedEntryError(folder, [f"{MANIFEST_NAME} is missing"])
    try:
        manifest = json.loads(path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT or not isinstance(manifest["files"], dict):
            raise ValueError
    except (ValueError, KeyError, AttributeError, TypeError, UnicodeDecodeError):
        raise DamagedEntryError(folder, [f"{MANIFEST_NAME} is not a valid manifest"]) from None
    return manifest


def _verify_files(folder: Path, deep: bool) -> tuple[list[str], dict | None]:
    """Problems of one entry's own files against its manifest, and the manifest."""
    if not folder.is_dir():
        return ["is missing (removed?)"], None
    try:
        manifest = read_manifest(folder)
    except DamagedEntryError as err:
        return err.problems, None
    names, checksummed = _kind_files(folder)
    problems = [f"{name} is missing" for name in names if not (folder / name).is_file()]
    if problems:
        return problems, None
    if manifest.get("key") != folder.name:
        return [f"{MANIFEST_NAME} describes entry {manifest.get('key')}, not {folder.name} (a "
                "renamed or copied folder)"], None
    records = manifest["files"]
    for name in names:
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
        if name in checksummed and _sha256_file(path) != record.get("sha256"):
            problems.append(f"{name} does not match its checksum (zeroed, edited or "
                            "overwritten)")
    if not problems and deep and "data.npy" in records:
        data = records["data.npy"]
        if _sha256_file(folder / "data.npy", offset=data["data_offset"]) \
                != data.get("data_sha256"):
            problems.append("data.npy does not match its checksum (the recording was changed)")
    if not problems:
        try:
            info = json.loads((folder / "info.json").read_text())
            if _RECORDING_RE.match(folder.name):
                float(info["sfreq"]), float(info["scale"])
            else:
                int(info["n_windows"]), int(info["challenge"]), float(info["sfreq"])
                list(info["recordings"]), int(info["window_n_times"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            problems.append("info.json is not valid (not JSON or lacks its fields)")
    return problems, manifest


def _recording_problems(entry: Path, manifest: dict, deep: bool, memo: dict | None) -> dict:
    """{recording folder: problems} of the recordings a window entry reads (empty: none)."""
    out = {}
    for key, data_sha in (manifest.get("recordings") or {}).items():
        folder = entry.parent / key
        if memo is not None and (folder, deep) in memo:
            problems = memo[(folder, deep)]
        else:
            problems, rec_manifest = _verify_files(folder, deep)
            if not problems and rec_manifest["files"]["data.npy"].get("data_sha256") \
                    != data_sha:
                problems = ["holds other data than the window entry was built on"]
            if memo is not None:
                memo[(folder, deep)] = problems
        if problems:
            out[folder] = problems
    return out


def verify_entry(folder, *, deep: bool = False, _memo: dict | None = None) -> list[str]:
    """What is wrong with the entry in ``folder`` (empty list: nothing found).

    Checks every file against the manifest: present, byte size, the arrays' shape and dtype,
    the SHA-256 of the small files; with ``deep=True`` also the SHA-256 of the recordings'
    data (reads all of it). A window entry also checks every recording entry it reads
    (problems prefixed with the recording's key).
    """
    folder = Path(folder)
    problems, manifest = _verify_files(folder, deep)
    if problems or _RECORDING_RE.match(folder.name):
        return problems
    for rec, rec_problems in _recording_problems(folder, manifest, deep, _memo).items():
        problems += [f"recording {rec.name} {p}" if p.startswith("is ") else
                     f"recording {rec.name}: {p}" for p in rec_problems]
    return problems


# ---------------------------------------------------------------------------------------------
# Recording entries
# ---------------------------------------------------------------------------------------------
def _non_finite_runs(signal: np.ndarray) -> list[list[int]]:
    """``[[start, stop), ...]`` runs of samples where any channel holds NaN or Inf."""
    bad = ~np.isfinite(signal).all(axis=0)
    if not bad.any():
        return []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], bad.astype(np.int8), [0]])))
    return edges.reshape(-1, 2).tolist()


def float16_scale(signal: np.ndarray) -> float:
    """The power of two a float16 recording is divided by (its peak lands in [2**14,
    2**15)); 1.0 for a silent or non-finite recording."""
    finite = signal[np.isfinite(signal)]
    peak = float(np.abs(finite).max()) if finite.size else 0.0
    if peak == 0.0:
        return 1.0
    return 2.0 ** (math.floor(math.log2(peak)) + 1 - _F16_PEAK_EXPONENT)


def _stored_array(signal: np.ndarray, cache_dtype: str) -> tuple[np.ndarray, float]:
    if cache_dtype == "float16":
        scale = float16_scale(signal)
        return (signal / np.float32(scale)).astype(np.float16), scale
    return np.asarray(signal, dtype=np.float32), 1.0


def write_recording_entry(cache_dir: Path, key: str, signal: np.ndarray, sfreq: float,
                          cache_dtype: str, info: dict) -> dict:
    """Store one preprocessed recording (n_chans, n_samples) atomically as entry ``key``;
    returns its ``info.json`` content."""
    stored, scale = _stored_array(signal, cache_dtype)
    info = dict(info, sfreq=float(sfreq), n_chans=int(signal.shape[0]),
                n_samples=int(signal.shape[1]), dtype=cache_dtype, scale=scale,
                non_finite_runs=_non_finite_runs(signal))
    final = cache_dir / key
    tmp = cache_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with _build_lock(tmp):
            data_sha = _save_npy(tmp / "data.npy", stored)
            write_json_atomic(tmp / "info.json", info, indent=1, default=str)
            write_manifest(tmp, key=key, data_sha256=data_sha)
        _publish_entry(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return info


def _stored_recording(folder: Path, warn: bool = True) -> dict | None:
    """The ``info.json`` of a sound recording entry, None when there is none; a damaged one
    is reported (CacheWarning) and left to be rebuilt."""
    if not folder.is_dir():
        return None
    problems, _ = _verify_files(folder, deep=False)
    if problems:
        if warn:
            warnings.warn(f"{folder} is damaged ({'; '.join(problems)}); rebuilding it",
                          CacheWarning, stacklevel=4)
        return None
    return json.loads((folder / "info.json").read_text())


def _recording_window(folder_or_signal, info: dict, start: int, size: int) -> np.ndarray:
    """One window (n_chans, size) float32 of a signal or a stored recording."""
    if isinstance(folder_or_signal, np.ndarray):
        return np.asarray(folder_or_signal[:, start : start + size], dtype=np.float32)
    data = np.load(Path(folder_or_signal) / "data.npy", mmap_mode="r")
    return data[:, start : start + size].astype(np.float32) * np.float32(info["scale"])


# ---------------------------------------------------------------------------------------------
# Window entries
# ---------------------------------------------------------------------------------------------
def read_entry(folder) -> WindowSet:
    """Open a finished window entry: ``X`` is an ``IndexedWindows`` over the recording
    entries it reads (memory-mapped, read-only; float32 reads).

    Raises ``DamagedEntryError`` (a ValueError naming the folder, the problem and the fix)
    when the files of the entry or of a recording it reads do not match their manifests
    (see ``verify_entry``); ``err.path`` is the damaged folder.
    """
    folder = Path(folder)
    problems, manifest = _verify_files(folder, deep=False)
    if problems:
        raise DamagedEntryError(folder, problems)
    for rec, rec_problems in _recording_problems(folder, manifest, False, None).items():
        raise DamagedEntryError(rec, rec_problems)
    info = json.loads((folder / "info.json").read_text())
    n = int(info["n_windows"])
    index = np.load(folder / "index.npy")
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
    keys = list(info["recordings"])
    recs = [json.loads((folder.parent / k / "info.json").read_text()) for k in keys]
    size = int(info["window_n_times"])
    lengths = np.array([int(r["n_samples"]) for r in recs] or [0], dtype=np.int64)
    if index.shape != (n, 2) or y.shape != (n,) or len(meta) != n or (n and (
            index[:, 0].max() >= len(keys) or index[:, 1].min() < 0
            or (index[:, 1] + size > lengths[index[:, 0]]).any())):
        raise DamagedEntryError(folder, [
            f"its files are inconsistent (index {index.shape}, y {y.shape}, {len(meta)} "
            f"metadata rows, info.json says {n} windows of {size} samples over {len(keys)} "
            "recordings)"])
    X = IndexedWindows([folder.parent / k / "data.npy" for k in keys], index, size,
                       scales=[r["scale"] for r in recs], n_chans=int(info["n_chans"]))
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


def _non_finite_message(meta, finite, target_ok, window, channels, strict: bool):
    """The warning (or, with ``strict``, the error) naming the first window that holds NaN
    or Inf; ``window(i)`` returns window i's samples (only called for the first bad one)."""
    good = finite & target_ok
    first = int(np.flatnonzero(~good)[0])
    row = meta.iloc[first]
    where = f"window {first} of {row['recording']} (samples {row['i_start']}..{row['i_stop']}"
    if not finite[first]:
        bad = ~np.isfinite(window(first))
        channel, sample = (int(i[0]) for i in np.nonzero(bad))
        where += f", channel {channels[channel]}, sample {int(row['i_start']) + sample})"
        what = "NaN or Inf samples"
    else:
        where += ")"
        what = f"a NaN or Inf target ({row['target']})"
    n_bad = int((~good).sum())
    message = (f"{n_bad} of {len(meta)} window(s) hold NaN or Inf; the first is {where}, with "
               f"{what}")
    if strict:
        raise ValueError(f"{message}; repair or leave out that recording (strict=True; pass "
                         "strict=False to drop those windows)")
    warnings.warn(f"{message}; those windows were dropped", hbn.SkippedRecordingsWarning,
                  stacklevel=5)
    return message


def _target_ok(meta) -> np.ndarray:
    return np.isfinite(meta["target"].to_numpy(dtype=float)) if len(meta) else np.ones(0, bool)


def _drop_non_finite(result: RecordingWindows, channels, strict: bool):
    """Drop the windows of one recording that hold NaN or Inf (samples or target), with a
    warning that names the first bad window; ``strict`` raises instead. Returns the result
    and the message (None when all windows are finite)."""
    X, meta = result.X, result.metadata
    finite = np.isfinite(X).all(axis=(1, 2)) if len(X) else np.ones(0, bool)
    target_ok = _target_ok(meta) if len(meta) else finite
    good = finite & target_ok
    if good.all():
        return result, None
    message = _non_finite_message(meta, finite, target_ok, lambda i: X[i], channels, strict)
    dropped = dict(result.dropped)
    dropped["windows_with_nan_or_inf"] = dropped.get("windows_with_nan_or_inf", 0) \
        + int((~good).sum())
    return RecordingWindows(X[good], meta[good].reset_index(drop=True), dropped), message


def _finite_windows(starts: np.ndarray, size: int, runs) -> np.ndarray:
    """Which windows ``[start, start + size)`` miss every non-finite run ``[a, b)``."""
    if not runs:
        return np.ones(len(starts), bool)
    runs = np.asarray(runs, dtype=np.int64)
    last = np.searchsorted(runs[:, 0], starts + size, side="left") - 1  # last run before end
    hit = (last >= 0) & (runs[np.maximum(last, 0), 1] > starts)
    return ~hit


def _build_cached(cache_dir: Path, key: str, usable, spec, config, base_info, skipped,
                  strict, cache_dtype, rows, map_options, reported=()) -> Path:
    """Build the window entry ``key`` (and the recording entries it lacks) in a temporary
    folder and publish it; returns its final path. ``reported``: damaged folders already
    warned about."""
    size = int(spec.window_s * config.sfreq)
    jobs, folders, rec_infos = [], [], []
    for rec, target_value in usable:
        rkey, rinputs = recording_key(rows[rec], config, cache_dtype=cache_dtype)
        folder = cache_dir / rkey
        stored = _stored_recording(folder, warn=folder not in reported)
        jobs.append((rec, spec, config, target_value,
                     None if stored is None else (stored["n_samples"], stored["sfreq"])))
        folders.append(folder)
        rec_infos.append(stored or {"recording": rec.name, "inputs": rinputs,
                                    "source_root": _source_root([rec])})
    todo = [job for job in jobs if job[4] is None]
    computed = map_recordings(recording_table, todo, **map_options) if todo else iter(())

    tmp = cache_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        with _build_lock(tmp):
            keys, data_shas, index, frames = [], {}, [], []
            worker_skipped, dropped, non_finite = [], {}, []
            for job, folder, rec_info in zip(jobs, folders, rec_infos, strict=True):
                result = next(computed) if job[4] is None else recording_table(job)
                if result.skipped is not None:
                    worker_skipped.append(result.skipped)
                    continue
                source = folder
                if result.signal is not None:
                    rec_info = write_recording_entry(cache_dir, folder.name, result.signal,
                                                     result.sfreq, cache_dtype, rec_info)
                    source, result.signal = result.signal, None
                meta = result.metadata
                starts = meta["i_start"].to_numpy(np.int64) if len(meta) else \
                    np.zeros(0, np.int64)
                finite = _finite_windows(starts, size, rec_info["non_finite_runs"])
                target_ok = _target_ok(meta) if len(meta) else finite
                counts = dict(result.dropped)
                if not (finite & target_ok).all():
                    non_finite.append(_non_finite_message(
                        meta, finite, target_ok,
                        lambda i, s=source, r=rec_info, m=starts: _recording_window(
                            s, r, int(m[i]), size),
                        config.channels, strict))
                    keep = finite & target_ok
                    counts["windows_with_nan_or_inf"] = int((~keep).sum())
                    meta, starts = meta[keep].reset_index(drop=True), starts[keep]
                for name, count in counts.items():
                    dropped[name] = dropped.get(name, 0) + count
                if not len(meta):
                    continue
                manifest = json.loads((folder / MANIFEST_NAME).read_text())
                data_shas[folder.name] = manifest["files"]["data.npy"]["data_sha256"]
                index.append(np.column_stack([np.full(len(starts), len(keys)), starts]))
                keys.append(folder.name)
                frames.append(meta)
            hbn.report_skipped(worker_skipped, strict=strict)
            meta = finalize_metadata(frames, spec.challenge)
            n = len(meta)
            info = _finish_info(base_info, {"n_windows": n, "dropped": dropped,
                                            "non_finite": non_finite},
                                list(skipped) + worker_skipped, len(usable))
            if n == 0:
                raise ValueError(_no_windows_message(info))
            info.update(recordings=keys, window_n_times=size, n_chans=len(config.channels),
                        cache_dtype=cache_dtype)
            _save_npy(tmp / "index.npy", np.concatenate(index).astype(np.int64))
            _save_npy(tmp / "y.npy", meta["target"].to_numpy(np.float32))
            meta.to_csv(tmp / "metadata.csv", index=False)
            write_json_atomic(tmp / "info.json", info, indent=1, default=str)
            write_manifest(tmp, key=key, recordings=data_shas)
        final = cache_dir / key
        _publish_entry(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


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
    cache_dtype: str = "float32",
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
        builds in memory (windows materialised in an ndarray) and writes nothing.
    cache_dtype: ``"float32"`` or ``"float16"`` (half the disk and page cache; relative
        rounding error at most 2**-11, measured in docs/cache.md); reads are float32.
    hash_content: hash recording bytes for the keys.
    n_jobs / backend / scheduler / progress: parallel reading (``preprocess.map_recordings``;
        ``backend="dask"`` with ``scheduler`` a Dask scheduler address runs on that cluster).
    strict: raise instead of skipping bad recordings (corrupt / truncated .bdf, not 129
        channels, unusable events.tsv, missing target, shorter than a window).
    sfreq / l_freq / h_freq / notch / reference: ``PreprocessConfig``.
    window_s / stride_s / shift_after_stimulus_s / target / trial_rule: ``WindowSpec``
        (starter-kit defaults: challenge 1 +0.5..+2.5 s after the stimulus and the
        challenge's trial rule, challenge 2 4 s every 2 s).

    Returns a ``WindowSet``; from the cache its ``X`` is an ``IndexedWindows`` (windows cut
    on the fly from the stored recordings; ``np.asarray(X[idx])`` reads float32).
    ``info`` holds the counts of dropped trials / recordings and the skipped files.
    """
    spec = WindowSpec(challenge, window_s=window_s, stride_s=stride_s,
                      shift_after_stimulus_s=shift_after_stimulus_s, target=target,
                      trial_rule=trial_rule)
    config = PreprocessConfig(sfreq=sfreq, l_freq=l_freq, h_freq=h_freq, notch=notch,
                              reference=reference)
    check_option("cache_dtype", cache_dtype, CACHE_DTYPES)
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
    rows = {rec: recording_fingerprint(rec, hash_content=hash_content) for rec in recordings}
    key, key_inputs = cache_key(recordings, spec, config, query=query,
                                hash_content=hash_content, cache_dtype=cache_dtype, rows=rows)

    reported = set()
    if use_cache:
        cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
        final = cache_dir / key
        if final.exists():
            try:
                windows = read_entry(final)
            except DamagedEntryError as err:
                reported.add(err.path)
                warnings.warn(f"{err.path} is damaged ({'; '.join(err.problems)}); rebuilding "
                              "it", CacheWarning, stacklevel=2)
            else:
                _rewarn(windows.info, strict)
                return windows

    usable, skipped = _select_recordings(recordings, spec, config)
    hbn.report_skipped(skipped, strict=strict)
    map_options = dict(n_jobs=n_jobs, backend=backend, scheduler=scheduler, progress=progress,
                       desc=f"challenge {challenge} windows")
    base_info = {
        "challenge": challenge, "sfreq": config.sfreq, "key": key,
        "n_recordings_found": len(recordings), "n_recordings_used": None,
        "source_root": _source_root(recordings), "inputs": key_inputs,
    }  # fmt: skip

    if not use_cache:
        jobs = [(rec, spec, config, target_value) for rec, target_value in usable]
        results = map_recordings(recording_windows, jobs, **map_options)
        return _build_in_memory(results, spec, config, base_info, skipped, strict, len(usable))

    cache_dir.mkdir(parents=True, exist_ok=True)
    final = _build_cached(cache_dir, key, usable, spec, config, base_info, skipped, strict,
                          cache_dtype, rows, map_options, reported)
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
    """One folder of the window cache: a window entry, a recording entry or a temporary
    (``.tmp-*``) folder.

    state: ``ok`` (usable), ``in use`` (a temporary folder a run is building), ``damaged``
    (files do not match the manifest, or a recording a window entry reads is damaged or
    gone), ``stale`` (can never be used again: made by another cache format, windows code or
    MNE version, or its recordings changed or are gone), ``leftover`` (a temporary folder of
    a killed run). ``detail`` says why.
    """

    path: Path
    kind: str  # "entry" (windows), "recording" or "temporary"
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


def _staleness(info: dict, recording: bool = False) -> str | None:
    """Why an entry can never be hit again, or None."""
    inputs = info.get("inputs") or {}
    now = {"format": CACHE_FORMAT_VERSION, "code": WINDOWS_CODE_VERSION, "mne": _mne_version()}
    if recording:  # the windows code does not touch the stored recordings
        del now["code"]
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


def _old_format(info: dict | None) -> str | None:
    fmt = ((info or {}).get("inputs") or {}).get("format")
    if info is not None and fmt != CACHE_FORMAT_VERSION:
        return f"made with cache format {fmt} (now {CACHE_FORMAT_VERSION})"
    return None


def inspect_entry(folder, *, deep: bool = False, _memo: dict | None = None) -> CacheItem:
    """The ``CacheItem`` of one window or recording entry folder (state ok, damaged or
    stale)."""
    folder = Path(folder)
    recording = bool(_RECORDING_RE.match(folder.name))
    size, newest = _folder_stats(folder)
    item = CacheItem(folder, "recording" if recording else "entry", "ok", size, newest)
    try:
        info = json.loads((folder / "info.json").read_text())
        if not recording:
            item.challenge, item.n_windows = int(info["challenge"]), int(info["n_windows"])
    except (OSError, ValueError, KeyError, TypeError):
        info = None
    old = _old_format(info)  # an older layout: never read again, whatever its files hold
    if old:
        item.state, item.detail = "stale", old
        return item
    if recording:
        item.problems = _verify_files(folder, deep)[0]
    else:
        item.problems = verify_entry(folder, deep=deep, _memo=_memo)
    if item.problems:
        item.state = "damaged"
        item.detail = "; ".join(item.problems)
        return item
    stale = _staleness(info or {}, recording)
    if stale:
        item.state, item.detail = "stale", stale
    return item


def scan_cache(cache_dir=None, *, deep: bool = False) -> list[CacheItem]:
    """Every window entry, recording entry and temporary folder in ``cache_dir`` (default:
    the project's window cache): window entries first, then recordings, then temporary
    folders, oldest first. Other files and folders there are not the cache's and are never
    listed or touched. ``deep=True`` also checks the recordings' data checksums (reads all,
    each recording once)."""
    cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
    if not cache_dir.is_dir():
        return []
    items, memo = [], {}
    for path in sorted(cache_dir.iterdir()):
        if not path.is_dir() or path.is_symlink():
            continue
        if _ENTRY_RE.match(path.name) or _RECORDING_RE.match(path.name):
            items.append(inspect_entry(path, deep=deep, _memo=memo))
        elif _TMP_RE.match(path.name):
            size, newest = _folder_stats(path)
            state, why = _temporary_state(path, newest)
            items.append(CacheItem(path, "temporary", state, size, newest, detail=why))
    order = {"entry": 0, "recording": 1, "temporary": 2}
    items.sort(key=lambda item: (order[item.kind], item.modified))
    return items


def remove_cache_items(items) -> list[CacheItem]:
    """Delete these cache folders; returns those removed. A temporary folder is checked again
    right before (a run may have started building in it since the scan) and kept if in use."""
    removed = []
    for item in items:
        path = Path(item.path)
        if not (_ENTRY_RE.match(path.name) or _RECORDING_RE.match(path.name)
                or _TMP_RE.match(path.name)):
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
    "load_challenge_windows", "cache_key", "recording_key", "recording_fingerprint",
    "input_fingerprint", "read_entry", "write_recording_entry", "float16_scale", "CACHE_DTYPES",
    "default_window_cache_dir", "clear_temporary", "CACHE_FORMAT_VERSION", "describe_windows",
    "write_summary", "verify_entry", "write_manifest", "read_manifest", "DamagedEntryError",
    "CacheWarning", "CacheItem", "scan_cache", "inspect_entry", "remove_cache_items",
]  # fmt: skip
