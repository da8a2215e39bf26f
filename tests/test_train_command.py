"""`eegattn train`: options checked before anything is read or written, a run folder from the
start, and `--resume` after SIGKILL, SIGTERM or Ctrl-C to the same weights and history."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from eegattn.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = {"trials_per_run": (8, 10), "max_runs": 1, "rest_seconds": 10.0}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A tiny synthetic release and its challenge-1 window cache, built once."""
    from eegattn.data.cache import load_challenge_windows
    from eegattn.training.pipeline import prepare_synthetic

    cache = tmp_path_factory.mktemp("train-cache")
    root = prepare_synthetic(["R5"], cache_dir=cache, n_subjects=10, **TINY)
    load_challenge_windows(1, releases=["R5"], root=root, cache_dir=cache / "windows",
                           progress=False)
    return root, cache


def _args(release, runs, *extra):
    root, cache = release
    return ["train", "--challenge", "1", "--root", str(root), "--cache-dir", str(cache),
            "--runs-dir", str(runs), "--model", "lightweight_noattn", "--model-options",
            '{"dropout": 0.3}', "--epochs", "4", "--batch-size", "32", "--test-fraction", "0.3",
            "--subjects", "10", "--seed", "5", *extra]


# ---------------------------------------------------------------------------- option checks


