"""Training batches: planned in the main process, gathered there or by DataLoader workers.

The training loop decides everything random in the main process: the epoch's window order,
the crop starts, the ``time_scale`` factors and (after gathering) the augmentations. A batch
plan is ``(indices, offsets, scales)``; :func:`gather_batch` turns a plan into the cropped
float32 windows and is the only work that may move to worker processes. So a run gives the
same weights with ``num_workers=0`` (gathered in-process, no DataLoader) and with workers
(:func:`make_batch_loader`: a ``torch.utils.data.DataLoader`` whose sampler yields the plans,
with prefetching and, on CUDA, pinned memory).

Workers read windows through ``X`` as it pickles: an ``IndexedWindows`` from the cache
travels as file paths and reopens its memory maps, an in-memory ndarray is copied into each
worker (so workers only pay off for cached data). The DataLoader gets its own
``torch.Generator``: creating its iterator draws a base seed, which must not consume the
global RNG that model initialisation and dropout use.

:class:`WindowDataset` is an item-level ``Dataset`` over a ``WindowSet`` (or ``X, y``) for
code that wants the usual one-window-at-a-time interface.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from eegattn.training.augment import resample_crops

__all__ = ["gather_batch", "BatchDataset", "WindowDataset", "make_batch_loader",
           "auto_num_workers"]


def crop_windows(xb: np.ndarray, offsets, crop: int | None) -> np.ndarray:
    """Cut ``xb`` (b, c, t) to (b, c, crop) starting at ``offsets`` (b,)."""
    if offsets is None:
        return xb
    idx = offsets[:, None] + np.arange(crop)[None, :]  # (b, crop)
    return np.take_along_axis(xb, idx[:, None, :], axis=2)


def gather_batch(X, idx, offsets, crop: int | None, scales=None) -> np.ndarray:
    """The windows ``X[idx]`` cropped at ``offsets`` (stretched by ``scales`` when given), as
    a C-contiguous float32 array (b, c, crop). ``X`` may be an ndarray, a memmap or an
    ``IndexedWindows``."""
    x = np.asarray(X[idx])
    if scales is None:
        x = crop_windows(x, offsets, crop)
    else:
        x = resample_crops(x, offsets, crop, scales)
    return np.ascontiguousarray(x, dtype=np.float32)


class BatchDataset(Dataset):
    """``dataset[(indices, offsets, scales)]`` -> the gathered batch as a float32 tensor."""

    def __init__(self, X, crop: int | None):
        self.X, self.crop = X, crop

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, plan) -> torch.Tensor:
        idx, offsets, scales = plan
        return torch.from_numpy(gather_batch(self.X, idx, offsets, self.crop, scales))


class _PlanSampler(Sampler):
    """Yields ``plans()``'s batch plans; called anew for every epoch (and resume point)."""

    def __init__(self, plans):
        self.plans = plans

    def __iter__(self):
        return iter(self.plans())


def auto_num_workers(device) -> int:
    """Workers for ``num_workers=None``: none on the CPU (gathering a batch costs little next
    to a CPU training step, and workers would compete with it for the cores: measured in
    docs/cache.md), on CUDA up to 4, leaving one core to the main process."""
    if torch.device(device).type != "cuda":
        return 0
    return max(1, min(4, (os.cpu_count() or 2) - 1))


def make_batch_loader(X, crop, plans, *, num_workers: int, device, seed: int,
                      prefetch_factor: int = 2) -> DataLoader:
    """A DataLoader gathering the batch plans that ``plans()`` yields in ``num_workers`` (>= 1)
    persistent worker processes, ``prefetch_factor`` batches ahead each; pinned memory when
    ``device`` is CUDA."""
    return DataLoader(
        BatchDataset(X, crop), batch_size=None, sampler=_PlanSampler(plans),
        num_workers=num_workers, persistent_workers=True, prefetch_factor=prefetch_factor,
        pin_memory=torch.device(device).type == "cuda",
        generator=torch.Generator().manual_seed(int(seed)),  # not the global RNG
    )


class WindowDataset(Dataset):
    """One window at a time: ``dataset[i]`` -> ``(x (n_chans, n_times) float32 tensor, y
    float32 tensor)``. Give a ``WindowSet``, or ``X`` and ``y``."""

    def __init__(self, X, y=None):
        if y is None and hasattr(X, "y") and hasattr(X, "X"):
            X, y = X.X, X.y
        if y is None or len(y) != X.shape[0]:
            raise ValueError("WindowDataset needs one target per window: give a WindowSet, or "
                             "X (n, n_chans, n_times) and y (n,)")
        self.X, self.y = X, np.asarray(y, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, i):
        x = np.ascontiguousarray(np.asarray(self.X[int(i)]), dtype=np.float32)
        return torch.from_numpy(x), torch.tensor(self.y[int(i)])
