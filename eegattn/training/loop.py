"""The training loop: the one place where EEG regressors are trained.

Everything that trains a model goes through :class:`TrainingLoop`: the scikit-learn estimator
(``EEGAttentionRegressor.fit``), ``eegattn train`` and the challenge scripts (through the
estimator), data-parallel runs under ``torchrun`` (the same loop, a process group around it)
and the benchmarks. Anything added to training (augmentation, heads, ensembles) therefore
exists once.

One epoch, read top to bottom (nanoGPT's style): draw the epoch's window order and crop
starts from ``(seed, epoch)``; for each global batch take this process's share, step; at the
end of the epoch validate, track the best epoch, maybe stop early, checkpoint.

Exact resume: the checkpoint holds the model, optimizer, scheduler, torch RNG states (of every
process), the epoch's order and crops, the step within the epoch and the early-stopping state,
so a run killed at any point and resumed from its last checkpoint ends with the same weights
and history (durations aside) as an uninterrupted one.

Data-parallel semantics (world size ``W`` > 1): ``batch_size`` is the *global* batch; the
window order is the same on every process and process ``r`` takes ``batch[r::W]``. Each
process scales its mean loss by ``W * n_local / n_global`` before ``backward``, so DDP's
gradient average equals the gradient of the global batch's mean loss, also when the last
batch does not split evenly. Logged losses are global. Validation runs on rank 0 and its
record is broadcast, so every process takes the same early-stopping decision. Only rank 0
writes checkpoints; they hold every process's RNG state and resume with the same world size.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from eegattn.challenge import C1_SHIFT_AFTER_STIMULUS_S
from eegattn.training.augment import BatchAugmenter
from eegattn.training.batches import crop_windows, gather_batch, make_batch_loader
from eegattn.training.checkpoint import (
    capture_rng_state,
    restore_rng_state,
    save_checkpoint,
)
from eegattn.training.distributed import DistContext
from eegattn.training.metrics import nrmse
from eegattn.training.signals import TrainingInterrupted, stop_requested

__all__ = [
    "OPTIMIZERS",
    "LR_SCHEDULES",
    "LOSSES",
    "PRECISIONS",
    "LoopSettings",
    "TrainingLoop",
    "TrainingInterrupted",
    "ClosedFormRun",
    "make_optimizer",
    "make_scheduler",
    "make_loss",
    "train_step",
    "predict_module",
    "random_crop_offsets",
    "seeded_crop_offsets",
    "crop_windows",
    "eval_offsets",
    "cpu_state_dict",
    "init_output_bias",
    "head_criterion",
    "negative_correlation_criterion",
    "steps_per_epoch",
]

OPTIMIZERS = ("adamw", "adam", "sgd")
LR_SCHEDULES = ("cosine", "constant")
LOSSES = ("mse", "l1", "huber")


# --------------------------------------------------------------------------- building blocks


def make_optimizer(name: str, params, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=weight_decay)
    raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {name!r}")


def make_scheduler(name, optimizer, total_steps: int):
    """Per-step schedule: ``"cosine"`` anneals to 0 over ``total_steps``; ``"constant"``."""
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    if name in ("constant", None):
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=_constant_factor)
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {name!r}")


def _constant_factor(step: int) -> float:
    return 1.0


def make_loss(name: str) -> nn.Module:
    if name == "mse":
        return nn.MSELoss()
    if name == "l1":
        return nn.L1Loss()
    if name == "huber":
        return nn.HuberLoss()
    raise ValueError(f"loss must be one of {LOSSES}, got {name!r}")


def as_prediction(pred) -> torch.Tensor:
    """(batch,) from a regressor's (batch, 1) or (batch,) output."""
    if pred.dim() == 2 and pred.shape[1] == 1:
        return pred[:, 0]
    if pred.dim() == 1:
        return pred
    raise ValueError(
        f"the model returned shape {tuple(pred.shape)}; a regressor must return (batch, 1)"
    )


