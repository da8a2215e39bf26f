"""Stopping a training run cleanly on request (SIGINT, SIGTERM): standard library only, so the
command line can name :class:`TrainingInterrupted` without importing torch.

The loop (:mod:`eegattn.training.loop`) checks :func:`stop_requested` after every optimizer
step; when set it writes a checkpoint and raises :class:`TrainingInterrupted`, so a run stopped
with Ctrl-C or ``kill`` resumes exactly (``eegattn train --resume RUN_DIR``).
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["TrainingInterrupted", "request_stop", "stop_requested", "stop_on_signals"]

_STOP = threading.Event()


def request_stop() -> None:
    """Ask the running loop to checkpoint after its current step and raise
    :class:`TrainingInterrupted` (what SIGINT / SIGTERM do under :func:`stop_on_signals`)."""
    _STOP.set()


def stop_requested() -> bool:
    return _STOP.is_set()


class TrainingInterrupted(Exception):
    """Training stopped on request after writing a checkpoint it can resume from."""

    def __init__(self, epoch: int, step: int, checkpointed: bool):
        self.epoch, self.step, self.checkpointed = epoch, step, checkpointed
        self.run_dir = None  # set by the challenge pipeline, which knows the run folder
        super().__init__(
            f"training interrupted at epoch {epoch + 1}, step {step}"
            + ("; checkpoint written" if checkpointed else "")
        )


@contextlib.contextmanager
def stop_on_signals(signums=(signal.SIGINT, signal.SIGTERM)):
    """Within the block, the first SIGINT/SIGTERM asks the loop to stop at the next step
    boundary (checkpoint first); a second one acts as usual. Main thread only; elsewhere the
    block runs without handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in signums}

    def handler(signum, frame):
        signal.signal(signum, previous[signum])  # a second signal acts at once
        request_stop()

    _STOP.clear()
    for s in signums:
        signal.signal(s, handler)
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
        _STOP.clear()
