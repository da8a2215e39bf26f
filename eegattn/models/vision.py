"""Image classifiers for the cross-domain baselines: Inattention NotaBene's CNNs and a ViT.

"Inattention NotaBene" (B. Galoaa 2025, github.com/bishoymoussa/inattention-notabene)
compares two CIFAR-10 CNNs. Its README names only the inattention API; the layer layout below
is the one of its ``train.py`` (the experiment behind its results table):

``conv 3x3 (in -> 32) -> ReLU -> conv 3x3 (32 -> 64) -> ReLU -> max-pool 2 -> [drop 1]
-> conv 3x3 (64 -> 128) -> ReLU -> max-pool 2 -> [drop 2] -> flatten -> Linear(-> 512) -> ReLU
-> Dropout(0.25) -> Linear(512 -> classes)``

``[drop 1]`` / ``[drop 2]`` are ``Dropout(0.25)`` in the baseline and inattention layers
(64 and 128 channels, ``dropout_prob=0.25``, 3 stacks each) in the inattention CNN; the
fully connected dropout stays standard in both, as in the original. Inputs are
(b, in_channels, H, W) with H and W divisible by 4 (two poolings): 32x32 for CIFAR-10, 8x8
for scikit-learn's digits.

The ViT (after Dosovitskiy et al. 2021, "An Image is Worth 16x16 Words") takes any sequence
mechanism of :mod:`eegattn.attention` (DiGiugno & Mahmood used neural attention on CIFAR): patch
embedding, learned position embeddings, pre-norm blocks ``x + attn(LN(x))``,
``x + MLP(LN(x))``, and a linear head on the mean of the patch tokens (``pool="mean"``,
default) or on a class token (``pool="cls"``). Mean pooling is the default because a class
token only sees its own token group under ``sparse`` attention (the sparse-attention entry
shares the tokens out among heads), which leaves a class-token ViT at chance.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from eegattn.attention import InattentionDropout, StackedInattentionDropout, build_attention
from eegattn.attention.dropout import Dropout
from eegattn.utils.check import check_positive_int

__all__ = [
    "VISION_MODELS",
    "SeedCNN",
    "TransformerBlock",
    "VisionTransformer",
    "attention_options_for",
    "build_vision_model",
]

#: names accepted by :func:`build_vision_model`
VISION_MODELS = ("cnn", "inattention_cnn", "vit")

#: neural attention's ``d'`` when the paper's default ``dim_head // 32`` would be below 2
SMALL_NEURAL_PROJECTION_DIM = 8


def attention_options_for(name: str, dim: int, heads: int, options: dict | None) -> dict:
    """The options a model passes to ``build_attention(name, ...)``.

    Neural attention's default ``d' = dim_head // 32`` is 0 for the small widths used here,
    so ``projection_dim`` defaults to :data:`SMALL_NEURAL_PROJECTION_DIM` (8: ``d' = 2`` often
    leaves a dead ReLU unit) unless the caller gives one or ``dim_head >= 64``.
    """
    options = dict(options or {})
    if name == "neural" and "projection_dim" not in options and (dim // heads) // 32 < 2:
        options["projection_dim"] = SMALL_NEURAL_PROJECTION_DIM
    return options


def _check_image_input(x: Tensor, channels: int, size: tuple[int, int], model: str) -> None:
    if not isinstance(x, Tensor) or x.dim() != 4:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"{model} expects images (batch, channels, height, width), got {shape}")
    if x.shape[1] != channels or tuple(x.shape[-2:]) != size:
        raise ValueError(
            f"{model} was built for ({channels}, {size[0]}, {size[1]}) images, got "
            f"{tuple(x.shape[1:])}; build it with in_channels={x.shape[1]}, "
            f"image_size={tuple(x.shape[-2:])}"
        )


def _image_size(image_size) -> tuple[int, int]:
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2:
        raise ValueError(f"image_size must be an int or (height, width), got {image_size!r}")
    for s in size:
        check_positive_int(s, "image_size")
    return size


class SeedCNN(nn.Module):
    """Inattention NotaBene's baseline CNN (``inattention=False``) or Inattention CNN (``True``).

    Parameters
    ----------
    in_channels, n_classes : int
    image_size : int or (height, width), both divisible by 4.
    inattention : bool
        Replace the two convolutional dropouts by inattention layers (Inattention NotaBene).
    inattention_mode : {"faithful", "relaxed"}
        ``"faithful"`` reproduces Inattention NotaBene's layer (Bernoulli masks without gradient,
        see :mod:`eegattn.attention.inattention`; ``"seed"`` is a deprecated alias);
        ``"relaxed"`` is the library's fixed version.
    dropout_prob : float
        Dropout rate of every dropout / inattention layer (0.25 in the original).
    num_stacks : int or (int, int)
        Inattention stacks per layer (3 in the original).
    widths : (int, int, int)
        Convolution widths (32, 64, 128 in the original).
    hidden : int
        Width of the fully connected layer (512 in the original).
    inattention_options : dict, optional
        Further :class:`~eegattn.attention.InattentionDropout` options (``temperature``, ...).

    Shapes: (b, in_channels, H, W) -> logits (b, n_classes).
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 10,
        image_size: int | Sequence[int] = 32,
        *,
        inattention: bool = False,
        inattention_mode: str = "faithful",
        dropout_prob: float = 0.25,
        num_stacks: int | Sequence[int] = 3,
        widths: Sequence[int] = (32, 64, 128),
        hidden: int = 512,
        inattention_options: dict | None = None,
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes")
        check_positive_int(hidden, "hidden")
        self.image_size = _image_size(image_size)
        if any(s % 4 for s in self.image_size):
            raise ValueError(
                f"image_size {self.image_size} must be divisible by 4 (two 2x2 poolings); "
                "pad or crop the images"
            )
        if len(widths) != 3:
            raise ValueError(f"widths must hold three convolution widths, got {widths!r}")
        w1, w2, w3 = (check_positive_int(w, "widths") for w in widths)
        self.in_channels = in_channels
        self.inattention_enabled = bool(inattention)
        self.conv1 = nn.Conv2d(in_channels, w1, 3, padding=1)
        self.conv2 = nn.Conv2d(w1, w2, 3, padding=1)
        self.conv3 = nn.Conv2d(w2, w3, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.act = nn.ReLU()
        if inattention:
            self.inattention = StackedInattentionDropout(
                [w2, w3], dropout_prob, num_stacks, mode=inattention_mode, spatial_dims=2,
                **(inattention_options or {}),
            )
            self.conv_dropout = None
        else:
            self.inattention = None
            self.conv_dropout = Dropout(dropout_prob)
        h, w = self.image_size
        self.fc1 = nn.Linear(w3 * (h // 4) * (w // 4), hidden)
        self.fc_dropout = Dropout(dropout_prob)
        self.fc2 = nn.Linear(hidden, n_classes)

    def _drop(self, x: Tensor, index: int) -> Tensor:
        if self.inattention is not None:
            return self.inattention(x, index)
        return self.conv_dropout(x)

    def inattention_layers(self) -> list[InattentionDropout]:
        """The inattention layers in forward order (empty for the baseline)."""
        return [] if self.inattention is None else list(self.inattention.layers)

    def forward(self, x: Tensor) -> Tensor:
        _check_image_input(x, self.in_channels, self.image_size, type(self).__name__)
        x = self.act(self.conv1(x))
        x = self.pool(self.act(self.conv2(x)))
        x = self._drop(x, 0)
        x = self.pool(self.act(self.conv3(x)))
        x = self._drop(x, 1)
        x = self.act(self.fc1(x.flatten(1)))
        return self.fc2(self.fc_dropout(x))


class TransformerBlock(nn.Module):
    """Pre-norm transformer block: ``x + attn(LN(x))`` then ``x + MLP(LN(x))``."""

    def __init__(self, dim: int, attention: nn.Module, mlp_ratio: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = attention
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), Dropout(dropout),
            nn.Linear(mlp_ratio * dim, dim), Dropout(dropout),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class AttentionStoreMixin:
    """``attention_modules()`` and ``store_attention()`` for models whose ``blocks`` are
    :class:`TransformerBlock` s (the ViT here, the causal LM in ``models/language.py``)."""

    def attention_modules(self) -> list[nn.Module]:
        """The attention module of each block, first to last."""
        return [block.attention for block in self.blocks]

    def store_attention(self, flag: bool = True) -> None:
        """Keep (``True``) or stop keeping each block's last attention weights (b, h, n, m)."""
        for module in self.attention_modules():
            module.store_attention = bool(flag)
            if not flag:
                module.last_attention = None


class VisionTransformer(AttentionStoreMixin, nn.Module):
    """A small ViT whose attention is any registry mechanism.

    Parameters
    ----------
    in_channels, n_classes : int
    image_size : int or (height, width), divisible by ``patch_size``.
    patch_size : int, optional
        Default 2 for images up to 16 pixels a side (8x8 digits: 16 patches), else 4
        (32x32 CIFAR: 64 patches).
    dim, depth, heads, mlp_ratio, dropout : transformer sizes.
    attention : str
        A name of :func:`eegattn.attention.available_attention` (``standard``, ``neural``,
        ``sparse``, ``linear``, ...). Self-attention without a causal mask, so ``selective``
        applies no selection here (the paper's selection needs causal attention) and equals
        ``standard``.
    attention_options : dict, optional
        Passed to :func:`~eegattn.attention.build_attention` (see
        :func:`attention_options_for` for neural attention's default ``projection_dim``).
    pool : {"mean", "cls"}
        Classify the mean of the patch tokens, or a learned class token put first.

    Shapes: (b, in_channels, H, W) -> logits (b, n_classes); the sequence has
    ``(H / patch) * (W / patch)`` tokens, plus the class token first with ``pool="cls"``.
    """

    def __init__(
        self,
        in_channels: int = 3,
        n_classes: int = 10,
        image_size: int | Sequence[int] = 32,
        *,
        patch_size: int | None = None,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
        attention: str = "standard",
        attention_options: dict | None = None,
        pool: str = "mean",
    ) -> None:
        super().__init__()
        check_positive_int(in_channels, "in_channels")
        check_positive_int(n_classes, "n_classes")
        check_positive_int(depth, "depth")
        if pool not in ("mean", "cls"):
            raise ValueError(f"pool must be 'mean' or 'cls', got {pool!r}")
        self.pool = pool
        check_positive_int(mlp_ratio, "mlp_ratio")
        self.image_size = _image_size(image_size)
        if patch_size is None:
            patch_size = 2 if max(self.image_size) <= 16 else 4
        check_positive_int(patch_size, "patch_size")
        if any(s % patch_size for s in self.image_size):
            raise ValueError(
                f"image_size {self.image_size} is not divisible by patch_size={patch_size}; "
                "choose a patch size that divides both sides"
            )
        self.in_channels = in_channels
        self.patch_size = patch_size
        self.attention_name = attention
        grid = (self.image_size[0] // patch_size, self.image_size[1] // patch_size)
        self.grid = grid
        self.patch_embed = nn.Conv2d(in_channels, dim, patch_size, stride=patch_size)
        n_tokens = grid[0] * grid[1] + (pool == "cls")
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos_embed = nn.Parameter(torch.randn(1, n_tokens, dim) * 0.02)
        options = attention_options_for(attention, dim, heads, attention_options)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, build_attention(attention, dim=dim, heads=heads, **options),
                   mlp_ratio, dropout)
            for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        _check_image_input(x, self.in_channels, self.image_size, type(self).__name__)
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2)  # (b, patches, dim)
        if self.cls_token is not None:
            tokens = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), tokens], dim=1)
        tokens = tokens + self.pos_embed
        for block in self.blocks:
            tokens = block(tokens)
        pooled = tokens[:, 0] if self.cls_token is not None else tokens.mean(dim=1)
        return self.head(self.norm(pooled))


def build_vision_model(
    name: str, in_channels: int, n_classes: int, image_size, **options
) -> nn.Module:
    """Build ``cnn`` (Inattention NotaBene's baseline), ``inattention_cnn`` (its Inattention CNN;
    option ``inattention_mode="faithful"|"relaxed"``) or ``vit`` (option ``attention=<name>``)."""
    if name == "cnn":
        return SeedCNN(in_channels, n_classes, image_size, inattention=False, **options)
    if name == "inattention_cnn":
        return SeedCNN(in_channels, n_classes, image_size, inattention=True, **options)
    if name == "vit":
        return VisionTransformer(in_channels, n_classes, image_size, **options)
    raise ValueError(f"unknown vision model {name!r}; choose one of {', '.join(VISION_MODELS)}")