# pytest shows every warning; the command line runs under Python's default filters, which hide
# third-party DeprecationWarnings (pandas' notes on wfdb, imported by braindecode)
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("extra, message", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--model-options", '{"dropuot": 0.1}'], "unknown option(s) 'dropuot'"),
    (["--model-options", '{"dropout": "high"}'], "'dropout' parameter"),
    (["--run-name", "../escape"], "run name '../escape'"),
    (["--subjects", "3", "--root", None], "too few"),
    (["--test-fraction", "1.5"], "test_fraction must be in (0, 1)"),
    (["--epochs", "0"], "'max_epochs' parameter. It must be a positive integer"),
])
def test_bad_option_fails_with_one_line_and_writes_nothing(extra, message, tmp_path, capsys):
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    args = ["train", "--challenge", "1", "--cache-dir", str(cache), "--runs-dir", str(runs)]
    if None in extra:  # a synthetic release: --root left out
        extra = [e for e in extra if e not in ("--root", None)]
    assert main(args + extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert not cache.exists() and not runs.exists()  # nothing read, generated or written


def test_runs_dir_that_is_a_file(tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.write_text("my notes")
    assert main(["train", "--challenge", "1", "--cache-dir", str(tmp_path / "c"),
                 "--runs-dir", str(runs)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert runs.read_text() == "my notes" and not (tmp_path / "c").exists()


def test_bad_model_options_json_is_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--challenge", "1", "--model-options", "{bad"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "'--model-options' parameter. It must be a JSON object" in err


def test_resume_refuses_other_options_and_finished_runs(release, tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    assert "drop --epochs" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "run_args.json" in capsys.readouterr().err
    assert main(["train"]) == 2
    assert "--challenge is required" in capsys.readouterr().err


# ---------------------------------------------------------------------------- kill and resume


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]))


def _cli(*args):
    return [sys.executable, "-m", "eegattn", *args]


def _history(run_dir):
    return [{k: v for k, v in h.items() if k != "duration_s"}
            for h in json.loads((run_dir / "history.json").read_text())]


@pytest.fixture(scope="module")
def uninterrupted(release, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs-reference")
    proc = subprocess.run(_cli(*_args(release, runs, "--quiet")), env=_env(),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    (run_dir,) = runs.iterdir()
    return run_dir


@pytest.mark.timeout(1500)  # three subprocess runs; seconds alone, minutes on a busy machine
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_run_resumes_to_the_same_weights_and_history(signum, release, uninterrupted,
                                                            tmp_path):
    runs = tmp_path / "runs"
    proc = subprocess.Popen(_cli(*_args(release, runs, "--checkpoint-every", "2", "--quiet")),
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    deadline = time.monotonic() + 480  # generous: CI machines may be busy
    checkpoint = None
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(runs.glob("*/checkpoint/last.pt")) if runs.exists() else []
        if found:
            checkpoint = found[0]
            break
        time.sleep(0.05)
    assert checkpoint is not None, "no checkpoint appeared: " + proc.communicate()[1]
    run_dir = checkpoint.parent.parent
    assert proc.poll() is None, "the run finished before it could be interrupted"
    # the run folder exists from the start and says it is incomplete
    assert (run_dir / "INCOMPLETE").exists() and (run_dir / "run_args.json").exists()
    assert not (run_dir / "config.json").exists()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=480)
    if signum == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:  # a clean stop: checkpoint, one line saying how to continue
        assert proc.returncode == 130, err
        assert f"--resume {run_dir}" in err and "Traceback" not in err
    assert (run_dir / "INCOMPLETE").exists()

    resumed = subprocess.run(_cli("train", "--resume", str(run_dir), "--quiet"), env=_env(),
                             capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert not (run_dir / "INCOMPLETE").exists() and not (run_dir / "checkpoint").exists()
    assert _history(run_dir) == _history(uninterrupted)
    a = torch.load(run_dir / "weights.pt", weights_only=True)
    b = torch.load(uninterrupted / "weights.pt", weights_only=True)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    again = subprocess.run(_cli("train", "--resume", str(run_dir)), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "finished already" in again.stderr


def test_modelling_options_reach_the_pipeline(monkeypatch):
    import eegattn.training.pipeline as pipeline

    seen = {}
    monkeypatch.setattr(pipeline, "run_challenge", lambda challenge, **kw: seen.update(kw))
    assert main(["train", "--challenge", "1", "--head", "distribution", "--augment",
                 "time_shift", "mixup", "--context", "0.25", "--ensemble", "3",
                 "--ensemble-combine", "calibrate", "--ensemble-split", "folds",
                 "--test-fraction", "0.3"]) == 0
    assert seen["head"] == "distribution" and seen["augment"] == ["time_shift", "mixup"]
    assert seen["context_s"] == 0.25 and seen["ensemble"] == 3
    assert seen["ensemble_combine"] == "calibrate" and seen["test_fraction"] == 0.3
    assert seen["ensemble_split"] == "folds"
    assert main(["train", "--challenge", "1"]) == 0
    assert seen["head"] is None and seen["augment"] is None and seen["ensemble"] == 1
    assert seen["ensemble_split"] == "seeds" and seen["ensemble_mix"] is None
    assert main(["train", "--challenge", "1", "--ensemble", "2", "--ensemble-mix",
                 '[{"head": "softargmax"}, {}]']) == 0
    assert seen["ensemble_mix"] == [{"head": "softargmax"}, {}]
    assert main(["train", "--challenge", "1", "--ensemble", "2", "--ensemble-split",
                 "bootstrap"]) == 0
    assert seen["ensemble_split"] == "bootstrap" and seen["ensemble_diversity"] == 0.5
    assert main(["train", "--challenge", "1", "--ensemble", "2", "--ensemble-split", "joint",
                 "--ensemble-diversity", "0.3"]) == 0
    assert seen["ensemble_split"] == "joint" and seen["ensemble_diversity"] == 0.3


@pytest.mark.parametrize("value", ["time_heads", '{"head": "softargmax"}', "[1, 2]", "[]"])
def test_a_bad_ensemble_mix_is_one_usage_line(value, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--challenge", "1", "--ensemble", "2", "--ensemble-mix", value])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert f"--ensemble-mix '{value}' is not a JSON list of model-option objects" in err


def test_resume_names_the_real_flag_and_run_args_are_stored_as_json(tmp_path, capsys):
    from pathlib import Path

    from eegattn.training.pipeline import _jsonable_args

    assert main(["train", "--resume", str(tmp_path), "--context", "0.3"]) == 2
    assert "drop --context " in capsys.readouterr().err
    stored = _jsonable_args({"augment": ("time_shift",), "model": "lightweight",
                             "model_options": {"kernel_sizes": (7, 5)},
                             "init": Path("pretrained"), "runs_dir": "runs"})
    assert stored["augment"] == ["time_shift"]
    assert stored["model_options"] == {"kernel_sizes": [7, 5]}
    assert Path(stored["init"]).is_absolute() and Path(stored["runs_dir"]).is_absolute()
    with pytest.raises(ValueError, match="model given by name"):
        _jsonable_args({"model": object})
