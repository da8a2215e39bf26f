"""Foundation backbones behind the HBN adapter: build, train a step, save / from_pretrained
round trips, fine-tuning modes (full, frozen, LoRA through peft) and torch-only export.

Tiny random configurations only (the ``*_tiny`` presets): nothing is downloaded.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegattn.models import build_model
from eegattn.training.finetune import (
    finish_finetune,
    head_module_names,
    init_model_options,
    load_init,
    prepare_finetune,
    resolve_init,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ("steegformer_tiny", "cbramod_tiny", "labram_tiny")


def volts(n, seed=0, n_times=200):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 129, n_times, generator=g) * 2e-5


def backbone_state(model):
    return {k: v.detach().clone() for k, v in model.backbone.state_dict().items()}


@pytest.mark.parametrize("name", TINY)
def test_backbone_builds_and_trains_a_step(name):
    torch.manual_seed(0)
    model = build_model(name)
    x, y = volts(2), torch.tensor([1.0, 1.5])
    out = model(x)
    assert out.shape == (2, 1) and torch.isfinite(out).all()
    before = backbone_state(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    loss = torch.nn.functional.mse_loss(model(x)[:, 0], y)
    loss.backward()
    opt.step()
    after = backbone_state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed, "a training step must change backbone weights"
    # every head of the registry works on the time tokens
    soft = build_model(name, head="softargmax")
    assert soft(x).shape == (2, 1)
    with pytest.raises(ValueError, match="expected windows of"):
        model(volts(2)[:, :100])


def test_adapter_resamples_like_scipy_and_maps_channels_by_position():
    from scipy.signal import resample_poly

    from eegattn.data.montage import channel_index
    from eegattn.models.foundation import Resample, nearest_vocabulary_slots

    x = np.random.default_rng(0).standard_normal((2, 3, 200))
    r = Resample(200, 100.0, 128.0)
    want = resample_poly(x, 32, 25, axis=-1, padtype="line")
    got = r(torch.as_tensor(x, dtype=torch.float32)).numpy()
    assert got.shape == (2, 3, 256)
    np.testing.assert_allclose(got, want, atol=1e-5)
    vocab = ["Fp1", "Fz", "Cz", "Pz", "Oz", "C3", "C4", "NOT_AN_ELECTRODE"]
    slots = nearest_vocabulary_slots(vocab)
    assert len(slots) == 129
    for landmark, channel in (("Fz", "E11"), ("Pz", "E62"), ("Oz", "E75"), ("Cz", "Cz"),
                              ("C3", "E36"), ("C4", "E104")):
        assert vocab[slots[channel_index(channel)]] == landmark


@pytest.mark.parametrize("name", TINY)
def test_save_pretrained_round_trip_loads_the_backbone(name, tmp_path):
    torch.manual_seed(1)
    source = build_model(name).eval()
    source.backbone.save_pretrained(tmp_path)  # what braindecode's from_pretrained reads
    init = resolve_init(tmp_path)
    assert init.kind == "braindecode"
    # the config tells which backbone and which size: no --model needed
    model_name, options = init_model_options(None, None, init)
    assert build_model(model_name, **options).backbone_name == source.backbone_name
    torch.manual_seed(2)  # other random weights, then the folder's
    target = build_model(model_name, **options).eval()
    report = load_init(target, init)
    assert report["loaded"] == report["of"] > 0
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, target.backbone.state_dict()[key]), key
    x = volts(3)
    with torch.no_grad():  # same tokens: the backbones agree
        a = source.backbone(source.resample(source.normalize(x)), return_features=True)
        b = target.backbone(target.resample(target.normalize(x)), return_features=True)
    assert torch.allclose(a["features"], b["features"])


def test_init_errors_name_the_fix(tmp_path, monkeypatch):
    from eegattn.training import finetune

    torch.manual_seed(0)
    build_model("steegformer_tiny").backbone.save_pretrained(tmp_path / "bd")
    init = resolve_init(tmp_path / "bd")
    wider = build_model("steegformer_tiny", backbone_options={"embed_dim": 16, "depth": 1,
                                                              "num_heads": 2})
    with pytest.raises(ValueError, match="differ in shape.*options the weights were trained"):
        load_init(wider, init)
    with pytest.raises(ValueError, match="holds steegformer weights.*--model steegformer"):
        init_model_options("cbramod_tiny", None, init)
    with pytest.raises(ValueError, match="use a foundation model"):
        init_model_options("lightweight", None, init)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_init(tmp_path / "missing")
    # a hub id without a network: one line, nothing downloaded, the local-folder fix
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(finetune, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ValueError) as err:
        resolve_init("hf:braindecode/STEEGFormer-small")
    message = str(err.value)
    assert "\n" not in message
    assert "nothing can be downloaded here" in message and "--init DIR" in message
    assert not (tmp_path / "empty-cache").exists() or not any(
        (tmp_path / "empty-cache").iterdir())


def _step(module, x, y):
    params = [p for p in module.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.1)
    loss = torch.nn.functional.mse_loss(module(x)[:, 0], y)
    loss.backward()
    opt.step()


def _named(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


@pytest.mark.parametrize("name", ("cbramod_tiny", "lightweight"))
def test_finetune_modes_train_what_they_say(name):
    options = {"conv_channels": (8, 16), "head_hidden": (8,)} if name == "lightweight" else {}
    x, y = volts(4, seed=3), torch.tensor([1.0, 1.5, 0.8, 2.0])
    torch.manual_seed(0)
    base = build_model(name, **options)
    heads = head_module_names(base)

    def in_head(key):
        return any(key == h or key.startswith(h + ".") for h in heads)

    # frozen: backbone weights unchanged after a step, head changed
    model = prepare_finetune(build_model(name, **options), "frozen")
    model.load_state_dict(base.state_dict())
    before = _named(model)
    _step(model, x, y)
    after = _named(model)
    assert all(torch.equal(before[k], after[k]) for k in before if not in_head(k))
    assert any(not torch.equal(before[k], after[k]) for k in before if in_head(k))

    # lora: only adapters and the head require gradients, and only they change
    model = build_model(name, **options)
    model.load_state_dict(base.state_dict())
    peft_model = prepare_finetune(model, "lora", {"r": 2})
    trainable = [k for k, p in peft_model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in k or "modules_to_save" in k for k in trainable)
    assert any("lora_" in k for k in trainable)
    before = _named(peft_model)
    _step(peft_model, x, y)
    after = _named(peft_model)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and changed <= set(trainable)
    with torch.no_grad():
        want = peft_model.eval()(x)
    merged = finish_finetune(peft_model)
    assert type(merged) is type(base)  # the plain architecture again
    assert set(merged.state_dict()) == set(base.state_dict())
    with torch.no_grad():
        assert torch.allclose(merged.eval()(x), want, atol=1e-5)

    # full: every weight trains
    model = prepare_finetune(build_model(name, **options), "full")
    model.load_state_dict(base.state_dict())
    before = _named(model)
    _step(model, x, y)
    after = _named(model)
    grads = {k for k, p in model.named_parameters() if p.requires_grad}
    assert sum(not torch.equal(before[k], after[k]) for k in grads) >= 0.9 * len(grads)


def test_estimator_init_and_frozen_backbone(tmp_path):
    from eegattn.training.estimator import EEGAttentionRegressor

    torch.manual_seed(0)
    source = build_model("cbramod_tiny")
    source.backbone.save_pretrained(tmp_path)
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((12, 129, 200)) * 2e-5).astype(np.float32)
    y = rng.uniform(0.5, 2.0, 12).astype(np.float32)
    est = EEGAttentionRegressor("cbramod_tiny", init=str(tmp_path), finetune="frozen",
                                max_epochs=1, batch_size=4, early_stopping=False,
                                valid_fraction=0.0, verbose=0).fit(X, y)
    assert est.init_report_["loaded"] == est.init_report_["of"]
    for key, value in source.backbone.state_dict().items():
        assert torch.equal(value, est.model_.backbone.state_dict()[key]), key
    assert est.n_trainable_ < sum(p.numel() for p in est.model_.parameters()) / 10
    lora = EEGAttentionRegressor("cbramod_tiny", init=str(tmp_path), finetune="lora",
                                 lora_options={"r": 2}, max_epochs=1, batch_size=4,
                                 early_stopping=False, valid_fraction=0.0, verbose=0).fit(X, y)
    assert type(lora.model_).__name__ == "FoundationRegressor"  # adapters merged
    assert lora.predict(X[:3]).shape == (3,)
    with pytest.raises(ValueError, match="finetune"):
        EEGAttentionRegressor("cbramod_tiny", finetune="partial").fit(X, y)


def test_foundation_models_package_and_validate(tmp_path):
    """Each foundation backbone traces into a torch-only zip that the validator accepts (run
    without eegattn and braindecode)."""
    from eegattn.submission import validate_submission
    from eegattn.submission.package import package_models

    torch.manual_seed(0)
    pairs = {"a": ("steegformer_tiny", "labram_tiny"), "b": ("cbramod_tiny", "cbramod_tiny")}
    for key, (c1, c2) in pairs.items():
        zip_path = tmp_path / f"{key}.zip"
        package_models(build_model(c1).eval(), build_model(c2).eval(), zip_path,
                       info_c1={"model": c1}, info_c2={"model": c2}, check_batch_sizes=(1, 3))
        report = validate_submission(zip_path, batch_sizes=(1, 4), timing_batch=None)
        assert report.ok, [f.message for f in report.errors]
