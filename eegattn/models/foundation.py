"""braindecode's EEG foundation models as challenge regressors.

:class:`FoundationRegressor` puts one of braindecode's pretrained-architecture backbones
(``STEEGFormer``, ``CBraMod``, ``Labram``) behind an adapter that takes the challenge's windows
as every other model of the project does: (batch, 129, 200) at 100 Hz, in volts, EGI
HydroCel-129 channels (E1..E128, Cz). What the adapter does, step by step::

    x (b, 129, 200) volts
      -> input scale        per-channel z-score ("zscore"), or a fixed factor ("scale":
                            1e4 turns volts into the 100-uV units LaBraM and CBraMod were
                            pretrained on)
      -> resample           to the backbone's rate (a fixed (200, n) matrix of
                            scipy.signal.resample_poly, a buffer: traceable, torch-only)
      -> channels           STEEGFormer: one slot of its learned channel vocabulary per
                            HydroCel channel (identity slots, or the nearest electrode of the
                            vocabulary by montage position when the vocabulary is known);
                            CBraMod: the 129 channels as they are (its criss-cross attention
                            and convolutional position code take any channel count);
                            LaBraM: braindecode's ``InterpolatedLaBraM``, a frozen spherical-
                            spline interpolation from the HydroCel positions onto LaBraM's 128
                            standard 10-05 electrodes
      -> backbone           ``forward(x, return_features=True)`` -> patch tokens
      -> time tokens        (b, T, d): tokens averaged over channels, one per time patch
      -> pool + head        any head of the project (``regression``: mean over time and an
                            MLP; ``softargmax`` / ``distribution``: a latency read off the
                            time tokens, :mod:`eegattn.models.heads`)
    -> (b, n_outputs)

The backbone's own classification layer (``final_layer``) is replaced by ``nn.Identity``: the
head is the project's. ``pool`` receives the time tokens; self-supervised pretraining
(:mod:`eegattn.training.pretrain`) reads them there.

Backbone sizes: without ``backbone_options`` each backbone has braindecode's default size, the
published one, so released weights load (``--init``); the ``*_tiny`` registry presets are
small configurations (14k to 95k parameters) for CPU tests and benchmarks.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch
from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import (
    GlobalPool,
    RegressionHead,
    TraceableDirMixin,
    check_probability,
    int_tuple,
)
from eegattn.models.heads import TimeHead, check_head, head_loss
from eegattn.models.normalization import (
    MICROVOLTS_PER_VOLT,
    EEGInputNormalization,
    check_eeg_input,
)
from eegattn.utils.check import check_option, check_positive_number, validate_type

__all__ = [
    "BACKBONES",
    "BackboneSpec",
    "FoundationRegressor",
    "Resample",
    "hbn_chs_info",
    "nearest_vocabulary_slots",
    "quiet_braindecode",
]

INPUT_NORMS = ("zscore", "scale")
#: the signal arguments of a braindecode model (never backbone options)
SIGNAL_ARGS = ("n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds", "sfreq")


@dataclass(frozen=True)
class BackboneSpec:
    """How the adapter feeds one braindecode backbone.

    ``class_name``: the braindecode class built (``InterpolatedLaBraM`` for LaBraM);
    ``pretrained_class``: the class whose ``from_pretrained`` reads released weights;
    ``sfreq``: the rate it was pretrained at; ``input_norm`` / ``input_scale``: what its input
    looked like; ``layout``: how its feature tokens are laid out. The ``<name>_tiny`` presets
    of the registry (``eegattn.models``) hold small ``backbone_options`` for CPU tests.
    """

    class_name: str
    pretrained_class: str
    sfreq: float
    input_norm: str
    input_scale: float
    layout: str  # "time_chan" (b, T*C, d) | "chan_time" (b, C*T, d) | "chan_time_4d" (b,C,T,d)
    patch_option: str  # the backbone option that holds its patch length in samples
    patch_default: int
    channels: str  # "vocabulary" | "any" | "interpolate"


BACKBONES: dict[str, BackboneSpec] = {
    # ST-EEGFormer (Yang et al. 2026): a ViT masked autoencoder over (channel, 16-sample patch)
    # tokens; the challenge-1 winner's architecture. 128 Hz and per-channel z-scores are our
    # choice (the braindecode port does not state its input convention).
    "steegformer": BackboneSpec(
        "STEEGFormer", "STEEGFormer", 128.0, "zscore", MICROVOLTS_PER_VOLT, "time_chan",
        "patch_size", 16, "vocabulary",
    ),
    # CBraMod (Wang et al. 2025): criss-cross attention over 1 s patches at 200 Hz, input in
    # units of 100 uV (the authors' scaling of microvolts by 1/100).
    "cbramod": BackboneSpec(
        "CBraMod", "CBraMod", 200.0, "scale", 1e4, "chan_time_4d", "patch_size", 200, "any",
    ),
    # LaBraM (Jiang et al. 2024): 1 s patches at 200 Hz of 128 standard electrodes, input in
    # units of 100 uV; braindecode's InterpolatedLaBraM maps any montage onto them.
    "labram": BackboneSpec(
        "InterpolatedLaBraM", "Labram", 200.0, "scale", 1e4, "chan_time", "patch_size", 200,
        "interpolate",
    ),
}


@contextlib.contextmanager
def quiet_braindecode():
    """Silence what braindecode and MNE print while a backbone is built: the montage
    FutureWarning of braindecode's imports, MNE's interpolation log lines and the chs_info
    conversion notice."""
    import mne

    with warnings.catch_warnings(), mne.use_log_level("error"):
        warnings.filterwarnings("ignore", category=FutureWarning, message="Montage name")
        warnings.filterwarnings("ignore", message="Modifying chs_info argument")
        yield


def backbone_class(spec: BackboneSpec, which: str = "class_name") -> type:
    """The braindecode class of ``spec`` (``which``: ``class_name`` or ``pretrained_class``)."""
    with quiet_braindecode():
        import braindecode.models as bd

        return getattr(bd, getattr(spec, which))


def hbn_chs_info() -> list[dict]:
    """braindecode ``chs_info`` of the HBN cap: names E1..E128, Cz and positions in metres."""
    from eegattn.data.montage import HBN_CHANNELS, channel_positions

    pos = channel_positions()
    return [{"ch_name": name, "kind": "eeg", "loc": pos[i].copy()}
            for i, name in enumerate(HBN_CHANNELS)]


def _montage_1005() -> str:
    """MNE's 10-05 template: ``colin27_1005`` (MNE >= 1.13 renamed ``standard_1005``)."""
    import mne

    names = mne.channels.get_builtin_montages()
    return "colin27_1005" if "colin27_1005" in names else "standard_1005"


