"""PNG figures shared by the baselines and the EEG challenge runs (``eegattn.training`` and
``eegattn.baselines`` both draw through this module; it imports neither).

Every function takes plain arrays (numpy arrays or torch tensors) or modules, writes one PNG to
``path`` and returns ``path`` as a :class:`~pathlib.Path`. The file is written under a temporary
name in the same folder and renamed, so a killed run never leaves a half-written image; an
existing file is refused unless ``force=True``. Figures use matplotlib's object API with the Agg
canvas (no pyplot state, no display needed).

- :func:`plot_learning_curves` - metrics per epoch / step (the estimator's ``history_``).
- :func:`plot_attention_maps` - attention weights per head, (h, n, m).
- :func:`plot_inattention` - Inattention NotaBene's figures: keep probabilities and learned
  stack weights (alphas) of every inattention layer.
- :func:`plot_channel_topomap` - one weight per GSN-HydroCel-129 channel on the scalp (MNE's
  standard montage ``"GSN-HydroCel-129"``: E1..E128 + Cz).
- :func:`plot_temporal_gate` - a temporal gate over the window, in seconds.
- :func:`plot_predictions` - predicted against true targets, with the identity line.
- :func:`plot_gates` - every channel / temporal gate of a model after a forward pass.
- :func:`plot_run` - the figures of a challenge run folder (learning curves, predictions,
  gates); the run folder owns its files, so they are replaced if present.
- :func:`plot_bars` - a bar per label.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from eegattn.data.montage import HBN_CHANNELS
from eegattn.utils.io import atomic_path

__all__ = [
    "HYDROCEL_CHANNELS",
    "plot_attention_maps",
    "plot_bars",
    "plot_channel_topomap",
    "plot_gates",
    "plot_inattention",
    "plot_learning_curves",
    "plot_predictions",
    "plot_run",
    "plot_temporal_gate",
]

#: channel order of the HBN recordings (and of MNE's GSN-HydroCel-129 montage)
HYDROCEL_CHANNELS: tuple[str, ...] = HBN_CHANNELS
_SPLITS = ("train", "valid", "test")
#: history keys that are bookkeeping, not curves
_NOT_CURVES = ("epoch", "step", "lr", "duration_s", "time_s")


# --------------------------------------------------------------------------- helpers


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _target(path, force: bool) -> Path:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ValueError(f"plots are PNG files: {path} must end in .png")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"folder {path.parent} does not exist; create it first")
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; choose a new name or pass force=True")
    return path


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def _array(values, name: str) -> np.ndarray:
    """A float numpy copy of ``values`` (array, tensor or sequence); NaN/Inf refused."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got {type(values).__name__}") from exc
    if arr.size and not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values; plot finite weights only")
    return arr


# --------------------------------------------------------------------------- learning curves


def _curve_keys(history: Sequence[Mapping]) -> list[str]:
    keys: list[str] = []
    for record in history:
        for key, value in record.items():
            if key in _NOT_CURVES or key in keys:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                keys.append(key)
    return keys


def _family(key: str) -> tuple[str, str]:
    """``valid_loss`` -> (``loss``, ``valid``); keys without a split prefix are their own."""
    for split in _SPLITS:
        if key.startswith(split + "_"):
            return key[len(split) + 1:], split
    return key, ""


