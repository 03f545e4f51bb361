"""Gaussian worlds: images whose covariance is known exactly, so that every optimum is exact.

Two kinds, 1 channel, pixels stored as float32 in the units of the covariance (mean 0):

* ``stationary``: a field with a short- and a long-range squared-exponential kernel plus white
  noise, ``Sigma_ij = s * exp(-d_ij^2 / 2 l_s^2) + g * exp(-d_ij^2 / 2 l_g^2) + w * [i = j]``;
* ``hierarchy``: the linear-Gaussian version of the synthetic world's tree, on its layout (cells
  in regions), with tied loadings as in the study world::

      z_r = Q_r [z_g ; s_r e_r],   z_c = Q_c [z_r ; s_c e_c],   x_cell = B z_c + sigma n

  Q_r, Q_c orthogonal, B a mix of smooth cell patterns (orthonormal columns when
  ``orthogonal``: then the latents' pixel loadings are orthogonal within every cell). All latents
  are N(0, I); B is scaled so that the clean pixels have mean variance 1, so ``pixel_noise`` is
  the noise std relative to the signal's.

`gaussian_world` returns the covariance and every latent's pixel loading; training draws from
`GaussianWorld.sample`. The exact optima these worlds have live in maelab.theory.gaussian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from maelab.config import DataConfig, GaussianConfig
from maelab.data.base import DatasetEntry, ImageSet, Splits, register_dataset
from maelab.data.mixing import random_orthogonal, smooth_basis
from maelab.data.synthetic import split_seed
from maelab.errors import ConfigError

SAMPLES_PER_PIXEL = 100  # default training images: 100 x the pixel count
DEFAULT_NUM_TEST = 4096
# latent levels of the hierarchy, as ImageSet.latents and GaussianWorld.loadings name them
GLOBAL, REGION_NOISE, CELL_NOISE = "global", "region_noise", "cell_noise"


@dataclass(frozen=True)
class GaussianWorld:
    """A zero-mean Gaussian image law: x = sum_level loadings[level] . latents + white noise.

    Pixels are in raster order (1 channel). ``loadings[level]`` is (D, nodes, dim): the pixel
    loading of each node's latent (z_g: one node; e_r: one per region; e_c: one per cell).
    """

    image_size: int
    covariance: np.ndarray  # (D, D) float64
    noise_var: float  # variance of the white pixel noise (part of the covariance)
    loadings: dict[str, np.ndarray] = field(default_factory=dict)
    kind: str = "stationary"
    # hierarchy only: z_r and z_c as maps of (z_g, e_r) and (z_r, e_c), for the latents returned
    region_map: np.ndarray | None = None  # (Dr, G + Er) = Q_r diag(1, s_r)
    cell_map: np.ndarray | None = None  # (Dc, Dr + Ec) = Q_c diag(1, s_c)

    @property
    def num_pixels(self) -> int:
        return self.image_size**2

    def sample(self, n: int, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``n`` images (n, 1, S, S) float32 and their latents (float32), deterministic per seed.

        Drawn in float32 (the images are stored so): the law's own precision is the
        covariance's, float64, and the samples only estimate it.
        """
        gen = torch.Generator().manual_seed(split_seed(seed, "gaussian"))
        d = self.num_pixels
        latents: dict[str, torch.Tensor] = {}
        if self.kind == "stationary":
            chol = torch.from_numpy(np.linalg.cholesky(self.covariance)).float()
            x = torch.randn(n, d, generator=gen) @ chol.T
        else:
            x = torch.zeros(n, d)
            for level, load in self.loadings.items():
                z = torch.randn(n, load.shape[1], load.shape[2], generator=gen)
                x += z.reshape(n, -1) @ torch.from_numpy(load.reshape(d, -1)).float().T
                latents[level] = z[:, 0] if level == GLOBAL else z
            x += math.sqrt(self.noise_var) * torch.randn(n, d, generator=gen)
            latents.update(self._tree_latents(latents))
        return x.reshape(n, 1, self.image_size, self.image_size), latents

    def _tree_latents(self, z: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """z_r (n, R, Dr) and z_c (n, C, Dc) from the sampled z_g, e_r, e_c."""
        assert self.region_map is not None and self.cell_map is not None
        r_map = torch.from_numpy(self.region_map).float()
        c_map = torch.from_numpy(self.cell_map).float()
        e_r, e_c = z[REGION_NOISE], z[CELL_NOISE]
        g = z[GLOBAL].unsqueeze(1).expand(-1, e_r.shape[1], -1)
        z_r = torch.cat([g, e_r], dim=-1) @ r_map.T  # (n, R, Dr)
        cell_region = _cell_regions(e_c.shape[1], e_r.shape[1])
        z_c = torch.cat([z_r[:, cell_region], e_c], dim=-1) @ c_map.T  # (n, C, Dc)
        return {"region": z_r, "cell": z_c}


def gaussian_world(cfg: GaussianConfig) -> GaussianWorld:
    """The world a config fixes: its covariance, loadings and sampler."""
    validate_gaussian(cfg)
    if cfg.kind == "stationary":
        return GaussianWorld(cfg.image_size, stationary_covariance(cfg), cfg.white_var)
    return _hierarchy(cfg)


def validate_gaussian(cfg: GaussianConfig) -> None:
    """Raise ConfigError (field and fix) for a world that cannot be built."""
    if cfg.kind == "stationary":
        return
    region_px = cfg.cell_size * cfg.region_cells
    if cfg.image_size % region_px:
        raise ConfigError(
            f"data.gaussian.image_size={cfg.image_size} must be a multiple of cell_size * "
            f"region_cells = {region_px}"
        )
    d_cell = cfg.global_dim + cfg.region_noise_dim + cfg.cell_noise_dim
    patterns = smooth_basis(cfg.cell_size).shape[1]
    if d_cell > min(patterns, cfg.cell_size**2):
        raise ConfigError(
            f"data.gaussian: a cell latent of {d_cell} dims needs more than the "
            f"{min(patterns, cfg.cell_size**2)} smooth cell patterns; lower the latent dims"
        )


def pixel_coordinates(image_size: int) -> np.ndarray:
    """(D, 2) row and column of each pixel centre, raster order."""
    rows, cols = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    return np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)


