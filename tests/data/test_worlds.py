"""The registry of named worlds and the oracle variance shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from maelab.config import SyntheticConfig, load_config
from maelab.data.worlds import WORLDS, WorldPreset, register_world, world_name
from maelab.errors import ConfigError
from maelab.theory.explained_variance import level_shares

CONFIGS = Path(__file__).resolve().parents[2] / "maelab" / "configs"


def test_the_landed_world_is_the_default_and_named() -> None:
    assert WORLDS["landed-16px"].config == SyntheticConfig()
    assert world_name(SyntheticConfig()) == "landed-16px"
    assert WORLDS["study-32px"].config.version == 2
    assert world_name(SyntheticConfig(world_seed=3)) == "custom-v1"


def test_the_study_config_file_uses_the_study_world() -> None:
    cfg = load_config([str(CONFIGS / "study_world.yaml")])
    assert world_name(cfg.data.synthetic) == "study-32px"
    assert cfg.model.img_size == cfg.data.synthetic.image_size


def test_a_name_is_never_rebound_and_presets_are_validated() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_world(WorldPreset("landed-16px", "again", SyntheticConfig(world_seed=1)))
    with pytest.raises(ConfigError, match="version=2"):
        register_world(WorldPreset("bad", "v2 field on v1", SyntheticConfig(tied=True)))
    assert "bad" not in WORLDS


SMALL = SyntheticConfig(
    version=2, image_size=16, cell_size=8, region_cells=1, global_dim=2,
    region_noise_dim=1, cell_noise_dim=1, num_classes=2,
)  # fmt: skip


def test_level_shares_are_ordered_and_follow_the_noise_scales() -> None:
    loud = level_shares(SMALL, outer=48, inner=16)
    assert 0 < loud["global"] < loud["region"] < loud["cell"] <= 1
    # only the pixel noise is left given the cells: Var = pixel_noise^2 per pixel
    quiet = SMALL.model_copy(update={"region_noise_std": 0.05, "cell_noise_std": 0.05})
    q = level_shares(quiet, outer=48, inner=16)
    assert q["global"] > loud["global"] + 0.2 and q["region"] - q["global"] < 0.05
    # lower noise: the global latent explains almost all that the cells explain
    assert q["cell"] - q["global"] < 0.1


def test_level_shares_of_a_noiseless_image_given_its_cells_is_one() -> None:
    out = level_shares(SMALL.model_copy(update={"pixel_noise": 0.0}), outer=8, inner=4)
    assert out["cell"] == pytest.approx(1.0, abs=1e-9)


def test_level_shares_rejects_too_few_draws() -> None:
    with pytest.raises(ValueError, match="outer"):
        level_shares(SMALL, outer=1, inner=4)
