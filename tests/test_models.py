"""EEG models: parameter counts, shapes, determinism, input checks, normalisation, pickling."""

from __future__ import annotations

import copy
import io
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from eegattn.attention import InattentionDropout, available_attention
from eegattn.models import available_models, build_model, model_class, model_options
from eegattn.models.normalization import EEGInputNormalization, check_eeg_input

ALL = ["lightweight", "improved", "lightweight_noattn", "eegnex"]
FLOORS = ["ridge", "featureridge"]  # closed-form linear floors (models/ridge.py, features.py)
COMBINERS = ["ensemble"]  # registry models as one module (models/ensemble.py)
PRESETS = ["lightweight_fast"]
# braindecode foundation backbones (tests/test_foundation.py covers them)
FOUNDATION = ["foundation", "steegformer", "cbramod", "labram", "steegformer_tiny",
              "cbramod_tiny", "labram_tiny"]
SMALL = {"n_chans": 8, "n_times": 64}  # fast configurations for behaviour tests
SMALL_OPTIONS = {
    "lightweight": {"conv_channels": (16, 64), "channel_reduction": 4, "head_hidden": (8,)},
    "improved": {"conv_channels": (16, 64, 64), "channel_reduction": 4, "head_hidden": (8,)},
    "lightweight_noattn": {"conv_channels": (16, 64), "head_hidden": (8,)},
    "eegnex": {},
}


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def eeg(batch: int, n_chans: int, n_times: int, seed: int = 0) -> torch.Tensor:
    """Random windows in volts (about 20 uV) with per-channel DC offsets."""
    g = torch.Generator().manual_seed(seed)
    signal = torch.randn(batch, n_chans, n_times, generator=g) * 20e-6
    offset = torch.randn(batch, n_chans, 1, generator=g) * 1e-3
    return signal + offset


def small(name: str, **options) -> nn.Module:
    torch.manual_seed(0)
    return build_model(name, **SMALL, **{**SMALL_OPTIONS[name], **options})


# --------------------------------------------------------------------------------------------
# registry


def test_available_models_and_unknown_names():
    assert available_models() == sorted(ALL + PRESETS + FLOORS + COMBINERS + FOUNDATION)
    with pytest.raises(ValueError, match="unknown model 'resnet'.*eegnex.*lightweight"):
        build_model("resnet")
    with pytest.raises(ValueError, match="unknown option.*'kernel'.*valid options:.*dropout"):
        build_model("lightweight", kernel=3)