PRECISIONS = ("float32", "bfloat16")


def train_step(net, optimizer, loss_fn, xb, yb, *, max_grad_norm=None, scale: float = 1.0,
               params=None, criterion=None, precision: str = "float32") -> torch.Tensor:
    """One optimizer step on a batch: forward, loss, backward, clip, step. Returns the
    (unscaled, detached) loss; ``scale`` multiplies the loss before ``backward`` (the
    data-parallel weighting, see the module docstring). ``criterion(output, yb)``, when given,
    replaces ``loss_fn`` on the prediction: a head that trains against its own target (the
    distribution head's log-probabilities) reads the model's whole output. ``precision=
    "bfloat16"`` runs the forward pass under ``torch.autocast`` (bf16 needs no loss scaling;
    weights, gradients and the loss stay float32)."""
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(xb.device.type, dtype=torch.bfloat16,
                        enabled=precision == "bfloat16"):
        out = net(xb)
    if out.dtype != torch.float32:
        out = out.float()
    loss = criterion(out, yb) if criterion is not None else loss_fn(as_prediction(out), yb)
    (loss * scale if scale != 1.0 else loss).backward()
    if max_grad_norm is not None:
        nn.utils.clip_grad_norm_(params if params is not None else net.parameters(),
                                 float(max_grad_norm))
    optimizer.step()
    return loss.detach()


def random_crop_offsets(rng: np.random.Generator, n: int, n_times: int, crop: int | None):
    """Uniform crop starts in ``[0, n_times - crop]`` (None when no crop is needed)."""
    if crop is None or crop == n_times:
        return None
    return rng.integers(0, n_times - crop + 1, size=n)


def seeded_crop_offsets(n: int, n_times: int, crop: int | None, seed: int):
    """Deterministic evaluation crops: the same ``seed`` and ``n`` give the same crops."""
    return random_crop_offsets(np.random.default_rng(seed), n, n_times, crop)


def eval_offsets(n: int, n_times: int, crop: int | None, anchor: int | None, seed: int):
    """Crop starts for evaluation: the anchor (the exact window inside windows cut with
    context), else seeded crops (challenge 2), else None (windows used as they are)."""
    if crop is not None and anchor is not None and n_times > crop:
        return np.full(n, anchor)
    return seeded_crop_offsets(n, n_times, crop, seed)


def batch_tensor(X, idx, offsets, crop, device) -> torch.Tensor:
    """Windows ``X[idx]`` (cropped) as a float32 tensor on ``device``; X may be a memmap or
    an ``IndexedWindows``."""
    return torch.from_numpy(gather_batch(X, idx, offsets, crop)).to(device)


def predict_module(module, X, idx, offsets, crop, batch_size, device) -> np.ndarray:
    """Predictions (len(idx),) float32 of ``module`` in eval mode."""
    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(idx), batch_size):
            sl = slice(start, start + batch_size)
            off = None if offsets is None else offsets[sl]
            pred = module(batch_tensor(X, idx[sl], off, crop, device))
            out.append(as_prediction(pred).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)


def cpu_state_dict(module: nn.Module) -> dict:
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def head_criterion(module: nn.Module):
    """The model's own training criterion (``module.loss_criterion()``), or None when the
    estimator's regression loss applies."""
    getter = getattr(module, "loss_criterion", None)
    return getter() if callable(getter) else None


