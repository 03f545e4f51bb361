"""A family of images whose patch matrix has a known rank k (Cao Q2's low-rank knob).

An image of ``L`` patches of ``D = p * p * C`` values is its centred patch matrix
``M = A B`` (L x D) mapped to grey levels, ``pixels = 127.5 + contrast * M``:

* ``A`` (L x k), the loadings, is fixed for the family (``family_seed``): row i says how patch
  position i mixes the k patterns. Rows are unit vectors, uniform on the sphere (Gaussian rows
  normalised), so every patch has unit variance; ``A`` of rank k is the first k columns of one
  (L x L) draw, so the families of different k share their loadings;
* ``B`` (k x D), the patterns, is drawn per image, i.i.d. N(0, 1).

So ``M`` has rank k (for k <= min(L, D)), and a removed patch ``M_i = A_i B`` is determined by
the visible rows ``M_V = A_V B`` exactly when the visible rows of ``A`` span R^k: with v visible
patches, for k <= v. For k > v the best predictor recovers only the projection of ``A_i`` on
the span of ``A_V``; for rows uniform on the sphere the expected unexplained share of a removed
patch's variance is ``1 - v / k`` (`knee_error` in maelab.probes.low_rank). Quantisation to
uint8 and clipping at 0 / 255 (``127.5 / contrast`` standard deviations) add a small floor.

Labels (the family has no classes): the decile of ``||B||_F^2`` under its chi-square law with
``k * D`` degrees of freedom, so linear probes after pretraining have a readable target.
"""

from __future__ import annotations

import torch
from scipy.stats import chi2

from maelab.config import DataConfig, LowRankConfig
from maelab.data.base import DatasetEntry, ImageSet, Splits, channel_stats, register_dataset
from maelab.data.synthetic import split_seed
from maelab.errors import ConfigError

DEFAULT_SIZE = 16  # px: 16 patches of 4 px
DEFAULT_NUM_TRAIN = 4096
DEFAULT_NUM_TEST = 1024
NUM_CLASSES = 10  # deciles of the pattern energy
MID_GREY = 127.5


def family_shape(cfg: LowRankConfig, image_size: int) -> tuple[int, int]:
    """Patches per image L and values per patch D; raises ConfigError where k cannot be had."""
    if image_size % cfg.patch_size:
        raise ConfigError(
            f"data.lowrank.patch_size={cfg.patch_size} must divide the image size {image_size}"
        )
    num_patches = (image_size // cfg.patch_size) ** 2
    values = cfg.patch_size**2 * cfg.channels
    if cfg.rank > min(num_patches, values):
        raise ConfigError(
            f"data.lowrank.rank={cfg.rank} exceeds min(patches, values per patch) = "
            f"min({num_patches}, {values}); a {num_patches} x {values} matrix has no such rank"
        )
    return num_patches, values


def loadings(cfg: LowRankConfig, num_patches: int) -> torch.Tensor:
    """The family's shared loadings A (L, k), float64, unit rows; nested over k for one seed."""
    gen = torch.Generator().manual_seed(cfg.family_seed)
    full = torch.randn(num_patches, num_patches, generator=gen, dtype=torch.float64)
    a = full[:, : cfg.rank]
    return a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)


def unpatchify(patches: torch.Tensor, patch_size: int, channels: int) -> torch.Tensor:
    """(N, L, p*p*C) -> (N, C, H, W): undoes maelab's patchify (raster, row-col-channel)."""
    n, num_patches, _ = patches.shape
    g = int(round(num_patches**0.5))
    p = patch_size
    x = patches.reshape(n, g, g, p, p, channels)
    return torch.einsum("nhwpqc->nchpwq", x).reshape(n, channels, g * p, g * p)


def generate_low_rank(n: int, cfg: LowRankConfig, image_size: int, seed: int) -> ImageSet:
    """``n`` uint8 images (n, C, image_size, image_size) of the rank-k family (deterministic per
    seed); labels are the deciles of the pattern energy."""
    if n < 1:
        raise ConfigError(f"number of low-rank images n={n} must be >= 1")
    num_patches, values = family_shape(cfg, image_size)
    a = loadings(cfg, num_patches)  # (L, k)
    gen = torch.Generator().manual_seed(seed)
    b = torch.randn(n, cfg.rank, values, generator=gen, dtype=torch.float64)  # (N, k, D)
    m = torch.einsum("lk,nkd->nld", a, b)  # (N, L, D), rank k per image
    grey = (MID_GREY + cfg.contrast * m).round().clamp(0, 255).to(torch.uint8)
    images = unpatchify(grey, cfg.patch_size, cfg.channels)
    energy = b.pow(2).sum(dim=(1, 2)).numpy()
    deciles = chi2.cdf(energy, df=cfg.rank * values)
    labels = torch.from_numpy((deciles * NUM_CLASSES).astype("int64")).clamp(0, NUM_CLASSES - 1)
    mean, std = channel_stats(images)
    return ImageSet(images=images, labels=labels, num_classes=NUM_CLASSES, mean=mean, std=std)


def build_low_rank(data_cfg: DataConfig) -> Splits:
    """Train (``data.seed``) and test (a derived seed) splits of the configured rank-k family."""
    size = data_cfg.image_size or DEFAULT_SIZE
    num_train = data_cfg.num_train or DEFAULT_NUM_TRAIN
    num_test = data_cfg.num_test or DEFAULT_NUM_TEST
    train = generate_low_rank(num_train, data_cfg.lowrank, size, split_seed(data_cfg.seed, "train"))
    test = generate_low_rank(num_test, data_cfg.lowrank, size, split_seed(data_cfg.seed, "test"))
    test.mean, test.std = train.mean, train.std  # both normalised with the training statistics
    return Splits(train=train, test=test)


def rank_ladder(cfg: LowRankConfig, image_size: int = DEFAULT_SIZE) -> list[int]:
    """The ranks an error-against-rank curve is read at: 1, 2, 4, ... up to min(L, D), and the
    family's own rank (the families of one ``family_seed`` share their loadings, nested)."""
    num_patches, values = family_shape(cfg, image_size)
    top = min(num_patches, values)
    return sorted({2**i for i in range(top.bit_length()) if 2**i <= top} | {cfg.rank})


def at_rank(data_cfg: DataConfig, rank: int) -> Splits:
    """The splits of the configured family with its rank set to ``rank`` (same loadings up to
    the smaller rank, same sample seeds)."""
    family = data_cfg.lowrank.model_copy(update={"rank": rank})
    return build_low_rank(data_cfg.model_copy(update={"lowrank": family}))


LOW_RANK = register_dataset(
    DatasetEntry(
        name="lowrank",
        description="images whose patch matrix has rank data.lowrank.rank (shared loadings, "
        "per-image patterns; Cao Q2); generated, no download",
        offline=True,
        build=build_low_rank,
        num_train=DEFAULT_NUM_TRAIN,
        num_test=DEFAULT_NUM_TEST,
        augment=False,  # the loadings belong to patch positions: crops and flips would mix them
    )
)
