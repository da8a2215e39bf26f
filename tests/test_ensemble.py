"""Ensembles: K members through the one loop, combined into one module that saves, reloads,
pickles, resumes and packages into a validated submission."""

import warnings

import numpy as np
import pytest
import torch

from eegattn.models.ensemble import stack_weights
from eegattn.training.estimator import EEGAttentionRegressor

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SMALL = {"conv_channels": [16, 32], "channel_reduction": 8, "head_hidden": [8]}


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 129, 200)) * 2e-5).astype(np.float32)
    y = rng.normal(1.5, 0.3, n).astype(np.float32)
    return X, y, np.repeat(np.arange(n // 8), 8)


def _est(**kw):
    options = dict(model="lightweight_fast", model_options=SMALL, max_epochs=2, batch_size=16,
                   valid_fraction=0.0, early_stopping=False, verbose=0)
    return EEGAttentionRegressor(**{**options, **kw})


def test_mean_ensemble_is_the_mean_of_members_trained_with_consecutive_seeds():
    X, y, _ = _data()
    ens = _est(ensemble=3, seed=7).fit(X, y)
    singles = [_est(seed=7 + k).fit(X, y) for k in range(3)]
    for member, single in zip(ens.model_.members, singles, strict=True):
        for key, value in single.model_.state_dict().items():
            assert torch.equal(member.state_dict()[key], value)
    expected = np.mean([s.predict(X[:6]) for s in singles], axis=0)
    np.testing.assert_allclose(ens.predict(X[:6]), expected, rtol=1e-5, atol=1e-6)
    assert {r["member"] for r in ens.history_} == {0, 1, 2}
    assert ens.ensemble_members_ == [{"model": "lightweight_fast", "model_options": SMALL}] * 3


def test_stacker_recovers_known_weights():
    rng = np.random.default_rng(0)
    P = rng.normal(size=(200, 3))
    y = 0.7 * P[:, 0] + 0.3 * P[:, 2] + 1.0
    weights, intercept = stack_weights(P, y)
    np.testing.assert_allclose(weights, [0.7, 0.0, 0.3], atol=1e-8)
    assert intercept == pytest.approx(1.0)
    weights, _ = stack_weights(P, -P.sum(1))  # nothing helps with non-negative weights
    np.testing.assert_allclose(weights, [1 / 3] * 3)


def test_stacked_ensemble_saves_reloads_and_pickles(tmp_path):
    import pickle

    from eegattn.training.runs import create_run_dir, load_run, save_run

    X, y, groups = _data()
    est = _est(ensemble=2, ensemble_combine="stack", valid_fraction=0.25,
               early_stopping=True, patience=1).fit(X, y, groups=groups)
    assert torch.all(est.model_.weights >= 0)
    pred = est.predict(X[:5])
    run = create_run_dir(tmp_path, "ens")
    save_run(run, est)
    model, config = load_run(run)
    assert config["model"] == "ensemble" and len(config["model_options"]["members"]) == 2
    np.testing.assert_allclose(model(torch.from_numpy(X[:5])).detach().numpy()[:, 0], pred,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pickle.loads(pickle.dumps(est)).predict(X[:5]), pred)


@pytest.mark.parametrize("split", ["seeds", "bootstrap", "joint"])
def test_ensemble_members_checkpoint_and_resume(tmp_path, split):
    X, y, groups = _data()
    kw = dict(ensemble=2, ensemble_split=split, checkpoint_dir=str(tmp_path))
    first = _est(**kw).fit(X, y, groups=groups)
    if split == "joint":  # one loop, one checkpoint
        assert (tmp_path / "last.pt").exists() and not (tmp_path / "member-0").exists()
    else:
        assert (tmp_path / "member-0" / "last.pt").exists()
        assert (tmp_path / "member-1" / "last.pt").exists()
    with pytest.raises(FileExistsError, match="resume=True"):
        _est(**kw).fit(X, y, groups=groups)
    again = _est(**kw).fit(X, y, groups=groups, resume=True)
    np.testing.assert_array_equal(again.predict(X[:4]), first.predict(X[:4]))


def test_ensemble_packages_and_validates(tmp_path):
    from eegattn.submission import package_submission, validate_submission
    from eegattn.training.runs import create_run_dir, save_run

    X, y, _ = _data(n=32)
    runs = []
    for challenge in (1, 2):
        est = _est(ensemble=2, max_epochs=1, seed=challenge).fit(X, y)
        run = create_run_dir(tmp_path, f"ens-c{challenge}")
        save_run(run, est, config={"challenge": challenge})
        runs.append(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed = package_submission(runs[0], runs[1], tmp_path / "ens.zip",
                                    check_batch_sizes=(1, 3))
        report = validate_submission(packed.path, batch_sizes=(1, 4), timing_batch=None)
    assert report.ok, report


@pytest.mark.parametrize("kw, message", [
    ({"ensemble": 0}, "'ensemble' parameter"),
    ({"ensemble": 2, "ensemble_combine": "vote"}, "'ensemble_combine' parameter"),
    ({"ensemble": 2, "ensemble_combine": "stack"}, "fitted on the validation subjects"),
    ({"ensemble": 2, "ensemble_combine": "calibrate"}, "fitted on the validation subjects"),
    ({"ensemble": 2, "ensemble_split": "bags"}, "'ensemble_split' parameter"),
    ({"ensemble_split": "folds"}, "set ensemble >= 2"),
    ({"ensemble_split": "bootstrap"}, "one member per bootstrap sample; set ensemble >= 2"),
    ({"ensemble": 2, "ensemble_split": "folds", "ensemble_combine": "stack"},
     "use ensemble_combine='calibrate'"),
    ({"ensemble": 2, "ensemble_split": "folds", "groups": None}, "pass groups="),
    ({"ensemble": 3, "ensemble_split": "folds", "groups": [0, 1] * 8}, "at least 3 subjects"),
    ({"ensemble_split": "joint"}, "trains members together; set ensemble >= 2"),
    ({"ensemble": 2, "ensemble_split": "joint", "ensemble_diversity": -1.0},
     "'ensemble_diversity' parameter"),
    ({"ensemble": 2, "ensemble_split": "joint", "ensemble_diversity": 1.5},
     "'ensemble_diversity' parameter"),
    ({"ensemble": 2, "ensemble_split": "joint", "loss": "l1"}, "use loss='mse'"),
    ({"ensemble": 2, "ensemble_split": "joint", "ensemble_mix": [{}, {"head": "softargmax"}]},
     "drop ensemble_mix, init and finetune"),
    ({"ensemble": 2, "ensemble_split": "joint", "finetune": "frozen"},
     "drop ensemble_mix, init and finetune"),
])
def test_bad_ensemble_options(kw, message):
    X, y, groups = _data(n=16)
    groups = kw.pop("groups", groups)
    with pytest.raises(ValueError, match=message):
        _est(**kw).fit(X, y, groups=groups)


def test_fold_members_hold_out_one_subject_fold_each_and_predict_it():
    from eegattn.training.splits import subject_kfold

    X, y, groups = _data()
    est = _est(ensemble=4, ensemble_split="folds", seed=3).fit(X, y, groups=groups)
    folds = list(subject_kfold(4, seed=3).split(X, groups=groups))
    assert est.ensemble_folds_ == [np.unique(groups[v]).tolist() for _, v in folds]
    assert sorted(s for fold in est.ensemble_folds_ for s in fold) == list(range(8))
    assert est.valid_split_ == "folds" and est.n_train_ == len(X)
    # member k is the model trained with seed 3 + k on the other folds alone
    held_out = folds[2][1]
    single = _est(seed=5).fit(np.delete(X, held_out, 0), np.delete(y, held_out))
    for key, value in single.model_.state_dict().items():
        assert torch.equal(est.model_.members[2].state_dict()[key], value)
    np.testing.assert_allclose(est.oof_predictions_[held_out], single.predict(X[held_out]),
                               rtol=1e-5, atol=1e-6)
    assert np.isfinite(est.oof_predictions_).all()
    members = est.predict_members(X[:6])
    assert members.shape == (6, 4)
    np.testing.assert_allclose(est.predict(X[:6]), members.mean(1), rtol=1e-5, atol=1e-6)


def test_bootstrap_draws_each_subjects_share_with_replacement():
    from eegattn.training.estimator import _bootstrap

    groups = np.repeat(np.arange(6), [4, 8, 8, 12, 8, 8])
    train = np.flatnonzero(groups != 2)  # subject 2 validates
    a, b = _bootstrap(train, groups, 0), _bootstrap(train, groups, 1)
    for sample in (a, b):
        assert len(sample) == len(train) and np.isin(sample, train).all()
        np.testing.assert_array_equal(np.bincount(groups[sample], minlength=6),
                                      np.bincount(groups[train], minlength=6))
        assert np.unique(sample).size < len(train)  # some drawn twice, some left out
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, _bootstrap(train, groups, 0))
    assert len(_bootstrap(train, None, 0)) == len(train)


def test_bootstrap_samples_leave_the_validation_subjects_out_and_stack(monkeypatch):
    import eegattn.training.estimator as estimator

    drawn = []
    original = estimator._bootstrap
    monkeypatch.setattr(estimator, "_bootstrap",
                        lambda *a: drawn.append(original(*a)) or drawn[-1])
    X, y, groups = _data()
    est = _est(ensemble=2, ensemble_split="bootstrap", ensemble_combine="stack",
               valid_fraction=0.25, seed=1).fit(X, y, groups=groups)
    assert len(drawn) == 2 and est.valid_subjects_
    for sample in drawn:
        assert not np.isin(groups[sample], est.valid_subjects_).any()
    assert est.model_.weights.shape == (2,) and est.valid_split_ == "subject"


def test_bootstrap_member_is_the_model_trained_on_its_own_sample():
    from eegattn.training.estimator import _bootstrap

    X, y, groups = _data()
    est = _est(ensemble=3, ensemble_split="bootstrap", seed=3).fit(X, y, groups=groups)
    sample = _bootstrap(np.arange(len(X)), groups, 4)  # member 1: seed 3 + 1
    single = _est(seed=4).fit(X[sample], y[sample])
    for key, value in single.model_.state_dict().items():
        assert torch.equal(est.model_.members[1].state_dict()[key], value)
    members = est.predict_members(X[:6])
    assert not np.allclose(members[:, 0], members[:, 1])
    np.testing.assert_allclose(est.predict(X[:6]), members.mean(1), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="one subject id per window"):
        _est(ensemble=2, ensemble_split="bootstrap").fit(X, y, groups=groups[:-1])


def test_calibrated_folds_fit_slope_and_intercept_on_out_of_fold_predictions():
    X, y, groups = _data()
    est = _est(ensemble=2, ensemble_split="folds", ensemble_combine="calibrate",
               seed=1).fit(X, y, groups=groups)
    slope, intercept = stack_weights(est.oof_predictions_[:, None], y)
    np.testing.assert_allclose(est.model_.weights.numpy(), [slope[0] / 2] * 2, rtol=1e-5)
    assert float(est.model_.intercept) == pytest.approx(intercept, rel=1e-5)
    members = est.predict_members(X[:5])
    np.testing.assert_allclose(est.predict(X[:5]), members.mean(1) * slope[0] + intercept,
                               rtol=1e-5, atol=1e-5)


def test_calibrated_seed_ensemble_fits_on_the_validation_subjects():
    X, y, groups = _data()
    est = _est(ensemble=2, ensemble_combine="calibrate", valid_fraction=0.25,
               early_stopping=True, patience=1).fit(X, y, groups=groups)
    weights = est.model_.weights.numpy()
    assert weights[0] == weights[1] and est.oof_predictions_ is None


def test_single_model_predict_members_is_one_column():
    X, y, _ = _data(n=32)
    est = _est(max_epochs=1).fit(X, y)
    np.testing.assert_array_equal(est.predict_members(X[:3])[:, 0], est.predict(X[:3]))


def test_member_options_take_the_mix_entries_in_turn():
    from eegattn.models import member_options

    base = {"dropout": 0.1, "head": "distribution", "head_options": {"sigma": 0.2}}
    assert member_options(base, None, 2) == [base, base]
    mix = [{}, {"head": "softargmax", "head_options": {"kernel": 9}}, {"dropout": 0.3}]
    mixed = member_options(base, mix, 5)
    # an entry's keys replace the shared ones (head_options whole); the rest is shared
    assert mixed[:3] == [base, {"dropout": 0.1, **mix[1]}, {**base, "dropout": 0.3}]
    assert mixed[3:] == mixed[:2]
    mixed[1]["head_options"]["kernel"] = 3  # copies: the caller's dicts are untouched
    assert mix[1]["head_options"]["kernel"] == 9 and base["head_options"] == {"sigma": 0.2}
    for bad in ("time_heads", [], [{"head": "softargmax"}, "regression"]):
        with pytest.raises(ValueError, match="None or a non-empty list of model-option dicts"):
            member_options(base, bad, 2)


def test_mixed_members_train_with_their_own_heads_and_reload(tmp_path):
    from eegattn.models.heads import TimeHead
    from eegattn.training.runs import create_run_dir, load_run, save_run

    X, y, _ = _data()
    mix = [{"head": "distribution", "head_options": {"kernel": 3}},
           {"head": "softargmax", "head_options": {"kernel": 1}}, {"head": "regression"}]
    est = _est(ensemble=3, ensemble_mix=mix, seed=5).fit(X, y)
    heads = [[m for m in member.modules() if isinstance(m, TimeHead)]
             for member in est.model_.members]
    assert [bool(h) and h[0].distribution for h in heads] == [True, False, False]
    assert heads[1][0].kernel == 1 and not heads[2]  # the regression member has no time head
    assert [m["model_options"] for m in est.ensemble_members_] == [
        {**SMALL, **entry} for entry in mix]
    # each member is what a single model with its options and seed learns
    single = _est(model_options={**SMALL, **mix[1]}, seed=6).fit(X, y)
    members = est.predict_members(X[:6])
    np.testing.assert_allclose(members[:, 1], single.predict(X[:6]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.predict(X[:6]), members.mean(1), rtol=1e-5, atol=1e-6)
    run = create_run_dir(tmp_path, "mixed")
    save_run(run, est)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        model, _ = load_run(run)
    # the kernel-1 member is today's, not a folder from before the kernel option
    assert not [w for w in seen if "span of tokens" in str(w.message)]
    with torch.inference_mode():
        loaded = model(torch.from_numpy(X[:6]))[:, 0].numpy()
    np.testing.assert_allclose(loaded, est.predict(X[:6]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kw, message", [
    ({"ensemble_mix": [{}, {"head": "softargmax"}]},
     "ensemble_mix sets the options of each ensemble member; set ensemble >= 2"),
    ({"ensemble": 2, "ensemble_mix": "heads"}, "non-empty list of model-option dicts"),
    ({"ensemble": 2, "ensemble_mix": []}, "non-empty list"),
    ({"ensemble": 2, "ensemble_mix": [{}, {"head": "distribution"}], "augment": ["mixup"]},
     "mixup mixes two response times"),
])
def test_bad_ensemble_mix(kw, message):
    X, y, groups = _data(n=16)
    with pytest.raises(ValueError, match=message):
        _est(**kw).fit(X, y, groups=groups)


def test_a_mix_entry_the_model_cannot_take_fails_before_any_member_trains(monkeypatch):
    from eegattn.training import loop

    trained = []
    monkeypatch.setattr(loop.TrainingLoop, "run", lambda self: trained.append(self))
    X, y, _ = _data(n=16)
    with pytest.raises(ValueError, match=r"\(ensemble member 2/2: change entry 1 of "
                                         r"ensemble_mix\): kernel=4"):
        _est(ensemble=2, ensemble_mix=[{"head": "softargmax"},
                                       {"head": "softargmax", "head_options": {"kernel": 4}}]
             ).fit(X, y)
    assert trained == []


def test_negative_correlation_criterion_rewards_the_members_spread():
    from torch import nn

    from eegattn.training.loop import negative_correlation_criterion

    class Timed(nn.Module):  # a member with a head criterion of its own: reads its W outputs
        def loss_criterion(self):
            return lambda out, y: (out[:, 1] - y).abs().mean()

    y = torch.tensor([1.0, 2.0])
    # two regression members (W = 1): predictions 1.5, 2.5 and 0.5, 1.5 (spread 0.25 each)
    out = torch.tensor([[1.5, 0.5], [2.5, 1.5]])
    plain = negative_correlation_criterion([nn.Identity()] * 2, nn.MSELoss(), 0.0, 1.0)
    assert plain(out, y).item() == pytest.approx(0.25)  # the members' mean loss
    joint = negative_correlation_criterion([nn.Identity()] * 2, nn.MSELoss(), 0.5, 0.5)
    assert joint(out, y).item() == pytest.approx((0.25 - 0.5 * 0.25) / 0.5)
    # diversity 1: only the ensemble mean's error is left (here 0: the mean is exact)
    whole = negative_correlation_criterion([nn.Identity()] * 2, nn.MSELoss(), 1.0, 0.5)
    assert whole(out, y).item() == pytest.approx(0.0, abs=1e-7)
    # members with their own criterion read their whole output besides the squared error of
    # column 0, their prediction, which also gives the spread
    timed = negative_correlation_criterion([Timed(), Timed()], nn.MSELoss(), 1.0, 1.0)
    out = torch.tensor([[1.0, 1.0, 2.0, 2.0], [1.0, 3.0, 1.0, 1.0]])  # (b, K * W), W = 2
    # own criteria 0.5 and 1.0; squared errors (0 + 1) / 2 and (1 + 1) / 2; spread 0.125
    assert timed(out, y).item() == pytest.approx((0.5 + 1.0) / 2 + (0.5 + 1.0) / 2 - 0.125)


def test_joint_members_train_together_and_spread_with_the_diversity():
    X, y, groups = _data()
    kw = dict(ensemble=3, ensemble_split="joint", seed=5, valid_fraction=0.25, max_epochs=3)
    together = _est(ensemble_diversity=0.0, **kw).fit(X, y, groups=groups)
    spread = _est(ensemble_diversity=1.0, **kw).fit(X, y, groups=groups)
    members = spread.predict_members(X)
    np.testing.assert_allclose(spread.predict(X), members.mean(1), rtol=1e-5, atol=1e-6)
    assert members.std(1).mean() > 2 * together.predict_members(X).std(1).mean()
    # at diversity 1 the loss is the ensemble mean's squared error: it has a floor at 0
    assert min(r["train_loss"] for r in spread.history_) >= 0
    assert len(spread.history_) == 3 and "member" not in spread.history_[0]  # one loop
    assert spread.members_best_epoch_ == [spread.best_epoch_] * 3
    assert spread.ensemble_members_ == [{"model": "lightweight_fast",
                                         "model_options": SMALL}] * 3
    assert spread.n_trainable_ == together.n_trainable_ == sum(
        p.numel() for p in spread.model_.members[0].parameters())


def test_diversity_enters_a_checkpoints_fingerprint_only_when_joint():
    # checkpoints written before the parameter existed still resume unless joint
    X, y, groups = _data(n=16)
    assert "ensemble_diversity" not in _est()._fingerprint(X, y, groups)["params"]
    joint = _est(ensemble=2, ensemble_split="joint")._fingerprint(X, y, groups)["params"]
    assert joint["ensemble_diversity"] == "0.5"
