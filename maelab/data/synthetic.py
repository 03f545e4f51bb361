"""The synthetic hierarchical-latent dataset: the embedded default, with known ground truth.

Every node is an invertible function of its parents plus its own noise (no pixel-to-pixel
edges), as in Kong et al.'s hierarchical latent-variable model of MAE:

* global ``z_g`` (``global_dim``) from a mixture of ``num_classes`` Gaussians (label = component);
* per region r: ``z_r = phi(Q_r [h_g(z_g) ; e_r])``, ``e_r ~ N(0, I)``, Q_r random orthogonal;
* per cell c of region r: ``z_c = phi(Q_c [h_r(z_r) ; e_c])``, ``e_c ~ N(0, I)``;
* pixels of cell c: ``sigmoid(G_c(z_c)) + pixel_noise * n``, G_c a per-cell random decoder
  (linear path plus sine features), quantised to uint8.

``phi`` is a strictly increasing leaky tanh and ``h`` an additive coupling with cosine shifts
(`couple`), so every level inverts exactly. ``h`` belongs to the parent and is shared by all its
children: a distortion private to each child would average out over children in a linear
read-out, while a shared one keeps the parent non-linear in the pixels. Measured on the
defaults (4096 fit / 2048 held-out): R^2(z_g) of a ridge on raw pixels ~0.47, of a two-layer
MLP ~0.57; cell latents stay near-linear in their pixels (ridge ~0.95).

Version 2 adds noise scales, ``tied`` maps and smooth cells (docs/theory.md); version 1 stays as
it was. Mixing functions depend only on ``world_seed``, samples only on the ``seed`` argument.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from maelab.config import DataConfig, SyntheticConfig
from maelab.data.base import DatasetEntry, ImageSet, Splits, channel_stats, register_dataset
from maelab.data.mixing import (
    CouplingStage,
    couple,
    coupling_stage,
    phi,
    phi_inverse,
    random_orthogonal,
    smooth_basis,
    uncouple,
)
from maelab.errors import ConfigError

DEFAULT_NUM_TRAIN = 4096
DEFAULT_NUM_TEST = 1024
CONTROL_DIM = 4


@dataclass(frozen=True)
class SyntheticWorld:
    """The fixed mixing functions of one ``world_seed`` (float64; nodes in raster order)."""

    class_means: torch.Tensor  # (K, G)
    global_stage: CouplingStage  # 1 node, d = G
    region_stage: CouplingStage  # R nodes, d = Dr = G + Er
    region_mix: torch.Tensor  # (R, Dr, Dr) orthogonal
    cell_mix: torch.Tensor  # (C, Dc, Dc) orthogonal, Dc = Dr + Ec
    decoder_lin: torch.Tensor  # (C, P, Dc) linear path, P = channels * cell_size**2
    decoder_in: torch.Tensor  # (C, H, Dc) sine-feature frequencies
    decoder_phase: torch.Tensor  # (C, H)
    decoder_out: torch.Tensor  # (C, P, H)
    decoder_bias: torch.Tensor  # (C, P)
    cell_region: torch.Tensor  # (C,) long: region index of each cell


def grid_sizes(cfg: SyntheticConfig) -> tuple[int, int]:
    """Cells per image side and regions per image side."""
    cells = cfg.image_size // cfg.cell_size
    return cells, cells // cfg.region_cells


def latent_dims(cfg: SyntheticConfig) -> dict[str, int]:
    """Width of each latent level (a region latent holds z_g and e_r, a cell latent z_r and e_c)."""
    region = cfg.global_dim + cfg.region_noise_dim
    return {
        "global": cfg.global_dim,
        "global_shared": cfg.global_dim,
        "region": region,
        "region_noise": cfg.region_noise_dim,
        "cell": region + cfg.cell_noise_dim,
        "cell_noise": cfg.cell_noise_dim,
        "control": CONTROL_DIM,
    }


def validate_synthetic(cfg: SyntheticConfig) -> None:
    """Raise ConfigError (one line: field and fix) for a configuration the generator cannot build."""
    positive = ("image_size", "channels", "cell_size", "region_cells", "global_dim", "num_classes")
    non_negative = ("region_noise_dim", "cell_noise_dim", "pixel_noise")
    non_negative += ("global_shift", "region_shift", "shift_freq", "decoder_freq")
    for names, low in ((positive, 1), (non_negative, 0)):
        for name in (n for n in names if getattr(cfg, n) < low):
            raise ConfigError(f"data.synthetic.{name}={getattr(cfg, name)} must be >= {low}")
    region_px = cfg.cell_size * cfg.region_cells
    if cfg.image_size % region_px:
        raise ConfigError(
            f"data.synthetic.image_size={cfg.image_size} must be divisible by cell_size * "
            f"region_cells = {region_px}; pick a multiple of {region_px}"
        )
    pixels = cfg.channels * cfg.cell_size**2
    cell_dim = latent_dims(cfg)["cell"]
    if pixels < cell_dim:
        # fewer pixel values than latent coordinates: the decoder cannot be injective
        raise ConfigError(
            f"data.synthetic.cell_size={cfg.cell_size}: a cell has {pixels} pixel values but a "
            f"{cell_dim}-d latent; raise cell_size or channels, or lower the latent dims"
        )
    if not 0 < cfg.class_std <= 1:
        raise ConfigError(f"data.synthetic.class_std={cfg.class_std} must be in (0, 1]")
    if cfg.mixing_gain <= 0 or not 0 < cfg.mixing_leak <= 1:
        raise ConfigError(
            f"data.synthetic.mixing_gain={cfg.mixing_gain} must be > 0 and mixing_leak="
            f"{cfg.mixing_leak} in (0, 1] (phi must stay strictly increasing)"
        )
    if cfg.version == 1:
        v2_only = {"region_noise_std": 1.0, "cell_noise_std": 1.0, "tied": False}
        changed = [k for k, v in v2_only.items() if getattr(cfg, k) != v]
        if changed:
            # version 1 reproduces the first world bit for bit; it has no such fields
            raise ConfigError(
                f"data.synthetic.{changed[0]} needs data.synthetic.version=2 (version 1 is the "
                "first 16 px world, kept as it was)"
            )
    if cfg.decoder_hidden < 1 or not 0 <= cfg.decoder_sine <= 1:
        raise ConfigError(
            f"data.synthetic.decoder_hidden={cfg.decoder_hidden} must be >= 1 and "
            f"decoder_sine={cfg.decoder_sine} in [0, 1]"
        )


def _pixel_weights(
    cfg: SyntheticConfig, gen: torch.Generator
) -> Callable[[int, int], torch.Tensor]:
    """Draws pixel-by-input weight tensors (count, channels * cell_size**2, k) of unit variance.

    Version 1 draws every pixel's weights independently (cells look like coloured noise);
    version 2 draws each channel's weights as a mix of smooth patterns, so that a cell reads as
    a soft colour gradient and similar latents give visibly similar cells.
    """
    pixels = cfg.channels * cfg.cell_size**2

    def iid(count: int, k: int) -> torch.Tensor:
        return torch.randn(count, pixels, k, generator=gen, dtype=torch.float64)

    def smooth(count: int, k: int) -> torch.Tensor:
        basis = smooth_basis(cfg.cell_size)  # (s*s, F*F)
        coef = torch.randn(count, cfg.channels, basis.shape[1], k, generator=gen, dtype=basis.dtype)
        w = torch.einsum("pb,ncbk->ncpk", basis, coef) / math.sqrt(basis.shape[1])
        return w.reshape(count, pixels, k)

    return iid if cfg.version == 1 else smooth


def make_world(cfg: SyntheticConfig) -> SyntheticWorld:
    """Build the mixing functions fixed by ``cfg.world_seed``."""
    validate_synthetic(cfg)
    gen = torch.Generator().manual_seed(_derive_seed(cfg.world_seed, "world"))
    cells, regions = grid_sizes(cfg)
    n_cells, n_regions = cells * cells, regions * regions
    dims = latent_dims(cfg)
    d_cell, hidden = dims["cell"], cfg.decoder_hidden
    f64 = torch.float64

    # a tied world draws one map per level and gives it to every node of the level
    draw_regions, draw_cells = (1, 1) if cfg.tied else (n_regions, n_cells)

    # class means spread so that the mixture has unit variance per coordinate
    spread = math.sqrt(1.0 - cfg.class_std**2)
    class_means = spread * torch.randn(cfg.num_classes, cfg.global_dim, generator=gen, dtype=f64)
    global_stage = coupling_stage(1, cfg.global_dim, gen)
    region_stage = coupling_stage(draw_regions, dims["region"], gen)
    region_mix = random_orthogonal(draw_regions, dims["region"], gen)
    cell_mix = random_orthogonal(draw_cells, d_cell, gen)
    # logits of std ~1.5 use most of the sigmoid's range without saturating it; decoder_sine
    # is the sine features' share of that variance (sin(.) has variance ~1/2)
    lin_std = 1.5 * math.sqrt((1.0 - cfg.decoder_sine) / d_cell)
    weights = _pixel_weights(cfg, gen)
    decoder_lin = lin_std * weights(draw_cells, d_cell)
    decoder_in = torch.randn(draw_cells, hidden, d_cell, generator=gen, dtype=f64)
    decoder_in *= cfg.decoder_freq / math.sqrt(d_cell)
    decoder_phase = 2 * math.pi * torch.rand(draw_cells, hidden, generator=gen, dtype=f64)
    sine_std = 1.5 * math.sqrt(2.0 * cfg.decoder_sine / hidden)
    decoder_out = sine_std * weights(draw_cells, hidden)
    decoder_bias = 0.5 * weights(draw_cells, 1)[..., 0]
    if cfg.tied:
        region_stage = region_stage.nodes(torch.zeros(n_regions, dtype=torch.long))
        region_mix = region_mix.expand(n_regions, -1, -1)
        cell_mix, decoder_lin, decoder_in, decoder_out = (
            t.expand(n_cells, *t.shape[1:])
            for t in (cell_mix, decoder_lin, decoder_in, decoder_out)
        )
        decoder_phase = decoder_phase.expand(n_cells, -1)
        decoder_bias = decoder_bias.expand(n_cells, -1)

    rows, cols = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
    cell_region = (rows // cfg.region_cells) * regions + cols // cfg.region_cells
    return SyntheticWorld(
        class_means=class_means,
        global_stage=global_stage,
        region_stage=region_stage,
        region_mix=region_mix,
        cell_mix=cell_mix,
        decoder_lin=decoder_lin,
        decoder_in=decoder_in,
        decoder_phase=decoder_phase,
        decoder_out=decoder_out,
        decoder_bias=decoder_bias,
        cell_region=cell_region.reshape(-1),
    )


def global_parent(world: SyntheticWorld, cfg: SyntheticConfig, z_g: torch.Tensor) -> torch.Tensor:
    """``s_g = h_g(z_g)``, z_g as every region receives it (invertible): (N, G) -> (N, 1, G)."""
    return couple(world.global_stage, z_g.unsqueeze(1), cfg.global_shift, cfg.shift_freq)


def mix_regions(
    world: SyntheticWorld, cfg: SyntheticConfig, z_g: torch.Tensor, e_r: torch.Tensor
) -> torch.Tensor:
    """Regional latents ``z_r = phi(Q_r [h_g(z_g) ; e_r])``: (N, G), (N, R, Er) -> (N, R, Dr)."""
    n, r = e_r.shape[:2]
    shared = global_parent(world, cfg, z_g)
    parents = torch.cat([shared.expand(n, r, -1), cfg.region_noise_std * e_r], dim=-1)
    mixed = torch.einsum("rij,nrj->nri", world.region_mix, parents)
    return phi(mixed, cfg.mixing_gain, cfg.mixing_leak)


def mix_cells(
    world: SyntheticWorld, cfg: SyntheticConfig, z_r: torch.Tensor, e_c: torch.Tensor
) -> torch.Tensor:
    """Cell latents ``z_c = phi(Q_c [h_r(z_r) ; e_c])``: (N, R, Dr), (N, C, Ec) -> (N, C, Dc)."""
    shared = couple(world.region_stage, z_r, cfg.region_shift, cfg.shift_freq)
    parents = torch.cat([shared[:, world.cell_region], cfg.cell_noise_std * e_c], dim=-1)
    mixed = torch.einsum("cij,ncj->nci", world.cell_mix, parents)
    return phi(mixed, cfg.mixing_gain, cfg.mixing_leak)


def unmix_cells(
    world: SyntheticWorld, cfg: SyntheticConfig, z_c: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert `mix_cells`: (N, C, Dc) -> each cell's copy of its z_r (N, C, Dr), e_c (N, C, Ec)."""
    parents = torch.einsum(
        "cji,ncj->nci", world.cell_mix, phi_inverse(z_c, cfg.mixing_gain, cfg.mixing_leak)
    )
    d_r = world.region_mix.shape[-1]
    stage = world.region_stage.nodes(world.cell_region)
    z_r = uncouple(stage, parents[..., :d_r], cfg.region_shift, cfg.shift_freq)
    return z_r, parents[..., d_r:] / cfg.cell_noise_std


