"""Vision baseline: Inattention NotaBene's baseline vs Inattention CNN, and a ViT per mechanism.

Data (nothing is downloaded):

- ``digits`` (default, embedded): scikit-learn's 8x8 handwritten digits (``load_digits``,
  1797 images, 10 classes, shipped with scikit-learn), split stratified 70/15/15 into
  train / validation / test with a fixed split seed.
- ``cifar10``: a local CIFAR-10 folder in its standard python-pickle format
  (``data_batch_1`` .. ``data_batch_5``, ``test_batch``, optionally inside
  ``cifar-10-batches-py/``). The validation split is taken from the training batches; the
  test split is ``test_batch``. Training uses Inattention NotaBene's augmentation (random 32x32
  crop of the 4-pixel zero-padded image, horizontal flip).

Protocol: every model is trained with Adam (lr 1e-3, the original's optimiser) for a fixed number
of epochs per seed. Each epoch records the training loss / accuracy measured during the epoch
in training mode (as the original does) and validation and test loss / accuracy in evaluation
mode. "Best" is the epoch with the highest **validation** accuracy (first one on ties); the
table reports the test accuracy at that epoch. The original picked its best epoch on the test
set, which overstates the result. Time per epoch counts training only (no evaluation).
"""

from __future__ import annotations

import pickle
import resource
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from eegattn.baselines import run_environment, run_in_folder
from eegattn.models.vision import build_vision_model
from eegattn.plots import (
    plot_attention_maps,
    plot_bars,
    plot_inattention,
    plot_learning_curves,
)
from eegattn.utils.io import write_json_atomic, write_text_atomic

__all__ = [
    "CNN_MODELS",
    "DATASETS",
    "DEFAULT_VIT_ATTENTION",
    "ImageSplits",
    "VisionConfig",
    "aggregate",
    "load_cifar10_arrays",
    "load_cifar10_splits",
    "load_digits_splits",
    "run_vision_baseline",
    "summarize_history",
    "train_classifier",
]

DATASETS = ("digits", "cifar10")
#: Inattention NotaBene's two CNNs; the inattention CNN in its own mode and the library's fixed one
CNN_MODELS = {
    "cnn": ("Baseline CNN", {}),
    "inattention-seed": ("Inattention CNN (faithful)", {"inattention_mode": "faithful"}),
    "inattention-relaxed": ("Inattention CNN (relaxed)", {"inattention_mode": "relaxed"}),
}
#: ViT mechanisms run by default (``selective`` equals ``standard`` without a causal mask)
DEFAULT_VIT_ATTENTION = ("standard", "neural", "sparse", "linear")
CIFAR_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST_FILE = "test_batch"
CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck")


# --------------------------------------------------------------------------- data


@dataclass
class ImageSplits:
    """Train / validation / test images, normalised with the training split's channel stats.

    ``x_*`` float32 (n, channels, height, width); ``y_*`` int64 (n,); ``augment`` asks for
    Inattention NotaBene's random crop + flip during training (CIFAR-10 only).
    """

    name: str
    x_train: Tensor
    y_train: Tensor
    x_valid: Tensor
    y_valid: Tensor
    x_test: Tensor
    y_test: Tensor
    n_classes: int
    class_names: list[str]
    augment: bool = False
    description: str = ""

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.x_train.shape[2]), int(self.x_train.shape[3])

    def sizes(self) -> dict:
        return {"train": len(self.y_train), "valid": len(self.y_valid), "test": len(self.y_test)}


def _normalise(train: np.ndarray, *others: np.ndarray) -> list[Tensor]:
    """Per-channel standardisation with the training split's mean and std."""
    train = train.astype(np.float32)
    mean = train.mean(axis=(0, 2, 3), keepdims=True)
    std = train.std(axis=(0, 2, 3), keepdims=True) + 1e-6
    return [torch.from_numpy((a.astype(np.float32) - mean) / std) for a in (train, *others)]


