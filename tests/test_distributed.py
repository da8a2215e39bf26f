"""DDP training: 2 gloo processes under torchrun follow the 1-process loss trajectory."""

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

from eegattn.training.distributed import main, train_distributed
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

        fail_after = None  # raise after this many training forwards (simulated crash)
        calls = 0

        def __init__(self, n_chans, n_outputs, n_times, sfreq, hidden=6):
            super().__init__()
            self.conv = nn.Conv1d(n_chans, hidden, 5)
            self.head = nn.Linear(hidden, n_outputs)

        def forward(self, x):
            if self.training and type(self).fail_after is not None:
                type(self).calls += 1
                if type(self).calls > type(self).fail_after:
                    raise RuntimeError("simulated crash")
            return self.head(torch.tanh(self.conv(x * 1e5)).mean(-1))
    """
)


@pytest.fixture
def model_module(tmp_path, monkeypatch):
    (tmp_path / "ddp_test_model.py").write_text(MODEL_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("ddp_test_model", None)
    import ddp_test_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield ddp_test_model
    torch.set_num_threads(threads)
    sys.modules.pop("ddp_test_model", None)


def _data(n=64, n_chans=4, n_times=40):
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(n, n_chans, n_times)) * 1e-5).astype(np.float32)
    y = (X[:, 0].mean(1) * 3e5 + 0.1 * rng.normal(size=n)).astype(np.float32)
    return X, y


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


COMMON = dict(epochs=3, batch_size=16, lr=5e-3, crop_n_times=32, seed=0, verbose=0)


def test_two_gloo_processes_match_one_process(tmp_path, model_module):
    X, y = _data()
    np.savez(tmp_path / "data.npz", X=X, y=y)
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO),
                                           os.environ.get("PYTHONPATH", "")]))
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
        "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}",
        "-m", "eegattn.training.distributed",
        "--data", str(tmp_path / "data.npz"), "--model", "ddp_test_model:NoNormNet",
        "--epochs", "3", "--batch-size", "16", "--lr", "5e-3", "--crop-n-times", "32",
        "--seed", "0", "--checkpoint-dir", str(tmp_path / "ckpt"),
        "--out-root", str(tmp_path / "runs"), "--name", "ddp",
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("world 2") == 3  # rank 0 logs each epoch once

    (run_dir,) = (tmp_path / "runs").iterdir()
    history = json.loads((run_dir / "history.json").read_text())
    ddp_losses = np.array([loss for h in history for loss in h["step_losses"]])
    config = json.loads((run_dir / "config.json").read_text())
    assert config["world_size"] == 2 and config["n_times"] == 32

    single = train_distributed("ddp_test_model:NoNormNet", X, y, **COMMON)
    assert single.world_size == 1
    ref = np.array(single.step_losses)
    assert ddp_losses.shape == ref.shape == (3 * 4,)
    np.testing.assert_allclose(ddp_losses, ref, rtol=REL_TOL)
    assert not np.allclose(ref[0], ref[-1])  # training moved: the comparison is not trivial

    model, _ = load_run(run_dir)
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(model.state_dict()[key], value, rtol=REL_TOL, atol=1e-6)


def test_world_one_is_deterministic_and_resumes_exactly(tmp_path, model_module):
    X, y = _data()
    a = train_distributed("ddp_test_model:NoNormNet", X, y, **COMMON)
    b = train_distributed(model_module.NoNormNet, X, y, **COMMON)
    assert a.step_losses == b.step_losses and len(a.history) == 3

    model_module.NoNormNet.fail_after = 7  # crash in epoch 2 (4 steps per epoch)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_distributed("ddp_test_model:NoNormNet", X, y, checkpoint_dir=tmp_path,
                          checkpoint_every=3, **COMMON)
    model_module.NoNormNet.fail_after = None
    with pytest.raises(FileExistsError, match="resume=True"):
        train_distributed("ddp_test_model:NoNormNet", X, y, checkpoint_dir=tmp_path, **COMMON)
    resumed = train_distributed("ddp_test_model:NoNormNet", X, y, checkpoint_dir=tmp_path,
                                checkpoint_every=3, resume=True, **COMMON)
    assert resumed.resumed_from == (1, 2)  # global step 6 = epoch 2, step 2
    assert resumed.step_losses == a.step_losses
    for key, value in a.model.state_dict().items():
        assert torch.equal(resumed.model.state_dict()[key], value)


def test_errors_and_help(capsys, model_module):
    X, y = _data(n=10)
    with pytest.raises(ValueError, match="no full global batch"):
        train_distributed("ddp_test_model:NoNormNet", X, y, batch_size=16, verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_distributed("ddp_test_model:NoNormNet", X, y, batch_size=0)
    with pytest.raises(ValueError, match="y has 9 values"):
        train_distributed("ddp_test_model:NoNormNet", X, y[:-1])
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    help_text = capsys.readouterr().out
    assert "torchrun" in help_text and "--batch-size" in help_text
    assert main(["--data", "/nonexistent/data.npz"]) == 2
    assert "not found" in capsys.readouterr().err
