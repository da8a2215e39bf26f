"""The convolution + attention response-time regressor, one class with presets (as timm does).

:class:`ConvAttentionRegressor` lists every option once, with the defaults of the
sparse-attention challenge entry's lightweight model. The entry's other models and our tuned
variant are presets: a dict of option defaults merged with the caller's options
(``ConvAttentionRegressor(**{**preset, **kwargs})``), kept in ``eegattn.models._PRESETS``:

====================  =========================================================================
registry name         what the preset changes
====================  =========================================================================
``lightweight``       nothing (the class defaults)
``improved``          wider, three stages, channel + temporal gates, two attention blocks,
                      average + max pooling
``lightweight_noattn`` no attention block and no channel gate (the attention ablation)
``lightweight_fast``  strided convolutions, position codes, feature-map dropout, a position
                      read-out
====================  =========================================================================

The entry's class names stay importable: ``LightweightResponseTimeCNNWithAttention`` is the
class itself; ``ImprovedResponseTimeCNNWithAttention`` and ``LightweightResponseTimeCNN`` are
functions that build their preset. A preset model is a plain ``ConvAttentionRegressor``, so it
pickles, traces, and rebuilds from ``get_config()`` like any other.
"""

from __future__ import annotations

from collections.abc import Sequence

from braindecode.models.base import EEGModuleMixin
from torch import Tensor, nn

from eegattn.models.blocks import (
    POOLINGS,
    AttentionBlock,
    ConvStage,
    GlobalPool,
    PositionReadout,
    RegressionHead,
    SinusoidalPosition,
    TraceableDirMixin,
    check_downsample,
    check_options_dict,
    check_probability,
    collect_gates,
    int_tuple,
    stage_length,
)
from eegattn.models.heads import TimeHead, check_head, head_loss
from eegattn.models.normalization import (
    MICROVOLTS_PER_VOLT,
    EEGInputNormalization,
    check_eeg_input,
)
from eegattn.utils.check import check_option, check_positive_int

__all__ = [
    "ConvAttentionRegressor",
    "ImprovedResponseTimeCNNWithAttention",
    "LightweightResponseTimeCNN",
    "LightweightResponseTimeCNNWithAttention",
]


