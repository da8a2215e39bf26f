"""Content-addressed window cache and the public entry point ``load_challenge_windows``.

An entry is a folder ``<cache_dir>/<key>/`` holding

- ``X.npy``: all windows, (n_windows, n_chans, n_times) float32, read back with
  ``np.load(mmap_mode="r")`` so epochs read straight from disk and never redo MNE work;
- ``y.npy``: targets (n_windows,) float32;
- ``metadata.csv``: one row per window (dtypes restored on load);
- ``info.json``: the key's inputs, counts of what was dropped and the skipped files.

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
a ``.tmp-*`` folder, which is never read. Source files are only read, never written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import uuid
import warnings
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

CACHE_FORMAT_VERSION = "eegattn-window-cache-1"
_NPY_HEADER_BYTES = 1024  # fixed header so windows can be streamed to disk before n is known


def default_window_cache_dir() -> Path:
    """``<project cache>/windows`` (``EEGATTN_CACHE`` environment variable moves it)."""
    from eegattn.data.synthetic import default_cache_dir

    return Path(default_cache_dir()) / "windows"


# ---------------------------------------------------------------------------------------------
# Keys
# ---------------------------------------------------------------------------------------------
def _sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
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
            self._fh.write(memoryview(np.ascontiguousarray(block)).cast("B"))
        self.n_rows += block.shape[0]

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
def read_entry(folder) -> WindowSet:
    """Open a finished cache entry (windows memory-mapped, read-only)."""
    folder = Path(folder)
    info = json.loads((folder / "info.json").read_text())
    n = int(info["n_windows"])
    X = np.load(folder / "X.npy", mmap_mode="r") if n else np.load(folder / "X.npy")
    y = np.load(folder / "y.npy")
    dtypes = metadata_dtypes(int(info["challenge"]))
    meta = pd.read_csv(folder / "metadata.csv", dtype={c: d for c, d in dtypes.items()
                                                       if d in ("string",)})
    for column, dtype in dtypes.items():
        if column in meta.columns:
            meta[column] = meta[column].astype(dtype)
    if X.shape[0] != n or y.shape != (n,) or len(meta) != n:
        raise ValueError(
            f"cache entry {folder} is inconsistent (X {X.shape}, y {y.shape}, "
            f"{len(meta)} metadata rows, info says {n}); delete the folder to rebuild it"
        )
    info["path"] = str(folder)
    return WindowSet(X=X, y=y, metadata=meta, sfreq=float(info["sfreq"]),
                     challenge=int(info["challenge"]), cache_key=folder.name, info=info)


def write_summary(windows: WindowSet, path) -> Path:
    """Write ``windows.info`` (counts, skipped files, key inputs) as JSON, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    tmp.write_text(json.dumps({"n_windows": len(windows), **windows.info}, indent=1,
                              default=str))
    os.replace(tmp, path)
    return path


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