def nearest_vocabulary_slots(vocabulary: list[str], montage: str | None = None) -> list[int]:
    """For each HydroCel-129 channel, the slot (index in ``vocabulary``) of the nearest
    vocabulary electrode, by position in MNE's ``montage`` (default its 10-05 template; both
    montages in MNE's head frame, metres). Vocabulary names MNE does not know are skipped; at
    least one must be known.

    This is how a STEEGFormer channel vocabulary (10-05 names) is aligned with the HBN cap,
    whose E-numbered electrodes have no 10-05 names.
    """
    import mne

    from eegattn.data.montage import channel_positions

    montage = montage or _montage_1005()
    ch_pos = mne.channels.make_standard_montage(montage).get_positions()["ch_pos"]
    known = {name.upper(): pos for name, pos in ch_pos.items()}
    slots, points = [], []
    for i, name in enumerate(vocabulary):
        pos = known.get(str(name).upper())
        if pos is not None:
            slots.append(i)
            points.append(pos)
    if not slots:
        raise ValueError(
            f"none of the {len(vocabulary)} vocabulary names is an electrode of MNE's "
            f"{montage!r} montage; pass chan_pos_idx in backbone_options instead"
        )
    points = np.asarray(points)  # (n_known, 3)
    hbn = channel_positions()  # (129, 3)
    distance = np.linalg.norm(hbn[:, None, :] - points[None, :, :], axis=-1)  # (129, n_known)
    return [int(slots[j]) for j in distance.argmin(axis=1)]


class Resample(nn.Module):
    """Resample the time axis by a fixed linear map: (b, c, n_in) -> (b, c, n_out).

    The map is ``scipy.signal.resample_poly`` (polyphase, anti-aliasing FIR, ``padtype=
    "line"``) applied to the identity, so ``x @ matrix`` equals resample_poly on each channel
    of each window. A non-persistent buffer: deterministic, rebuilt on construction, not in the
    state dict; a trace keeps it as a constant (no scipy on the server).
    """

    def __init__(self, n_in: int, sfreq_in: float, sfreq_out: float) -> None:
        super().__init__()
        from scipy.signal import resample_poly

        ratio = Fraction(float(sfreq_out) / float(sfreq_in)).limit_denominator(1000)
        up, down = ratio.numerator, ratio.denominator
        matrix = resample_poly(np.eye(n_in), up, down, axis=0, padtype="line")  # (n_out, n_in)
        self.n_in, self.n_out = int(n_in), int(matrix.shape[0])
        self.up, self.down = up, down
        self.register_buffer("matrix", torch.as_tensor(matrix.T.copy(), dtype=torch.float32),
                             persistent=False)  # (n_in, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.matrix  # (b, c, n_in) @ (n_in, n_out) -> (b, c, n_out)

    def extra_repr(self) -> str:
        return f"{self.n_in} -> {self.n_out} samples (x{self.up}/{self.down})"


