"""braindecode's EEGNeX, the challenge's reference baseline, with our input normalisation and
a form that pickles.

Why braindecode 1.8.1's EEGNeX does not pickle: two of its layers (the depthwise
``Conv2dWithConstraint`` and the ``MaxNormLinear`` head) enforce a max-norm on their weights
with ``torch.nn.utils.parametrize.register_parametrization``. Registering a parametrization
swaps the layer's class for a class made on the fly (``ParametrizedConv2dWithConstraint``)
whose ``__getstate__`` raises "Serialization of parametrized modules is only supported through
state_dict()". So ``pickle.dumps`` fails on any EEGNeX, fitted or not (``copy.deepcopy``
works, it does not call ``__getstate__``).

:class:`NormalizedEEGNeX` pickles as its constructor arguments plus its parameter and buffer
tensors, and unpickling rebuilds the network and puts those tensors back (the parameter
objects themselves, so an optimizer pickled alongside still points at them).
"""

from __future__ import annotations

import torch
from braindecode.models import EEGNeX
from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import TraceableDirMixin, collect_gates
from eegattn.models.heads import TimeHead, check_head, head_loss
from eegattn.models.normalization import (
    MICROVOLTS_PER_VOLT,
    EEGInputNormalization,
    check_eeg_input,
)


class _TraceableEEGNeX(TraceableDirMixin, EEGNeX):
    """braindecode's EEGNeX, unchanged, that ``torch.jit.trace`` can trace without chs_info."""


