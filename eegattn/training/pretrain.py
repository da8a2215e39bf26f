"""Self-supervised pretraining on unlabeled HBN windows: masked reconstruction.

HBN has hours of EEG per subject in tasks without challenge targets (resting state, movies,
surround suppression, ...). :func:`pretrain` teaches a model's encoder to reconstruct what was
hidden from it in windows of those tasks, and writes a folder that ``eegattn train --init DIR``
(the estimator's ``init=``) fine-tunes from.

The objective (after masked autoencoders, He et al. 2022, and the masked EEG patch
reconstruction of LaBraM and CBraMod)::

    x (b, 129, 200) volts
      mask: whole time patches (``mask_ratio`` of them, one patch per time token of the
            model, shared by all channels) and whole channels (``channel_mask_ratio``);
            masked samples are set to 0 V
      model: every layer up to its read-out: the time tokens (b, T, d) that its ``pool``
            receives (the project's convolution + attention models and the foundation
            backbones all have one)
      decoder: one linear map per token, d -> (129 channels x the token's samples)
    loss: mean squared error on the masked samples only, against the window's per-channel
          z-scores (the project's input normalisation, so units do not matter; a flat Cz is 0)

Training runs through the one training loop (:class:`~eegattn.training.loop.TrainingLoop`)
with the model-owned criterion it already supports (``loss_criterion``); the targets are
dummies. Masks are drawn from torch's generator, which the loop seeds and checkpoints. A
held-out set of subjects measures the reconstruction loss after training, beside the loss of
predicting zeros (the mean z-score) for scale.

The folder written: ``config.json`` + ``weights.pt`` (the model, as ``eegattn train`` run
folders hold it: ``training.runs.save_run``; its head is untrained and is not loaded by
``--init``), ``history.json``, ``metrics.json`` and ``pretrain.json`` (objective, tasks,
subjects, windows, masking, the held-out loss).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from eegattn.models.normalization import EEGInputNormalization

__all__ = [
    "OBJECTIVES",
    "MaskedReconstruction",
    "PretrainResult",
    "UnlabeledWindows",
    "unlabeled_windows",
    "pretrain",
    "write_pretrain_folder",
]

OBJECTIVES = ("masked",)
PRETRAIN_FORMAT = 1


# --------------------------------------------------------------------------- data


@dataclass
class UnlabeledWindows:
    """Fixed-length windows without targets: ``X`` (n, 129, n_times) float32 volts and one
    metadata row per window (release, subject, task, run, recording, i_start)."""

    X: np.ndarray
    metadata: pd.DataFrame
    sfreq: float
    info: dict = field(default_factory=dict)

    @property
    def groups(self) -> np.ndarray:
        return self.metadata["subject"].to_numpy()

    def __len__(self) -> int:
        return int(self.X.shape[0])


def unlabeled_windows(root, releases=("R5",), tasks=None, *, mini: bool = False,
                      window_s: float = 2.0, stride_s: float = 2.0, subjects=None,
                      exclude_subjects=(), max_windows_per_recording: int | None = None,
                      verbose: int = 0) -> UnlabeledWindows:
    """Windows of every recording of ``tasks`` (default: every task but CCD on disk).

    Recordings are read as the challenge's windows are (:func:`eegattn.data.preprocess.
    preprocess_recording` with the default configuration: the 129 channels in HBN order, at
    100 Hz), cut into ``window_s`` windows every ``stride_s`` seconds (the last partial one
    dropped). ``exclude_subjects`` are left out (e.g. the subjects a model will be tested on).
    """
    from eegattn.challenge import ALL_TASKS, CCD_TASK
    from eegattn.data.hbn import open_releases
    from eegattn.data.preprocess import PreprocessConfig, preprocess_recording
    from eegattn.data.windows import challenge2_window_starts

    default_tasks = tasks is None
    recordings = open_releases(root, releases, mini=mini,
                               tasks=ALL_TASKS if default_tasks else tasks, subjects=subjects)
    if default_tasks:
        recordings = [r for r in recordings if r.task != CCD_TASK]
        if not recordings:
            raise ValueError(
                "the releases hold no task but contrastChangeDetection; pretrain on unlabeled "
                "CCD windows with --tasks contrastChangeDetection (and --exclude-subjects for "
                "the subjects you will test on)"
            )
    excluded = {str(s) for s in exclude_subjects or ()}
    recordings = [r for r in recordings if r.subject not in excluded]
    if not recordings:
        raise ValueError(f"no recording left after excluding {len(excluded)} subject(s)")
    config = PreprocessConfig()
    blocks, frames = [], []
    for i, rec in enumerate(recordings):
        data, sfreq = preprocess_recording(rec.path, config)
        starts = challenge2_window_starts(data.shape[1], sfreq, window_s=window_s,
                                          stride_s=stride_s)
        if max_windows_per_recording is not None:
            starts = starts[: int(max_windows_per_recording)]
        size = int(round(window_s * sfreq))
        if len(starts):
            idx = starts[:, None] + np.arange(size)[None, :]  # (n, size)
            blocks.append(np.ascontiguousarray(
                data[:, idx].transpose(1, 0, 2), dtype=np.float32))  # (n, 129, size)
            frames.append(pd.DataFrame({
                "release": rec.release, "subject": rec.subject, "task": rec.task,
                "run": pd.array([rec.run] * len(starts), dtype="Int64"),
                "recording": rec.path.name, "i_start": starts,
            }))
        if verbose:
            print(f"\rread {i + 1}/{len(recordings)} recordings", end="", flush=True)
    if verbose:
        print(flush=True)
    if not blocks:
        raise ValueError(f"no {window_s:g} s window fits in any of the {len(recordings)} "
                         "recordings")
    meta = pd.concat(frames, ignore_index=True)
    info = {"tasks": sorted(meta["task"].unique().tolist()),
            "n_recordings": len(recordings), "window_s": window_s, "stride_s": stride_s,
            "excluded_subjects": sorted(excluded)}
    return UnlabeledWindows(np.concatenate(blocks), meta, float(sfreq), info)


# --------------------------------------------------------------------------- objective


class MaskedReconstruction(nn.Module):
    """``model``'s time tokens -> a reconstruction of the masked parts of the window.

    ``model`` must have a ``pool`` submodule that receives its time tokens (b, T, d) (see the
    module docstring). In training ``forward`` draws the masks and returns a (b, 3, c, t)
    stack of reconstruction, target and mask, which :meth:`criterion` (the loop's
    model-owned loss, :meth:`loss_criterion`) turns into the masked mean squared error.
    :meth:`reconstruct` does the same with given masks (evaluation).

    Parameters
    ----------
    model : the EEG model whose encoder is pretrained (its head is left untrained).
    n_chans, n_times : window shape.
    mask_ratio : fraction of time patches masked in each window.
    channel_mask_ratio : fraction of channels masked in each window.
    """

    def __init__(self, model: nn.Module, n_chans: int, n_times: int, *,
                 mask_ratio: float = 0.5, channel_mask_ratio: float = 0.25) -> None:
        super().__init__()
        pool = getattr(model, "pool", None)
        if not isinstance(pool, nn.Module):
            raise ValueError(
                f"{type(model).__name__} has no `pool` module receiving its time tokens, so it "
                "cannot be pretrained by reconstruction; use a lightweight* model or a "
                "foundation model (steegformer, cbramod, labram)"
            )
        for name, value in (("mask_ratio", mask_ratio),
                            ("channel_mask_ratio", channel_mask_ratio)):
            if not 0.0 <= float(value) < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        if mask_ratio == 0 and channel_mask_ratio == 0:
            raise ValueError("mask_ratio and channel_mask_ratio are both 0: nothing to "
                             "reconstruct")
        self.model = model
        self.n_chans, self.n_times = int(n_chans), int(n_times)
        self.mask_ratio, self.channel_mask_ratio = float(mask_ratio), float(channel_mask_ratio)
        self._tokens: Tensor | None = None
        self._hook = pool.register_forward_pre_hook(self._keep_tokens)
        self.target_norm = EEGInputNormalization()
        was_training = model.training
        model.eval()
        with torch.no_grad():
            tokens = self.encode(torch.zeros(1, n_chans, n_times))  # (1, T, d)
        model.train(was_training)
        if tokens.dim() != 3:
            raise ValueError(f"{type(model).__name__}'s pool receives shape "
                             f"{tuple(tokens.shape)}, not time tokens (b, T, d)")
        self.n_tokens, width = int(tokens.shape[1]), int(tokens.shape[2])
        self.patch = math.ceil(n_times / self.n_tokens)  # samples per token
        self.decoder = nn.Linear(width, n_chans * self.patch)

    def _keep_tokens(self, module, args):
        self._tokens = args[0]

    def encode(self, x: Tensor) -> Tensor:
        """(b, c, t) volts -> the model's time tokens (b, T, d)."""
        self._tokens = None
        self.model(x)
        tokens, self._tokens = self._tokens, None
        return tokens

    def draw_masks(self, b: int, device, generator=None) -> Tensor:
        """Boolean (b, c, t), True where masked: whole patches of one token's samples and
        whole channels; at least one patch or channel per window."""
        n_tok = self.n_tokens
        time_m = torch.rand(b, n_tok, device=device, generator=generator) < self.mask_ratio
        chan_m = torch.rand(b, self.n_chans, device=device, generator=generator) < (
            self.channel_mask_ratio)
        empty = ~(time_m.any(1) | chan_m.any(1))  # nothing masked: mask one patch
        time_m[empty, 0] = True
        time_m = time_m.repeat_interleave(self.patch, dim=1)[:, : self.n_times]  # (b, t)
        return time_m[:, None, :] | chan_m[:, :, None]  # (b, c, t)

    def reconstruct(self, x: Tensor, mask: Tensor) -> Tensor:
        """Reconstruction (b, c, t) in z-score units of ``x`` with ``mask`` applied."""
        tokens = self.encode(x.masked_fill(mask, 0.0))  # (b, T, d)
        b = x.shape[0]
        out = self.decoder(tokens).reshape(b, self.n_tokens, self.n_chans, self.patch)
        out = out.permute(0, 2, 1, 3).reshape(b, self.n_chans, -1)  # (b, c, T * patch)
        return out[:, :, : self.n_times]

    def forward(self, x: Tensor) -> Tensor:
        mask = self.draw_masks(x.shape[0], x.device)
        recon = self.reconstruct(x, mask)
        target = self.target_norm(x)
        return torch.stack([recon, target, mask.to(recon.dtype)], dim=1)  # (b, 3, c, t)

    @staticmethod
    def criterion(output: Tensor, y: Tensor) -> Tensor:
        """Mean squared error over the masked samples of a (b, 3, c, t) output."""
        recon, target, mask = output[:, 0], output[:, 1], output[:, 2]
        return ((recon - target) ** 2 * mask).sum() / mask.sum().clamp(min=1.0)

    def loss_criterion(self):
        return self.criterion

    def remove_hook(self) -> None:
        self._hook.remove()


# --------------------------------------------------------------------------- training


@dataclass
class PretrainResult:
    """What :func:`pretrain` trained and measured."""

    model: nn.Module
    history: list
    metrics: dict
    info: dict


def _heldout_loss(net: MaskedReconstruction, X, idx, batch_size: int, device, seed: int):
    """Masked MSE on windows ``idx`` with seeded masks, and the loss of predicting zeros."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    net.eval()
    total = zeros = count = 0.0
    with torch.no_grad():
        for start in range(0, len(idx), batch_size):
            xb = torch.from_numpy(np.asarray(X[idx[start:start + batch_size]],
                                             dtype=np.float32)).to(device)
            mask = net.draw_masks(xb.shape[0], "cpu", generator=gen).to(device)
            recon = net.reconstruct(xb, mask)
            target = net.target_norm(xb)
            m = mask.to(recon.dtype)
            total += float(((recon - target) ** 2 * m).sum())
            zeros += float((target ** 2 * m).sum())
            count += float(m.sum())
    return total / max(count, 1.0), zeros / max(count, 1.0)


def pretrain(windows: UnlabeledWindows, *, model="lightweight_fast", model_options=None,
             init=None, objective: str = "masked", epochs: int = 10, batch_size: int = 64,
             lr: float = 1e-3, weight_decay: float = 0.05, mask_ratio: float = 0.5,
             channel_mask_ratio: float = 0.25, heldout_fraction: float = 0.1, seed: int = 0,
             device: str = "cpu", verbose: int = 1) -> PretrainResult:
    """Pretrain ``model`` on ``windows`` (no targets) through the training loop.

    ``heldout_fraction`` of the subjects (at least one, when there are two or more) are kept
    out of training to measure the reconstruction loss; ``init`` starts from other weights
    (``hf:ORG/NAME`` or a folder, see :mod:`eegattn.training.finetune`).
    """
    from eegattn.training.estimator import instantiate_model, resolve_device
    from eegattn.training.finetune import load_init, resolve_init
    from eegattn.training.loop import LoopSettings, TrainingLoop
    from eegattn.utils.check import check_fraction, check_option, check_positive_int

    check_option("objective", objective, OBJECTIVES)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_fraction(heldout_fraction, "heldout_fraction", low_inclusive=True)
    source = None if init is None else resolve_init(init)
    device = resolve_device(device)
    X = windows.X
    n, n_chans, n_times = X.shape
    subjects = np.unique(windows.groups)
    rng = np.random.default_rng([seed, 7])
    n_held = 0 if heldout_fraction == 0 or subjects.size < 2 else max(
        1, int(round(heldout_fraction * subjects.size)))
    held = set(rng.permutation(subjects)[:n_held].tolist())
    is_held = np.isin(windows.groups, list(held))
    train_idx, held_idx = np.flatnonzero(~is_held), np.flatnonzero(is_held)
    if len(train_idx) < 2:
        raise ValueError(f"only {len(train_idx)} training window(s); pretraining needs more")

    settings = LoopSettings(max_epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                            weight_decay=float(weight_decay), early_stopping=False,
                            verbose=int(verbose))
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        module = instantiate_model(model, model_options, n_chans=n_chans, n_times=n_times,
                                   sfreq=windows.sfreq)
        init_report = None if source is None else load_init(module, source)
        net = MaskedReconstruction(module, n_chans, n_times, mask_ratio=mask_ratio,
                                   channel_mask_ratio=channel_mask_ratio).to(device)
        y = np.zeros(n, dtype=np.float32)  # no targets: the criterion reads the windows
        loop = TrainingLoop(settings, net, X, y, train_idx, np.zeros(0, dtype=np.int64),
                            crop=None, seed=seed, device=device, fingerprint={})
        loop.run()
        held_loss = zero_loss = None
        if len(held_idx):
            held_loss, zero_loss = _heldout_loss(net, X, held_idx, int(batch_size), device,
                                                 seed)
        net.remove_hook()
    module = net.model.cpu().eval()
    metrics = {
        "objective": objective,
        "train_loss": loop.history[-1]["train_loss"] if loop.history else None,
        "heldout_loss": held_loss,
        "heldout_zero_loss": zero_loss,
        "n_train_windows": int(len(train_idx)),
        "n_heldout_windows": int(len(held_idx)),
        "duration_s": time.perf_counter() - started,
    }
    info = {
        "format": PRETRAIN_FORMAT,
        "objective": objective,
        "mask_ratio": mask_ratio,
        "channel_mask_ratio": channel_mask_ratio,
        "patch_samples": net.patch,
        "n_tokens": net.n_tokens,
        "tasks": windows.info.get("tasks"),
        "train_subjects": sorted(set(map(str, windows.groups[train_idx]))),
        "heldout_subjects": sorted(map(str, held)),
        "excluded_subjects": windows.info.get("excluded_subjects", []),
        "window_s": windows.info.get("window_s"),
        "stride_s": windows.info.get("stride_s"),
        "init": None if source is None else source.spec,
        "init_report": init_report,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "weight_decay": weight_decay,
    }
    return PretrainResult(module, loop.history, metrics, info)


def write_pretrain_folder(out, result: PretrainResult, *, model, model_options=None,
                          extra: dict | None = None) -> Path:
    """Write ``result`` into the new folder ``out`` (refused if it exists and is not empty):
    ``pretrain.json`` first, then the run-format files, ``config.json`` last (complete)."""
    from eegattn.training.finetune import PRETRAIN_MARKER
    from eegattn.training.runs import save_run
    from eegattn.utils.io import write_json_atomic

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists and is not an empty folder; choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / PRETRAIN_MARKER, {**result.info, **(extra or {}),
                                              "metrics": result.metrics})
    config = {"model": model, "model_options": model_options or {}, "challenge": None,
              "pretrain": {"objective": result.info["objective"],
                           "tasks": result.info["tasks"]}}
    save_run(out, result.model, config=config, metrics=result.metrics,
             history=result.history)
    return out
