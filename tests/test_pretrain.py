"""`eegattn pretrain` (masked reconstruction on unlabeled windows) and `eegattn train --init`
end to end on a tiny synthetic release; the objective's masks and loss; one-line errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from eegattn.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = '{"conv_channels": [8, 16], "head_hidden": [8], "position_readout": 2}'
TINY = {"trials_per_run": (8, 10), "max_runs": 1, "rest_seconds": 16.0}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    from eegattn.training.pipeline import prepare_synthetic

    cache = tmp_path_factory.mktemp("pretrain-cache")
    root = prepare_synthetic(["R5"], cache_dir=cache, n_subjects=8, **TINY)
    return root, cache


def test_masks_and_loss_count_only_hidden_samples():
    from eegattn.models import build_model
    from eegattn.training.pretrain import MaskedReconstruction

    torch.manual_seed(0)
    model = build_model("lightweight_fast", conv_channels=(8, 16), head_hidden=(8,))
    net = MaskedReconstruction(model, 129, 200, mask_ratio=0.5, channel_mask_ratio=0.25)
    assert net.n_tokens * net.patch >= 200
    gen = torch.Generator().manual_seed(1)
    mask = net.draw_masks(64, "cpu", generator=gen)
    assert mask.shape == (64, 129, 200) and mask.any(dim=(1, 2)).all()
    # a masked channel is masked at every sample; time patches are shared by all channels
    full = mask.all(dim=2).float().mean()
    assert 0.15 < float(full) < 0.35
    x = torch.randn(4, 129, 200) * 2e-5
    with torch.no_grad():
        out = net(x)
    assert out.shape == (4, 3, 129, 200)
    target, m = out[:, 1], out[:, 2]
    perfect = torch.stack([target, target, m], 1)
    assert float(net.criterion(perfect, None)) == 0.0
    off_mask = torch.stack([target + (1 - m) * 5.0, target, m], 1)  # errors where unmasked
    assert float(net.criterion(off_mask, None)) == 0.0
    on_mask = torch.stack([target + m * 2.0, target, m], 1)
    assert float(net.criterion(on_mask, None)) == pytest.approx(4.0)
    with pytest.raises(ValueError, match="no `pool`"):
        MaskedReconstruction(build_model("eegnex"), 129, 200)


def test_pretraining_lowers_the_reconstruction_loss(release):
    from eegattn.training.pretrain import pretrain, unlabeled_windows

    root, _ = release
    windows = unlabeled_windows(root, ["R5"])
    assert "contrastChangeDetection" not in windows.info["tasks"]
    assert windows.X.shape[1:] == (129, 200) and len(set(windows.groups)) >= 4
    result = pretrain(windows, model="lightweight_fast",
                      model_options=json.loads(SMALL), epochs=6, batch_size=16, lr=3e-3,
                      seed=0, verbose=0)
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < 0.9 * losses[0], losses
    m = result.metrics
    assert m["heldout_loss"] is not None and m["n_heldout_windows"] > 0
    assert set(result.info["heldout_subjects"]).isdisjoint(result.info["train_subjects"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_pretrain_then_train_init_end_to_end(release, tmp_path, capsys):
    root, cache = release
    out = tmp_path / "pre"
    assert main(["pretrain", "--root", str(root), "--out", str(out), "--model",
                 "lightweight_fast", "--model-options", SMALL, "--epochs", "1",
                 "--batch-size", "16", "--quiet"]) == 0
    for name in ("pretrain.json", "config.json", "weights.pt", "history.json"):
        assert (out / name).is_file(), name
    info = json.loads((out / "pretrain.json").read_text())
    assert info["objective"] == "masked" and "contrastChangeDetection" not in info["tasks"]
    # a second pretraining never overwrites the folder
    assert main(["pretrain", "--root", str(root), "--out", str(out), "--quiet"]) == 2
    assert "not an empty folder" in capsys.readouterr().err

    runs = tmp_path / "runs"
    code = main(["train", "--challenge", "1", "--root", str(root), "--cache-dir", str(cache),
                 "--runs-dir", str(runs), "--init", str(out), "--finetune", "frozen",
                 "--epochs", "1", "--batch-size", "16", "--test-fraction", "0.25",
                 "--quiet"])
    err = capsys.readouterr().err
    assert code == 0, err
    # every subject's rest windows were in the pretraining: the test is transductive
    assert "was pretrained on windows of" in err
    (run,) = runs.iterdir()
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == "lightweight_fast"  # the folder's model, no --model given
    assert config["model_options"]["conv_channels"] == [8, 16]
    assert config["estimator"]["init"] == str(out)
    assert config["estimator"]["finetune"] == "frozen"
    # frozen: the run's encoder weights are the pretrained ones
    pre = torch.load(out / "weights.pt", weights_only=True)
    fine = torch.load(run / "weights.pt", weights_only=True)
    encoder = [k for k in pre if k.startswith("conv_stages.") and k.endswith("weight")]
    assert encoder and all(torch.equal(pre[k], fine[k]) for k in encoder)
    assert not torch.equal(pre["head.0.weight"], fine["head.0.weight"])


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bad_init_and_pretrain_options_fail_with_one_line(tmp_path, capsys, monkeypatch):
    from eegattn.training import finetune

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(finetune, "_hub_reachable", lambda timeout=3.0: False)
    cache, runs = tmp_path / "cache", tmp_path / "runs"
    assert main(["train", "--challenge", "1", "--cache-dir", str(cache), "--runs-dir",
                 str(runs), "--init", "hf:braindecode/STEEGFormer-small"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "nothing can be downloaded here" in err
    assert not cache.exists() and not runs.exists()
    for extra, message in ((["--model", "eegnex"], "no `pool`"),
                           (["--model", "nope"], "unknown model"),
                           (["--tasks", "restingstate"], "Did you mean 'RestingState'"),
                           (["--init", str(tmp_path / "missing")], "no such folder")):
        assert main(["pretrain", "--out", str(tmp_path / "o"), "--cache-dir", str(cache),
                     *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
        assert not cache.exists() and not (tmp_path / "o").exists()


def test_pretrain_folder_loads_all_but_the_head(tmp_path):
    from eegattn.models import build_model
    from eegattn.training.finetune import load_init, resolve_init
    from eegattn.training.pretrain import PretrainResult, write_pretrain_folder

    torch.manual_seed(0)
    options = {"conv_channels": (8, 16), "head_hidden": (8,)}
    model = build_model("lightweight", **options)
    info = {"objective": "masked", "tasks": ["RestingState"], "train_subjects": ["A"],
            "heldout_subjects": []}
    write_pretrain_folder(tmp_path / "p", PretrainResult(model, [], {"x": 1.0}, info),
                          model="lightweight", model_options=options)
    torch.manual_seed(1)
    fresh = build_model("lightweight", **options)
    head_before = {k: v.clone() for k, v in fresh.state_dict().items() if k.startswith("head")}
    report = load_init(fresh, resolve_init(tmp_path / "p"))
    assert report["kind"] == "pretrain" and report["loaded"] == report["of"]
    for key, value in model.state_dict().items():
        if key.startswith("head"):
            assert torch.equal(fresh.state_dict()[key], head_before[key]), key
        else:
            assert torch.equal(fresh.state_dict()[key], value), key
    assert np.isfinite(report["loaded"])


@pytest.mark.parametrize("name", ["steegformer_tiny", "cbramod_tiny", "labram_tiny"])
def test_foundation_backbones_pretrain_by_reconstruction(name):
    """Every registry backbone has time tokens at its `pool`: one reconstruction step
    changes its backbone and leaves its head alone."""
    from eegattn.models import build_model
    from eegattn.training.pretrain import MaskedReconstruction

    torch.manual_seed(0)
    model = build_model(name)
    net = MaskedReconstruction(model, 129, 200)
    assert net.n_tokens == model.n_time_tokens
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    loss = net.criterion(net(torch.randn(2, 129, 200) * 2e-5), None)
    assert torch.isfinite(loss)
    loss.backward()
    opt.step()
    changed = {k for k, v in model.named_parameters() if not torch.equal(before[k], v)}
    assert any(k.startswith("backbone.") for k in changed)
    assert not any(k.startswith("head.") for k in changed)