class NormalizedEEGNeX(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """EEGNeX (Chen et al., "Toward reliable signals decoding for electroencephalogram",
    2024; braindecode's ``EEGNeX``) behind :class:`EEGInputNormalization`.

    Shapes: input (b, n_chans, n_times) in volts -> normalised (b, n_chans, n_times) ->
    EEGNeX -> (b, n_outputs).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments; the input must be exactly (batch, n_chans, n_times).
    drop_prob : float
        EEGNeX's dropout (its default 0.5).
    eegnex_options : dict, optional
        Further keyword arguments of braindecode's ``EEGNeX`` (``filter_1``, ``activation``...).
    input_scale, flat_eps
        Input units to microvolts, and the flat-channel threshold in microvolts.
    head, head_options
        ``"regression"`` (EEGNeX's own dense layer), ``"softargmax"`` or ``"distribution"``:
        a latency read off block 4's time steps (see :mod:`eegattn.models.heads`).

    Notes
    -----
    Pickles through constructor arguments + tensors (see the module docstring); any other
    attribute set on the instance after construction (hooks, ad-hoc fields) is not kept.
    NaN / Inf inputs raise a ValueError in training mode only.
    """

    def __init__(
        self,
        n_chans: int | None = None,
        n_outputs: int | None = None,
        n_times: int | None = None,
        chs_info=None,
        input_window_seconds: float | None = None,
        sfreq: float | None = None,
        *,
        drop_prob: float = 0.5,
        eegnex_options: dict | None = None,
        input_scale: float = MICROVOLTS_PER_VOLT,
        flat_eps: float = 1e-3,
        head: str = "regression",
        head_options: dict | None = None,
    ) -> None:
        config = dict(
            n_chans=n_chans,
            n_outputs=n_outputs,
            n_times=n_times,
            chs_info=chs_info,
            input_window_seconds=input_window_seconds,
            sfreq=sfreq,
            drop_prob=drop_prob,
            eegnex_options=eegnex_options,
            input_scale=input_scale,
            flat_eps=flat_eps,
            head=head,
            head_options=head_options,
        )
        super().__init__(
            n_outputs=n_outputs,
            n_chans=n_chans,
            chs_info=chs_info,
            n_times=n_times,
            input_window_seconds=input_window_seconds,
            sfreq=sfreq,
        )
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        if eegnex_options is not None and not isinstance(eegnex_options, dict):
            raise ValueError(
                f"eegnex_options must be a dict of keyword options, got {eegnex_options!r}"
            )
        self._init_config = config
        self.normalize = EEGInputNormalization(scale=input_scale, eps=flat_eps)
        self.eegnex = _TraceableEEGNeX(
            n_chans=self.n_chans,
            n_outputs=self.n_outputs,
            n_times=self.n_times,
            drop_prob=drop_prob,
            **(eegnex_options or {}),
        )
        head_options = check_head(head, head_options)
        self.time_head = None
        if head != "regression":
            if self.n_outputs != 1:
                raise ValueError(f"head={head!r} predicts one latency; use n_outputs=1")
            # EEGNeX's last block pools its (b, C, 1, T') map and a dense layer reads it; a
            # time head reads the map of block 4 as tokens instead (40 ms each at 100 Hz)
            self.eegnex.block_5, self.eegnex.final_layer = nn.Identity(), nn.Identity()
            width, n_tokens = self._token_shape()
            sfreq = self._sfreq  # braindecode's property raises when it is unknown
            if not sfreq:
                raise ValueError(f"head={head!r} needs sfreq; pass sfreq=100.0")
            self.time_head = TimeHead(width, n_tokens, window_s=self.n_times / sfreq,
                                      distribution=head == "distribution", **head_options)

    def _token_shape(self) -> tuple[int, int]:
        """(channels, time steps) of EEGNeX's block-4 map, from one dry forward."""
        was_training = self.eegnex.training
        self.eegnex.eval()  # BatchNorm statistics stay untouched
        with torch.no_grad():
            x = self._features(torch.zeros(1, self.n_chans, self.n_times))
        self.eegnex.train(was_training)
        return int(x.shape[2]), int(x.shape[1])

    def _features(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) normalised -> block-4 tokens (b, T', C)."""
        for name in ("block_1", "block_2", "block_3", "block_4"):
            x = getattr(self.eegnex, name)(x)
        return x[:, :, 0, :].transpose(1, 2)  # (b, C, 1, T') -> (b, T', C)

    def loss_criterion(self):
        """The distribution head's own training loss, or None (the estimator's loss)."""
        return head_loss(self.time_head)

    def forward(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) volts -> (b, n_outputs). NaN/Inf raise in training mode."""
        check_eeg_input(x, self.n_chans, self.n_times, check_finite=self.training)
        if self.time_head is not None:
            return self.time_head(self._features(self.normalize(x)))  # (b, 1)
        return self.eegnex(self.normalize(x))

    def gate_values(self) -> dict[str, Tensor]:
        """EEGNeX has no gates: an empty dict (kept for a uniform model API)."""
        return collect_gates(self)

    # -- pickling ---------------------------------------------------------------------------

    def __getstate__(self) -> dict:
        return {
            "config": self._init_config,
            "parameters": dict(self.named_parameters(remove_duplicate=False)),
            "buffers": dict(self.named_buffers(remove_duplicate=False)),
            "training": {
                name: m.training for name, m in self.named_modules(remove_duplicate=False)
            },
            "hub_config": self.__dict__.get("_hub_mixin_config"),
        }

    def __setstate__(self, state: dict) -> None:
        # Rebuilding initialises fresh weights; keep the global RNG as it was.
        with torch.random.fork_rng(devices=[]):
            type(self).__init__(self, **state["config"])
        self._put_tensors(
            "parameters", state["parameters"], dict(self.named_parameters(remove_duplicate=False))
        )
        self._put_tensors(
            "buffers", state["buffers"], dict(self.named_buffers(remove_duplicate=False))
        )
        modules = dict(self.named_modules(remove_duplicate=False))
        for name, training in state["training"].items():
            modules[name].training = training
        if state.get("hub_config") is not None:
            self._hub_mixin_config = state["hub_config"]

    def _put_tensors(self, kind: str, saved: dict[str, Tensor], fresh: dict[str, Tensor]) -> None:
        if saved.keys() != fresh.keys():
            missing = sorted(fresh.keys() - saved.keys())
            extra = sorted(saved.keys() - fresh.keys())
            raise ValueError(
                f"pickled NormalizedEEGNeX {kind} do not match the rebuilt network (missing "
                f"{missing[:5]}, unexpected {extra[:5]}); it was pickled by another version of "
                "braindecode / eegattn: load its state_dict into a model built with that version"
            )
        for name, tensor in saved.items():
            owner_name, _, leaf = name.rpartition(".")
            owner = self.get_submodule(owner_name)
            getattr(owner, f"_{kind}")[leaf] = tensor
