"""The challenge pipeline end to end on a tiny synthetic release."""

import json

import numpy as np
import pytest

from eegattn.training.pipeline import run_challenge

TINY = {"trials_per_run": (8, 10), "max_runs": 1, "rest_seconds": 10.0}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("pipeline-cache")


def _run(challenge, cache, runs, **kw):
    options = dict(model="lightweight", epochs=1, batch_size=32, n_subjects=10,
                   cache_dir=cache, runs_dir=runs, verbose=0, synthetic_options=TINY,
                   test_fraction=0.3, valid_fraction=0.2)
    options.update(kw)
    return run_challenge(challenge, **options)


@pytest.mark.parametrize("challenge", [1, 2])
def test_run_folder_is_complete_and_split_by_subject(challenge, cache, tmp_path):
    result = _run(challenge, cache, tmp_path)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"config.json", "weights.pt", "metrics.json", "history.json", "results.md",
            "learning_curves.png", "pred_vs_true.png"} <= files
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["challenge"] == challenge
    assert (config["n_chans"], config["n_times"], config["sfreq"]) == (129, 200, 100.0)
    split = config["split"]
    train, valid, test = set(split["train"]), set(split["valid"]), set(split["test"])
    assert test and train and not (train & test) and not (valid & test) and not (train & valid)
    m = result.metrics
    assert np.isfinite(m["nrmse"]) and m["mean_predictor_nrmse"] >= 1.0 - 1e-9
    assert m["oracle_nrmse"] is not None and np.isfinite(m["oracle_nrmse"])
    if challenge == 1:  # hundreds of trials: the planted truth must beat the mean predictor
        assert m["oracle_nrmse"] < m["mean_predictor_nrmse"]
    assert config["cache_key"]
    if challenge == 2:
        assert config["window_n_times"] == 400  # 4 s windows, 2 s crops
    assert "oracle" in result.table and "mean predictor" in result.table


def test_second_run_gets_a_new_folder(cache, tmp_path):
    first = _run(1, cache, tmp_path, run_name="same")
    second = _run(1, cache, tmp_path, run_name="same")
    assert first.run_dir != second.run_dir
    assert (first.run_dir / "weights.pt").exists() and (second.run_dir / "weights.pt").exists()
    # same seed, same cached windows: the same result
    assert first.metrics["nrmse"] == pytest.approx(second.metrics["nrmse"], abs=1e-6)


def test_held_out_release(cache, tmp_path):
    result = _run(1, cache, tmp_path, releases=["R5"], test_release="R6", patience=3,
                  start_from_epoch=0)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["test_release"] == "R6" and config["releases"] == ["R5", "R6"]
    assert config["estimator"]["patience"] == 3 and config["estimator"]["start_from_epoch"] == 0
    assert set(config["split"]["test"]).isdisjoint(config["split"]["train"])


def test_bad_options(cache, tmp_path):
    with pytest.raises(ValueError, match="challenge must be 1 or 2"):
        run_challenge(3, cache_dir=cache, runs_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        run_challenge(1, root=tmp_path / "missing", runs_dir=tmp_path)
    with pytest.raises(ValueError, match="other release"):
        run_challenge(1, releases=["R5"], test_release="R5", cache_dir=cache, runs_dir=tmp_path)
