"""Heads that read a latency off time tokens: shapes, targets outside the window, training,
and export through a validated submission."""

import warnings

import numpy as np
import pytest
import torch

from eegattn.models import build_model
from eegattn.models.heads import DEFAULT_KERNEL, TimeHead, check_head
from eegattn.training.loop import head_criterion, init_output_bias

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py
SMALL = {
    "lightweight_fast": {"conv_channels": (16, 32), "channel_reduction": 8, "head_hidden": (8,)},
    "eegnex": {"eegnex_options": {"filter_1": 4, "filter_2": 8}},
}


def volts(batch, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 129, 200, generator=g) * 20e-6


def head(**kw):
    torch.manual_seed(0)
    return TimeHead(8, 10, window_s=2.0, time_origin=0.5, **kw)


def test_latencies_cover_the_window_and_its_two_outsides():
    lat = head().latencies().detach()
    assert lat.shape == (12,)
    np.testing.assert_allclose(lat[1:-1].numpy(), 0.5 + 0.2 * (np.arange(10) + 0.5), rtol=1e-6)
    assert lat[0] < 0.5 < 2.5 < lat[-1]  # "before" and "after" the window
    assert torch.all(lat[1:] > lat[:-1])


def test_target_distribution_puts_out_of_window_presses_in_the_edge_bins():
    h = head(distribution=True, sigma=0.05)
    q = h.target_distribution(torch.tensor([0.2, 1.5, 3.1]))
    assert torch.allclose(q.sum(1), torch.ones(3))
    assert q[0].argmax() == 0 and q[2].argmax() == 11  # before / after the window
    assert q[1].argmax() in (5, 6)  # 1.5 s is the edge between tokens 4 and 5 (bins 5, 6)
    assert torch.isfinite(q).all()


@pytest.mark.parametrize("loss", ["ce", "wasserstein"])
def test_criterion_prefers_the_right_latency(loss):
    h = head(distribution=True, loss=loss).train()
    tokens = torch.zeros(2, 10, 8)
    out = h(tokens)  # (b, 1 + 12): uniform prediction
    assert out.shape == (2, 13)
    # a prediction peaked at token 3 (1.2 s)
    peaked = torch.full((2, 12), -20.0)
    peaked[:, 4] = 0.0
    output = torch.cat([torch.zeros(2, 1), torch.log_softmax(peaked, 1)], 1)
    right = h.criterion(output, torch.tensor([1.2, 1.2]))
    wrong = h.criterion(output, torch.tensor([2.2, 2.2]))
    assert right < wrong and torch.isfinite(right)


@pytest.mark.parametrize("kernel, lag", [(1, 0), (5, 2)])
def test_softargmax_head_learns_where_a_marker_is(kernel, lag):
    # kernel 1 reads the token at the press; kernel 5 also finds a marker two tokens after it
    # (a wave after the press), which a token scored alone cannot place
    torch.manual_seed(0)
    h = TimeHead(4, 20, window_s=2.0, time_origin=0.5, kernel=kernel)
    opt = torch.optim.Adam(h.parameters(), lr=0.05 if kernel == 1 else 0.01)
    positions = torch.randint(0, 20 - lag, (256,))
    tokens = torch.randn(256, 20, 4) * 0.1
    tokens[torch.arange(256), positions + lag, 0] += 3.0  # a marker in channel 0
    y = 0.5 + 0.1 * (positions.float() + 0.5)
    before = float(torch.mean((h(tokens)[:, 0] - y) ** 2))
    for _ in range(150):
        opt.zero_grad()
        loss = torch.mean((h(tokens)[:, 0] - y) ** 2)
        loss.backward()
        opt.step()
    assert float(loss) < 0.05 * before  # it found the marker, not the mean


@pytest.mark.parametrize("name", ["lightweight_fast", "eegnex"])
@pytest.mark.parametrize("kind", ["softargmax", "distribution"])
def test_every_model_takes_a_time_head_that_traces(name, kind):
    torch.manual_seed(0)
    model = build_model(name, head=kind, **SMALL[name])
    x = volts(3)
    out = model.train()(x)
    # training output: the prediction, plus the distribution head's log-probabilities
    assert out.shape[1] == 1 if kind == "softargmax" else out.shape[1] > 3
    assert (head_criterion(model) is not None) == (kind == "distribution")
    # a time head starts at the targets' distribution over its bins: its expectation moves
    # from the window's centre to near the targets' mean
    model.eval()
    with torch.no_grad():
        flat = model(x).mean().item()
        assert init_output_bias(model, np.full(2000, 0.8))
        started = model(x).mean().item()
    assert abs(flat - 1.5) < 0.3 and abs(started - 0.8) < 0.2
    model.train()
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model, x)
    pred = model(x)
    assert pred.shape == (3, 1)
    assert torch.all((pred > 0.3) & (pred < 2.8))  # seconds after the stimulus
    torch.testing.assert_close(traced(volts(4, seed=1)), model(volts(4, seed=1)))


def test_regression_head_is_unchanged_by_default():
    torch.manual_seed(0)
    a = build_model("lightweight_fast", **SMALL["lightweight_fast"])
    torch.manual_seed(0)
    b = build_model("lightweight_fast", head="regression", **SMALL["lightweight_fast"])
    assert a.state_dict().keys() == b.state_dict().keys()
    assert head_criterion(a) is None


