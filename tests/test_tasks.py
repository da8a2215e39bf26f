"""Challenge 2 beyond CCD (issue 17): ``--tasks`` on ``eegattn preprocess`` and ``eegattn
train`` (any HBN task or ``all``), trained on the tasks asked for and tested on the held-out
subjects' CCD windows; the trial rule on the command line."""

from __future__ import annotations

import json

import pytest

from eegattn.cli import main

TINY = {"trials_per_run": (6, 8), "max_runs": 1, "rest_seconds": 10.0, "task_seconds": 10.0}
CCD = "contrastChangeDetection"


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from eegattn.training.pipeline import prepare_synthetic

    cache = tmp_path_factory.mktemp("tasks-cache")
    return prepare_synthetic(["R5"], cache_dir=cache, n_subjects=8, **TINY), cache


def _train(release, runs, *extra):
    root, cache = release
    return main(["train", "--challenge", "2", "--root", str(root), "--cache-dir", str(cache),
                 "--runs-dir", str(runs), "--model", "ridge", "--test-fraction", "0.3",
                 "--seed", "3", "--quiet", *extra])


def _run(release, runs, tasks=None):
    from eegattn.training.pipeline import run_challenge

    root, cache = release
    return run_challenge(2, root=root, cache_dir=cache, runs_dir=runs, model="ridge",
                         test_fraction=0.3, seed=3, verbose=0, plots=False,
                         linear_baseline=False, tasks=tasks)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_train_challenge2_on_all_tasks_tests_on_ccd(release, tmp_path):
    assert _train(release, tmp_path / "all", "--run-name", "all", "--tasks", "all") == 0
    every = next((tmp_path / "all").glob("all*"))
    config = json.loads((every / "config.json").read_text())
    assert config["tasks"]["test"] == CCD and CCD in config["tasks"]["train"]
    assert {"RestingState", "DespicableMe", "surroundSupp"} <= set(config["tasks"]["train"])
    m_all = json.loads((every / "metrics.json").read_text())
    ccd = _run(release, tmp_path / "ccd")
    # the same held-out subjects and CCD test windows; more training windows
    assert config["split"]["test"] == ccd.extra["config"]["split"]["test"]
    assert m_all["n_test_windows"] == ccd.metrics["n_test_windows"]
    assert m_all["n_train_windows"] > 1.5 * ccd.metrics["n_train_windows"]
    # a task other than CCD alone: cross-task training, still tested on CCD windows
    rest = _run(release, tmp_path / "rest", tasks="RestingState")
    assert rest.extra["config"]["tasks"] == {"train": ["RestingState"], "test": CCD}
    assert rest.metrics["n_test_windows"] == ccd.metrics["n_test_windows"]
    assert rest.metrics["n_train_windows"] < ccd.metrics["n_train_windows"]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("extra, message", [
    (["--challenge", "1", "--tasks", "RestingState"], "challenge 1 uses the"),
    (["--challenge", "2", "--trial-rule", "current"], "trial_rule applies to challenge 1"),
    (["--challenge", "2", "--tasks", "restingstate"], "Did you mean 'RestingState'"),
])
def test_task_options_are_checked_before_any_work(extra, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    code = main(["train", *extra, "--cache-dir", str(tmp_path / "c"), "--runs-dir", str(runs)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not runs.exists() and not (tmp_path / "c").exists()


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_preprocess_tasks_all_and_trial_rule(release, tmp_path, capsys):
    root, _ = release
    assert main(["preprocess", "--challenge", "2", "--root", str(root), "--tasks", "all",
                 "--cache-dir", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "tasks DespicableMe, RestingState, contrastChangeDetection, surroundSupp" in out
    counts = {}
    for rule in ("challenge", "current"):
        assert main(["preprocess", "--challenge", "1", "--root", str(root), "--trial-rule",
                     rule, "--cache-dir", str(tmp_path), "--no-progress"]) == 0
        counts[rule] = int(capsys.readouterr().out.split("challenge 1: ")[1].split()[0])
    assert counts["current"] > counts["challenge"]  # runs closed by end_experiment
