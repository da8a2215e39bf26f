"""Checkpoints: atomic files, RNG capture, and exact resume after SIGKILL mid-epoch."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from eegattn.training.checkpoint import (
    atomic_torch_save,
    capture_rng_state,
    checkpoint_path,
    load_checkpoint,
    restore_rng_state,
    save_checkpoint,
)
from eegattn.training.estimator import EEGAttentionRegressor

REPO = Path(__file__).resolve().parents[1]

TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import numpy as np
    import torch
    from torch import nn
    from eegattn.training.estimator import EEGAttentionRegressor

    torch.set_num_threads(1)
    SLOW = float(os.environ.get("SLOW_STEP_S", "0"))

    class Tiny(nn.Module):
        def __init__(self, n_chans, n_outputs, n_times, sfreq):
            super().__init__()
            self.conv = nn.Conv1d(n_chans, 6, 3)
            self.norm = nn.BatchNorm1d(6)
            self.drop = nn.Dropout(0.3)
            self.head = nn.Linear(6, n_outputs)

        def forward(self, x):
            if self.training and SLOW:
                time.sleep(SLOW)  # widens the window in which the test kills us; no maths
            h = torch.relu(self.norm(self.conv(x * 1e5))).mean(-1)
            return self.head(self.drop(h))

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(48, 4, 40)) * 1e-5).astype(np.float32)
    y = (X[:, 0].mean(1) * 3e5 + 0.1 * rng.normal(size=48)).astype(np.float32)
    groups = np.repeat(np.arange(6), 8)
    est = EEGAttentionRegressor(
        model=Tiny, max_epochs=3, batch_size=8, crop_n_times=32, patience=10, verbose=0,
        checkpoint_dir=sys.argv[1], checkpoint_every=2, seed=3,
    )
    est.fit(X, y, groups=groups, resume=sys.argv[2] == "resume")
    torch.save(est.model_.state_dict(), sys.argv[3])
    print("resumed_from", est.resumed_from_, flush=True)
    """
)


def _start(script, ckpt, mode, out, slow=0.0):
    env = dict(os.environ, SLOW_STEP_S=str(slow), OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen(
        [sys.executable, str(script), str(ckpt), mode, str(out)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    ckpt_ref, ckpt = tmp_path / "ref", tmp_path / "killed"
    ref = _start(script, ckpt_ref, "fresh", tmp_path / "ref.pt")
    victim = _start(script, ckpt, "fresh", tmp_path / "never.pt", slow=0.25)
    deadline = time.monotonic() + 120
    while not checkpoint_path(ckpt).exists():
        assert victim.poll() is None, victim.communicate()
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    state = load_checkpoint(ckpt)
    assert not state["complete"]
    assert state["epoch"] == 0 and 0 < state["step_in_epoch"] < 5  # killed mid-epoch
    assert not (tmp_path / "never.pt").exists()

    resumed = _start(script, ckpt, "resume", tmp_path / "resumed.pt")
    out, err = resumed.communicate(timeout=180)
    assert resumed.returncode == 0, err
    assert f"resumed_from (0, {state['step_in_epoch']})" in out
    ref_out, ref_err = ref.communicate(timeout=180)
    assert ref.returncode == 0, ref_err
    assert "resumed_from None" in ref_out

    a = torch.load(tmp_path / "ref.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed.pt", weights_only=True)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


class Tiny(nn.Module):
    def __init__(self, n_chans, n_outputs, n_times, sfreq):
        super().__init__()
        self.head = nn.Linear(n_chans, n_outputs)

    def forward(self, x):
        return self.head(x.mean(-1) * 1e5)


def _data():
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(20, 3, 10)) * 1e-5).astype(np.float32)
    return X, rng.normal(size=20).astype(np.float32), np.repeat(np.arange(5), 4)


def test_finished_run_resumes_without_training_and_refuses_silent_overwrite(tmp_path):
    torch.set_num_threads(1)
    X, y, groups = _data()
    params = dict(model=Tiny, max_epochs=2, batch_size=4, verbose=0, checkpoint_dir=tmp_path)
    est = EEGAttentionRegressor(**params).fit(X, y, groups=groups)
    assert load_checkpoint(tmp_path)["complete"]
    with pytest.raises(FileExistsError, match="resume=True"):
        EEGAttentionRegressor(**params).fit(X, y, groups=groups)
    again = EEGAttentionRegressor(**params).fit(X, y, groups=groups, resume=True)
    assert again.resumed_from_ == (2, 0)
    for k, v in est.model_.state_dict().items():
        assert torch.equal(v, again.model_.state_dict()[k])
    assert again.history_ == est.history_
    with pytest.raises(ValueError, match="other data or other training parameters"):
        EEGAttentionRegressor(**{**params, "lr": 0.5}).fit(X, y, groups=groups, resume=True)
    with pytest.raises(ValueError, match="other data"):
        EEGAttentionRegressor(**params).fit(X, y + 1, groups=groups, resume=True)
    with pytest.raises(ValueError, match="needs checkpoint_dir"):
        EEGAttentionRegressor(model=Tiny).fit(X, y, groups=groups, resume=True)


def test_resume_without_a_checkpoint_starts_fresh(tmp_path):
    X, y, groups = _data()
    est = EEGAttentionRegressor(model=Tiny, max_epochs=1, batch_size=4, verbose=0,
                                checkpoint_dir=tmp_path / "new").fit(X, y, groups=groups,
                                                                     resume=True)
    assert est.resumed_from_ is None and checkpoint_path(tmp_path / "new").is_file()


def test_atomic_save_leaves_only_the_final_file(tmp_path):
    path = atomic_torch_save({"a": torch.ones(3)}, tmp_path / "sub" / "w.pt")
    assert sorted(p.name for p in path.parent.iterdir()) == ["w.pt"]
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))


