"""The improved response-time regressor: channel + temporal gates, two sparse blocks."""

from __future__ import annotations

from collections.abc import Sequence

from braindecode.models.base import EEGModuleMixin
from torch import nn

from eegattn.models.blocks import ConvAttentionRegressorMixin
from eegattn.models.normalization import MICROVOLTS_PER_VOLT


class ImprovedResponseTimeCNNWithAttention(ConvAttentionRegressorMixin, EEGModuleMixin, nn.Module):
    """Convolutional regressor with channel and temporal gates and two sparse attention blocks.

    Source: the sparse-attention challenge entry ("ImprovedResponseTimeCNNWithAttention",
    6,163,375 parameters at 129 channels x 200 samples). With the defaults, at 129 x 200::

        input (b, 129, 200) volts
        -> EEGInputNormalization (microvolts, per-window per-channel z-score; flat -> 0)
        -> ChannelAttention(129, reduction 8)                       (b, 129, 200)
        -> TemporalAttention(kernel 7)                              (b, 129, 200)
        -> Conv1d(129->256, k7) BN ReLU Dropout MaxPool(2)          (b, 256, 100)
        -> Conv1d(256->512, k5) BN ReLU Dropout MaxPool(2)          (b, 512, 50)
        -> Conv1d(512->512, k3) BN ReLU Dropout                     (b, 512, 50)
        -> transpose                                                (b, 50, 512)
        -> 2 x [x = LayerNorm(x + sparse(x)); x = x + FFN(512->1024->512)]
        -> concat(mean, max) over time                              (b, 1024)
        -> Linear 1024->256->64->n_outputs (ReLU, dropout)          (b, n_outputs)

    The options are those of the lightweight model
    (:class:`~eegattn.models.lightweight.LightweightResponseTimeCNNWithAttention`); only the
    defaults differ.

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments; the input must be exactly (batch, n_chans, n_times).
    dropout, attention, attention_options, inattention, inattention_options, conv_channels,
    kernel_sizes, pool_sizes, downsample, channel_dropout, channel_reduction, temporal_kernel,
    n_attention_blocks, ffn_ratio, pooling, position_readout, head_hidden, activation,
    input_scale, flat_eps
        As in :class:`~eegattn.models.lightweight.LightweightResponseTimeCNNWithAttention`.

    Notes
    -----
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
        conv_channels: Sequence[int] = (256, 512, 512),
        kernel_sizes: Sequence[int] = (7, 5, 3),
        pool_sizes: Sequence[int] = (2, 2, 1),
        downsample: str = "maxpool",
        channel_dropout: float = 0.0,
        channel_reduction: int | None = 8,
        temporal_kernel: int | None = 7,
        n_attention_blocks: int = 2,
        ffn_ratio: int = 2,
        pooling: str = "avgmax",
        position_readout: int = 0,
        head_hidden: Sequence[int] = (256, 64),
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
        self._build_layers(
            dropout=dropout,
            attention=attention,
            attention_options=attention_options,
            inattention=inattention,
            inattention_options=inattention_options,
            conv_channels=conv_channels,
            kernel_sizes=kernel_sizes,
            pool_sizes=pool_sizes,
            downsample=downsample,
            channel_dropout=channel_dropout,
            channel_reduction=channel_reduction,
            temporal_kernel=temporal_kernel,
            n_attention_blocks=n_attention_blocks,
            ffn_ratio=ffn_ratio,
            pooling=pooling,
            position_readout=position_readout,
            head_hidden=head_hidden,
            activation=activation,
            positional=positional,
            input_scale=input_scale,
            flat_eps=flat_eps,
        )