def _write_entry_files(tmp: Path, results, spec, config) -> dict:
    """Stream per-recording windows into ``tmp``; returns the counts for ``info.json``."""
    size = int(spec.window_s * config.sfreq)
    writer = NpyAppender(tmp / "X.npy", (len(config.channels), size))
    frames, skipped, dropped = [], [], {}
    try:
        for result in results:
            if result.skipped is not None:
                skipped.append(result.skipped)
                continue
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
    return {"n_windows": int(writer.n_rows), "dropped": dropped, "worker_skipped": skipped}


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
) -> WindowSet:
    """Challenge windows of local HBN releases, built once and then read from the cache.

    challenge: 1 (response time, CCD trials) or 2 (``externalizing``, fixed windows).
    releases / root / mini / tasks / subjects / keep_excluded / source / download: which
        recordings (``hbn.discover_recordings``; challenge 1 uses contrastChangeDetection
        only, challenge 2 defaults to it). ``root`` holds the ``EEG2025r<N>[mini]`` folders.
    cache_dir: where entries live (default ``<project cache>/windows``); use_cache=False
        builds in memory and writes nothing. hash_content: hash recording bytes for the key.
    n_jobs / backend / progress: parallel reading (see ``preprocess`` for Dask / Ray).
    strict: raise instead of skipping bad recordings (corrupt / truncated .bdf, not 129
        channels, unusable events.tsv, missing target, shorter than a window).
    sfreq / l_freq / h_freq / notch / reference: ``PreprocessConfig``.
    window_s / stride_s / shift_after_stimulus_s / target: ``WindowSpec`` (starter-kit
        defaults: challenge 1 +0.5..+2.5 s after the stimulus, challenge 2 4 s every 2 s).

    Returns a ``WindowSet``; ``X`` is a read-only memmap when it comes from the cache.
    ``info`` holds the counts of dropped trials / recordings and the skipped files.
    """
    spec = WindowSpec(challenge, window_s=window_s, stride_s=stride_s,
                      shift_after_stimulus_s=shift_after_stimulus_s, target=target)
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
        if (final / "info.json").is_file():
            windows = read_entry(final)
            _rewarn(windows.info, strict)
            return windows

    usable, skipped = _select_recordings(recordings, spec, config)
    hbn.report_skipped(skipped, strict=strict)
    jobs = [(rec, spec, config, target_value) for rec, target_value in usable]
    results = map_recordings(recording_windows, jobs, n_jobs=n_jobs, backend=backend,
                             progress=progress, desc=f"challenge {challenge} windows")
    base_info = {
        "challenge": challenge, "sfreq": config.sfreq, "key": key,
        "n_recordings_found": len(recordings), "n_recordings_used": None,
        "inputs": key_inputs,
    }  # fmt: skip

    if not use_cache:
        return _build_in_memory(results, spec, config, base_info, skipped, strict, len(usable))

    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache_dir / f".tmp-{key}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        counts = _write_entry_files(tmp, results, spec, config)
        worker_skipped = counts.pop("worker_skipped")
        hbn.report_skipped(worker_skipped, strict=strict)
        all_skipped = list(skipped) + list(worker_skipped)
        info = _finish_info(base_info, counts, all_skipped, len(usable))
        if info["n_windows"] == 0:
            raise ValueError(_no_windows_message(info))
        (tmp / "info.json").write_text(json.dumps(info, indent=1, default=str))
        try:
            os.replace(tmp, final)
        except OSError:
            if not (final / "info.json").is_file():  # not a concurrent twin: a real error
                raise
            shutil.rmtree(tmp, ignore_errors=True)  # another run finished the same entry
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return read_entry(final)


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
    return hbn._check_tasks(hbn._as_list(tasks))


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
    blocks, frames, worker_skipped, dropped = [], [], [], {}
    for result in results:
        result: RecordingWindows
        if result.skipped is not None:
            worker_skipped.append(result.skipped)
            continue
        blocks.append(result.X)
        frames.append(result.metadata)
        for name, count in result.dropped.items():
            dropped[name] = dropped.get(name, 0) + count
    hbn.report_skipped(worker_skipped, strict=strict)
    size = int(spec.window_s * config.sfreq)
    X = np.concatenate(blocks) if blocks else np.zeros((0, len(config.channels), size),
                                                       np.float32)
    meta = finalize_metadata(frames, spec.challenge)
    info = _finish_info(base_info, {"n_windows": len(X), "dropped": dropped},
                        list(skipped) + worker_skipped, n_usable)
    if len(X) == 0:
        raise ValueError(_no_windows_message(info))
    return WindowSet(X=X, y=meta["target"].to_numpy(np.float32), metadata=meta,
                     sfreq=config.sfreq, challenge=spec.challenge, cache_key=None, info=info)


def _rewarn(info: dict, strict: bool) -> None:
    """Repeat, for a cache hit, the warnings the build gave about skipped recordings."""
    skipped = info.get("skipped") or {}
    if not skipped:
        return
    lines = [f"skipped {len(v)} recording(s) ({cause}): " + "; ".join(v[:20])
             for cause, v in skipped.items()]
    if strict:
        raise ValueError(" | ".join(lines) + " (strict=True; pass strict=False to skip them)")
    for line in lines:
        warnings.warn(line + " (from the cache)", hbn.SkippedRecordingsWarning, stacklevel=3)


def clear_temporary(cache_dir=None) -> int:
    """Remove ``.tmp-*`` folders left by killed runs; returns how many were removed. Only
    call it when no other run is writing to ``cache_dir``."""
    cache_dir = default_window_cache_dir() if cache_dir is None else Path(cache_dir)
    removed = 0
    for path in cache_dir.glob(".tmp-*"):
        shutil.rmtree(path, ignore_errors=True)
        removed += 1
    return removed


__all__ = [
    "load_challenge_windows", "cache_key", "input_fingerprint", "read_entry", "NpyAppender",
    "default_window_cache_dir", "clear_temporary", "CACHE_FORMAT_VERSION", "describe_windows",
    "write_summary",
]  # fmt: skip