def test_load_checkpoint_missing_corrupt_and_foreign(tmp_path):
    assert load_checkpoint(tmp_path) is None
    checkpoint_path(tmp_path).write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read"):
        load_checkpoint(tmp_path)
    torch.save({"weights": torch.zeros(1)}, checkpoint_path(tmp_path))
    with pytest.raises(ValueError, match="not an eegattn checkpoint"):
        load_checkpoint(tmp_path)
    save_checkpoint(tmp_path, {"epoch": 3, "order": torch.arange(4)})
    state = load_checkpoint(tmp_path)
    assert state["epoch"] == 3 and torch.equal(state["order"], torch.arange(4))


def test_rng_state_round_trip():
    state = capture_rng_state()
    first = torch.rand(5)
    restore_rng_state(state)
    assert torch.equal(torch.rand(5), first)


# --------------------------------------------------------------------------- run folders
# (eegattn.training.runs: the manifest the challenge scripts write and the packager reads)


def test_create_run_dir_never_reuses_a_folder(tmp_path):
    from eegattn.training.runs import create_run_dir

    first = create_run_dir(tmp_path / "runs", "c1")
    second = create_run_dir(tmp_path / "runs", "c1")
    assert first != second and first.is_dir() and second.is_dir()
    assert first.name.startswith("c1-") and len(first.name.split("-")) >= 3
    stamp = "-".join(first.name.split("-")[1:3])
    assert len(stamp) == len("YYYYmmdd-HHMMSS") and stamp.replace("-", "").isdigit()
    (first / "keep.txt").write_text("user data")
    for _ in range(3):
        assert create_run_dir(tmp_path / "runs", "c1") != first
    assert (first / "keep.txt").read_text() == "user data"
    for bad in ("", "../up", "a/b", "-x"):
        with pytest.raises(ValueError, match="run name"):
            create_run_dir(tmp_path, bad)


def _fitted_named_estimator():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(8, 16, 200)) * 1e-5).astype(np.float32)
    y = rng.normal(size=8).astype(np.float32)
    groups = np.repeat(np.arange(4), 2)
    est = EEGAttentionRegressor(model="lightweight_noattn", max_epochs=1, batch_size=4,
                                verbose=0, valid_fraction=0.25, seed=7)
    return est.fit(X, y, groups=groups), X


