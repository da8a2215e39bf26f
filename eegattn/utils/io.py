"""Atomic file writes: the one helper family every writer in eegattn goes through.

A file is written to a temporary name in its destination folder, flushed to disk (``fsync``)
and renamed over the target with ``os.replace``. A process killed at any instant leaves either
the old complete file or the new one, never a half-written file; on any exception the
temporary file is removed and the old file is left as it was.

Permissions: the temporary file is created with mode ``0o666`` and the kernel applies the
process umask, exactly as ``open(path, "w")`` would (umask 022 gives 0644). ``tempfile.mkstemp``
would create it 0600, and the rename would keep that. Creating it with the final mode avoids
reading the umask at all (``os.umask`` can only be read by setting it, which races with other
threads).

Functions:

- :func:`atomic_path` -- a context manager yielding a temporary path for writers that want a
  file name (``torch.save``, ``np.save``, ``zipfile.ZipFile``, ``fig.savefig``).
- :func:`write_bytes_atomic`, :func:`write_text_atomic`, :func:`write_json_atomic`.

None of them creates missing parent folders: callers that want that call ``mkdir`` first.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]

_TEMP_SUFFIX = ".tmp"


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create ``.<name>.<random>.tmp`` next to ``path`` (mode 0o666 less the umask)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}{_TEMP_SUFFIX}")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"could not create a temporary file next to {path}")


def _fsync_file(tmp: Path) -> None:
    fd = os.open(tmp, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``path``; with ``overwrite=False`` never replace an existing file."""
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)  # fails if ``path`` exists, even if it appeared meanwhile
    except FileExistsError:
        raise FileExistsError(f"{path} already exists") from None
    except OSError:  # a file system without hard links: check, then rename
        if path.exists():
            raise FileExistsError(f"{path} already exists") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it becomes ``path`` atomically.

    Args:
        path: the file to write. Its folder must exist.
        overwrite: replace an existing ``path``. With ``False`` an existing file is kept and
            ``FileExistsError`` is raised (checked atomically with a hard link where the file
            system has them).

    Yields:
        The temporary file (already created, empty) for the writer to fill by name.

    Example::

        with atomic_path(run_dir / "weights.pt") as tmp:
            torch.save(state, tmp)
    """
    path = Path(path)
    fd, tmp = _create_temp(path)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        _publish(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes_atomic(path: str | os.PathLike, data: bytes, *, overwrite: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`); returns ``path``."""
    path = Path(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        _publish(tmp, path, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return path


def write_text_atomic(path: str | os.PathLike, text: str, *, encoding: str = "utf-8",
                      overwrite: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes_atomic(path, text.encode(encoding), overwrite=overwrite)


def write_json_atomic(path: str | os.PathLike, obj, *, indent: int | None = 2,
                      sort_keys: bool = False, allow_nan: bool = False, default=None,
                      overwrite: bool = True) -> Path:
    """Write ``obj`` as JSON (one trailing newline) atomically; returns ``path``.

    NaN and Inf are refused by default (``allow_nan=False``): they are not JSON, and most
    readers outside Python reject them. Convert them to ``None`` first.
    """
    text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=allow_nan,
                      default=default)
    return write_text_atomic(path, text + "\n", overwrite=overwrite)
