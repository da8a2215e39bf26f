"""Cross-domain baselines: vision / language models, data, synthetic tasks, plots and the CLI."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch

from eegattn import plots
from eegattn.attention import available_attention
from eegattn.baselines import language as lang
from eegattn.baselines import vision as vis
from eegattn.models.language import CausalTransformerLM
from eegattn.models.vision import SeedCNN, VisionTransformer, build_vision_model

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC


def _causal_mechanisms() -> list[str]:
    names = []
    for name in available_attention():
        try:
            CausalTransformerLM(10, max_len=8, dim=16, heads=2, depth=1, attention=name)
        except ValueError:
            continue
        names.append(name)
    return names


# --------------------------------------------------------------------------- vision models


@pytest.mark.parametrize("attention", available_attention())
def test_vit_shapes_for_each_attention(attention):
    torch.manual_seed(0)
    model = VisionTransformer(1, 10, 8, dim=16, heads=2, depth=1, attention=attention).eval()
    assert model(torch.randn(3, 1, 8, 8)).shape == (3, 10)
    model.store_attention(True)
    model(torch.randn(2, 1, 8, 8))
    weights = model.attention_modules()[0].last_attention
    assert weights is not None and weights.shape[0] == 2 and weights.shape[-2:] == (16, 16)
    cls = VisionTransformer(1, 10, 8, dim=16, heads=2, depth=1, attention=attention, pool="cls")
    assert cls(torch.randn(3, 1, 8, 8)).shape == (3, 10) and cls.pos_embed.shape[1] == 17


def test_vit_cifar_shape_and_bad_input():
    model = build_vision_model("vit", 3, 10, 32, dim=16, heads=2, depth=1)
    assert model.patch_size == 4 and model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    with pytest.raises(ValueError, match="built for"):
        model(torch.randn(2, 1, 32, 32))
    with pytest.raises(ValueError, match="patch_size"):
        VisionTransformer(3, 10, 30, patch_size=4)
    with pytest.raises(ValueError, match="unknown attention"):
        VisionTransformer(3, 10, 32, attention="nope")


@pytest.mark.parametrize("name", ["cnn", "inattention_cnn"])
def test_seed_cnn_shapes(name):
    for channels, size in ((1, 8), (3, 32)):
        model = build_vision_model(name, channels, 10, size)
        assert model(torch.randn(2, channels, size, size)).shape == (2, 10)
    with pytest.raises(ValueError, match="divisible by 4"):
        build_vision_model(name, 3, 10, 30)
    with pytest.raises(ValueError, match="images"):
        build_vision_model(name, 1, 10, 8)(torch.randn(2, 8, 8))


def test_cnn_layout_follows_inattention_notabene():
    baseline = SeedCNN(3, 10, 32)
    inatt = SeedCNN(3, 10, 32, inattention=True)
    widths = [(m.in_channels, m.out_channels) for m in (baseline.conv1, baseline.conv2,
                                                         baseline.conv3)]
    assert widths == [(3, 32), (32, 64), (64, 128)]
    assert baseline.fc1.in_features == 128 * 8 * 8 and baseline.fc1.out_features == 512
    assert baseline.inattention_layers() == []
    layers = inatt.inattention_layers()
    assert [(layer.channels, layer.num_stacks, layer.dropout_prob, layer.mode)
            for layer in layers] == [(64, 3, 0.25, "faithful"), (128, 3, 0.25, "faithful")]


def _tiny_images(n=48, seed=0) -> vis.ImageSplits:
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 8, 8, generator=g) * 0.1
    x[torch.arange(n), 0, y * 2, y * 2] += 3.0  # a class-specific bright pixel
    return vis.ImageSplits("toy", x, y, x[:16], y[:16], x[16:32], y[16:32], 4,
                           ["a", "b", "c", "d"])


@pytest.mark.parametrize("mode", ["faithful", "relaxed"])
def test_inattention_cnn_trains_and_is_plotted(mode, tmp_path):
    torch.manual_seed(0)
    model = SeedCNN(1, 4, 8, inattention=True, inattention_mode=mode, widths=(8, 8, 8),
                    hidden=16)
    layer = model.inattention_layers()[0]
    conv_before = layer.mask_convs[0].weight.detach().clone()
    alpha_before = layer.alpha.detach().clone()
    history = vis.train_classifier(model, _tiny_images(), epochs=2, batch_size=8, lr=1e-2)
    assert len(history) == 2 and all(0 <= r["valid_acc"] <= 1 for r in history)
    assert not torch.equal(layer.alpha.detach(), alpha_before)  # alphas learn in both modes
    conv_learned = not torch.equal(layer.mask_convs[0].weight.detach(), conv_before)
    assert conv_learned == (mode == "relaxed")  # the original's Bernoulli passes no gradient
    model.eval()
    model(_tiny_images().x_test[:5])
    keep = layer.last_keep_prob
    assert keep.shape[:3] == (5, 3, 8)
    path = plots.plot_inattention(model, tmp_path / "inattention.png")
    assert _is_png(path)
    with pytest.raises(FileExistsError, match="force=True"):
        plots.plot_inattention(model, path)
    assert _is_png(plots.plot_inattention(model, path, force=True))
    with pytest.raises(ValueError, match="no InattentionDropout"):
        plots.plot_inattention(SeedCNN(1, 4, 8), tmp_path / "none.png")


def test_best_epoch_is_chosen_on_validation_not_test():
    rows = [(0.5, 0.9), (0.8, 0.6), (0.7, 0.95)]  # (valid, test) per epoch
    history = [{"epoch": i + 1, "train_acc": 0.1 * i, "valid_acc": v, "test_acc": t,
                "duration_s": 1.0} for i, (v, t) in enumerate(rows)]
    summary = vis.summarize_history(history)
    assert summary["best_epoch"] == 2
    assert summary["best_test_acc"] == 0.6 and summary["final_test_acc"] == 0.95
    agg = vis.aggregate([summary, {**summary, "best_test_acc": 0.8}])
    assert agg["best_test_acc"]["mean"] == pytest.approx(0.7)
    assert agg["best_test_acc"]["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))


def test_digits_split_is_disjoint_and_stratified():
    data = vis.load_digits_splits()
    sizes = data.sizes()
    assert sum(sizes.values()) == 1797 and data.x_train.shape[1:] == (1, 8, 8)
    assert set(torch.unique(data.y_test).tolist()) == set(range(10))
    assert abs(float(data.x_train.mean())) < 1e-4  # standardised with train statistics
    flat = {tuple(x.flatten().tolist()) for x in data.x_test}
    overlap = sum(tuple(x.flatten().tolist()) in flat for x in data.x_valid)
    assert overlap <= 3  # a few digits are pixel-identical; the splits are row-disjoint


# --------------------------------------------------------------------------- CIFAR-10 loader


def _write_cifar(folder, rows=3):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batches = {}
    for i, name in enumerate([*vis.CIFAR_TRAIN_FILES, vis.CIFAR_TEST_FILE]):
        data = rng.integers(0, 256, size=(rows, 3072), dtype=np.uint8)
        labels = [(i + r) % 10 for r in range(rows)]
        with (folder / name).open("wb") as fh:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels, b"data": data}, fh,
                        protocol=2)
        batches[name] = (data, labels)
    return batches


def test_cifar_loader_reads_a_pickle_folder(tmp_path):
    batches = _write_cifar(tmp_path / "cifar" / "cifar-10-batches-py", rows=4)
    x_train, y_train, x_test, y_test = vis.load_cifar10_arrays(tmp_path / "cifar")
    assert x_train.shape == (20, 3, 32, 32) and x_train.dtype == np.uint8
    assert x_test.shape == (4, 3, 32, 32)
    data, labels = batches["data_batch_2"]
    np.testing.assert_array_equal(x_train[4:8, 0].reshape(4, -1), data[:, :1024])  # red plane
    np.testing.assert_array_equal(x_train[4:8, 2].reshape(4, -1), data[:, 2048:])  # blue
    assert y_train[4:8].tolist() == labels
    assert y_test.tolist() == batches["test_batch"][1]
    splits = vis.load_cifar10_splits(tmp_path / "cifar", valid_fraction=0.2)
    assert splits.sizes() == {"train": 16, "valid": 4, "test": 4} and splits.augment
    assert splits.image_size == (32, 32) and splits.in_channels == 3


def test_cifar_loader_errors_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist.*nothing is downloaded"):
        vis.load_cifar10_arrays(tmp_path / "missing")
    _write_cifar(tmp_path / "partial")
    (tmp_path / "partial" / "test_batch").unlink()
    with pytest.raises(FileNotFoundError, match="missing test_batch"):
        vis.load_cifar10_arrays(tmp_path / "partial")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    _write_cifar(tmp_path / "evil")
    with (tmp_path / "evil" / "data_batch_1").open("wb") as fh:
        pickle.dump({b"data": Evil(), b"labels": []}, fh)
    with pytest.raises(ValueError, match="not a CIFAR-10 python-pickle batch"):
        vis.load_cifar10_arrays(tmp_path / "evil")
    with pytest.raises(FileNotFoundError):
        vis.VisionConfig(dataset="cifar10", cifar=str(tmp_path / "missing")).check()


# --------------------------------------------------------------------------- synthetic tasks


def test_recall_is_deterministic_and_solvable():
    task = lang.AssociativeRecall(num_pairs=6, num_queries=4, num_keys=10, num_values=7)
    tokens, targets = task.sample(64, np.random.default_rng(3))
    again, again_targets = task.sample(64, np.random.default_rng(3))
    np.testing.assert_array_equal(tokens, again)
    np.testing.assert_array_equal(targets, again_targets)
    other, _ = task.sample(64, np.random.default_rng(4))
    assert not np.array_equal(tokens, other)
    assert tokens.shape == targets.shape == (64, task.seq_len) == (64, 20)
    scored = np.nonzero(targets[0] != lang.IGNORE_INDEX)[0]
    np.testing.assert_array_equal(scored, [12, 14, 16, 18])
    assert ((targets != lang.IGNORE_INDEX).sum(1) == 4).all()
    for row, target in zip(tokens, targets):
        keys, values = row[0:12:2], row[1:12:2]
        assert len(set(keys.tolist())) == 6 and (keys < 10).all() and (values >= 10).all()
        table = dict(zip(keys.tolist(), values.tolist()))
        for pos in scored:  # an oracle that reads the context answers every query
            assert target[pos] == table[row[pos]]
            assert row[pos + 1] == target[pos]  # teacher forcing: the answer follows
    with pytest.raises(ValueError, match="num_queries"):
        lang.AssociativeRecall(num_pairs=2, num_queries=3)


def test_selective_copy_is_deterministic_and_solvable():
    task = lang.SelectiveCopy(context_len=12, num_tokens=4, num_symbols=5)
    tokens, targets = task.sample(32, np.random.default_rng(7))
    np.testing.assert_array_equal(tokens, task.sample(32, np.random.default_rng(7))[0])
    assert tokens.shape == (32, 17) and task.vocab_size == 7
    for row, target in zip(tokens, targets):
        context = row[:12]
        data = context[context != task.noise]
        assert len(data) == 4 and row[12] == task.separator
        scored = np.nonzero(target != lang.IGNORE_INDEX)[0]
        np.testing.assert_array_equal(scored, [12, 13, 14, 15])
        np.testing.assert_array_equal(target[scored], data)  # the data symbols, in order
        np.testing.assert_array_equal(row[13:], data)
    with pytest.raises(ValueError, match="context_len"):
        lang.SelectiveCopy(context_len=3, num_tokens=4)


def test_text_corpus_from_wikitext_files_and_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        lang.load_text_corpus(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="wiki"):
        lang.load_text_corpus(tmp_path / "empty")
    folder = tmp_path / "wikitext"
    folder.mkdir()
    texts = {"train": "the cat sat on the mat. " * 40, "valid": "a dog ran. " * 10,
             "test": "birds fly high. " * 10}
    for split, text in texts.items():
        (folder / f"wiki.{split}.tokens").write_text(text)
    corpus = lang.load_text_corpus(folder, seq_len=16, max_train_bytes=500)
    assert len(corpus.train) == 500 and bytes(corpus.test[:6]) == b"birds "
    tokens, targets = corpus.windows("test", 100)
    assert tokens.shape == ((len(texts["test"]) - 1) // 16, 16)
    np.testing.assert_array_equal(tokens[:, 1:], targets[:, :-1])  # shifted by one byte
    x, y = corpus.sample(5, np.random.default_rng(0))
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    assert lang.embedded_corpus().train.size > 10_000


# --------------------------------------------------------------------------- language models


@pytest.mark.parametrize("name", _causal_mechanisms())
def test_causal_lm_does_not_see_the_future(name):
    torch.manual_seed(0)
    for first_only in (False, True):
        model = CausalTransformerLM(20, max_len=16, dim=16, heads=2, depth=2, attention=name,
                                    first_layer_only=first_only).eval()
        tokens = torch.randint(0, 20, (2, 14))
        changed = tokens.clone()
        changed[:, 9] = (changed[:, 9] + 1) % 20
        with torch.no_grad():
            a, b = model(tokens), model(changed)
        assert a.shape == (2, 14, 20)
        torch.testing.assert_close(a[:, :9], b[:, :9], atol=1e-5, rtol=1e-5)
        assert (a[:, 9:] - b[:, 9:]).abs().max() > 1e-4  # the change is seen from there on


def test_causal_lm_placements_and_bad_input():
    model = CausalTransformerLM(20, max_len=8, dim=16, heads=2, depth=3, attention="neural",
                                first_layer_only=True)
    names = [type(m).registry_name for m in model.attention_modules()]
    assert names == ["neural", "standard", "standard"]
    assert model.attention_modules()[0].projection_dim == 8  # d' >= 2 at small widths
    assert all(m.causal for m in model.attention_modules())
    selective = CausalTransformerLM(20, max_len=8, dim=16, heads=2, attention="selective")
    assert selective.attention_modules()[0].selection  # the paper's F is applied
    with pytest.raises(ValueError, match="max_len"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match=r"\[0, 20\)"):
        model(torch.full((1, 4), 20))
    with pytest.raises(ValueError, match="NAME:first"):
        lang.parse_mechanism("neural:last")
    assert lang.parse_mechanism("neural:first") == ("neural", True)


def test_saved_activation_bytes_grow_with_sequence_length():
    model = CausalTransformerLM(20, max_len=64, dim=16, heads=2, depth=1)
    short = lang.saved_activation_bytes(model, torch.zeros(2, 16, dtype=torch.long),
                                        torch.zeros(2, 16, dtype=torch.long))
    long = lang.saved_activation_bytes(model, torch.zeros(2, 64, dtype=torch.long),
                                       torch.zeros(2, 64, dtype=torch.long))
    assert 0 < short < long
    assert all(p.grad is None for p in model.parameters())


# --------------------------------------------------------------------------- the CLI


def _cli(*argv) -> int:
    from eegattn.cli import main

    return main(list(argv))


def test_cli_vision_tiny_writes_a_new_run_folder(tmp_path, capsys):
    argv = ["baseline", "vision", "--tiny", "--quiet", "--models", "cnn", "inattention-seed",
            "--vit-attention", "standard", "--epochs", "1", "--max-train", "64"]
    run_dir = tmp_path / "run"
    assert _cli(*argv, "--run-dir", str(run_dir)) == 0
    table = (run_dir / "table.md").read_text()
    assert "| Baseline CNN |" in table and "| ViT standard |" in table
    assert "Inattention NotaBene's comparison" in table
    results = json.loads((run_dir / "results.json").read_text())
    assert set(results["models"]) == {"cnn", "inattention-seed", "vit-standard"}
    assert results["data"]["sizes"]["train"] == 64
    pngs = sorted(p.name for p in run_dir.glob("*.png"))
    assert "inattention_inattention-seed.png" in pngs and "learning_curves.png" in pngs
    assert any(name.startswith("attention_vit-standard") for name in pngs)
    assert all(_is_png(run_dir / name) for name in pngs)
    before = sorted(p.name for p in run_dir.iterdir())
    capsys.readouterr()
    assert _cli(*argv, "--run-dir", str(run_dir)) == 2  # never reuses a folder
    assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in run_dir.iterdir()) == before


def test_cli_language_tiny_and_fresh_folders(tmp_path, capsys):
    argv = ["baseline", "language", "--tiny", "--quiet", "--tasks", "recall", "copy",
            "--mechanisms", "standard", "neural:first", "--out", str(tmp_path / "runs")]
    assert _cli(*argv) == 0
    assert _cli(*argv[:4], "--tasks", "text", "--mechanisms", "local",
                "--out", str(tmp_path / "runs")) == 0
    folders = sorted((tmp_path / "runs").iterdir())
    assert len(folders) == 2 and all(f.name.startswith("baseline-language-") for f in folders)
    by_tasks = {}
    for folder in folders:
        results = json.loads((folder / "results.json").read_text())
        by_tasks[tuple(results["tasks"])] = (folder, results)
    assert set(by_tasks) == {("recall", "copy"), ("text",)}
    assert by_tasks[("text",)][1]["mechanisms"]["local"]["tasks"]["text"]["runs"][0][
        "summary"]["test_ppl"] > 1
    first, results = by_tasks[("recall", "copy")]
    assert list(results["mechanisms"]) == ["standard", "neural:first"]
    for entry in results["mechanisms"].values():
        for task in ("recall", "copy"):
            summary = entry["tasks"][task]["runs"][0]["summary"]
            assert 0 <= summary["test_acc"] <= 1 and summary["test_ppl"] > 1
            assert summary["ms_per_step"] > 0 and summary["activation_mib"] > 0
    table = (first / "table.md").read_text()
    assert "| neural (first layer) |" in table and "recall: test acc" in table
    assert _is_png(first / "learning_curves_recall.png")
    assert _is_png(first / "attention_recall_neural-first_block0.png")
    assert not list(first.glob("attention_copy_*"))  # maps of the first task only
    capsys.readouterr()
    assert _cli("baseline", "language", "--tiny", "--mechanisms", "nope",
                "--out", str(tmp_path / "runs")) == 2
    assert "unknown attention" in capsys.readouterr().err
    assert len(list((tmp_path / "runs").iterdir())) == 2  # no folder for a refused run