class ConvAttentionRegressor(TraceableDirMixin, EEGModuleMixin, nn.Module):
    """Convolutional regressor with channel / temporal gates and sequence attention blocks.

    Source: the sparse-attention challenge entry's response-time models. With the defaults
    (the entry's ``LightweightResponseTimeCNNWithAttention``, its recommended challenge-1 model,
    846,289 parameters at 129 channels x 200 samples)::

        input (b, 129, 200) volts
        -> EEGInputNormalization (microvolts, per-window per-channel z-score; flat -> 0)
        -> ChannelAttention(129, reduction 16)                      (b, 129, 200)
        -> Conv1d(129->128, k7) BN ReLU Dropout MaxPool(2)          (b, 128, 100)
        -> Conv1d(128->256, k5) BN ReLU Dropout MaxPool(2)          (b, 256, 50)
        -> transpose                                                (b, 50, 256)
        -> x = LayerNorm(x + sparse(x)); x = x + FFN(256->512->256)  (b, 50, 256)
        -> mean over time                                           (b, 256)
        -> Linear 256->128->32->n_outputs (ReLU, dropout)           (b, n_outputs)

    The sparse mechanism shares the 50 tokens out among 25 heads (``scale_factor=0.5``) and
    uses a fixed permutation in evaluation, so predictions are deterministic.

    The ``improved`` preset (the entry's ``ImprovedResponseTimeCNNWithAttention``, 6,163,375
    parameters)::

        -> ChannelAttention(129, reduction 8) -> TemporalAttention(kernel 7)
        -> Conv1d(129->256, k7) .. MaxPool(2) -> Conv1d(256->512, k5) .. MaxPool(2)
        -> Conv1d(512->512, k3) ..                                  (b, 512, 50)
        -> 2 x [x = LayerNorm(x + sparse(x)); x = x + FFN(512->1024->512)]
        -> concat(mean, max) over time                              (b, 1024)
        -> Linear 1024->256->64->n_outputs

    The ``lightweight_noattn`` preset (the entry's lightweight model without attention, 317,633
    parameters: 846,289 minus the channel gate's 2,064 and the attention block's 526,592) has
    no attention block and no channel gate, so comparing it with ``lightweight`` measures what
    the attention adds.

    Args:
        n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq: braindecode's
            signal arguments (``n_chans`` and ``n_times`` must be known or inferable). The
            input must be exactly (batch, n_chans, n_times), else ValueError.
        dropout: dropout of the convolution stages, attention weights, FFN and head (0.4, as
            the entry).
        attention: registry name of the sequence mechanism
            (``eegattn.attention.available_attention()``).
        attention_options: keyword options of the mechanism (``heads``, ``scale_factor``,
            ``dropout``, ...).
        inattention: replace the convolution stages' dropout by ``InattentionDropout``
            (Inattention NotaBene).
        inattention_options: keyword options of ``InattentionDropout`` (``num_stacks``,
            ``mode``, ...).
        conv_channels, kernel_sizes, pool_sizes: one entry per convolution stage (a pool size
            of 1 keeps the length).
        downsample: how a stage shortens time: ``"maxpool"`` (convolution then max-pool, as
            the entry) or ``"stride"`` (a convolution with stride ``pool``: same parameters,
            half the convolution FLOPs at pool 2, no pooling pass; a different function, so
            train it as its own model).
        channel_dropout: dropout of whole feature maps after each convolution stage
            (``nn.Dropout1d``, "spatial dropout"); 0 (as the entry) adds no layer.
        channel_reduction: reduction ratio of the channel gate; None removes the gate.
        temporal_kernel: kernel of a temporal gate after the channel gate; None means none.
        n_attention_blocks: number of attention blocks (0 removes them).
        ffn_ratio: FFN hidden width as a multiple of the model width.
        pooling: global pooling over time, ``"avg"`` or ``"avgmax"`` (mean and max
            concatenated: head input 2x width).
        position_readout: features per token of a position-specific read-out beside the
            pooling (0, as the entry: none): each token is projected to this many features and
            the flattened vector joins the pooled one, so the head sees *when* things happen
            (see ``PositionReadout``).
        head_hidden: hidden widths of the regression head.
        head: ``"regression"`` (pooling + MLP, the entry's), ``"softargmax"`` or
            ``"distribution"``: a latency read off the time tokens (:mod:`eegattn.models.heads`;
            ``pooling``, ``position_readout`` and ``head_hidden`` then go unused).
        head_options: ``time_origin`` (seconds from the stimulus to the first sample, 0.5),
            and for ``"distribution"`` ``sigma`` (0.1 s) and ``loss`` (``"ce"`` or
            ``"wasserstein"``).
        activation: activation of the convolution stages, ``"relu"``, ``"gelu"`` or ``"elu"``.
        positional: None (as the entry: attention and pooling blind to time order) or
            ``"sinusoidal"`` (fixed position codes before the attention blocks, no parameters).
        input_scale: input units to microvolts (1e6 for volts).
        flat_eps: a channel whose window std is below this many microvolts is flat and
            becomes 0.

    Forward: check shape (ValueError) -> :class:`EEGInputNormalization` -> channel gate ->
    temporal gate -> convolution stages (b, C, T) -> transpose (b, T, C) -> [position codes]
    -> attention blocks -> global pool [+ position read-out] -> regression head.
    NaN / Inf inputs raise a ValueError in training mode; in evaluation mode they are not
    checked (no host sync, so the model traces and runs fast) and propagate to the output.
    ``gate_values()`` returns the last channel gate (b, n_chans), temporal gate (b, n_times)
    and inattention keep probabilities for plotting.
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
        dropout: float = 0.4,
        attention: str = "sparse",
        attention_options: dict | None = None,
        inattention: bool = False,
        inattention_options: dict | None = None,
        conv_channels: Sequence[int] = (128, 256),
        kernel_sizes: Sequence[int] = (7, 5),
        pool_sizes: Sequence[int] = (2, 2),
        downsample: str = "maxpool",
        channel_dropout: float = 0.0,
        channel_reduction: int | None = 16,
        temporal_kernel: int | None = None,
        n_attention_blocks: int = 1,
        ffn_ratio: int = 2,
        pooling: str = "avg",
        position_readout: int = 0,
        head_hidden: Sequence[int] = (128, 32),
        head: str = "regression",
        head_options: dict | None = None,
        activation: str = "relu",
        positional: str | None = None,
        input_scale: float = MICROVOLTS_PER_VOLT,
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
        from eegattn.attention import ChannelAttention, TemporalAttention

        # options, all checked before any layer is built
        n_chans, n_times, n_outputs = self.n_chans, self.n_times, self.n_outputs
        for name, value in (("n_chans", n_chans), ("n_times", n_times), ("n_outputs", n_outputs)):
            check_positive_int(value, name)
        dropout = check_probability("dropout", dropout)
        conv_channels = int_tuple("conv_channels", conv_channels)
        kernel_sizes = int_tuple("kernel_sizes", kernel_sizes)
        pool_sizes = int_tuple("pool_sizes", pool_sizes)
        if not len(conv_channels) == len(kernel_sizes) == len(pool_sizes):
            raise ValueError(
                f"conv_channels, kernel_sizes and pool_sizes need one entry per convolution "
                f"stage; got {len(conv_channels)}, {len(kernel_sizes)} and {len(pool_sizes)}"
            )
        check_downsample(downsample)
        steps = n_times
        for kernel, pool in zip(kernel_sizes, pool_sizes, strict=True):
            steps = stage_length(steps, kernel, pool, downsample)
        if steps < 1:
            raise ValueError(
                f"n_times={n_times} is too short for pool_sizes={list(pool_sizes)}: no time step "
                "is left after pooling; use longer windows or smaller pool_sizes"
            )
        check_positive_int(n_attention_blocks, "n_attention_blocks", minimum=0)
        head_hidden = int_tuple("head_hidden", head_hidden, allow_empty=True)
        check_positive_int(position_readout, "position_readout", minimum=0,
                           fix="It is the number of read-out features per token; 0 adds none.")
        check_options_dict("attention_options", attention_options)
        check_options_dict("inattention_options", inattention_options)
        check_option("positional", positional, (None, "none", "sinusoidal"),
                     fix="None or 'none' adds no position codes.")
        check_option("pooling", pooling, POOLINGS)
        head_options = check_head(head, head_options)
        if head != "regression" and n_outputs != 1:
            raise ValueError(f"head={head!r} predicts one latency; use n_outputs=1 or "
                             "head='regression'")

        self.normalize = EEGInputNormalization(scale=input_scale, eps=flat_eps)
        self.channel_attention = (
            nn.Identity()
            if channel_reduction is None
            else ChannelAttention(n_chans, reduction_ratio=channel_reduction)
        )
        self.temporal_attention = (
            nn.Identity() if temporal_kernel is None else TemporalAttention(temporal_kernel)
        )
        stages = []
        width = n_chans
        for out, kernel, pool in zip(conv_channels, kernel_sizes, pool_sizes, strict=True):
            stages.append(
                ConvStage(
                    width,
                    out,
                    kernel,
                    pool=pool,
                    dropout=dropout,
                    activation=activation,
                    inattention=inattention,
                    inattention_options=inattention_options,
                    downsample=downsample,
                    channel_dropout=channel_dropout,
                )
            )
            width = out
        self.conv_stages = nn.Sequential(*stages)
        self.position = (
            SinusoidalPosition(width, steps)
            if positional == "sinusoidal" and n_attention_blocks
            else nn.Identity()
        )
        self.attention_blocks = nn.Sequential(
            *(
                AttentionBlock(
                    width,
                    attention=attention,
                    attention_options=attention_options,
                    dropout=dropout,
                    ffn_ratio=check_positive_int(ffn_ratio, "ffn_ratio"),
                )
                for _ in range(n_attention_blocks)
            )
        )
        if head == "regression":
            self.pool = GlobalPool(pooling)
            pooled = width * (2 if pooling == "avgmax" else 1)
            if position_readout:
                self.pool = PositionReadout(self.pool, width, steps, position_readout)
                pooled += steps * position_readout
            self.head = RegressionHead(pooled, head_hidden, n_outputs, dropout)
        else:  # the tokens go to the head as they are: it reads where in time
            self.pool = nn.Identity()
            self.head = TimeHead(width, steps, window_s=n_times / _sfreq_for_head(self, head),
                                 distribution=head == "distribution", **head_options)

    def forward(self, x: Tensor) -> Tensor:
        """(b, n_chans, n_times) volts -> (b, n_outputs). NaN/Inf raise in training mode."""
        check_eeg_input(x, self.n_chans, self.n_times, check_finite=self.training)
        x = self.normalize(x)  # (b, n_chans, n_times), microvolts, z-scored per channel
        x = self.temporal_attention(self.channel_attention(x))  # gated, same shape
        x = self.conv_stages(x)  # (b, C, T)
        x = x.transpose(1, 2)  # (b, T, C)
        if len(self.attention_blocks):
            # one contiguous copy here, not one per projection inside the attention block
            x = self.attention_blocks(self.position(x.contiguous()))  # (b, T, C)
        # regression: pooled (b, C or 2C [+ T k]) -> (b, n_outputs); time heads: (b, T, C) ->
        # (b, 1) (in training the distribution head adds its log-probabilities)
        return self.head(self.pool(x))

    def loss_criterion(self):
        """The head's own training loss (distribution head), or None: the estimator's."""
        return head_loss(self.head)

    def gate_values(self) -> dict[str, Tensor]:
        """Gate values of the last forward (see :func:`collect_gates`), e.g.
        ``{"channel_attention": (b, n_chans), "temporal_attention": (b, n_times)}``."""
        return collect_gates(self)


def _sfreq_for_head(model, head: str) -> float:
    """The sampling rate a time head needs to place its tokens in seconds."""
    try:
        sfreq = model.sfreq
    except ValueError:
        sfreq = None
    if not sfreq:
        raise ValueError(f"head={head!r} places its time tokens in seconds and needs sfreq; "
                         "pass sfreq=100.0 (the challenge's rate)")
    return float(sfreq)


#: the entry's lightweight model is the class with its defaults
LightweightResponseTimeCNNWithAttention = ConvAttentionRegressor


def _build_preset(name: str, args: tuple, kwargs: dict) -> ConvAttentionRegressor:
    from eegattn.models import preset

    return ConvAttentionRegressor(*args, **{**preset(name)[1], **kwargs})


def ImprovedResponseTimeCNNWithAttention(*args, **kwargs) -> ConvAttentionRegressor:
    """The sparse-attention entry's improved model: the ``improved`` preset of
    :class:`ConvAttentionRegressor` (options given here override the preset's)."""
    return _build_preset("improved", args, kwargs)


def LightweightResponseTimeCNN(*args, **kwargs) -> ConvAttentionRegressor:
    """The entry's lightweight model without attention: the ``lightweight_noattn`` preset of
    :class:`ConvAttentionRegressor` (options given here override the preset's)."""
    return _build_preset("lightweight_noattn", args, kwargs)
