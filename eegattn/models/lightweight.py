"""The lightweight response-time regressor with channel gate and sparse attention."""

from __future__ import annotations

from collections.abc import Sequence

from braindecode.models.base import EEGModuleMixin
from torch import nn

from eegattn.models.blocks import ConvAttentionRegressorMixin
from eegattn.models.normalization import MICROVOLTS_PER_VOLT


class LightweightResponseTimeCNNWithAttention(
    ConvAttentionRegressorMixin, EEGModuleMixin, nn.Module
):
    """Convolutional regressor with a channel gate and one sparse attention block.

    Source: the sparse-attention challenge entry ("LightweightResponseTimeCNNWithAttention", its
    recommended challenge-1 model, 846,289 parameters at 129 channels x 200 samples). With the
    defaults, at 129 x 200::

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

    Parameters
    ----------
    n_chans, n_outputs, n_times, chs_info, input_window_seconds, sfreq
        braindecode's signal arguments (``n_chans`` and ``n_times`` must be known or
        inferable). The input must be exactly (batch, n_chans, n_times), else ValueError.
    dropout : float
        Dropout of the convolution stages, attention weights, FFN and head (0.4, as the entry).
    attention : str
        Registry name of the sequence mechanism (``eegattn.attention.available_attention()``).
    attention_options : dict, optional
        Keyword options of the mechanism (``heads``, ``scale_factor``, ``dropout``, ...).
    inattention : bool
        Replace the convolution stages' dropout by ``InattentionDropout`` (Inattention NotaBene).
    inattention_options : dict, optional
        Keyword options of ``InattentionDropout`` (``num_stacks``, ``mode``, ...).
    conv_channels, kernel_sizes, pool_sizes : sequence of int
        One entry per convolution stage (a pool size of 1 keeps the length).
    downsample : {"maxpool", "stride"}
        How a stage shortens time: convolution then max-pool (as the entry), or a convolution with
        stride ``pool`` (same parameters, half the convolution FLOPs at pool 2, no pooling
        pass; a different function, so train it as its own model).
    channel_dropout : float
        Dropout of whole feature maps after each convolution stage (``nn.Dropout1d``, "spatial
        dropout"); 0 (as the entry) adds no layer.
    channel_reduction : int or None
        Reduction ratio of the channel gate; None removes the gate.
    temporal_kernel : int or None
        Kernel of a temporal gate after the channel gate; None (default) means none.
    n_attention_blocks : int
        Number of attention blocks (0 removes them).
    ffn_ratio : int
        FFN hidden width as a multiple of the model width.
    positional : None or "sinusoidal"
        Fixed sinusoidal position codes added before the attention blocks (no parameters).
        None (as the entry) leaves the attention and pooling blind to time order.
    pooling : {"avg", "avgmax"}
        Global pooling over time; "avgmax" concatenates mean and max (head input 2x width).
    position_readout : int
        Features per token of a position-specific read-out beside the pooling (0, as the
        entry: none): each token is projected to this many features and the flattened vector joins
        the pooled one, so the head sees *when* things happen (see ``PositionReadout``).
    head_hidden : sequence of int
        Hidden widths of the regression head.
    activation : {"relu", "gelu", "elu"}
        Activation of the convolution stages.
    input_scale : float
        Input units to microvolts (1e6 for volts).
    flat_eps : float
        A channel whose window std is below this many microvolts is flat and becomes 0.

    Notes
    -----
    NaN / Inf inputs raise a ValueError in training mode; in evaluation mode they are not
    checked (no host sync, so the model traces and runs fast) and propagate to the output.
    ``gate_values()`` returns the last channel gate (b, n_chans) and inattention keep
    probabilities for plotting.
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