def test_importing_models_package_does_not_import_braindecode():
    code = (
        "import sys, eegattn.models as m; m.available_models(); "
        "print('braindecode' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_models_are_braindecode_modules():
    from braindecode.models.base import EEGModuleMixin

    for name in ALL:
        model = small(name)
        assert isinstance(model, EEGModuleMixin) and isinstance(model, nn.Module)
        assert (model.n_chans, model.n_times, model.n_outputs) == (8, 64, 1)
        assert model.sfreq == 100.0
        assert model_class(name) is type(model)


# --------------------------------------------------------------------------------------------
# the sparse-attention challenge entry's parameter counts and structure


def test_sparse_entry_parameter_counts_at_129_x_200():
    assert n_params(build_model("lightweight")) == 846_289
    assert n_params(build_model("improved")) == 6_163_375
    # lightweight minus the channel gate (2,064) and the attention block (526,592)
    assert n_params(build_model("lightweight_noattn")) == 317_633


def test_sparse_entry_structure():
    light = build_model("lightweight")
    assert [s.conv.out_channels for s in light.conv_stages] == [128, 256]
    assert [s.conv.kernel_size[0] for s in light.conv_stages] == [7, 5]
    block = light.attention_blocks[0]
    assert type(block.attention).__name__ == "SparseTokenAttention"
    assert sorted(n for n, _ in block.attention.named_children() if n.endswith("proj")) == [
        "k_proj",
        "out_proj",
        "q_proj",
        "v_proj",
    ]
    improved = build_model("improved")
    assert len(improved.attention_blocks) == 2
    assert improved.temporal_attention.kernel_size == 7
    assert improved.channel_attention.reduction_ratio == 8
    assert improved.head[0].in_features == 1024  # average + max pool of 512


def test_lightweight_fast_preset_is_the_lightweight_model_with_other_defaults():
    from eegattn.models import LightweightResponseTimeCNNWithAttention, preset

    base, defaults = preset("lightweight_fast")
    assert base == "lightweight" and model_class("lightweight_fast") is model_class(base)
    assert preset("lightweight") == ("lightweight", {})
    with pytest.raises(ValueError, match="unknown model 'fast'"):
        preset("fast")
    assert model_options("lightweight_fast") == {**model_options("lightweight"), **defaults}
    fast = build_model("lightweight_fast")
    assert isinstance(fast, LightweightResponseTimeCNNWithAttention)
    # the entry's weights plus 32,768 head weights for the average + max pooled vector (2 x 256)
    # and the position read-out: 256 x 4 projection + bias, 25 tokens x 4 into the head's 128
    assert n_params(fast) == 846_289 + 256 * 128 + (256 * 4 + 4) + 25 * 4 * 128 == 892_885
    assert (fast.pool.n_tokens, fast.pool.k) == (25, 4)
    assert [s.conv.stride[0] for s in fast.conv_stages] == [4, 2]
    assert not any(isinstance(m, nn.MaxPool1d) for m in fast.modules())
    # element dropout off; whole feature maps and attention weights dropped instead
    drops = {n: m.p for n, m in fast.named_modules() if isinstance(m, nn.Dropout)}
    assert drops.pop("attention_blocks.0.attention.dropout") == 0.5
    assert drops and all(p == 0 for p in drops.values())
    assert [s.channel_drop.p for s in fast.conv_stages] == [0.3, 0.3]
    preset("lightweight_fast")[1]["attention_options"]["dropout"] = 0.0  # a caller's copy
    assert preset("lightweight_fast")[1]["attention_options"] == {"dropout": 0.5}
    tokens = fast.conv_stages(torch.zeros(1, 129, 200))
    assert tokens.shape == (1, 256, 25)
    assert fast.eval()(eeg(2, 129, 200)).shape == (2, 1)
    # options given to build_model override the preset's, and the preset stays as it was
    slow = build_model("lightweight_fast", pool_sizes=(2, 2), dropout=0.3)
    assert [s.conv.stride[0] for s in slow.conv_stages] == [2, 2]
    assert slow.conv_stages[0].drop.p == 0.3
    assert preset("lightweight_fast")[1] == defaults


def test_output_shapes_at_129_x_200():
    x = eeg(2, 129, 200)
    for name in ALL:
        model = build_model(name, n_outputs=3).eval()
        with torch.no_grad():
            assert model(x).shape == (2, 3)


@pytest.mark.parametrize("name", ALL)
def test_other_channel_counts_and_window_lengths(name):
    # odd lengths: 75 -> 37 -> 18 after the two pools
    model = build_model(name, n_chans=24, n_times=75, **SMALL_OPTIONS[name]).eval()
    with torch.no_grad():
        out = model(eeg(3, 24, 75))
    assert out.shape == (3, 1) and torch.isfinite(out).all()


def test_too_short_window_is_a_clear_error():
    with pytest.raises(ValueError, match="n_times=3 is too short"):
        build_model("lightweight", n_times=3)


# --------------------------------------------------------------------------------------------
# determinism and gradients


@pytest.mark.parametrize("name", ALL)
def test_eval_is_deterministic(name):
    model = small(name).eval()
    x = eeg(4, 8, 64)
    with torch.no_grad():
        first = model(x)
        torch.manual_seed(123)  # a different global RNG state must not matter
        second = model(x)
    assert torch.equal(first, second)


@pytest.mark.parametrize("name", ["lightweight", "improved", "lightweight_noattn"])
@pytest.mark.parametrize("inattention", [False, True])
def test_gradients_reach_every_parameter(name, inattention):
    model = small(name, dropout=0.1, inattention=inattention).train()
    out = model(eeg(6, 8, 64))
    out.pow(2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None, pname
        assert torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


def test_eegnex_gradients_reach_every_parameter():
    model = small("eegnex").train()
    model(eeg(4, 8, 64)).pow(2).mean().backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"no gradient reaches {pname}"


# --------------------------------------------------------------------------------------------
# input checks


def _forbid_layers(model: nn.Module):
    """Make every submodule raise if it runs, to prove the check comes first."""

    def hook(module, args):
        raise AssertionError(f"{type(module).__name__} ran before the input check")

    return [m.register_forward_pre_hook(hook) for m in model.modules() if m is not model]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "shape, pattern",
    [
        ((2, 7, 64), r"\(n_chans, n_times\) = \(8, 64\), got \(7, 64\)"),
        ((2, 8, 63), r"\(n_chans, n_times\) = \(8, 64\), got \(8, 63\)"),
        ((8, 64), r"rank 2.*batch axis"),
        ((1, 2, 8, 64), r"rank 4"),
    ],
)
def test_wrong_shapes_raise_before_any_layer(name, shape, pattern):
    model = small(name)
    _forbid_layers(model)
    with pytest.raises(ValueError, match=pattern):
        model(torch.zeros(shape))


def test_wrong_type_and_dtype_raise():
    model = small("lightweight")
    with pytest.raises(ValueError, match="torch.Tensor"):
        model(np.zeros((2, 8, 64), dtype=np.float32))
    with pytest.raises(ValueError, match="floating-point"):
        model(torch.zeros((2, 8, 64), dtype=torch.int64))


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises_in_training_only(bad):
    model = small("lightweight")
    x = eeg(2, 8, 64)
    x[1, 3, 10] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        model.train()(x)
    with torch.no_grad():
        out = model.eval()(x)  # documented: not checked in evaluation
    assert torch.isfinite(out[0]).all()


def test_check_eeg_input_accepts_good_input():
    check_eeg_input(torch.zeros(1, 3, 5), 3, 5, check_finite=True)


# --------------------------------------------------------------------------------------------
# normalisation


def test_normalization_standardises_each_channel():
    x = eeg(3, 5, 200)
    z = EEGInputNormalization()(x)
    torch.testing.assert_close(z.mean(-1), torch.zeros(3, 5), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(-1, unbiased=False), torch.ones(3, 5), atol=1e-5, rtol=0)


def test_normalization_flat_channels_become_exact_zeros():
    x = eeg(2, 5, 200)
    x[:, 4] = 0.0  # the Cz reference
    x[:, 2] = 7.3e-3  # a constant offset: rounding must not be amplified
    x[0, 1] = 1e-3 + 1e-16 * torch.randn(200)  # below 1 nV of spread
    z = EEGInputNormalization()(x)
    assert torch.isfinite(z).all()
    assert (z[:, 4] == 0).all() and (z[:, 2] == 0).all() and (z[0, 1] == 0).all()
    assert z[1, 1].std() > 0.9


def test_normalization_is_scale_invariant_and_finite_at_extremes():
    norm = EEGInputNormalization()
    x = eeg(2, 5, 100)
    for factor in (1e-3, 10.0, 1e6, 1e12):
        torch.testing.assert_close(norm(x * factor), norm(x), atol=1e-4, rtol=1e-4)
    assert (norm(x * 1e-30) == 0).all()  # far below eps: flat, zeros
    assert torch.isfinite(norm(x * 1e30)).all()  # overflowing variance: zeros, not NaN


def test_normalization_input_gradient_is_finite_on_flat_channels():
    x = eeg(2, 4, 50)
    x[:, 0] = 0.0
    x.requires_grad_(True)
    EEGInputNormalization()(x).pow(3).sum().backward()  # saliency maps need input gradients
    assert torch.isfinite(x.grad).all() and (x.grad[:, 0] == 0).all()


def test_normalization_rejects_bad_options():
    with pytest.raises(ValueError, match="scale"):
        EEGInputNormalization(scale=0)
    with pytest.raises(ValueError, match="eps"):
        EEGInputNormalization(eps=-1.0)


@pytest.mark.parametrize("name", ALL)
def test_models_survive_flat_channels_and_any_voltage_scale(name):
    model = small(name).eval()
    x = eeg(3, 8, 64)
    x[:, -1] = 0.0
    with torch.no_grad():
        ref = model(x)
        assert torch.isfinite(ref).all()
        for factor in (10.0, 1e-3, 1e3):
            torch.testing.assert_close(model(x * factor), ref, atol=1e-4, rtol=1e-4)
        for factor in (1e-12, 1e12):
            assert torch.isfinite(model(x * factor)).all()


@pytest.mark.parametrize(
    "name, options",
    [
        ("lightweight", {}),
        ("improved", {}),
        ("lightweight", {"attention": "standard"}),
        ("improved", {"attention": "local"}),
        ("lightweight_noattn", {}),
        ("lightweight", {"downsample": "stride", "pooling": "avgmax"}),
        ("eegnex", {}),
    ],
)
def test_traced_model_matches_eager(name, options):
    # braindecode models built without chs_info do not trace at all (see TraceableDirMixin)
    model = small(name, **options).eval()
    x, other = eeg(2, 8, 64), eeg(3, 8, 64, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about baked-in constants
        traced = torch.jit.trace(model, x, check_trace=False)
    with torch.no_grad():
        torch.testing.assert_close(traced(other), model(other))
        flat = other.clone()
        flat[:, 0] = 0.0
        torch.testing.assert_close(traced(flat), model(flat))


# --------------------------------------------------------------------------------------------
# attention options, inattention and gates


@pytest.mark.parametrize("mechanism", available_attention())
def test_every_registry_mechanism_works_inside_lightweight(mechanism):
    model = small("lightweight", attention=mechanism)
    assert type(model.attention_blocks[0].attention).registry_name == mechanism
    x = eeg(2, 8, 64)
    assert model.train()(x).shape == (2, 1)
    with torch.no_grad():
        out = model.eval()(x)
        assert torch.isfinite(out).all() and torch.equal(out, model(x))


def test_attention_options_reach_the_mechanism():
    model = small("lightweight", attention="standard", attention_options={"heads": 4})
    assert model.attention_blocks[0].attention.heads == 4
    sparse = small("improved", attention_options={"scale_factor": 0.25})
    assert all(b.attention.scale_factor == 0.25 for b in sparse.attention_blocks)
    with pytest.raises(ValueError, match="unknown attention 'nope'"):
        small("lightweight", attention="nope")


def test_inattention_replaces_conv_dropout():
    plain = small("improved")
    assert all(isinstance(s.drop, nn.Dropout) for s in plain.conv_stages)
    model = small("improved", inattention=True, inattention_options={"num_stacks": 2})
    drops = [s.drop for s in model.conv_stages]
    assert all(isinstance(d, InattentionDropout) and d.num_stacks == 2 for d in drops)
    assert [d.dropout_prob for d in drops] == [0.4, 0.4, 0.4]


@pytest.mark.parametrize("name", ["lightweight", "improved", "lightweight_noattn"])
def test_channel_dropout_drops_whole_feature_maps_in_training_only(name):
    plain, model = small(name, dropout=0.0), small(name, dropout=0.0, channel_dropout=0.5)
    assert n_params(model) == n_params(plain)  # no parameters, state dicts unchanged
    assert not any(isinstance(m, nn.Dropout1d) for m in plain.modules())
    stage = model.conv_stages[0]
    assert list(stage._modules) == ["conv", "norm", "act", "drop", "channel_drop", "pool"]
    assert stage.channel_drop.p == 0.5
    x = torch.randn(16, 8, 64)
    torch.manual_seed(0)
    out = stage.train()(x)  # (16, 16, 32)
    dead = (out == 0).all(dim=-1)  # whole maps, per window and channel
    assert 0.3 < dead.float().mean() < 0.7
    alive = out[~dead]
    assert (alive != 0).float().mean() > 0.3  # the other maps are not masked element-wise
    stage.eval()
    torch.manual_seed(1)
    first = stage(x)
    torch.manual_seed(2)
    assert torch.equal(first, stage(x)) and not (first == 0).all(dim=-1).any()
    with pytest.raises(ValueError, match=r"'channel_dropout' parameter\. It must be a number in"):
        small(name, channel_dropout=1.0)


@pytest.mark.parametrize("name", ["lightweight", "improved", "lightweight_noattn"])
def test_position_readout_lets_the_head_see_token_order(name):
    from eegattn.models.blocks import PositionReadout

    plain, model = small(name), small(name, position_readout=3)
    assert isinstance(model.pool, PositionReadout) and not isinstance(plain.pool, PositionReadout)
    n_tokens, width = model.pool.n_tokens, model.pool.proj.in_features
    hidden = model.head[0].out_features
    assert n_params(model) - n_params(plain) == width * 3 + 3 + n_tokens * 3 * hidden
    tokens = torch.randn(2, n_tokens, width)
    reversed_tokens = tokens.flip(1)
    # pooling alone cannot tell the order of the tokens; the read-out can
    assert torch.allclose(plain.pool(tokens), plain.pool(reversed_tokens), atol=1e-6)
    pooled = model.pool(tokens)
    assert pooled.shape == (2, plain.pool(tokens).shape[1] + n_tokens * 3)
    assert not torch.allclose(pooled, model.pool(reversed_tokens))
    assert model.eval()(eeg(2, SMALL["n_chans"], SMALL["n_times"])).shape == (2, 1)
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="'position_readout' parameter. It must be a non"):
            small(name, position_readout=bad)


def test_gate_values_for_plotting():
    model = small("improved", inattention=True).eval()
    assert model.gate_values() == {}
    with torch.no_grad():
        model(eeg(3, 8, 64))
    gates = model.gate_values()
    assert gates["channel_attention"].shape == (3, 8)
    assert gates["temporal_attention"].shape == (3, 64)
    assert {"conv_stages.0.drop", "conv_stages.1.drop", "conv_stages.2.drop"} <= set(gates)
    assert all(((g >= 0) & (g <= 1)).all() for g in gates.values())
    assert small("eegnex").gate_values() == {}


def test_bad_model_options_raise():
    with pytest.raises(ValueError, match="one entry per convolution stage"):
        small("lightweight", kernel_sizes=(7,))
    with pytest.raises(ValueError, match="dropout"):
        small("lightweight", dropout=1.5)
    with pytest.raises(ValueError, match="pooling"):
        small("lightweight", pooling="median")
    with pytest.raises(ValueError, match="activation"):
        small("lightweight", activation="swish")
    with pytest.raises(TypeError, match="Invalid type for the 'attention_options' parameter"):
        small("lightweight", attention_options=[("heads", 2)])


# --------------------------------------------------------------------------------------------
# persistence


def _train_a_little(model: nn.Module) -> torch.optim.Optimizer:
    """One optimisation step so the weights and BatchNorm statistics are 'fitted'."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    loss = model(eeg(8, model.n_chans, model.n_times, seed=2)).pow(2).mean()
    loss.backward()
    opt.step()
    return opt


@pytest.mark.parametrize("name", ALL)
def test_pickle_round_trip_gives_identical_predictions(name):
    model = small(name)
    _train_a_little(model)
    model.eval()
    x = eeg(4, 8, 64, seed=3)
    restored = pickle.loads(pickle.dumps(model))
    assert type(restored) is type(model) and not restored.training
    with torch.no_grad():
        assert torch.equal(restored(x), model(x))
    # torch.save / torch.load (full module) and deepcopy too
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
        assert torch.equal(copy.deepcopy(model)(x), model(x))


def test_braindecode_eegnex_itself_does_not_pickle():
    # the reason for NormalizedEEGNeX's pickling; if braindecode fixes it, this tells us
    from braindecode.models import EEGNeX

    with pytest.raises(RuntimeError, match="parametrized"):
        pickle.dumps(EEGNeX(n_chans=8, n_outputs=1, n_times=64))


def test_eegnex_pickle_keeps_training_mode_optimizer_links_and_rng():
    model = small("eegnex")
    opt = _train_a_little(model)  # left in training mode
    state = torch.random.get_rng_state()
    model2, opt2 = pickle.loads(pickle.dumps((model, opt)))
    assert torch.equal(torch.random.get_rng_state(), state)  # unpickling drew no numbers
    assert model2.training and all(m.training for m in model2.modules())
    params = {id(p) for p in model2.parameters()}
    assert {id(p) for g in opt2.param_groups for p in g["params"]} == params
    # max-norm parametrization still active after the round trip
    assert torch.nn.utils.parametrize.is_parametrized(model2.eegnex.final_layer)
    assert model2.get_config()["n_chans"] == 8


@pytest.mark.parametrize("name", ALL)
def test_state_dict_round_trip(name):
    model = small(name)
    _train_a_little(model)
    model.eval()
    fresh = small(name)
    fresh.load_state_dict(model.state_dict())
    fresh.eval()
    x = eeg(4, 8, 64, seed=4)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


@pytest.mark.parametrize("name", ["lightweight", "eegnex"])
def test_braindecode_config_round_trip(name):
    model = small(name, dropout=0.2) if name != "eegnex" else small(name, drop_prob=0.2)
    rebuilt = type(model).from_config(model.get_config())
    assert n_params(rebuilt) == n_params(model)
    assert rebuilt.get_config() == model.get_config()


def test_model_options_lists_defaults():
    options = model_options("lightweight")
    assert options["attention"] == "sparse" and options["dropout"] == 0.4
    assert "n_chans" not in options


def test_sinusoidal_positions_add_no_parameters_but_order_information():
    torch.manual_seed(0)
    plain = build_model("lightweight").eval()
    coded = build_model("lightweight", positional="sinusoidal").eval()
    coded.load_state_dict(plain.state_dict())  # same keys: the table is not saved
    assert sum(p.numel() for p in coded.parameters()) == 846_289
    tokens = torch.randn(2, 50, 256)
    block_input = coded.position(tokens)
    assert not torch.allclose(block_input, tokens)
    # the codes differ per step, so two equal tokens at different steps become different
    same = torch.ones(1, 50, 256)
    coded_same = coded.position(same)
    assert not torch.allclose(coded_same[0, 0], coded_same[0, 1])
    x = torch.randn(3, 129, 200) * 1e-5
    assert not torch.allclose(plain(x), coded(x))
    with pytest.raises(ValueError, match="positional"):
        build_model("lightweight", positional="rotary")


@pytest.mark.parametrize("name", ["lightweight", "improved", "lightweight_noattn"])
def test_strided_downsampling_keeps_parameters_and_halves_conv_flops(name):
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    pooled = build_model(name).eval()
    strided = build_model(name, downsample="stride").eval()
    strided.load_state_dict(pooled.state_dict())  # the same weights, key for key
    assert n_params(strided) == n_params(pooled)
    assert not any(isinstance(m, nn.MaxPool1d) for m in strided.modules())
    x = eeg(2, 129, 200)
    conv_out = {}
    for label, model in (("pooled", pooled), ("strided", strided)):
        with torch.no_grad():
            conv_out[label] = model.conv_stages(model.normalize(x))
        with FlopCounterMode(display=False) as counter:
            model(x)
        conv_out[label + "_flops"] = sum(
            v for op, v in counter.get_flop_counts()["Global"].items() if "convolution" in str(op)
        )
    assert conv_out["strided"].shape == conv_out["pooled"].shape  # same tokens downstream
    assert not torch.allclose(conv_out["strided"], conv_out["pooled"])  # another function
    # improved's third stage does not downsample, so it saves less
    assert (
        conv_out["strided_flops"] < (0.8 if name == "improved" else 0.6) * conv_out["pooled_flops"]
    )


@pytest.mark.parametrize(
    "n_times, kernel, pool", [(200, 7, 2), (201, 5, 2), (64, 4, 2), (99, 3, 3)]
)
def test_stage_length_matches_the_layers(n_times, kernel, pool):
    from eegattn.models.blocks import ConvStage, stage_length

    for downsample in ("maxpool", "stride"):
        stage = ConvStage(3, 4, kernel, pool=pool, downsample=downsample).eval()
        out = stage(torch.randn(1, 3, n_times))
        assert out.shape[-1] == stage_length(n_times, kernel, pool, downsample)


def test_bad_downsample_is_a_clear_error():
    with pytest.raises(ValueError, match="downsample.*maxpool.*stride"):
        build_model("lightweight", downsample="avgpool")
