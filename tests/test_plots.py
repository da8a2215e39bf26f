"""PNG figures (eegattn.plots): plain arrays in, atomic PNG files out, one module for all."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from eegattn import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def test_eeg_plots_take_plain_arrays(tmp_path):
    assert _is_png(plots.plot_channel_topomap(torch.rand(4, 129), tmp_path / "topo.png"))
    with pytest.raises(ValueError, match="129"):
        plots.plot_channel_topomap(np.ones(128), tmp_path / "bad.png")
    with pytest.raises(ValueError, match="NaN"):
        plots.plot_channel_topomap(np.full(129, np.nan), tmp_path / "nan.png")
    assert _is_png(plots.plot_temporal_gate(np.random.rand(200), 100.0, tmp_path / "gate.png"))
    assert _is_png(plots.plot_temporal_gate(torch.rand(3, 200), 100, tmp_path / "gate_b.png",
                                            t0=0.5))
    with pytest.raises(ValueError, match="sfreq"):
        plots.plot_temporal_gate(np.ones(10), 0, tmp_path / "g.png")
    with pytest.raises(ValueError, match=".png"):
        plots.plot_temporal_gate(np.ones(10), 100, tmp_path / "g.jpg")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporary file


def test_attention_and_learning_curve_plots(tmp_path):
    attn = torch.softmax(torch.randn(3, 5, 7), dim=-1)
    assert _is_png(plots.plot_attention_maps(attn, tmp_path / "attn.png"))
    assert _is_png(plots.plot_attention_maps(attn[None].repeat(2, 1, 1, 1),
                                             tmp_path / "attn_b.png"))
    with pytest.raises(ValueError, match="heads, queries, keys"):
        plots.plot_attention_maps(np.ones((5, 7)), tmp_path / "bad.png")
    # the EEG estimator's history: valid values may be None
    history = [{"epoch": 1, "train_loss": 1.0, "valid_loss": None, "valid_nrmse": None,
                "lr": 1e-3, "duration_s": 2.0},
               {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.9, "valid_nrmse": 0.95,
                "lr": 1e-3, "duration_s": 2.0}]
    assert _is_png(plots.plot_learning_curves(history, tmp_path / "curves.png"))
    assert _is_png(plots.plot_learning_curves({"a": history, "b": history},
                                              tmp_path / "curves2.png"))
    with pytest.raises(ValueError, match="no numeric metric"):
        plots.plot_learning_curves([{"epoch": 1, "lr": 0.1}], tmp_path / "none.png")
    with pytest.raises(ValueError, match="list of dicts"):
        plots.plot_learning_curves([], tmp_path / "empty.png")


def test_plots_module_imports_neither_training_nor_baselines():
    import subprocess
    import sys

    code = ("import sys, eegattn.plots; "
            "print(any(m.startswith(('eegattn.training', 'eegattn.baselines')) "
            "for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predictions_gates_and_run_figures(tmp_path):
    from eegattn.models import build_model

    y = np.linspace(0.5, 1.5, 20)
    assert _is_png(plots.plot_predictions(y, y + 0.1, tmp_path / "p.png", target="rt (s)"))
    with pytest.raises(ValueError, match="same non-zero length"):
        plots.plot_predictions(y, y[:3], tmp_path / "bad.png")

    torch.manual_seed(0)
    model = build_model("improved", conv_channels=(8, 8, 8), channel_reduction=8,
                        head_hidden=(4,), n_attention_blocks=0).eval()
    assert plots.plot_gates(model, tmp_path, 100.0) == []  # no forward pass yet
    with torch.no_grad():
        model(torch.randn(3, 129, 200) * 1e-5)
    history = [{"epoch": 1, "train_loss": 1.0, "valid_loss": None},
               {"epoch": 2, "train_loss": 0.8, "valid_loss": 0.9}]
    run = tmp_path / "run"
    run.mkdir()
    written = plots.plot_run(run, history, y, y, target="rt (s)", model=model, sfreq=100.0)
    assert written == ["learning_curves.png", "pred_vs_true.png",
                       "channel_attention_topomap.png", "temporal_gate.png"]
    assert all(_is_png(run / name) for name in written)
    # a run folder owns its figures: drawing again replaces them
    assert plots.plot_run(run, history, y, y, target="rt (s)") == written[:2]
    assert sorted(p.name for p in run.iterdir()) == sorted(written)
    # an ensemble's members share the gates' file names: each figure is drawn once
    pair = torch.nn.ModuleList([model, model])
    (tmp_path / "pair").mkdir()
    assert plots.plot_gates(pair, tmp_path / "pair", 100.0) == written[2:]