@pytest.mark.parametrize("options, message", [
    ({"head": "argmax"}, "'head' parameter"),
    ({"head": "softargmax", "head_options": {"sigma": 0.1}}, "unknown head option"),
    ({"head": "distribution", "head_options": {"loss": "kl2"}}, "'loss' parameter"),
    ({"head": "distribution", "head_options": {"sigma": 0}}, "'sigma' parameter"),
    ({"head": "softargmax", "head_options": {"kernel": 4}}, "must be odd"),
    ({"head": "softargmax", "head_options": {"kernel": 0}}, "'kernel' parameter"),
])
def test_bad_head_options(options, message):
    with pytest.raises(ValueError, match=message):
        build_model("lightweight_fast", **options)


def test_check_head_fills_defaults():
    assert check_head("distribution", None) == {"time_origin": 0.5, "kernel": DEFAULT_KERNEL,
                                                "sigma": 0.1, "loss": "ce"}
    assert check_head("regression", {}) == {}


def test_estimator_trains_a_distribution_head(tmp_path):
    from eegattn.training.estimator import EEGAttentionRegressor

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(48, 129, 200)) * 2e-5).astype(np.float32)
    y = rng.uniform(0.3, 2.7, 48).astype(np.float32)  # some presses outside the window
    est = EEGAttentionRegressor(
        "lightweight_fast", {**SMALL["lightweight_fast"], "head": "distribution"},
        max_epochs=2, batch_size=16, valid_fraction=0.25, verbose=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y, groups=np.repeat(np.arange(8), 6))
    pred = est.predict(X[:5])
    assert pred.shape == (5,) and np.isfinite(pred).all()
    assert all(np.isfinite(h["train_loss"]) and np.isfinite(h["valid_loss"])
               for h in est.history_)
    assert est.output_bias_initialized_  # the head's prior, from the training targets


def test_time_head_runs_package_and_validate(tmp_path):
    from eegattn.submission import package_submission, validate_submission
    from eegattn.training.runs import create_run_dir, save_run

    runs = []
    for challenge, name, kind in ((1, "lightweight_fast", "distribution"),
                                  (2, "eegnex", "softargmax")):
        torch.manual_seed(challenge)
        options = {**SMALL[name], "head": kind}
        run = create_run_dir(tmp_path, f"{name}-c{challenge}")
        save_run(run, build_model(name, **options),
                 config={"model": name, "model_options": options, "challenge": challenge})
        runs.append(run)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        packed = package_submission(runs[0], runs[1], tmp_path / "heads.zip",
                                    check_batch_sizes=(1, 3))
        report = validate_submission(packed.path, batch_sizes=(1, 4), timing_batch=None)
    assert report.ok, report  # loaded and run in a clean interpreter without eegattn


@pytest.mark.parametrize("ensemble", [False, True])
def test_run_folders_from_before_the_kernel_load_as_kernel_1(tmp_path, ensemble):
    from eegattn.training.runs import CONFIG_NAME, create_run_dir, load_run, save_run

    # what such a run saved: kernel-1 weights, and options that do not name the kernel
    options = {**SMALL["lightweight_fast"], "head": "softargmax"}
    torch.manual_seed(0)
    model = build_model("lightweight_fast", **options, head_options={"kernel": 1})
    name, saved = "lightweight_fast", options
    if ensemble:
        member = {"model": name, "model_options": options}
        model = build_model("ensemble", members=[
            {"model": name, "model_options": {**options, "head_options": {"kernel": 1}}}] * 2)
        name, saved = "ensemble", {"members": [member, member]}
    run = create_run_dir(tmp_path, "old")
    save_run(run, model, config={"model": name, "model_options": saved})
    assert "kernel" not in (run / CONFIG_NAME).read_text()
    with pytest.warns(UserWarning, match="before time heads read a span"):
        loaded, config = load_run(run)
    x = volts(2)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    assert "'kernel': 1" in repr(config["model_options"])
    assert "kernel" not in (run / CONFIG_NAME).read_text()  # the folder is left as it was


def test_an_old_time_head_in_a_mixed_ensemble_loads_as_kernel_1_alone(tmp_path):
    from eegattn.training.runs import create_run_dir, load_run, save_run

    # an old softargmax member (kernel-1 weights, no kernel option), a regression member and
    # a current kernel-3 member: only the first is read as kernel 1
    base = SMALL["lightweight_fast"]
    old = {**base, "head": "softargmax"}
    today = {**base, "head": "distribution", "head_options": {"kernel": 3}}
    torch.manual_seed(0)
    model = build_model("ensemble", members=[
        {"model": "lightweight_fast", "model_options": {**old, "head_options": {"kernel": 1}}},
        {"model": "lightweight_fast", "model_options": base},
        {"model": "lightweight_fast", "model_options": today}])
    saved = {"members": [{"model": "lightweight_fast", "model_options": o}
                         for o in (old, base, today)]}
    run = create_run_dir(tmp_path, "old-mixed")
    save_run(run, model, config={"model": "ensemble", "model_options": saved})
    with pytest.warns(UserWarning, match="before time heads read a span"):
        loaded, config = load_run(run)
    x = volts(2)
    torch.testing.assert_close(loaded(x), model.eval()(x))
    members = [m["model_options"] for m in config["model_options"]["members"]]
    assert [m.get("head_options") for m in members] == [{"kernel": 1}, None, {"kernel": 3}]