def plot_learning_curves(
    history: Sequence[Mapping] | Mapping[str, Sequence[Mapping]],
    path,
    *,
    keys: Sequence[str] | None = None,
    title: str | None = None,
    force: bool = False,
) -> Path:
    """Learning curves: one panel per metric family (``loss``, ``acc``, ``nrmse`` ...).

    Parameters
    ----------
    history : list of dict, or {label: list of dict}
        One record per epoch (or evaluation step), e.g. the estimator's ``history_``
        (``{"epoch": 1, "train_loss": ..., "valid_loss": ..., "valid_nrmse": ...}``). The x axis
        is ``epoch`` (else ``step``, else the record index). Keys ``train_X``, ``valid_X`` and
        ``test_X`` share the panel ``X``; ``None`` values are skipped. A mapping draws several
        runs (one colour per label) into the same panels.
    keys : list of str, optional
        Only these history keys (default: every numeric key except epoch, step, lr and
        durations).
    """
    runs = dict(history) if isinstance(history, Mapping) else {"": history}
    if not runs:
        raise ValueError("history is empty; give at least one run")
    for label, records in runs.items():
        if isinstance(records, Mapping | str) or not isinstance(records, Sequence):
            raise ValueError(
                f"history{'[' + repr(label) + ']' if label else ''} must be a list of dicts "
                "(one per epoch)"
            )
        if not records or not all(isinstance(r, Mapping) for r in records):
            raise ValueError("every history must be a non-empty list of dicts (one per epoch)")
    target = _target(path, force)
    wanted = list(keys) if keys is not None else None
    families: dict[str, list[tuple[str, str]]] = {}
    for label, records in runs.items():
        for key in wanted if wanted is not None else _curve_keys(records):
            family, _ = _family(key)
            families.setdefault(family, [])
            if (label, key) not in families[family]:
                families[family].append((label, key))
    if not families:
        raise ValueError("history has no numeric metric to plot; records need e.g. 'train_loss'")
    fig = _figure(4.2 * len(families), 3.4)
    colours = {label: f"C{i % 10}" for i, label in enumerate(runs)}
    styles = {"train": "-", "valid": "--", "test": ":", "": "-"}
    for ax, (family, lines) in zip(fig.subplots(1, len(families), squeeze=False)[0],
                                   families.items()):
        for label, key in lines:
            records = runs[label]
            xs, ys = [], []
            for i, record in enumerate(records):
                value = record.get(key)
                if value is None or (isinstance(value, float) and not math.isfinite(value)):
                    continue
                xs.append(record.get("epoch", record.get("step", i + 1)))
                ys.append(float(value))
            if not xs:
                continue
            split = _family(key)[1]
            name = " ".join(part for part in (label, split or key) if part)
            ax.plot(xs, ys, styles[split], color=colours[label], label=name,
                    marker="." if len(xs) < 30 else None)
        first = next(iter(runs.values()))[0]
        ax.set_xlabel("epoch" if "epoch" in first else "step" if "step" in first else "record")
        ax.set_ylabel(family)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(fig, target)


# --------------------------------------------------------------------------- attention maps