def unmix_regions(
    world: SyntheticWorld, cfg: SyntheticConfig, z_r: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Invert `mix_regions`: (N, R, Dr) -> each region's copy of z_g (N, R, G), e_r (N, R, Er)."""
    parents = torch.einsum(
        "rji,nrj->nri", world.region_mix, phi_inverse(z_r, cfg.mixing_gain, cfg.mixing_leak)
    )
    g = world.class_means.shape[-1]
    stage = world.global_stage.nodes(torch.zeros(z_r.shape[1], dtype=torch.long))
    z_g = uncouple(stage, parents[..., :g], cfg.global_shift, cfg.shift_freq)
    return z_g, parents[..., g:] / cfg.region_noise_std


def render_cells(world: SyntheticWorld, cfg: SyntheticConfig, z_c: torch.Tensor) -> torch.Tensor:
    """Noise-free images in [0, 1]: cell latents (N, C, Dc) -> (N, channels, H, W)."""
    n = z_c.shape[0]
    hidden = torch.sin(torch.einsum("chd,ncd->nch", world.decoder_in, z_c) + world.decoder_phase)
    logits = (
        torch.einsum("cpd,ncd->ncp", world.decoder_lin, z_c)
        + torch.einsum("cph,nch->ncp", world.decoder_out, hidden)
        + world.decoder_bias
    )  # (N, C, P)
    cells, _ = grid_sizes(cfg)
    s, ch = cfg.cell_size, cfg.channels
    x = torch.sigmoid(logits).reshape(n, cells, cells, ch, s, s)  # (N, gy, gx, ch, s, s)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(n, ch, cells * s, cells * s)


def generate_synthetic(n: int, cfg: SyntheticConfig, seed: int) -> ImageSet:
    """Draw ``n`` images with their labels and every ground-truth latent (deterministic per seed).

    Latents (float32): ``global`` (n, G), ``global_shared`` (n, G) (`global_parent`), ``region``
    (n, R, G + Er), ``region_noise`` (n, R, Er), ``cell`` (n, C, G + Er + Ec), ``cell_noise``
    (n, C, Ec), ``control`` (n, 4) independent of the image. Regions and cells are in raster order over their grids.
    """
    if n < 1:
        raise ConfigError(f"number of synthetic images n={n} must be >= 1")
    world = make_world(cfg)
    # the sample stream ignores world_seed, so two worlds can be compared on the same sources
    gen = torch.Generator().manual_seed(_derive_seed(seed, "samples"))
    cells, regions = grid_sizes(cfg)
    f64 = torch.float64

    labels = torch.randint(cfg.num_classes, (n,), generator=gen)
    within = torch.randn(n, cfg.global_dim, generator=gen, dtype=f64)
    z_g = world.class_means[labels] + cfg.class_std * within
    e_r = torch.randn(n, regions * regions, cfg.region_noise_dim, generator=gen, dtype=f64)
    e_c = torch.randn(n, cells * cells, cfg.cell_noise_dim, generator=gen, dtype=f64)
    z_r = mix_regions(world, cfg, z_g, e_r)
    z_c = mix_cells(world, cfg, z_r, e_c)

    clean = render_cells(world, cfg, z_c)
    noise = torch.randn(clean.shape, generator=gen, dtype=f64)
    images = (clean + cfg.pixel_noise * noise).clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    control = torch.randn(n, CONTROL_DIM, generator=gen, dtype=f64)

    mean, std = channel_stats(images)
    latents = {
        "global": z_g,
        "global_shared": global_parent(world, cfg, z_g)[:, 0],
        "region": z_r,
        "region_noise": e_r,
        "cell": z_c,
        "cell_noise": e_c,
        "control": control,
    }
    return ImageSet(
        images=images,
        labels=labels,
        num_classes=cfg.num_classes,
        mean=mean,
        std=std,
        latents={k: v.float() for k, v in latents.items()},
    )


def synthetic_layout(cfg: SyntheticConfig, patch_size: int) -> dict[str, torch.Tensor | None]:
    """Map each ViT patch (raster order) to its region and, if the patch fits in a cell, its cell.

    ``patch_region`` (L,) long; ``patch_cell`` (L,) long, or None when a patch is larger than a
    cell. A patch must nest in the cell / region grid (no patch may straddle two regions).
    """
    validate_synthetic(cfg)
    region_px = cfg.cell_size * cfg.region_cells
    if patch_size < 1 or cfg.image_size % patch_size:
        raise ConfigError(
            f"patch_size={patch_size} must divide data.synthetic.image_size={cfg.image_size}"
        )
    if patch_size <= cfg.cell_size and cfg.cell_size % patch_size:
        raise ConfigError(
            f"patch_size={patch_size} must divide data.synthetic.cell_size={cfg.cell_size} "
            "(a patch may not straddle two cells)"
        )
    elif region_px % patch_size:
        raise ConfigError(
            f"patch_size={patch_size} must divide the region side cell_size * region_cells = "
            f"{region_px} (a patch may not straddle two regions)"
        )
    side = cfg.image_size // patch_size
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    top, left = (rows * patch_size).reshape(-1), (cols * patch_size).reshape(-1)  # (L,) px
    cells, regions = grid_sizes(cfg)
    patch_region = (top // region_px) * regions + left // region_px
    patch_cell = None
    if patch_size <= cfg.cell_size:
        patch_cell = (top // cfg.cell_size) * cells + left // cfg.cell_size
    return {"patch_region": patch_region, "patch_cell": patch_cell}


def build_synthetic(data_cfg: DataConfig) -> Splits:
    """Train and test splits of one world: train from ``data_cfg.seed``, test from a derived seed."""
    cfg = data_cfg.synthetic
    if data_cfg.image_size is not None and data_cfg.image_size != cfg.image_size:
        raise ConfigError(
            f"data.image_size={data_cfg.image_size} differs from data.synthetic.image_size="
            f"{cfg.image_size}; set data.synthetic.image_size instead (images are not resized)"
        )
    n_train, n_test = data_cfg.num_train or DEFAULT_NUM_TRAIN, data_cfg.num_test or DEFAULT_NUM_TEST
    train = generate_synthetic(n_train, cfg, split_seed(data_cfg.seed, "train"))
    test = generate_synthetic(n_test, cfg, split_seed(data_cfg.seed, "test"))
    test.mean, test.std = train.mean, train.std  # both normalised with the training statistics
    return Splits(train=train, test=test)


def split_seed(seed: int, split: str) -> int:
    """The sample seed of a split: ``seed`` itself for "train", a derived 63-bit seed otherwise."""
    return seed if split == "train" else _derive_seed(seed, split)


def _derive_seed(seed: int, purpose: str) -> int:
    """A 63-bit seed for one purpose, so that streams of nearby seeds and purposes never overlap."""
    tag = int.from_bytes(purpose.encode(), "little")
    state = np.random.SeedSequence([seed & (2**63 - 1), tag]).generate_state(2, dtype=np.uint32)
    return (int(state[0]) << 31) ^ int(state[1])


register_dataset(
    DatasetEntry(
        name="synthetic",
        description="hierarchical latents (global -> region -> cell -> pixels) with ground truth; "
        "generated, no download",
        offline=True,
        build=build_synthetic,
        num_train=DEFAULT_NUM_TRAIN,
        num_test=DEFAULT_NUM_TEST,
        augment=False,  # crops and flips would move cells away from their latents
    )
)