def test_save_and_load_run_round_trip(tmp_path):
    import json
    from importlib import metadata

    from eegattn.training.runs import create_run_dir, load_metrics, load_run, save_run

    est, X = _fitted_named_estimator()
    run_dir = create_run_dir(tmp_path, "c1")
    split = {"train_subjects": [0, 1, 2], "valid_subjects": [], "test_subjects": [3]}
    save_run(run_dir, est, {"challenge": 1, "cache_key": "k123", "split": split},
             {"nrmse": np.float32(0.9), "mean_predictor": 1.01, "oracle": float("nan")})
    assert sorted(p.name for p in run_dir.iterdir()) == [
        "config.json", "history.json", "metrics.json", "weights.pt"]
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == "lightweight_noattn" and config["model_options"] == {}
    assert (config["n_chans"], config["n_times"], config["n_outputs"]) == (16, 200, 1)
    assert config["sfreq"] == 100.0 and config["seed"] == 7 and config["challenge"] == 1
    assert config["cache_key"] == "k123" and config["split"] == split
    assert config["versions"]["torch"] == metadata.version("torch")
    assert config["versions"]["python"].count(".") == 2
    assert config["valid_split"]["kind"] == "subject"
    assert load_metrics(run_dir) == {"nrmse": pytest.approx(0.9), "mean_predictor": 1.01,
                                     "oracle": None}
    model, loaded_config = load_run(run_dir)
    assert loaded_config == config and not model.training
    with torch.inference_mode():
        out = model(torch.from_numpy(X))[:, 0].numpy()
    # the same weights; one float32 rounding apart where the loaded copy's convolutions take
    # another kernel (seen on some CPUs)
    np.testing.assert_allclose(out, est.predict(X), rtol=1e-6, atol=1e-7)
    state = torch.load(run_dir / "weights.pt", weights_only=True)
    assert state.keys() == est.model_.state_dict().keys()

    with pytest.raises(FileExistsError, match="force=True"):
        save_run(run_dir, est, {}, {})
    save_run(run_dir, est, {}, {"nrmse": 0.5}, force=True)
    assert load_metrics(run_dir) == {"nrmse": 0.5}
    with pytest.raises(ValueError, match="contradicts the model"):
        save_run(create_run_dir(tmp_path, "x"), est, {"n_chans": 129}, {})
    with pytest.raises(ValueError, match="cannot be stored in JSON"):
        save_run(create_run_dir(tmp_path, "y"), est, {}, {"bad": object()})


def test_save_bare_module_and_load_errors(tmp_path):
    from eegattn.models import build_model
    from eegattn.training.runs import create_run_dir, load_run, save_run

    module = build_model("lightweight_noattn", n_chans=16, n_times=200)
    with pytest.raises(ValueError, match="config\\['model'\\]"):
        save_run(create_run_dir(tmp_path, "m"), module, {}, {})
    run_dir = save_run(create_run_dir(tmp_path, "m"), module,
                       {"model": "lightweight_noattn", "challenge": 2}, {})
    model, config = load_run(run_dir)
    assert (config["n_chans"], config["n_times"], config["challenge"]) == (16, 200, 2)
    for k, v in module.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "nope")
    empty = create_run_dir(tmp_path, "empty")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        load_run(empty)
    (empty / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_run(empty)
    (empty / "config.json").write_text((run_dir / "config.json").read_text())
    with pytest.raises(FileNotFoundError, match="weights.pt not found"):
        load_run(empty)
    (empty / "weights.pt").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="cannot be read"):
        load_run(empty)
    (empty / "weights.pt").write_bytes((run_dir / "weights.pt").read_bytes())
    cfg = (run_dir / "config.json").read_text().replace('"n_chans": 16', '"n_chans": 12')
    (empty / "config.json").write_text(cfg)
    with pytest.raises(ValueError, match="does not match the model"):
        load_run(empty)
