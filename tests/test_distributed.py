"""Data-parallel training: ``torchrun --nproc-per-node 2 -m eegattn train`` (2 gloo processes)
reproduces one process on the same global batch, through the same loop and run folder."""

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from eegattn.cli import main
from eegattn.training.distributed import DistContext, init_distributed
from eegattn.training.loop import steps_per_epoch
from eegattn.training.runs import load_run

REPO = Path(__file__).resolve().parents[1]
# float32 sums of half batches reduced across processes differ from one full-batch sum only by
# rounding; 1e-5 relative is far above that and far below any real divergence
REL_TOL = 1e-5

MODEL_SOURCE = textwrap.dedent(
    """
    import torch
    from torch import nn

    class NoNormNet(nn.Module):
        '''No BatchNorm, no dropout: DDP must equal one process on the global batch.'''

        def __init__(self, n_chans, n_outputs, n_times, sfreq, hidden=6):
            super().__init__()
            self.conv = nn.Conv1d(n_chans, hidden, 5)
            self.head = nn.Linear(hidden, n_outputs)

        def forward(self, x):
            return self.head(torch.tanh(self.conv(x * 1e5)).mean(-1))
    """
)
TINY = {"trials_per_run": (8, 10), "max_runs": 1, "rest_seconds": 10.0}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _train_args(root, cache, runs, name):
    # 10 subjects: 3 test, the rest train + validation; batch 16 (world 2: 8 each)
    return ["--challenge", "1", "--model", "ddp_test_model:NoNormNet", "--epochs", "3",
            "--batch-size", "16", "--lr", "5e-3", "--subjects", "10", "--test-fraction",
            "0.3", "--seed", "3", "--patience", "2", "--start-from-epoch", "0",
            "--root", str(root), "--cache-dir", str(cache), "--runs-dir", str(runs),
            "--run-name", name, "--quiet"]


@pytest.mark.timeout(1200)  # a one-process run, then torchrun: minutes on a busy machine
def test_torchrun_two_gloo_processes_match_one_process(tmp_path, monkeypatch):
    (tmp_path / "ddp_test_model.py").write_text(MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("ddp_test_model", None)
    cache = tmp_path / "cache"
    from eegattn.training.pipeline import prepare_synthetic

    root = prepare_synthetic(["R5"], cache_dir=cache, n_subjects=10, **TINY)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:  # one process, in this interpreter; it also builds the window cache for torchrun
        assert main(["train", *_train_args(root, cache, tmp_path / "runs1", "one")]) == 0
    finally:
        torch.set_num_threads(threads)
    (single_dir,) = (tmp_path / "runs1").iterdir()
    single_config = json.loads((single_dir / "config.json").read_text())
    n_train = single_config["valid_split"]["n_train"]
    # the test compares equal step counts: no folded last batch in either world size
    assert steps_per_epoch(n_train, 16, 1) == steps_per_epoch(n_train, 16, 2), n_train

    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO),
                                           os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1",
           "--nproc-per-node", "2", "--rdzv-backend", "c10d",
           "--rdzv-endpoint", f"127.0.0.1:{_free_port()}",
           "-m", "eegattn", "train", *_train_args(root, cache, tmp_path / "runs2", "two")]
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (ddp_dir,) = (tmp_path / "runs2").iterdir()  # rank 0 alone writes one run folder
    config = json.loads((ddp_dir / "config.json").read_text())
    assert config["world_size"] == 2 and single_config["world_size"] == 1
    assert not (ddp_dir / "INCOMPLETE").exists() and not (ddp_dir / "checkpoint").exists()
    assert config["split"] == single_config["split"]

    hist1 = json.loads((single_dir / "history.json").read_text())
    hist2 = json.loads((ddp_dir / "history.json").read_text())
    assert len(hist1) == len(hist2) == 3
    for key in ("train_loss", "valid_loss", "lr"):
        np.testing.assert_allclose([h[key] for h in hist2], [h[key] for h in hist1],
                                   rtol=REL_TOL)
    assert hist1[0]["train_loss"] != pytest.approx(hist1[-1]["train_loss"], rel=1e-3)

    single_model, _ = load_run(single_dir)
    ddp_model, _ = load_run(ddp_dir)
    for key, value in single_model.state_dict().items():
        # Adam divides by sqrt(v): rounding moves a near-zero weight by ~1e-6, while one real
        # step moves it by up to lr = 5e-3
        torch.testing.assert_close(ddp_model.state_dict()[key], value, rtol=REL_TOL, atol=2e-5)
    m1 = json.loads((single_dir / "metrics.json").read_text())
    m2 = json.loads((ddp_dir / "metrics.json").read_text())
    assert m2["nrmse"] == pytest.approx(m1["nrmse"], rel=1e-4)
    sys.modules.pop("ddp_test_model", None)


def test_one_process_context_is_inert():
    ctx = init_distributed("cpu")
    assert (ctx.world_size, ctx.rank, ctx.is_main) == (1, 0, True)
    module = torch.nn.Linear(2, 1)
    assert ctx.wrap(module) is module
    assert ctx.sum((1.5, 2.0)) == (1.5, 2.0)
    assert ctx.any(True) and not ctx.any(False)
    assert ctx.broadcast_object({"a": 1}) == {"a": 1}
    assert ctx.gather_objects(3) == [3]
    ctx.barrier()
    ctx.close()


def test_last_batch_folds_so_every_process_gets_two_windows():
    assert steps_per_epoch(64, 16) == 4
    assert steps_per_epoch(65, 16) == 4  # a batch of one is folded into the one before
    assert steps_per_epoch(66, 16) == 5
    assert steps_per_epoch(66, 16, world_size=2) == 4  # 2 windows cannot feed 2 processes x 2
    assert steps_per_epoch(68, 16, world_size=2) == 5
    assert steps_per_epoch(10, 16, world_size=2) == 1


def test_world_size_one_context_dataclass_defaults():
    ctx = DistContext()
    assert ctx.world_size == 1 and ctx.device is None and not ctx.owns_group
