"""Ablation baseline: the lightweight regressor with its attention removed."""

from __future__ import annotations

from collections.abc import Sequence

from braindecode.models.base import EEGModuleMixin
from torch import nn

from eegattn.models.blocks import ConvAttentionRegressorMixin
from eegattn.models.normalization import MICROVOLTS_PER_VOLT


class LightweightResponseTimeCNN(ConvAttentionRegressorMixin, EEGModuleMixin, nn.Module):
    """The sparse-attention entry's lightweight regressor without attention: ``lightweight_noattn``.

    Same normalisation, convolution stages, pooling and head as
    :class:`~eegattn.models.lightweight.LightweightResponseTimeCNNWithAttention`, with no
    sequence attention block (attention, LayerNorm and FFN) and, by default, no channel gate,
    so comparing the two measures what the attention adds. ``channel_reduction=16`` keeps the
    channel gate (then only the attention block is removed). At 129 x 200 with the defaults::

        input (b, 129, 200) volts
        -> EEGInputNormalization                                     (b, 129, 200)
        -> Conv1d(129->128, k7) BN ReLU Dropout MaxPool(2)           (b, 128, 100)
        -> Conv1d(128->256, k5) BN ReLU Dropout MaxPool(2)           (b, 256, 50)
        -> mean over time                                            (b, 256)
        -> Linear 256->128->32->n_outputs (ReLU, dropout)            (b, n_outputs)

    317,633 parameters at 129 x 200 (the lightweight model's 846,289 minus the channel gate's
    2,064 and the attention block's 526,592).

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments; the input must be exactly (batch, n_chans, n_times).
    dropout, inattention, inattention_options, conv_channels, kernel_sizes, pool_sizes,
    downsample, channel_dropout, channel_reduction, temporal_kernel, pooling, position_readout,
    head_hidden, activation, input_scale, flat_eps
        As in :class:`~eegattn.models.lightweight.LightweightResponseTimeCNNWithAttention`.

    Notes
    -----
    NaN / Inf inputs raise a ValueError in training mode only (see the lightweight model).
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
        inattention: bool = False,
        inattention_options: dict | None = None,
        conv_channels: Sequence[int] = (128, 256),
        kernel_sizes: Sequence[int] = (7, 5),
        pool_sizes: Sequence[int] = (2, 2),
        downsample: str = "maxpool",
        channel_dropout: float = 0.0,
        channel_reduction: int | None = None,
        temporal_kernel: int | None = None,
        pooling: str = "avg",
        position_readout: int = 0,
        head_hidden: Sequence[int] = (128, 32),
        activation: str = "relu",
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
            attention="sparse",  # unused: no attention block is built
            attention_options=None,
            inattention=inattention,
            inattention_options=inattention_options,
            conv_channels=conv_channels,
            kernel_sizes=kernel_sizes,
            pool_sizes=pool_sizes,
            downsample=downsample,
            channel_dropout=channel_dropout,
            channel_reduction=channel_reduction,
            temporal_kernel=temporal_kernel,
            n_attention_blocks=0,
            ffn_ratio=2,
            pooling=pooling,
            position_readout=position_readout,
            head_hidden=head_hidden,
            activation=activation,
            input_scale=input_scale,
            flat_eps=flat_eps,
        )
