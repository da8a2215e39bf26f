"""Atomic training checkpoints and RNG-state capture, for exact resume after a crash.

A checkpoint is one ``torch.save`` file, ``<checkpoint_dir>/last.pt``, written to a temporary
name in the same folder and renamed with ``os.replace``: a process killed at any instant leaves
either the previous complete checkpoint or the new one, never a half-written file.

Everything stored is a tensor, a number, a string, a list or a dict, so checkpoints load with
``torch.load(weights_only=True)`` (no arbitrary code runs when reading one).

What the training loop stores (``eegattn.training.loop.TrainingLoop``): model, optimizer and
scheduler state dicts, RNG states (:func:`capture_rng_state`), epoch, step within the epoch,
global step, the epoch's data order and crops, history and early-stopping state. Restoring all
of them makes the resumed run bit-identical to an uninterrupted one on the CPU.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from eegattn.utils.io import atomic_path

__all__ = [
    "CHECKPOINT_NAME",
    "CHECKPOINT_FORMAT",
    "atomic_torch_save",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_path",
    "capture_rng_state",
    "restore_rng_state",
]

CHECKPOINT_NAME = "last.pt"
#: bumped when the stored layout changes; older checkpoints are refused with a clear error
CHECKPOINT_FORMAT = 2  # 2: per-process RNG states and loss sums (data-parallel runs)


def atomic_torch_save(obj, path: str | os.PathLike) -> Path:
    """``torch.save`` through :func:`eegattn.utils.io.atomic_path` (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return path


def checkpoint_path(checkpoint_dir: str | os.PathLike) -> Path:
    """Path of the (single, latest) checkpoint file in ``checkpoint_dir``."""
    return Path(checkpoint_dir) / CHECKPOINT_NAME


def save_checkpoint(checkpoint_dir: str | os.PathLike, state: dict) -> Path:
    """Atomically write ``state`` (plus the format version) as the latest checkpoint."""
    payload = {"format": CHECKPOINT_FORMAT, **state}
    return atomic_torch_save(payload, checkpoint_path(checkpoint_dir))


def load_checkpoint(checkpoint_dir: str | os.PathLike) -> dict | None:
    """Read the latest checkpoint onto the CPU; ``None`` if the folder has none.

    Raises ``ValueError`` for an unreadable file or a checkpoint of another format.
    """
    path = checkpoint_path(checkpoint_dir)
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for damaged files
        raise ValueError(
            f"checkpoint {path} cannot be read ({type(exc).__name__}: {exc}); delete it to "
            "start over"
        ) from exc
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(
            f"checkpoint {path} is not an eegattn checkpoint of format {CHECKPOINT_FORMAT}; "
            "delete it or choose another checkpoint_dir"
        )
    return state


def capture_rng_state() -> dict:
    """The torch CPU RNG state and, where CUDA is initialised, every CUDA device's state.

    (Training draws data order and crops from its own seeded NumPy generators; only dropout
    and other in-model randomness use torch's global generators.)
    """
    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`; CUDA states are skipped on a machine without CUDA."""
    torch.set_rng_state(state["torch"])
    cuda_states = state.get("cuda")
    if cuda_states and torch.cuda.is_available():
        n = min(len(cuda_states), torch.cuda.device_count())
        for device, cuda_state in enumerate(cuda_states[:n]):
            torch.cuda.set_rng_state(cuda_state, device)
