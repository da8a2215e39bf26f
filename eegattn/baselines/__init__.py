"""Cross-domain baselines: the attention mechanisms on images and text before EEG.

- :mod:`eegattn.baselines.vision` - Inattention NotaBene's baseline / Inattention CNN and a ViT per
  attention mechanism on scikit-learn's 8x8 digits (embedded) or a local CIFAR-10 folder.
- :mod:`eegattn.baselines.language` - a causal transformer LM per mechanism on synthetic
  associative recall and selective copying, and byte-level perplexity on a text corpus.

PNG figures (learning curves, attention maps, inattention masks and alphas) come from
:mod:`eegattn.plots`, which the EEG runs use as well.

Each run writes ``table.md``, ``results.json`` and PNG plots into a new run folder. This module
imports only the standard library; the submodules import torch when they are imported.
"""

from __future__ import annotations

import os
from pathlib import Path

import lazy_loader

# the runners import torch: loaded on first use
__getattr__, _, _lazy_names = lazy_loader.attach(
    __name__,
    submod_attrs={"vision": ["run_vision_baseline"], "language": ["run_language_baseline"]},
)
__all__ = ["make_run_dir", "run_environment", "run_in_folder", *_lazy_names]


def make_run_dir(out="runs", name: str = "baseline", run_dir=None) -> Path:
    """A new, empty run folder: ``run_dir`` itself (which must not exist yet) or
    ``<out>/<name>-YYYYmmdd-HHMMSS[-N]`` (see :func:`eegattn.training.runs.create_run_dir`).
    An existing folder is never reused."""
    if run_dir is not None:
        run_dir = Path(run_dir)
        if run_dir.exists():
            raise FileExistsError(
                f"run folder {run_dir} already exists; baselines never reuse a folder: choose a "
                "new --run-dir or leave it out to get a fresh folder under --out"
            )
        if not run_dir.parent.is_dir():
            raise FileNotFoundError(
                f"parent folder {run_dir.parent} of --run-dir does not exist; create it first"
            )
        run_dir.mkdir(exist_ok=False)
        return run_dir
    from eegattn.training.runs import create_run_dir

    return create_run_dir(out, name)


def run_environment(device: str) -> dict:
    """Versions and threads a baseline ran with (the ``environment`` entry of results.json)."""
    import platform

    import torch

    return {"torch": torch.__version__, "python": platform.python_version(),
            "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "device": device}


def run_in_folder(config, run_dir, body, log=print):
    """Shared prelude of the baseline runs: check ``config``, require an existing ``run_dir``,
    apply ``config.threads`` to torch for the run only, then ``body(config, run_dir, log)``."""
    import torch

    config.check()
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} does not exist; create it first")
    log = log or (lambda _msg: None)
    previous_threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return body(config, run_dir, log)
    finally:  # leave the caller's thread setting as it was
        torch.set_num_threads(previous_threads)


def __dir__():
    return __all__