class _Scale(nn.Module):
    """Multiply by a fixed factor (volts -> the backbone's units)."""

    def __init__(self, scale: float) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.scale

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}"


class FoundationRegressor(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """A braindecode foundation backbone behind the HBN adapter, with a project head.

    Shapes: input (b, n_chans, n_times) volts -> scaled -> resampled (b, n_chans, n_model)
    -> backbone tokens -> time tokens (b, T, d) -> pool -> head -> (b, n_outputs).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments. ``sfreq`` is required (the resampling needs it). LaBraM
        interpolates from channel positions: it takes ``chs_info``, or HBN's 129 channels
        when ``n_chans == 129`` and no ``chs_info`` is given.
    backbone : {"steegformer", "cbramod", "labram"}
    backbone_options : dict, optional
        Keyword options of the braindecode class (``embed_dim``, ``depth``... for
        STEEGFormer; ``chan_pos_idx`` to place the channels in its vocabulary).
    model_sfreq : float, optional
        The rate the backbone runs at (default: the one it was pretrained at, see
        :data:`BACKBONES`). The window is resampled inside the model.
    input_norm : {"zscore", "scale"}, optional
        Per-channel z-scores of each window (the project's input normalisation) or a fixed
        factor ``input_scale`` from volts. Default: the backbone's pretraining convention.
    input_scale : float, optional
        Volts to the backbone's units for ``"scale"`` (1e4: units of 100 uV).
    head, head_options
        Any head of the project: ``"regression"`` (mean over time tokens + MLP of
        ``head_hidden`` widths), ``"softargmax"``, ``"distribution"``.
    head_hidden : sequence of int
        Hidden widths of the regression head (empty: one linear layer).
    head_dropout : float
        Dropout between the regression head's layers.
    flat_eps : float
        Flat-channel threshold of the z-scoring, in microvolts.
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
        backbone: str = "steegformer",
        backbone_options: dict | None = None,
        model_sfreq: float | None = None,
        input_norm: str | None = None,
        input_scale: float | None = None,
        head: str = "regression",
        head_options: dict | None = None,
        head_hidden=(),
        head_dropout: float = 0.0,
        flat_eps: float = 1e-3,
    ) -> None:
        super().__init__(
            n_outputs=n_outputs,
            n_chans=n_chans,
            chs_info=chs_info,
            n_times=n_times,
            input_window_seconds=input_window_seconds,
            sfreq=sfreq,
        )
        del n_outputs, n_chans, chs_info, n_times, input_window_seconds, sfreq
        check_option("backbone", backbone, tuple(BACKBONES))
        validate_type(backbone_options, (dict, None), "backbone_options",
                      fix="Pass the braindecode class's keyword options as a dict.")
        spec = BACKBONES[backbone]
        options = dict(backbone_options or {})
        bad = sorted(set(options) & set(SIGNAL_ARGS))
        if bad:
            raise ValueError(
                f"backbone_options may not set the signal argument(s) {', '.join(bad)}; they "
                "come from the windows (n_chans, n_times, sfreq of the model)"
            )
        try:
            sfreq = self._sfreq
        except AttributeError:
            sfreq = None
        if not sfreq:
            raise ValueError("FoundationRegressor resamples to its backbone's rate and needs "
                             "sfreq; pass sfreq=100.0 (the challenge's rate)")
        model_sfreq = float(spec.sfreq if model_sfreq is None else
                            check_positive_number(model_sfreq, "model_sfreq", unit="Hz"))
        input_norm = check_option("input_norm", spec.input_norm if input_norm is None
                                  else input_norm, INPUT_NORMS)
        input_scale = float(spec.input_scale if input_scale is None else
                            check_positive_number(input_scale, "input_scale"))
        head_options = check_head(head, head_options)
        head_hidden = int_tuple("head_hidden", head_hidden, allow_empty=True)
        head_dropout = check_probability("head_dropout", head_dropout)
        if head != "regression" and self.n_outputs != 1:
            raise ValueError(f"head={head!r} predicts one latency; use n_outputs=1 or "
                             "head='regression'")
        self.backbone_name = backbone

        # volts -> the backbone's units
        self.normalize = (EEGInputNormalization(scale=MICROVOLTS_PER_VOLT, eps=flat_eps)
                          if input_norm == "zscore" else _Scale(input_scale))
        # 100 Hz -> the backbone's rate
        n_model = self.n_times
        if not math.isclose(model_sfreq, float(sfreq)):
            self.resample = Resample(self.n_times, float(sfreq), model_sfreq)
            n_model = self.resample.n_out
        else:
            self.resample = nn.Identity()
        patch = int(options.get(spec.patch_option, spec.patch_default))
        self.n_time_tokens = n_model // patch
        if self.n_time_tokens < 1 or (spec.layout != "time_chan" and n_model % patch):
            raise ValueError(
                f"{spec.class_name} cuts {patch}-sample patches at {model_sfreq:g} Hz, but a "
                f"window of {self.n_times} samples at {sfreq:g} Hz is {n_model} samples there; "
                f"use windows of a whole number of patches ({patch / model_sfreq:g} s each)"
            )

        # channels -> what the backbone expects
        kwargs = dict(n_outputs=1, n_times=n_model, sfreq=model_sfreq, **options)
        if spec.channels == "interpolate":
            try:
                chs = self.chs_info
            except ValueError:
                chs = None
            if chs is None:
                if self.n_chans != 129:
                    raise ValueError(
                        f"{backbone} interpolates from electrode positions: pass chs_info "
                        f"for {self.n_chans} channels (HBN's 129 are known without it)"
                    )
                chs = hbn_chs_info()
            kwargs["chs_info"] = chs
        else:
            kwargs["n_chans"] = self.n_chans
        if spec.channels == "vocabulary":
            n_slots = int(options.get("n_chans_pos", 145))
            if "chan_pos_idx" not in options:
                if self.n_chans > n_slots:
                    raise ValueError(
                        f"STEEGFormer's channel vocabulary has {n_slots} slots, fewer than "
                        f"{self.n_chans} channels; pass chan_pos_idx or n_chans_pos in "
                        "backbone_options"
                    )
                # each channel its own slot (what training from scratch or from our own
                # pretraining needs); released weights: nearest_vocabulary_slots
                kwargs["chan_pos_idx"] = list(range(self.n_chans))
        cls = backbone_class(spec)
        with quiet_braindecode():
            self.backbone = cls(**kwargs)
        self.backbone.final_layer = nn.Identity()  # the project's head reads the tokens
        self.layout = spec.layout
        self.width = self._token_width(n_model)

        if head == "regression":
            self.pool = GlobalPool("avg")
            self.head = RegressionHead(self.width, head_hidden, self.n_outputs, head_dropout)
        else:  # the time tokens go to the head as they are
            self.pool = nn.Identity()
            self.head = TimeHead(self.width, self.n_time_tokens,
                                 window_s=self.n_times / float(sfreq),
                                 distribution=head == "distribution", **head_options)

    def _token_width(self, n_model: int) -> int:
        """Width d of the backbone's tokens, from one dry forward in evaluation mode."""
        was_training = self.backbone.training
        self.backbone.eval()
        with torch.no_grad():
            feats = self.backbone(torch.zeros(1, self.n_chans, n_model), return_features=True)
        self.backbone.train(was_training)
        return int(feats["features"].shape[-1])

    def time_tokens(self, feats: Tensor) -> Tensor:
        """Backbone feature tokens -> (b, T, d), averaged over channels, in time order."""
        n_t = self.n_time_tokens
        if self.layout == "time_chan":  # (b, T * C, d), time-major
            return feats.reshape(feats.shape[0], n_t, -1, feats.shape[-1]).mean(2)
        if self.layout == "chan_time":  # (b, C * T, d), channel-major
            return feats.reshape(feats.shape[0], -1, n_t, feats.shape[-1]).mean(1)
        return feats.mean(1)  # (b, C, T, d)

    def forward(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) volts -> (b, n_outputs). NaN/Inf raise in training mode."""
        check_eeg_input(x, self.n_chans, self.n_times, check_finite=self.training)
        x = self.resample(self.normalize(x))  # (b, n_chans, n_model) backbone units
        feats = self.backbone(x, return_features=True)["features"]
        tokens = self.time_tokens(feats)  # (b, T, d)
        return self.head(self.pool(tokens))

    def loss_criterion(self):
        """The distribution head's own training loss, or None (the estimator's loss)."""
        return head_loss(self.head)
