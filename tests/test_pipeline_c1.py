"""Challenge-1 options of the pipeline: a time head, label-moving augmentation on windows cut
with context, and the test on the exact windows."""

import json

import numpy as np
import pytest

from eegattn.training.pipeline import run_challenge

TINY = {"trials_per_run": (8, 10), "max_runs": 1, "rest_seconds": 10.0}


def test_time_head_with_time_shift_trains_on_context_and_tests_on_exact_windows(tmp_path):
    common = dict(model="lightweight_fast", model_options={"conv_channels": [16, 32]},
                  epochs=1, batch_size=32, n_subjects=10, cache_dir=tmp_path / "cache",
                  verbose=0, synthetic_options=TINY, test_fraction=0.3, plots=False)
    plain = run_challenge(1, runs_dir=tmp_path / "a", **common)
    moved = run_challenge(1, runs_dir=tmp_path / "b", head="softargmax",
                          augment=["time_shift", "channels_dropout"], **common)
    config = json.loads((moved.run_dir / "config.json").read_text())
    assert config["model_options"]["head"] == "softargmax"
    assert config["window_n_times"] == 240 and config["n_times"] == 200  # +0.3..+2.7 s
    assert config["estimator"]["crop_anchor"] == 20
    assert config["estimator"]["augment"] == ["time_shift", "channels_dropout"]
    # the same held-out subjects and exactly the same test windows as without context
    assert moved.metrics["n_test_windows"] == plain.metrics["n_test_windows"]
    assert config["split"]["test"] == json.loads(
        (plain.run_dir / "config.json").read_text())["split"]["test"]
    assert np.isfinite(moved.metrics["nrmse"])
    assert moved.metrics["ridge_nrmse"] == pytest.approx(plain.metrics["ridge_nrmse"])
    assert "ridge" in moved.table


def test_label_moving_augmentation_is_refused_for_challenge_2(tmp_path):
    with pytest.raises(ValueError, match="challenge 2 has no time target"):
        run_challenge(2, augment=["time_shift"], runs_dir=tmp_path, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_a_mix_entry_the_model_cannot_take_is_refused_before_the_run_folder(tmp_path):
    with pytest.raises(ValueError, match=r"ensemble member 2/2: change entry 1 of "
                                         r"ensemble_mix\): kernel=4"):
        run_challenge(1, runs_dir=tmp_path, cache_dir=tmp_path, ensemble=2, ensemble_mix=[
            {}, {"head": "softargmax", "head_options": {"kernel": 4}}])
    assert not any(tmp_path.iterdir())


def test_the_run_table_names_what_mixed_members_differ_in():
    from types import SimpleNamespace

    from eegattn.training.pipeline import _mix_label

    def label(*options):
        return _mix_label(SimpleNamespace(ensemble_members_=[
            {"model": "lightweight_fast", "model_options": o} for o in options]))

    assert label({"head": "distribution"}, {}) == "mixed distribution/regression"
    assert label({"dropout": 0.1}, {"dropout": 0.2}, {"dropout": 0.1}) == "mixed dropout"


@pytest.mark.parametrize("options", [
    {"head": "softargmax"},
    {"ensemble": 2, "ensemble_mix": [{}, {"head": "softargmax"}]},
    {"ensemble": 2, "ensemble_mix": [{}, {"head": "distribution"}]},
])
def test_time_heads_are_refused_for_challenge_2(tmp_path, options):
    with pytest.raises(ValueError, match="externalizing factor is not a time"):
        run_challenge(2, runs_dir=tmp_path, cache_dir=tmp_path, **options)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("mix, label", [
    (None, "ensemble of 2 (folds)"),
    ([{}, {"head": "softargmax", "head_options": {"kernel": 1}}],
     "ensemble of 2 (folds, mixed distribution/softargmax)"),
])
def test_fold_ensemble_run_records_its_folds_and_out_of_fold_score(tmp_path, mix, label):
    result = run_challenge(
        1, model="lightweight_fast", model_options={"conv_channels": [16, 32]}, epochs=1,
        batch_size=32, n_subjects=10, cache_dir=tmp_path / "cache", verbose=0,
        synthetic_options=TINY, test_fraction=0.3, plots=False, linear_baseline=False,
        head="distribution", augment=["time_shift"], ensemble=2, ensemble_split="folds",
        ensemble_combine="calibrate", runs_dir=tmp_path, ensemble_mix=mix)
    config = json.loads((result.run_dir / "config.json").read_text())
    folds, train = config["split"]["folds"], config["split"]["train"]
    assert len(folds) == 2 and sorted(folds[0] + folds[1]) == train  # all 7 train subjects
    assert config["split"]["valid"] == [] and config["model"] == "ensemble"
    assert 0 < result.metrics["out_of_fold_nrmse"] < 5
    assert "out of fold" in result.table
    assert f"model: lightweight_fast, {label} |" in result.table
    members = config["model_options"]["members"]
    assert [m["model_options"]["head"] for m in members] == (
        ["distribution"] * 2 if mix is None else ["distribution", "softargmax"])


def test_fold_ensemble_needs_as_many_training_subjects_as_members(tmp_path):
    with pytest.raises(ValueError, match="need 8 training subjects"):
        run_challenge(1, n_subjects=10, test_fraction=0.3, ensemble=8, ensemble_split="folds",
                      runs_dir=tmp_path, cache_dir=tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("split, label, refusal", [
    ("bootstrap", "(bootstrap)", "one member per bootstrap sample"),
    ("joint", "(joint, diversity 0.5)", "trains members together"),
])
def test_ensemble_run_names_its_split_and_refuses_one_member_early(tmp_path, split, label,
                                                                    refusal):
    result = run_challenge(
        1, model="lightweight_fast", model_options={"conv_channels": [16, 32]}, epochs=1,
        batch_size=32, n_subjects=10, cache_dir=tmp_path / "cache", verbose=0,
        synthetic_options=TINY, test_fraction=0.3, plots=False, linear_baseline=False,
        ensemble=2, ensemble_split=split, runs_dir=tmp_path)
    config = json.loads((result.run_dir / "config.json").read_text())
    assert config["model"] == "ensemble" and len(config["model_options"]["members"]) == 2
    assert "out_of_fold_nrmse" not in result.metrics
    assert f"model: lightweight_fast, ensemble of 2 {label} |" in result.table
    runs = sorted(p for p in tmp_path.iterdir() if p.name != "cache")
    with pytest.raises(ValueError, match=refusal):
        run_challenge(1, n_subjects=10, test_fraction=0.3, ensemble=1,
                      ensemble_split=split, runs_dir=tmp_path, cache_dir=tmp_path / "cache",
                      synthetic_options=TINY)
    assert sorted(p for p in tmp_path.iterdir() if p.name != "cache") == runs  # no run folder