def _split(x: np.ndarray, y: np.ndarray, fraction: float, seed: int):
    """Seeded split off ``fraction`` of the rows, stratified by class when every class has at
    least two images and the held-out part can hold each class once."""
    from sklearn.model_selection import train_test_split

    _, counts = np.unique(y, return_counts=True)
    stratify = y if counts.min() >= 2 and round(fraction * len(y)) >= len(counts) else None
    return train_test_split(x, y, test_size=fraction, stratify=stratify, random_state=seed)


def _subsample(x: np.ndarray, y: np.ndarray, limit: int | None, seed: int, name: str):
    if limit is None or limit >= len(y):
        return x, y
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"{name} must be a positive number of images, got {limit!r}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(y))[:limit])
    return x[keep], y[keep]


def load_digits_splits(
    *,
    valid_fraction: float = 0.15,
    test_fraction: float = 0.15,
    split_seed: int = 0,
    max_train: int | None = None,
) -> ImageSplits:
    """scikit-learn's 8x8 digits as (n, 1, 8, 8), split stratified into train/valid/test."""
    from sklearn.datasets import load_digits

    for name, frac in (("valid_fraction", valid_fraction), ("test_fraction", test_fraction)):
        if not 0.0 < frac < 0.5:
            raise ValueError(f"{name} must be in (0, 0.5), got {frac!r}")
    digits = load_digits()
    x = (digits.images[:, None] / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = _split(x, y, test_fraction, split_seed)
    x_train, x_valid, y_train, y_valid = _split(
        x_rest, y_rest, valid_fraction / (1.0 - test_fraction), split_seed
    )
    x_train, y_train = _subsample(x_train, y_train, max_train, split_seed, "max_train")
    xs = _normalise(x_train, x_valid, x_test)
    return ImageSplits(
        "digits", xs[0], torch.from_numpy(y_train), xs[1], torch.from_numpy(y_valid), xs[2],
        torch.from_numpy(y_test), 10, [str(i) for i in range(10)], augment=False,
        description="scikit-learn digits (8x8 grey, 10 classes), stratified 70/15/15 split",
    )


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickler limited to what CIFAR-10's batches hold (dicts, lists, numpy arrays): a
    file in the folder cannot run arbitrary code when it is read."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a CIFAR-10 batch file")


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with path.open("rb") as fh:
            batch = _ArrayUnpickler(fh, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{path} is not a CIFAR-10 python-pickle batch ({type(exc).__name__}: {exc}); "
            "use the 'CIFAR-10 python version' files"
        ) from exc
    if not isinstance(batch, dict):
        raise ValueError(f"{path} does not hold a CIFAR-10 batch dict")
    batch = {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}
    if "data" not in batch or "labels" not in batch:
        raise ValueError(f"{path} lacks 'data' or 'labels'; it is not a CIFAR-10 batch")
    data = np.asarray(batch["data"])
    labels = np.asarray(batch["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
        raise ValueError(
            f"{path}: data must be (n, 3072) with one label per row, got {data.shape} and "
            f"{labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be 0..9, got {labels.min()}..{labels.max()}")
    return data.reshape(-1, 3, 32, 32).astype(np.uint8), labels


def find_cifar10_folder(folder) -> Path:
    """The folder that holds the batch files: ``folder`` or ``folder/cifar-10-batches-py``."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"CIFAR-10 folder {folder} does not exist; give --cifar the folder holding "
            "data_batch_1..5 and test_batch (the 'CIFAR-10 python version', extracted); "
            "nothing is downloaded"
        )
    for candidate in (folder, folder / "cifar-10-batches-py"):
        if all((candidate / f).is_file() for f in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE)):
            return candidate
    missing = [f for f in (*CIFAR_TRAIN_FILES, CIFAR_TEST_FILE) if not (folder / f).is_file()]
    raise FileNotFoundError(
        f"{folder} is not a CIFAR-10 python folder: missing {', '.join(missing)} (also looked "
        "in cifar-10-batches-py/); extract cifar-10-python.tar.gz there, nothing is downloaded"
    )


def load_cifar10_arrays(folder) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: uint8 (n, 3, 32, 32) images, int64 labels."""
    root = find_cifar10_folder(folder)
    parts = [_read_batch(root / name) for name in CIFAR_TRAIN_FILES]
    x_test, y_test = _read_batch(root / CIFAR_TEST_FILE)
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    return x_train, y_train, x_test, y_test


def load_cifar10_splits(
    folder,
    *,
    valid_fraction: float = 0.1,
    split_seed: int = 0,
    max_train: int | None = None,
    max_test: int | None = None,
) -> ImageSplits:
    """CIFAR-10 from a local folder; validation = ``valid_fraction`` of the training batches
    (stratified), test = ``test_batch``. ``max_train`` / ``max_test`` subsample (seeded)."""
    if not 0.0 < valid_fraction < 0.5:
        raise ValueError(f"valid_fraction must be in (0, 0.5), got {valid_fraction!r}")
    x_all, y_all, x_test, y_test = load_cifar10_arrays(folder)
    x_train, x_valid, y_train, y_valid = _split(x_all, y_all, valid_fraction, split_seed)
    x_train, y_train = _subsample(x_train, y_train, max_train, split_seed, "max_train")
    x_test, y_test = _subsample(x_test, y_test, max_test, split_seed, "max_test")
    xs = _normalise(x_train / 255.0, x_valid / 255.0, x_test / 255.0)
    return ImageSplits(
        "cifar10", xs[0], torch.from_numpy(y_train), xs[1], torch.from_numpy(y_valid), xs[2],
        torch.from_numpy(y_test), 10, list(CIFAR_CLASSES), augment=True,
        description="CIFAR-10 (32x32 colour, 10 classes), validation from the training batches",
    )


def _augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Inattention NotaBene's CIFAR augmentation: random crop of the 4-pixel padded image, flip."""
    b, _, h, w = x.shape
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    dy = torch.randint(0, 9, (b,), generator=generator)
    dx = torch.randint(0, 9, (b,), generator=generator)
    flip = torch.rand(b, generator=generator) < 0.5
    out = torch.empty_like(x)
    for i in range(b):
        crop = padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop.flip(-1) if flip[i] else crop
    return out


# --------------------------------------------------------------------------- training


@torch.no_grad()
def _evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int, device) -> tuple:
    model.eval()
    loss_sum, correct = 0.0, 0
    for i in range(0, len(y), batch_size):
        xb, yb = x[i:i + batch_size].to(device), y[i:i + batch_size].to(device)
        logits = model(xb)
        loss_sum += float(nn.functional.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    return loss_sum / len(y), correct / len(y)


def train_classifier(
    model: nn.Module,
    data: ImageSplits,
    *,
    epochs: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    log: Callable[[str], None] | None = None,
) -> list[dict]:
    """Train ``model`` with Adam and cross-entropy; return one record per epoch:
    ``epoch, train_loss, train_acc, valid_loss, valid_acc, test_loss, test_acc, duration_s``
    (accuracies in [0, 1]; ``duration_s`` is training time only)."""
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        loss_sum, correct = 0.0, 0
        order = torch.randperm(n, generator=generator)
        for i in range(0, n, batch_size):
            idx = order[i:i + batch_size]
            xb = data.x_train[idx]
            if data.augment:
                xb = _augment(xb, generator)
            xb, yb = xb.to(device), data.y_train[idx].to(device)
            logits = model(xb)
            loss = nn.functional.cross_entropy(logits, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == yb).sum())
        duration = time.perf_counter() - start
        valid_loss, valid_acc = _evaluate(model, data.x_valid, data.y_valid, 512, device)
        test_loss, test_acc = _evaluate(model, data.x_test, data.y_test, 512, device)
        record = {
            "epoch": epoch, "train_loss": loss_sum / n, "train_acc": correct / n,
            "valid_loss": valid_loss, "valid_acc": valid_acc,
            "test_loss": test_loss, "test_acc": test_acc, "duration_s": duration,
        }
        history.append(record)
        if log:
            log(f"  epoch {epoch:3d}/{epochs}  train {record['train_acc']:.3f}  "
                f"valid {valid_acc:.3f}  test {test_acc:.3f}  {duration:.2f}s")
    return history


def summarize_history(history: Sequence[dict]) -> dict:
    """Inattention NotaBene's table entries from one run, "best" chosen on validation accuracy."""
    if not history:
        raise ValueError("history is empty; train at least one epoch")
    valid = [r["valid_acc"] for r in history]
    best = int(np.argmax(valid))  # first maximum
    return {
        "final_train_acc": history[-1]["train_acc"],
        "final_valid_acc": history[-1]["valid_acc"],
        "final_test_acc": history[-1]["test_acc"],
        "best_epoch": history[best]["epoch"],
        "best_train_acc": history[best]["train_acc"],
        "best_valid_acc": history[best]["valid_acc"],
        "best_test_acc": history[best]["test_acc"],
        "time_per_epoch_s": float(np.mean([r["duration_s"] for r in history])),
    }


def aggregate(summaries: Sequence[dict]) -> dict:
    """``{key: {"mean", "std", "n"}}`` over seeds (sample std, 0 for one seed)."""
    if not summaries:
        raise ValueError("no runs to aggregate")
    out = {}
    for key in summaries[0]:
        values = np.array([s[key] for s in summaries], dtype=float)
        out[key] = {
            "mean": float(values.mean()),
            "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
            "n": len(values),
        }
    return out


# --------------------------------------------------------------------------- the run


@dataclass
class VisionConfig:
    """Settings of :func:`run_vision_baseline` (CLI: ``eegattn baseline vision``)."""

    dataset: str = "digits"
    cifar: str | None = None
    models: tuple[str, ...] = tuple(CNN_MODELS)
    vit_attention: tuple[str, ...] = DEFAULT_VIT_ATTENTION
    epochs: int = 10
    seeds: tuple[int, ...] = (0, 1)
    batch_size: int = 32
    lr: float = 1e-3
    vit_dim: int = 64
    vit_depth: int = 2
    vit_heads: int = 4
    max_train: int | None = None
    max_test: int | None = None
    device: str = "cpu"
    threads: int | None = 1
    split_seed: int = 0
    attention_options: dict = field(default_factory=dict)

    @classmethod
    def tiny(cls, **overrides) -> VisionConfig:
        """Seconds-long settings for tests: 2 epochs, one seed, 200 training digits."""
        base = {"epochs": 2, "seeds": (0,), "max_train": 200, "vit_dim": 16, "vit_heads": 2,
                "vit_depth": 1, "vit_attention": ("standard", "neural")}
        return cls(**{**base, **overrides})

    def check(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose one of {DATASETS}")
        if self.dataset == "cifar10" and not self.cifar:
            raise ValueError("dataset 'cifar10' needs the folder of the batches (--cifar DIR)")
        if self.cifar:
            find_cifar10_folder(self.cifar)
        unknown = [m for m in self.models if m not in CNN_MODELS]
        if unknown:
            raise ValueError(
                f"unknown CNN model(s) {unknown}; choose among {', '.join(CNN_MODELS)}"
            )
        from eegattn.attention import available_attention

        bad = [a for a in self.vit_attention if a not in available_attention()]
        if bad:
            raise ValueError(
                f"unknown ViT attention {bad}; choose among {', '.join(available_attention())}"
            )
        if not self.models and not self.vit_attention:
            raise ValueError("nothing to train: give at least one CNN model or ViT attention")
        if not self.seeds:
            raise ValueError("give at least one seed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads must be a positive integer, got {self.threads!r}")


def _model_specs(config: VisionConfig) -> list[tuple[str, str, str, dict]]:
    """(key, label, builder name, options) per model of the run."""
    specs = [(key, CNN_MODELS[key][0], "cnn" if key == "cnn" else "inattention_cnn",
              dict(CNN_MODELS[key][1])) for key in config.models]
    for attention in config.vit_attention:
        options = {"attention": attention, "dim": config.vit_dim, "depth": config.vit_depth,
                   "heads": config.vit_heads,
                   "attention_options": dict(config.attention_options.get(attention, {}))}
        specs.append((f"vit-{attention}", f"ViT {attention}", "vit", options))
    return specs


def load_data(config: VisionConfig) -> ImageSplits:
    if config.dataset == "cifar10" or config.cifar:
        return load_cifar10_splits(config.cifar, split_seed=config.split_seed,
                                   max_train=config.max_train, max_test=config.max_test)
    return load_digits_splits(split_seed=config.split_seed, max_train=config.max_train)


def _pct(stat: dict) -> str:
    if stat["n"] > 1:
        return f"{100 * stat['mean']:.2f} ± {100 * stat['std']:.2f}"
    return f"{100 * stat['mean']:.2f}"


def _seconds(stat: dict) -> str:
    if stat["n"] > 1:
        return f"{stat['mean']:.2f} ± {stat['std']:.2f}"
    return f"{stat['mean']:.2f}"


def format_table(results: dict) -> str:
    """Markdown: one row per model, then Inattention NotaBene's baseline-vs-inattention table."""
    config = results["config"]
    data = results["data"]
    lines = [
        f"# Vision baseline: {data['name']}",
        "",
        f"{data['description']}; train {data['sizes']['train']} / valid {data['sizes']['valid']}"
        f" / test {data['sizes']['test']} images. {config['epochs']} epochs, batch "
        f"{config['batch_size']}, Adam lr {config['lr']}, seeds {list(config['seeds'])} "
        f"(mean ± sample std over seeds), {results['environment']['threads']} thread(s) on "
        f"{results['environment']['device']}.",
        "\"Best\" = the epoch with the highest validation accuracy (never chosen on test); "
        "train accuracy is measured during the epoch in training mode (as in the original); time "
        "per epoch counts training only.",
        "",
        "| Model | Params | Final train acc (%) | Final test acc (%) | Best epoch (valid) "
        "| Train acc @ best (%) | Valid acc @ best (%) | Test acc @ best valid (%) "
        "| Time / epoch (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in results["models"].values():
        agg = entry["aggregate"]
        lines.append(
            f"| {entry['label']} | {entry['params']:,} | {_pct(agg['final_train_acc'])} | "
            f"{_pct(agg['final_test_acc'])} | {agg['best_epoch']['mean']:.1f} | "
            f"{_pct(agg['best_train_acc'])} | {_pct(agg['best_valid_acc'])} | "
            f"{_pct(agg['best_test_acc'])} | {_seconds(agg['time_per_epoch_s'])} |"
        )
    models = results["models"]
    others = [k for k in ("inattention-seed", "inattention-relaxed") if k in models]
    if "cnn" in models and others:
        base = models["cnn"]["aggregate"]
        header = "| Metric | Baseline CNN |" + "".join(
            f" {models[k]['label']} | Difference |" for k in others)
        lines += ["", "Inattention NotaBene's comparison (means over seeds):", "", header,
                  "|---|---:|" + "---:|---:|" * len(others)]
        rows = (("Final Train Accuracy", "final_train_acc"),
                ("Final Test Accuracy", "final_test_acc"),
                ("Test Accuracy at Best Validation Epoch", "best_test_acc"))
        for title, key in rows:
            row = f"| {title} | {100 * base[key]['mean']:.2f}% |"
            for k in others:
                value = models[k]["aggregate"][key]["mean"]
                row += f" {100 * value:.2f}% | {100 * (value - base[key]['mean']):+.2f}% |"
            lines.append(row)
        t0 = base["time_per_epoch_s"]["mean"]
        row = f"| Average Time/Epoch | {t0:.2f}s |"
        for k in others:
            t = models[k]["aggregate"]["time_per_epoch_s"]["mean"]
            row += f" {t:.2f}s | {t - t0:+.2f}s ({100 * (t - t0) / t0:+.0f}%) |"
        lines.append(row)
    lines.append("")
    return "\n".join(lines)


def _plots(run_dir: Path, results: dict, final_models: dict, data: ImageSplits) -> list[str]:
    """Learning curves, test accuracy bars, inattention masks / alphas, ViT attention maps."""
    written = []
    first = {key: entry["runs"][0]["history"] for key, entry in results["models"].items()}
    labels = {key: entry["label"] for key, entry in results["models"].items()}
    written.append(plot_learning_curves(
        {labels[k]: h for k, h in first.items()}, run_dir / "learning_curves.png",
        keys=["valid_acc", "train_loss"],
        title=f"validation accuracy and training loss, seed {results['config']['seeds'][0]}",
    ))
    for key, history in first.items():
        written.append(plot_learning_curves(
            history, run_dir / f"learning_curves_{key}.png",
            keys=["train_acc", "valid_acc", "test_acc", "train_loss", "valid_loss", "test_loss"],
            title=labels[key],
        ))
    written.append(plot_bars(
        {labels[k]: e["aggregate"]["best_test_acc"]["mean"] for k, e in results["models"].items()},
        run_dir / "test_accuracy.png",
        errors={labels[k]: e["aggregate"]["best_test_acc"]["std"]
                for k, e in results["models"].items()},
        ylabel="test accuracy at best validation epoch", title=data.name,
    ))
    sample = data.x_test[:64]
    for key, model in final_models.items():
        model.eval()
        if key.startswith("inattention"):
            with torch.no_grad():
                model(sample)
            written.append(plot_inattention(
                model, run_dir / f"inattention_{key}.png",
                title=f"{labels[key]}: keep probabilities on 64 test images and stack weights",
            ))
        elif key.startswith("vit-"):
            order = "patch tokens in raster order" + (
                ", class token first" if model.pool == "cls" else "")
            model.store_attention(True)
            with torch.no_grad():
                model(sample)
            for depth, module in enumerate(model.attention_modules()):
                if module.last_attention is None:
                    continue
                written.append(plot_attention_maps(
                    module.last_attention, run_dir / f"attention_{key}_block{depth}.png",
                    title=f"{labels[key]}, block {depth}: mean over 64 test images ({order})",
                ))
            model.store_attention(False)
    return [p.name for p in written]


def run_vision_baseline(
    config: VisionConfig, run_dir, *, log: Callable[[str], None] | None = print
) -> dict:
    """Train every model for every seed, then write ``table.md``, ``results.json`` and PNG
    plots into ``run_dir`` (an existing, empty folder). Returns the results dict."""
    return run_in_folder(config, run_dir, _run_vision_baseline, log)


def _run_vision_baseline(config, run_dir: Path, log: Callable[[str], None]) -> dict:
    started = time.perf_counter()
    data = load_data(config)
    log(f"data: {data.name} {data.sizes()}")
    results: dict = {
        "kind": "vision",
        "config": asdict(config),
        "data": {"name": data.name, "description": data.description, "sizes": data.sizes(),
                 "image_size": list(data.image_size), "in_channels": data.in_channels,
                 "n_classes": data.n_classes},
        "environment": run_environment(config.device),
        "models": {},
    }
    final_models: dict[str, nn.Module] = {}
    for key, label, builder, options in _model_specs(config):
        runs = []
        for seed in config.seeds:
            torch.manual_seed(seed)
            model = build_vision_model(builder, data.in_channels, data.n_classes,
                                       data.image_size, **options)
            log(f"{label} (seed {seed})")
            history = train_classifier(model, data, epochs=config.epochs,
                                       batch_size=config.batch_size, lr=config.lr, seed=seed,
                                       device=config.device, log=log)
            runs.append({"seed": seed, "summary": summarize_history(history),
                         "history": history})
            if seed == config.seeds[0]:
                final_models[key] = model.cpu()
        results["models"][key] = {
            "label": label, "builder": builder, "options": options,
            "params": sum(p.numel() for p in final_models[key].parameters()),
            "aggregate": aggregate([r["summary"] for r in runs]),
            "runs": runs,
        }
    plots = _plots(run_dir, results, final_models, data)
    results["plots"] = plots
    results["wall_time_s"] = time.perf_counter() - started
    results["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_text_atomic(run_dir / "table.md", format_table(results))
    write_json_atomic(run_dir / "results.json", results)
    log(f"wrote {run_dir / 'table.md'}, results.json and {len(plots)} plots "
        f"in {results['wall_time_s']:.0f}s")
    return results