def negative_correlation_criterion(members, loss_fn, diversity: float, y_var: float):
    """The criterion of members trained together (negative correlation learning, Liu & Yao
    1999): the mean of the members' squared errors minus ``diversity`` times their
    predictions' spread around the ensemble mean, both over ``y_var`` (the training targets'
    variance), plus the mean of the members' own criteria where they have one (a time
    head's). Members are rewarded for erring differently, and since the mean squared error
    is the ensemble mean's plus the spread, the loss is the ensemble mean's error plus
    (1 - diversity) times the spread: it has a floor for diversity <= 1. (A time head's
    criterion alone does not bound the spread: at 0.3, one member ran to the window's edge
    while the others made up for it.) ``loss_fn`` is the squared error (the estimator
    refuses others). It reads the K members' training outputs side by side, (b, K * W)
    (:meth:`~eegattn.models.ensemble.MeanEnsemble.forward` while ``joint``), each starting
    with the member's prediction."""
    criteria = [head_criterion(m) for m in members]
    k = len(criteria)

    def criterion(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        outs = out.view(out.shape[0], k, -1)  # (b, K, W)
        preds = outs[:, :, 0]  # (b, K): a time head's expectation comes first
        fit = sum(loss_fn(preds[:, i], y) / y_var + (0 if c is None else c(outs[:, i], y))
                  for i, c in enumerate(criteria)) / k
        spread = (preds - preds.mean(1, keepdim=True)).pow(2).mean()
        return fit - diversity * spread / y_var

    return criterion


def init_output_bias(module: nn.Module, targets) -> bool:
    """Start the model's output at the training targets: the bias of the last single-output
    ``nn.Linear`` at their mean, or a time head's prior at their distribution over its bins
    (``TimeHead.init_prior``). False when the model has neither."""
    heads = [sub for sub in module.modules() if hasattr(sub, "init_prior")]
    for head in heads:
        head.init_prior(targets)
    if heads:
        return True
    last = None
    for sub in module.modules():
        if isinstance(sub, nn.Linear) and sub.out_features == 1 and sub.bias is not None:
            last = sub
    if last is None:
        return False
    with torch.no_grad():
        last.bias.fill_(float(np.mean(targets, dtype=np.float64)))
    return True


def steps_per_epoch(n_train: int, batch_size: int, world_size: int = 1) -> int:
    """Optimizer steps per epoch. A last global batch too small to give every process two
    windows is folded into the one before: a batch of one breaks BatchNorm in training."""
    steps = math.ceil(n_train / batch_size)
    if steps > 1 and 0 < n_train % batch_size < 2 * world_size:
        steps -= 1
    return steps


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class LoopSettings:
    """What the loop needs of the estimator's parameters (already validated)."""

    max_epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    optimizer: str = "adamw"
    lr_schedule: str | None = "cosine"
    loss: str = "mse"
    max_grad_norm: float | None = None
    early_stopping: bool = True
    patience: int = 5
    patience_start: int = 0
    checkpoint_dir: str | None = None
    checkpoint_every: int | None = None
    verbose: int = 0
    # augmentation (eegattn.training.augment): parsed {name: options}; the crop start that
    # reads the exact window (validation, predict; time_shift measures shifts from it), the
    # sampling rate and the label's time origin (challenge 1: +0.5 s after the stimulus)
    augment: dict | None = None
    crop_anchor: int | None = None
    sfreq: float = 100.0
    label_origin_s: float = C1_SHIFT_AFTER_STIMULUS_S
    # worker processes gathering training batches (eegattn.training.batches); 0: in-process.
    # Batches, crops and augmentation are decided here either way: the same weights result
    num_workers: int = 0
    # the forward pass's precision in training ("bfloat16": autocast; see train_step)
    precision: str = "float32"


class TrainingLoop:
    """One training run; everything a checkpoint stores lives here.

    ``X`` (n, n_chans, n_times) array or memmap and ``y`` (n,) float32 hold every window;
    ``train_idx`` / ``valid_idx`` select the windows; ``crop`` is the model input length when
    windows are longer (random crops in training, seeded ones in validation).
    """

    def __init__(self, settings: LoopSettings, module, X, y, train_idx, valid_idx, *, crop,
                 seed: int, device, fingerprint: dict, dist: DistContext | None = None,
                 criterion=None):
        self.s = settings
        self.module = module
        self.dist = dist or DistContext()
        self.net = self.dist.wrap(module)
        self.X, self.y = X, y
        self.train_idx, self.valid_idx = train_idx, valid_idx
        self.crop, self.n_times = crop, X.shape[2]
        self.seed, self.device, self.fingerprint = seed, device, fingerprint
        self.steps_per_epoch = steps_per_epoch(len(train_idx), settings.batch_size,
                                               self.dist.world_size)
        self.optimizer = make_optimizer(settings.optimizer, module.parameters(), settings.lr,
                                        settings.weight_decay)
        self.scheduler = make_scheduler(settings.lr_schedule, self.optimizer,
                                        settings.max_epochs * self.steps_per_epoch)
        self.loss_fn = make_loss(settings.loss)  # validation, and training by default
        self.augment = dict(settings.augment or {})
        self.augmenter = BatchAugmenter(self.augment, seed) if self.augment else None
        # a head's own training loss, if it has one (the estimator reads it before any
        # fine-tuning wrapper hides the head)
        self.criterion = criterion if criterion is not None else head_criterion(module)
        # progress
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.order = None  # (n_train,) window indices of the current epoch
        self.offsets = None  # (n_train,) crop starts of the current epoch, or None
        self.scales = None  # (n_train,) time_scale factors of the current epoch, or None
        self.loss_sum = 0.0  # this process's sum of batch losses x batch sizes in the epoch
        self.loss_count = 0
        self.history: list[dict] = []
        self.best_loss = math.inf
        self.best_epoch = None
        self.best_state = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.complete = False
        self.resumed_from = None
        self.epoch_started = None
        self._loader = None  # the DataLoader of num_workers > 0, built on first use

    # -- checkpoint --------------------------------------------------------------

    def state(self) -> dict:
        return {
            "fingerprint": self.fingerprint,
            "seed": self.seed,
            "world_size": self.dist.world_size,
            "model": cpu_state_dict(self.module),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.dist.gather_objects(capture_rng_state()),  # one per process
            "epoch": self.epoch,
            "step_in_epoch": self.step_in_epoch,
            "global_step": self.global_step,
            "order": None if self.order is None else torch.from_numpy(self.order.copy()),
            "offsets": None if self.offsets is None else torch.from_numpy(self.offsets.copy()),
            "scales": None if self.scales is None else torch.from_numpy(self.scales.copy()),
            "loss_sum": self.dist.gather_objects(self.loss_sum),
            "loss_count": self.dist.gather_objects(self.loss_count),
            "history": self.history,
            "best_loss": self.best_loss,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "bad_epochs": self.bad_epochs,
            "stopped_early": self.stopped_early,
            "complete": self.complete,
        }

    def save(self) -> bool:
        if self.s.checkpoint_dir is None:
            return False
        state = self.state()  # collective under DDP: every process takes part
        if self.dist.is_main:
            save_checkpoint(self.s.checkpoint_dir, state)
        return True

    def load(self, state: dict) -> None:
        rank = self.dist.rank
        if int(state.get("world_size", 1)) != self.dist.world_size:
            raise ValueError(
                f"the checkpoint was written by {state.get('world_size', 1)} process(es) and "
                f"this run has {self.dist.world_size}; resume with the same number of processes"
            )
        self.module.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.step_in_epoch = int(state["step_in_epoch"])
        self.global_step = int(state["global_step"])
        self.order = None if state["order"] is None else state["order"].numpy()
        self.offsets = None if state["offsets"] is None else state["offsets"].numpy()
        self.scales = None if state.get("scales") is None else state["scales"].numpy()
        self.loss_sum = float(state["loss_sum"][rank])
        self.loss_count = int(state["loss_count"][rank])
        self.history = list(state["history"])
        self.best_loss = float(state["best_loss"])
        self.best_epoch = state["best_epoch"]
        self.best_state = state["best_state"]
        self.bad_epochs = int(state["bad_epochs"])
        self.stopped_early = bool(state["stopped_early"])
        self.complete = bool(state["complete"])
        restore_rng_state(state["rng"][rank])  # last: building the run must not consume it
        self.resumed_from = (self.epoch, self.step_in_epoch)
        if self.s.verbose and self.dist.is_main:
            where = "finished run" if self.complete else (
                f"epoch {self.epoch + 1}, step {self.step_in_epoch}"
            )
            print(f"resuming from checkpoint ({where})", flush=True)

    # -- loop --------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self.complete and self.epoch < self.s.max_epochs:
                if self.step_in_epoch == 0:
                    self._start_epoch()
                if self.epoch_started is None:
                    self.epoch_started = time.perf_counter()
                self._train_epoch()
                self._end_epoch()
            if not self.complete:
                self._finish()
        finally:
            self._loader = None  # its persistent workers exit with it

    def _start_epoch(self) -> None:
        # identical on every process: each takes its share of each global batch
        rng = np.random.default_rng([self.seed, self.epoch])
        self.order = rng.permutation(self.train_idx)
        anchor = self.s.crop_anchor
        if anchor is None or "time_shift" in self.augment:
            self.offsets = random_crop_offsets(rng, len(self.order), self.n_times, self.crop)
        else:  # the exact window, every epoch
            self.offsets = np.full(len(self.order), anchor)
        self.scales = None
        if "time_scale" in self.augment:
            r = self.augment["time_scale"]["max_scale"]
            self.scales = rng.uniform(1 - r, 1 + r, size=len(self.order))
        self.step_in_epoch = 0
        self.loss_sum, self.loss_count = 0.0, 0

    def _train_epoch(self) -> None:
        s, world, rank = self.s, self.dist.world_size, self.dist.rank
        self.net.train()
        bar = None
        if s.verbose >= 2 and self.dist.is_main:
            from tqdm.auto import tqdm

            bar = tqdm(total=self.steps_per_epoch, initial=self.step_in_epoch,
                       desc=f"epoch {self.epoch + 1}", leave=False, file=sys.stdout)
        batches = self._batches()
        while self.step_in_epoch < self.steps_per_epoch:
            (idx, off, sc), (start, stop) = self._plan(self.step_in_epoch)
            xb, yb = self._batch(idx, off, sc, next(batches))
            if self.augmenter:
                xb, yb = self.augmenter(xb, yb, self.epoch, self.step_in_epoch, rank)
            scale = world * len(idx) / (stop - start) if world > 1 else 1.0
            loss = train_step(self.net, self.optimizer, self.loss_fn, xb, yb,
                              max_grad_norm=s.max_grad_norm, scale=scale,
                              params=self.module.parameters(), criterion=self.criterion,
                              precision=s.precision)
            value = float(loss)
            if self.dist.any(not math.isfinite(value)):  # every process stops together
                raise ValueError(
                    f"the training loss became {value} at epoch {self.epoch + 1}; lower lr or "
                    "set max_grad_norm"
                )
            self.scheduler.step()
            self.loss_sum += value * len(idx)
            self.loss_count += len(idx)
            self.step_in_epoch += 1
            self.global_step += 1
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{value:.4g}")
            more = self.step_in_epoch < self.steps_per_epoch
            if more and self.dist.any(stop_requested()):
                checkpointed = self.save()
                raise TrainingInterrupted(self.epoch, self.step_in_epoch, checkpointed)
            if (more and s.checkpoint_every is not None
                    and self.global_step % s.checkpoint_every == 0):
                self.save()
        if bar is not None:
            bar.close()

    def _plan(self, step: int):
        """``((indices, offsets, scales), (start, stop))`` of this process's share of global
        batch ``step`` of the epoch (offsets / scales None when not used)."""
        world, rank = self.dist.world_size, self.dist.rank
        start = step * self.s.batch_size
        stop = len(self.order) if step == self.steps_per_epoch - 1 else start + self.s.batch_size
        idx = self.order[start:stop][rank::world]
        off = None if self.offsets is None else self.offsets[start:stop][rank::world]
        sc = None if self.scales is None else self.scales[start:stop][rank::world]
        return (idx, off, sc), (start, stop)

    def _batches(self):
        """The windows of the epoch's remaining batches, in order: gathered here
        (``num_workers=0``) or by the DataLoader's workers, prefetched."""
        if self.s.num_workers > 0:
            if self._loader is None:
                self._loader = make_batch_loader(
                    self.X, self.crop, self._remaining_plans, num_workers=self.s.num_workers,
                    device=self.device, seed=self.seed)
            return iter(self._loader)
        return (gather_batch(self.X, idx, off, self.crop, sc)
                for idx, off, sc in self._remaining_plans())

    def _remaining_plans(self):
        return (self._plan(step)[0] for step in range(self.step_in_epoch, self.steps_per_epoch))

    def _batch(self, idx, off, scales, x=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Training windows ``x`` (gathered and cropped; None: gathered here) and targets on
        the device; label-moving augmentation moves the target with the crop (time_shift:
        RT - d) and the stretch (time_scale: t0 + s (RT - t0))."""
        if x is None:
            x = gather_batch(self.X, idx, off, self.crop, scales)
        y = self.y[idx]
        if scales is not None or (self.s.crop_anchor is not None
                                  and "time_shift" in self.augment):
            t0 = self.s.label_origin_s
            shift = (off - self.s.crop_anchor) / self.s.sfreq  # d, seconds
            scale = 1.0 if scales is None else scales
            y = (t0 + scale * (y - t0 - shift)).astype(np.float32)
        xb = x if isinstance(x, torch.Tensor) else torch.from_numpy(x)
        pinned = torch.device(self.device).type == "cuda" and xb.is_pinned()
        return (xb.to(self.device, non_blocking=pinned),
                torch.from_numpy(np.asarray(y, dtype=np.float32)).to(self.device))

    def _validate(self) -> dict:
        """valid_loss, valid_nrmse and whether this epoch is the best so far (rank 0's view,
        shared with every process)."""
        out = {"valid_loss": None, "valid_nrmse": None}
        if self.dist.is_main and len(self.valid_idx):
            y_valid = self.y[self.valid_idx]
            offsets = eval_offsets(len(self.valid_idx), self.n_times, self.crop,
                                   self.s.crop_anchor, self.seed)
            pred = predict_module(self.module, self.X, self.valid_idx, offsets, self.crop,
                                  self.s.batch_size, self.device)
            out["valid_loss"] = float(
                self.loss_fn(torch.from_numpy(pred), torch.from_numpy(y_valid))
            )
            if np.ptp(y_valid) > 0:  # one validation subject in challenge 2: constant target
                out["valid_nrmse"] = nrmse(y_valid, pred)
        return self.dist.broadcast_object(out)

    def _end_epoch(self) -> None:
        s = self.s
        loss_sum, loss_count = self.dist.sum((self.loss_sum, float(self.loss_count)))
        record = {
            "epoch": self.epoch + 1,
            "train_loss": loss_sum / max(1.0, loss_count),
            **self._validate(),
            "lr": float(self.optimizer.param_groups[0]["lr"]),
            "duration_s": time.perf_counter() - (self.epoch_started or time.perf_counter()),
        }
        if record["valid_loss"] is not None:
            if record["valid_loss"] < self.best_loss:
                self.best_loss = record["valid_loss"]
                self.best_epoch = self.epoch + 1
                self.bad_epochs = 0
                if s.early_stopping:
                    self.best_state = cpu_state_dict(self.module)
            elif self.epoch + 1 > s.patience_start:
                self.bad_epochs += 1
        self.history.append(record)
        if s.verbose and self.dist.is_main:
            print(format_epoch(record, s.max_epochs, self.dist.world_size), flush=True)
        self.epoch += 1
        self.step_in_epoch = 0
        self.order, self.offsets, self.scales = None, None, None
        self.epoch_started = None
        if (s.early_stopping and self.bad_epochs >= s.patience
                and self.epoch < s.max_epochs):  # at the last epoch it is no early stop
            self.stopped_early = True
            if s.verbose and self.dist.is_main:
                print(f"early stopping: no improvement for {self.bad_epochs} epochs; keeping "
                      f"epoch {self.best_epoch}", flush=True)
            self._finish()
            return
        if self.epoch < s.max_epochs:
            self.save()
            if self.dist.any(stop_requested()):
                raise TrainingInterrupted(self.epoch, 0, self.s.checkpoint_dir is not None)

    def _finish(self) -> None:
        if self.s.early_stopping and self.best_state is not None:
            self.module.load_state_dict(self.best_state)
        self.complete = True
        self.best_state = None  # the final weights are the best ones now
        self.save()


def format_epoch(record: dict, max_epochs: int, world_size: int = 1) -> str:
    parts = [f"epoch {record['epoch']:>3}/{max_epochs}", f"train_loss {record['train_loss']:.5g}"]
    if record["valid_loss"] is not None:
        parts.append(f"valid_loss {record['valid_loss']:.5g}")
    if record["valid_nrmse"] is not None:
        parts.append(f"valid_nrmse {record['valid_nrmse']:.4f}")
    parts.append(f"lr {record['lr']:.3g}")
    if world_size > 1:
        parts.append(f"world {world_size}")
    parts.append(f"{record['duration_s']:.1f}s")
    return "  ".join(parts)


class ClosedFormRun:
    """A model fitted in closed form (``module.fit_closed_form(X, y, groups)``, e.g. the ridge
    floor) instead of by gradient steps: it has no epochs, so it does not enter the loop; its
    one history record has the loop's keys so the estimator and run folders read it alike.
    Longer windows are cut as evaluation cuts them (:func:`eval_offsets`)."""

    def __init__(self, settings: LoopSettings, module, X, y, train_idx, valid_idx, *, crop,
                 seed: int, device, groups=None):
        self.s, self.module = settings, module
        self.X, self.y, self.crop, self.seed, self.device = X, y, crop, seed, device
        self.train_idx, self.valid_idx, self.groups = train_idx, valid_idx, groups
        self.history: list[dict] = []
        self.best_epoch, self.stopped_early, self.resumed_from = 1, False, None

    def run(self) -> None:
        started = time.perf_counter()
        offsets = eval_offsets(len(self.train_idx), self.X.shape[2], self.crop,
                               self.s.crop_anchor, self.seed)
        X_train = crop_windows(np.asarray(self.X[self.train_idx]), offsets, self.crop)
        groups = None if self.groups is None else np.asarray(self.groups)[self.train_idx]
        self.module.cpu()
        info = self.module.fit_closed_form(X_train, self.y[self.train_idx], groups)
        self.module.to(self.device)
        loss_fn = make_loss(self.s.loss)
        record = {"epoch": 1, **info}
        for name, idx in (("train", self.train_idx), ("valid", self.valid_idx)):
            record[f"{name}_loss"] = record[f"{name}_nrmse"] = None
            if len(idx):
                off = eval_offsets(len(idx), self.X.shape[2], self.crop, self.s.crop_anchor,
                                   self.seed)
                pred = predict_module(self.module, self.X, idx, off, self.crop,
                                      self.s.batch_size, self.device)
                record[f"{name}_loss"] = float(loss_fn(torch.from_numpy(pred),
                                                       torch.from_numpy(self.y[idx])))
                if np.ptp(self.y[idx]) > 0:
                    record[f"{name}_nrmse"] = nrmse(self.y[idx], pred)
        record.pop("train_nrmse")
        record.update(lr=None, duration_s=time.perf_counter() - started)
        self.history.append(record)
        if self.s.verbose:
            parts = [f"closed-form fit: train_loss {record['train_loss']:.5g}"]
            if record["valid_loss"] is not None:
                parts.append(f"valid_loss {record['valid_loss']:.5g}")
            parts += [f"{k} {v:.4g}" for k, v in info.items()]
            print("  ".join(parts), flush=True)
