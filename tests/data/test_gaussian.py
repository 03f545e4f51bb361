"""Gaussian worlds: the stated covariance is the samples' covariance, latents rebuild the images,
and the registry serves float images the pipeline reads as they are."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from maelab.config import DataConfig, GaussianConfig
from maelab.data import build_splits
from maelab.data.gaussian import CELL_NOISE, GLOBAL, REGION_NOISE, gaussian_world
from maelab.data.loader import Batching, epoch_order, eval_batches, train_batches
from maelab.errors import ConfigError

HIERARCHY = GaussianConfig(kind="hierarchy", image_size=16, pixel_noise=0.1)


@pytest.mark.parametrize("cfg", [GaussianConfig(), HIERARCHY])
def test_samples_have_the_stated_covariance(cfg: GaussianConfig) -> None:
    world = gaussian_world(cfg)
    x, _ = world.sample(40_000, seed=0)
    flat = x.reshape(len(x), -1).double().numpy()
    assert np.abs(flat.mean(0)).max() < 0.05
    emp = flat.T @ flat / len(flat)
    rel = np.linalg.norm(emp - world.covariance) / np.linalg.norm(world.covariance)
    assert rel < 0.03
    assert np.allclose(world.covariance, world.covariance.T)
    assert np.linalg.eigvalsh(world.covariance).min() > 0


def test_hierarchy_latents_rebuild_the_images() -> None:
    world = gaussian_world(HIERARCHY)
    x, z = world.sample(500, seed=1)
    clean = sum(
        np.einsum("dkm,nkm->nd", world.loadings[level],
                  (z[level][:, None] if level == GLOBAL else z[level]).double().numpy())
        for level in (GLOBAL, REGION_NOISE, CELL_NOISE)
    )  # fmt: skip
    residual = x.reshape(500, -1).double().numpy() - clean
    assert residual.std() == pytest.approx(0.1, rel=0.05)  # only the pixel noise is left
    assert np.diag(world.covariance - world.noise_var * np.eye(256)).mean() == pytest.approx(1.0)
    # z_r = Q_r [z_g ; s_r e_r] and z_c = Q_c [z_r ; s_c e_c]: the maps are returned
    g, er = z[GLOBAL].double(), z[REGION_NOISE].double()
    z_r = torch.cat([g[:, None].expand(-1, 4, -1), er], -1) @ torch.from_numpy(world.region_map).T
    assert torch.allclose(z_r, z["region"].double(), atol=1e-5)
    assert z["cell"].shape == (500, 16, 8)


def test_each_latent_loads_only_on_its_own_pixels() -> None:
    world = gaussian_world(HIERARCHY)
    er = world.loadings[REGION_NOISE]  # (256, 4 regions, 2)
    rows = np.arange(256) // 16
    cols = np.arange(256) % 16
    region = (rows // 8) * 2 + cols // 8
    for r in range(4):
        assert np.abs(er[region != r, r]).max() == 0 and np.abs(er[region == r, r]).max() > 0
    ec = world.loadings[CELL_NOISE]
    assert ((np.abs(ec).sum(-1) > 0).sum(0) == 16).all()  # every cell latent: its 16 pixels


def test_orthogonal_loadings_are_orthogonal_within_a_cell() -> None:
    world = gaussian_world(HIERARCHY.model_copy(update={"orthogonal": True}))
    cell0 = np.flatnonzero(np.abs(world.loadings[CELL_NOISE][:, 0]).sum(-1) > 0)
    g = world.loadings[GLOBAL][cell0, 0]
    r = world.loadings[REGION_NOISE][cell0, 0]
    c = world.loadings[CELL_NOISE][cell0, 0]
    assert np.abs(g.T @ r).max() < 1e-12 and np.abs(g.T @ c).max() < 1e-12


def test_registry_serves_float_images_read_as_they_are() -> None:
    splits = build_splits(DataConfig(name="gaussian", num_test=32))
    train = splits.train
    assert len(train) == 100 * 16 * 16  # 100 x the pixel count by default
    assert train.images.dtype == torch.float32 and train.channels == 1
    assert (train.mean, train.std) == ((0.0,), (1.0,))
    b = Batching(batch_size=8, augment=False)
    x, _ = next(train_batches(train, b, 0, 16, torch.device("cpu")))
    assert x.dtype == torch.float32 and x.abs().max() > 1.0  # not divided by 255
    assert torch.equal(x, train.images[epoch_order(len(train), b, 0)[0]])
    y, _ = next(eval_batches(splits.test, 32, 16, torch.device("cpu")))
    assert torch.equal(y, splits.test.images)


def test_train_and_test_draw_different_images() -> None:
    splits = build_splits(DataConfig(name="gaussian", num_train=64, num_test=64))
    assert not torch.equal(splits.train.images, splits.test.images)
    again = build_splits(DataConfig(name="gaussian", num_train=64, num_test=64))
    assert torch.equal(splits.train.images, again.train.images)


@pytest.mark.parametrize(
    "update,match",
    [({"image_size": 12}, "multiple of"), ({"global_dim": 6, "cell_noise_dim": 3}, "smooth")],
)
def test_bad_hierarchies_are_refused(update: dict, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        gaussian_world(HIERARCHY.model_copy(update=update))


def test_data_image_size_must_match() -> None:
    with pytest.raises(ConfigError, match="data.gaussian.image_size"):
        build_splits(DataConfig(name="gaussian", image_size=32, num_train=8, num_test=8))
