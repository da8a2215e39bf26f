"""``IndexedWindows``: windows cut on the fly from continuous recordings.

The window cache stores each preprocessed recording once, as one (n_chans, n_samples) array,
and describes windows as an index table ``(recording slot, start sample)`` over those arrays.
``IndexedWindows`` turns that table back into an array-like of shape (n_windows, n_chans,
n_times): ``X[i]``, ``X[a:b]``, ``X[int_array]``, ``X[bool_mask]``, ``X[i, :, s:e]`` and
``np.asarray(X)`` gather float32 ndarrays; ``X.select(rows)`` is another ``IndexedWindows``
(an index table, no copy), which ``WindowSet.subset`` uses.

Sources are ``.npy`` paths (opened with ``np.load(mmap_mode="r")`` on first use, so an object
pickles as a few paths and reopens its maps in DataLoader workers or other processes) or
in-memory arrays. float16 sources hold ``signal / scale`` with ``scale`` a power of two (see
``eegattn.data.cache``); they are upcast to float32 and multiplied back, both exact.

NumPy only, no MNE or torch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

__all__ = ["IndexedWindows"]

#: Bytes of recordings kept memory-mapped at once; past it every map is closed and reopened on
#: next use. Pages of a map count in the process's resident size (``ru_maxrss``) until it is
#: unmapped, and a window touches every channel's row, so the kernel's fault-around maps most
#: of a recording after a few windows: without this an epoch over a large cache looked like it
#: held the whole cache in memory (7 GB at 384 subjects; the pages stay in the kernel's page
#: cache either way). Reopening a map costs about 0.1 ms.
MAP_BUDGET_BYTES = 256 * 1024**2


class IndexedWindows:
    """Array-like (n_windows, n_chans, n_times) float32 over continuous recordings.

    Args:
        sources: one entry per recording: a ``.npy`` path of a (n_chans, n_samples) array
            (float32 or float16, memory-mapped on first use) or such an array.
        index: (n_windows, 2) integers: recording slot (position in ``sources``) and the
            window's first sample.
        n_times: samples per window.
        scales: per-source factor applied after the float32 upcast (None: all 1).
        n_chans: channels per window; read from the first source when None.
    """

    ndim = 3
    dtype = np.dtype(np.float32)

    def __init__(self, sources: Sequence, index, n_times: int, *, scales=None,
                 n_chans: int | None = None):
        self._sources = list(sources)
        self._arrays: list = [None if _is_path(s) else np.asarray(s) for s in self._sources]
        self._mapped_bytes = 0  # bytes of recordings memory-mapped since the last release
        index = np.asarray(index, dtype=np.int64)
        if index.ndim != 2 or index.shape[1] != 2:
            raise ValueError(f"index must be (n_windows, 2) (recording slot, start), got shape "
                             f"{index.shape}")
        if len(index) and (index[:, 0].min() < 0 or index[:, 0].max() >= len(self._sources)):
            raise ValueError(f"index names recording slots outside 0..{len(self._sources) - 1}")
        self.index = index
        self.n_times = int(n_times)
        self.scales = (np.ones(len(self._sources)) if scales is None
                       else np.asarray(scales, dtype=np.float64))
        if n_chans is None:
            n_chans = self._array(0).shape[0] if self._sources else 0
        self.n_chans = int(n_chans)

    # -- array protocol ---------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.index), self.n_chans, self.n_times)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def nbytes(self) -> int:
        """Bytes of the windows once gathered (float32), not of the storage."""
        return self.size * 4

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        return (f"IndexedWindows(shape={self.shape}, recordings={len(self._sources)}, "
                f"stored={self.stored_dtype})")

    @property
    def stored_dtype(self) -> np.dtype:
        """dtype of the stored recordings (float32 or float16); reads are always float32."""
        return self._array(0).dtype if self._sources else self.dtype

    def __array__(self, dtype=None, copy=None):
        out = self.gather(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype, copy=False)

    def __getitem__(self, key):
        rest = ()
        if isinstance(key, tuple):
            key, rest = key[0], key[1:]
        if isinstance(key, (int, np.integer)):
            i = int(key)
            if not -len(self) <= i < len(self):
                raise IndexError(f"window {i} is out of range for {len(self)} windows")
            out = self.gather(np.array([i % len(self)]))[0]
        else:
            out = self.gather(self._rows(key))
        return out[rest] if rest else out

    # -- lazy selection ---------------------------------------------------------------

    def _rows(self, key) -> np.ndarray:
        """Row numbers (int64) of a slice, boolean mask or integer array."""
        if isinstance(key, slice):
            return np.arange(len(self))[key]
        rows = np.asarray(key)
        if rows.dtype == bool:
            if rows.shape != (len(self),):
                raise IndexError(f"boolean mask has shape {rows.shape}, expected ({len(self)},)")
            return np.flatnonzero(rows)
        if rows.size and not np.issubdtype(rows.dtype, np.integer):
            raise IndexError(f"windows are selected by ints, a slice or a boolean mask, got "
                             f"dtype {rows.dtype}")
        rows = rows.astype(np.int64, copy=False)
        if rows.size and (rows.min() < -len(self) or rows.max() >= len(self)):
            raise IndexError(f"window indices out of range for {len(self)} windows")
        return rows % max(len(self), 1)

    def select(self, key) -> IndexedWindows:
        """The windows at ``key`` (ints, a slice or a boolean mask) as another
        ``IndexedWindows`` over the same recordings: an index table, nothing copied."""
        out = object.__new__(IndexedWindows)
        out.__dict__.update(self.__dict__)
        out.index = self.index[self._rows(key)]
        return out

    # -- gathering --------------------------------------------------------------------

    def _array(self, slot: int) -> np.ndarray:
        array = self._arrays[slot]
        if array is None:
            array = np.load(self._sources[slot], mmap_mode="r")
            self._arrays[slot] = array
            self._mapped_bytes += array.nbytes
        return array

    def gather(self, rows) -> np.ndarray:
        """Windows ``rows`` (int array, in that order) as a new (len(rows), n_chans, n_times)
        float32 array."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        out = np.empty((len(rows), self.n_chans, self.n_times), dtype=np.float32)
        size = self.n_times
        for k, (slot, start) in enumerate(self.index[rows]):
            out[k] = self._array(slot)[:, start : start + size]  # float16 upcast here
            scale = self.scales[slot]
            if scale != 1.0:
                out[k] *= np.float32(scale)  # a power of two: exact
            if self._mapped_bytes > MAP_BUDGET_BYTES:
                self.release()
        return out

    def release(self) -> None:
        """Close the memory maps (they reopen on next use), so the pages read so far stop
        counting in this process's resident memory."""
        for slot, source in enumerate(self._sources):
            if _is_path(source):
                self._arrays[slot] = None
        self._mapped_bytes = 0

    # -- pickling: paths, not the mapped bytes -----------------------------------------

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_arrays"] = [None if _is_path(s) else a
                            for s, a in zip(self._sources, self._arrays, strict=True)]
        state["_mapped_bytes"] = 0  # the maps reopen in the other process
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)


def _is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))