def plot_attention_maps(
    attn,
    path,
    *,
    title: str | None = None,
    query_labels: Sequence[str] | None = None,
    key_labels: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Attention weights per head: one heatmap (queries x keys) per head.

    ``attn`` is (h, n, m) (a module's ``last_attention`` for one sample) or (b, h, n, m),
    which is averaged over the batch. Labels, when given, name the rows / columns.
    """
    arr = _array(attn, "attn")
    if arr.ndim == 4:
        arr = arr.mean(axis=0)
    if arr.ndim != 3 or 0 in arr.shape:
        raise ValueError(
            f"attn must be (heads, queries, keys) or (batch, heads, queries, keys), "
            f"got shape {arr.shape}"
        )
    h, n, m = arr.shape
    for name, labels, size in (("query_labels", query_labels, n), ("key_labels", key_labels, m)):
        if labels is not None and len(labels) != size:
            raise ValueError(f"{name} has {len(labels)} entries but the map has {size}")
    target = _target(path, force)
    cols = min(h, 4)
    rows = math.ceil(h / cols)
    cell = max(2.6, min(5.0, 0.12 * max(n, m)))
    fig = _figure(cell * cols + 0.8, cell * rows + 0.4)
    axes = fig.subplots(rows, cols, squeeze=False)
    # one colour scale for all heads, stretched to the weights present (they are often flat)
    vmin, vmax = float(arr.min()), float(arr.max())
    if vmax <= vmin:
        vmin, vmax = min(vmin, 0.0), max(vmax, vmin + 1e-6)
    image = None
    for k, ax in enumerate(axes.flat):
        if k >= h:
            ax.axis("off")
            continue
        image = ax.imshow(arr[k], cmap="viridis", vmin=vmin, vmax=vmax, aspect="auto",
                          interpolation="nearest")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.yaxis.get_major_locator().set_params(integer=True)
        ax.set_title(f"head {k}", fontsize=9)
        ax.set_xlabel("key")
        ax.set_ylabel("query")
        if query_labels is not None and n <= 64:
            ax.set_yticks(range(n), list(query_labels), fontsize=5)
        if key_labels is not None and m <= 64:
            ax.set_xticks(range(m), list(key_labels), fontsize=5, rotation=90)
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, label="weight")
    if title:
        fig.suptitle(title)
    return _save(fig, target)


# --------------------------------------------------------------------------- inattention


def _inattention_layers(module) -> list:
    from eegattn.attention.inattention import InattentionDropout

    if isinstance(module, InattentionDropout):
        return [module]
    if not hasattr(module, "modules"):
        raise ValueError(
            f"plot_inattention needs an nn.Module holding InattentionDropout layers, got "
            f"{type(module).__name__}"
        )
    return [m for m in module.modules() if isinstance(m, InattentionDropout)]


def plot_inattention(module, path, *, title: str | None = None, force: bool = False) -> Path:
    """Inattention NotaBene's figures for every :class:`~eegattn.attention.InattentionDropout`
    in ``module`` (the layer itself, a ``StackedInattentionDropout`` or a whole network).

    One row per layer: the learned stack weights ``alphas`` (softmax of alpha) as bars, then
    one panel per stack with its keep probabilities from the last forward pass
    (``last_keep_prob`` averaged over the batch): per channel as bars, per element of an
    image as a map (mean over channels), per element of a sequence as a curve over time.
    Without a forward pass yet, only the alphas are drawn.
    """
    layers = _inattention_layers(module)
    if not layers:
        raise ValueError("module holds no InattentionDropout layer; nothing to plot")
    target = _target(path, force)
    width = 1 + max(layer.num_stacks for layer in layers)
    fig = _figure(3.0 * width, 2.8 * len(layers))
    axes = fig.subplots(len(layers), width, squeeze=False)
    for row, layer in enumerate(layers):
        alphas = layer.alphas.cpu().numpy()
        ax = axes[row, 0]
        ax.bar(range(len(alphas)), alphas, color="C1")
        ax.axhline(1.0 / len(alphas), color="grey", lw=0.8, ls="--", label="uniform")
        ax.set_title(f"layer {row}: stack weights (alphas)", fontsize=9)
        ax.set_xlabel("stack")
        ax.set_xticks(range(len(alphas)))
        ax.set_ylim(0, max(1.0, float(alphas.max()) * 1.1))
        ax.legend(fontsize=7)
        keep = layer.last_keep_prob
        for k in range(1, width):
            ax = axes[row, k]
            if keep is None or k > layer.num_stacks:
                ax.axis("off")
                if keep is None and k == 1:
                    ax.text(0.0, 0.5, "no forward pass yet:\nkeep probabilities unknown",
                            fontsize=9, transform=ax.transAxes)
                continue
            probs = keep[:, k - 1].float().mean(dim=0).cpu().numpy()  # (c, *spatial)
            name = f"layer {row} stack {k - 1}: keep prob. (alpha {alphas[k - 1]:.2f})"
            ax.set_title(name, fontsize=8)
            if probs.ndim == 1:  # per channel
                ax.bar(range(len(probs)), probs, width=1.0, color="C0")
                ax.set_xlabel("channel")
                ax.set_ylim(0, 1)
            elif probs.ndim == 3:  # per element of an image: mean over channels
                image = ax.imshow(probs.mean(axis=0), cmap="viridis")  # own range: see detail
                ax.set_xticks([])
                ax.set_yticks([])
                fig.colorbar(image, ax=ax, shrink=0.8)
            else:  # per element of a sequence: mean over channels, over time
                ax.plot(probs.reshape(probs.shape[0], -1).mean(axis=0), color="C0")
                ax.set_xlabel("time sample")
                ax.set_ylim(0, 1)
    if title:
        fig.suptitle(title)
    return _save(fig, target)


# --------------------------------------------------------------------------- EEG plots


def _hydrocel_info(sfreq: float = 100.0):
    import mne

    info = mne.create_info(list(HYDROCEL_CHANNELS), sfreq=sfreq, ch_types="eeg")
    info.set_montage(mne.channels.make_standard_montage("GSN-HydroCel-129"))
    return info


def plot_channel_topomap(
    weights,
    path,
    *,
    title: str | None = None,
    cmap: str = "viridis",
    label: str = "weight",
    force: bool = False,
) -> Path:
    """Channel weights (e.g. :class:`~eegattn.attention.ChannelAttention`'s ``last_gate``) on
    a GSN-HydroCel-129 scalp map (MNE ``plot_topomap``).

    ``weights`` is (129,) in the HBN channel order E1..E128, Cz, or (b, 129), averaged over
    the batch.
    """
    arr = _array(weights, "weights")
    if arr.ndim == 2:
        arr = arr.mean(axis=0)
    if arr.shape != (len(HYDROCEL_CHANNELS),):
        raise ValueError(
            f"weights must have one value per GSN-HydroCel-129 channel, shape (129,) or "
            f"(batch, 129) in the order E1..E128, Cz; got {np.shape(weights)}"
        )
    target = _target(path, force)
    import mne

    fig = _figure(4.2, 3.8)
    ax = fig.subplots()
    image, _ = mne.viz.plot_topomap(arr, _hydrocel_info(), axes=ax, show=False, cmap=cmap,
                                    sensors=True, contours=4)
    fig.colorbar(image, ax=ax, shrink=0.8, label=label)
    ax.set_title(title or "channel weights (GSN-HydroCel-129)", fontsize=10)
    return _save(fig, target)


def plot_temporal_gate(
    gate,
    sfreq: float,
    path,
    *,
    t0: float = 0.0,
    title: str | None = None,
    force: bool = False,
) -> Path:
    """A temporal gate over the window (e.g. :class:`~eegattn.attention.TemporalAttention`'s
    ``last_gate``): value against time in seconds.

    ``gate`` is (t,) or (b, t) (mean with a band of +-1 standard deviation over the batch);
    ``sfreq`` in Hz; ``t0`` is the window's start time (e.g. 0.5 s after the stimulus).
    """
    arr = _array(gate, "gate")
    if arr.ndim not in (1, 2) or arr.shape[-1] == 0:
        raise ValueError(f"gate must be (time,) or (batch, time), got shape {arr.shape}")
    if isinstance(sfreq, bool) or not isinstance(sfreq, int | float) or not sfreq > 0:
        raise ValueError(f"sfreq must be a positive number of Hz, got {sfreq!r}")
    target = _target(path, force)
    mean = arr if arr.ndim == 1 else arr.mean(axis=0)
    times = t0 + np.arange(mean.shape[0]) / float(sfreq)
    fig = _figure(6.0, 2.8)
    ax = fig.subplots()
    ax.plot(times, mean, color="C0", label="gate" if arr.ndim == 1 else "mean gate")
    if arr.ndim == 2 and arr.shape[0] > 1:
        std = arr.std(axis=0)
        ax.fill_between(times, mean - std, mean + std, color="C0", alpha=0.25, label="+-1 sd")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("gate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title or "temporal gate", fontsize=10)
    return _save(fig, target)


# --------------------------------------------------------------------------- summaries


def plot_bars(
    values: Mapping[str, float],
    path,
    *,
    errors: Mapping[str, float] | None = None,
    ylabel: str = "",
    title: str | None = None,
    force: bool = False,
) -> Path:
    """A bar per label (e.g. test accuracy per model), with optional error bars."""
    if not values:
        raise ValueError("values is empty; give at least one label")
    labels = list(values)
    heights = _array([values[k] for k in labels], "values")
    errs = None if errors is None else _array([errors.get(k, 0.0) for k in labels], "errors")
    target = _target(path, force)
    fig = _figure(max(4.0, 0.9 * len(labels) + 1.5), 3.4)
    ax = fig.subplots()
    ax.bar(range(len(labels)), heights, yerr=errs, color="C0", capsize=3)
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, target)


# --------------------------------------------------------------------------- challenge runs


def plot_predictions(y_true, y_pred, path, *, target: str = "target", title: str | None = None,
                     force: bool = False) -> Path:
    """Predicted against true targets (one dot per window) with the identity line."""
    true, pred = _array(y_true, "y_true").reshape(-1), _array(y_pred, "y_pred").reshape(-1)
    if true.shape != pred.shape or true.size == 0:
        raise ValueError(f"y_true and y_pred need the same non-zero length, got {true.size} and "
                         f"{pred.size}")
    target_path = _target(path, force)
    fig = _figure(4.0, 4.0)
    ax = fig.subplots()
    ax.scatter(true, pred, s=6, alpha=0.5)
    lo, hi = float(true.min()), float(true.max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    ax.set_xlabel(f"true {target}")
    ax.set_ylabel("predicted")
    if title:
        ax.set_title(title, fontsize=10)
    return _save(fig, target_path)


def plot_gates(model, folder, sfreq: float, *, force: bool = False) -> list[str]:
    """Draw every gate of ``model`` from its last forward pass into ``folder``.

    A :class:`~eegattn.attention.ChannelAttention` over the 129 HBN channels becomes
    ``channel_attention_topomap.png``, a :class:`~eegattn.attention.TemporalAttention`
    ``temporal_gate.png`` (mean and spread over the batch); the first gate of each kind only
    (an ensemble's first member). Returns the file names written (none for a model without
    gates, or before its first forward pass).
    """
    from eegattn.attention.gates import ChannelAttention, TemporalAttention

    folder = Path(folder)
    written = []
    for module in model.modules():
        gate = getattr(module, "last_gate", None)
        if gate is None:
            continue
        values = gate.detach().float().cpu().numpy()  # (b, channels) or (b, time)
        if isinstance(module, ChannelAttention) and values.shape[-1] == len(HYDROCEL_CHANNELS):
            name = "channel_attention_topomap.png"
        elif isinstance(module, TemporalAttention):
            name = "temporal_gate.png"
        else:
            continue
        if name in written:  # an ensemble's later members: the first member's gate is drawn
            continue
        if name == "temporal_gate.png":
            plot_temporal_gate(values, sfreq, folder / name, force=force)
        else:
            plot_channel_topomap(values, folder / name, force=force)
        written.append(name)
    return written


def plot_run(run_dir, history, y_true, y_pred, *, target: str, model=None,
             sfreq: float | None = None) -> list[str]:
    """The figures of a challenge run in ``run_dir``; returns the file names written.

    ``learning_curves.png`` (train and validation loss per epoch from ``history``, the
    estimator's ``history_``), ``pred_vs_true.png`` and, with ``model`` and ``sfreq``, the
    model's gates (:func:`plot_gates`). Existing files of the run are replaced.
    """
    run_dir = Path(run_dir)
    plot_learning_curves(history, run_dir / "learning_curves.png",
                         keys=("train_loss", "valid_loss"), force=True)
    plot_predictions(y_true, y_pred, run_dir / "pred_vs_true.png", target=target, force=True)
    written = ["learning_curves.png", "pred_vs_true.png"]
    if model is not None and sfreq is not None:
        written += plot_gates(model, run_dir, sfreq, force=True)
    return written