def stationary_covariance(cfg: GaussianConfig) -> np.ndarray:
    """The stationary field's covariance (D, D), float64."""
    pos = pixel_coordinates(cfg.image_size)
    d2 = ((pos[:, None, :] - pos[None, :, :]) ** 2).sum(-1)
    cov = cfg.short_var * np.exp(-d2 / (2 * cfg.short_scale**2))
    cov += cfg.long_var * np.exp(-d2 / (2 * cfg.long_scale**2))
    return cov + cfg.white_var * np.eye(d2.shape[0])


def _cell_regions(num_cells: int, num_regions: int) -> torch.Tensor:
    """(C,) region index of each cell, raster order over both grids."""
    cells, regions = math.isqrt(num_cells), math.isqrt(num_regions)
    per = cells // regions
    rows, cols = torch.meshgrid(torch.arange(cells), torch.arange(cells), indexing="ij")
    return ((rows // per) * regions + cols // per).reshape(-1)


def _hierarchy(cfg: GaussianConfig) -> GaussianWorld:
    """Loadings of z_g, every e_r and every e_c on the pixels, and the covariance they make."""
    gen = torch.Generator().manual_seed(split_seed(cfg.world_seed, "gaussian-world"))
    g, er, ec = cfg.global_dim, cfg.region_noise_dim, cfg.cell_noise_dim
    d_r, d_c = g + er, g + er + ec
    q_r = random_orthogonal(1, d_r, gen)[0].numpy()
    q_c = random_orthogonal(1, d_c, gen)[0].numpy()
    basis = smooth_basis(cfg.cell_size)  # (P, F*F)
    coef = torch.randn(basis.shape[1], d_c, generator=gen, dtype=torch.float64)
    b = (basis @ coef).numpy() / math.sqrt(basis.shape[1])  # (P, Dc)
    if cfg.orthogonal:
        b = np.linalg.qr(b)[0] * math.sqrt(b.shape[0])
    region_map = q_r @ np.diag([1.0] * g + [cfg.region_noise_std] * er)
    cell_map = q_c @ np.diag([1.0] * d_r + [cfg.cell_noise_std] * ec)
    # a cell's pixels from (z_g, e_r, e_c): B Q_c diag(.) [Q_r diag(.) [z_g; e_r]; e_c]
    per_cell = (
        b
        @ cell_map
        @ np.block([[region_map, np.zeros((d_r, ec))], [np.zeros((ec, g + er)), np.eye(ec)]])
    )  # (P, G + Er + Ec)
    per_cell /= math.sqrt((per_cell**2).sum(1).mean())  # clean pixels of mean variance 1

    s, c = cfg.image_size, cfg.cell_size
    cells = s // c
    cell_region = _cell_regions(cells * cells, (cells // cfg.region_cells) ** 2).numpy()
    num_cells, num_regions = cells * cells, int(cell_region.max()) + 1
    d = s * s
    loads = {
        GLOBAL: np.zeros((d, 1, g)),
        REGION_NOISE: np.zeros((d, num_regions, er)),
        CELL_NOISE: np.zeros((d, num_cells, ec)),
    }
    pix = np.arange(d).reshape(cells, c, cells, c).transpose(0, 2, 1, 3).reshape(num_cells, -1)
    for cell in range(num_cells):
        rows = pix[cell]  # raster pixel indices of the cell, in its own raster order
        loads[GLOBAL][rows, 0] = per_cell[:, :g]
        loads[REGION_NOISE][rows, cell_region[cell]] = per_cell[:, g : g + er]
        loads[CELL_NOISE][rows, cell] = per_cell[:, g + er :]
    noise_var = cfg.pixel_noise**2
    flat = np.concatenate([v.reshape(d, -1) for v in loads.values()], axis=1)
    cov = flat @ flat.T + noise_var * np.eye(d)
    return GaussianWorld(s, cov, noise_var, loads, "hierarchy", region_map, cell_map)


def generate_gaussian(n: int, cfg: GaussianConfig, seed: int) -> ImageSet:
    """``n`` float images of the configured world with every latent (labels: all 0)."""
    if n < 1:
        raise ConfigError(f"number of Gaussian images n={n} must be >= 1")
    images, latents = gaussian_world(cfg).sample(n, seed)
    labels = torch.zeros(n, dtype=torch.long)
    return ImageSet(images, labels, 1, mean=(0.0,), std=(1.0,), latents=latents)


def build_gaussian(data_cfg: DataConfig) -> Splits:
    """Train (``data.seed``; 100 x the pixel count unless set) and test splits of one world."""
    cfg = data_cfg.gaussian
    if data_cfg.image_size is not None and data_cfg.image_size != cfg.image_size:
        raise ConfigError(
            f"data.image_size={data_cfg.image_size} differs from data.gaussian.image_size="
            f"{cfg.image_size}; set data.gaussian.image_size (the covariance is per pixel)"
        )
    n_train = data_cfg.num_train or SAMPLES_PER_PIXEL * cfg.image_size**2
    n_test = data_cfg.num_test or DEFAULT_NUM_TEST
    train = generate_gaussian(n_train, cfg, split_seed(data_cfg.seed, "train"))
    test = generate_gaussian(n_test, cfg, split_seed(data_cfg.seed, "test"))
    return Splits(train=train, test=test)


register_dataset(
    DatasetEntry(
        name="gaussian",
        description="Gaussian worlds with a known covariance (stationary field or linear-Gaussian "
        "hierarchy): exact optima for calibration; generated, no download",
        offline=True,
        build=build_gaussian,
        num_test=DEFAULT_NUM_TEST,
        augment=False,  # the covariance belongs to pixel positions
    )
)
