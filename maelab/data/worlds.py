"""Named synthetic worlds: a registry of full generator configs, so a name means fixed images.

A preset is never rebound. The generator's ``version`` is part of every config, and with it of
every run folder's ``config.yaml`` and every feature-cache key (which hash the data config), so
features or runs of one world are never taken for another's.
"""

from __future__ import annotations

from dataclasses import dataclass

from maelab.config import SyntheticConfig
from maelab.data.synthetic import validate_synthetic


@dataclass(frozen=True)
class WorldPreset:
    """A named world: the full generator config and what it is for."""

    name: str
    description: str
    config: SyntheticConfig


WORLDS: dict[str, WorldPreset] = {}


def register_world(preset: WorldPreset) -> WorldPreset:
    """Add a named world; a taken name raises (runs and caches refer to it)."""
    if preset.name in WORLDS:
        raise ValueError(f"world '{preset.name}' is already registered")
    validate_synthetic(preset.config)
    WORLDS[preset.name] = preset
    return preset


def world_name(cfg: SyntheticConfig) -> str:
    """The registered name of a config, or ``custom-v<version>`` for any other world."""
    for preset in WORLDS.values():
        if preset.config == cfg:
            return preset.name
    return f"custom-v{cfg.version}"


LANDED_16PX = register_world(
    WorldPreset(
        name="landed-16px",
        description="version 1, the first world (the default): 16 px, one patch per 4 px cell, "
        "2x2 regions of 2x2 cells; z_g explains ~30% of the pixel variance",
        config=SyntheticConfig(),
    )
)

STUDY_32PX = register_world(
    WorldPreset(
        name="study-32px",
        description="version 2, the study world: 32 px, 8 px cells of 2x2 patches (patch 4), "
        "2x2 regions of 2x2 cells, tied maps, smooth cells; z_g explains ~77% of the pixel "
        "variance, a ridge on pixels reads it at R2 ~0.44",
        config=SyntheticConfig(
            version=2,
            image_size=32,
            cell_size=8,
            region_cells=2,
            global_dim=4,
            region_noise_dim=2,
            cell_noise_dim=2,
            region_noise_std=0.3,
            cell_noise_std=0.3,
            global_shift=5.0,
            tied=True,
        ),
    )
)

STUDY_32PX_NO_REGIONS = register_world(
    WorldPreset(
        name="study-32px-no-regions",
        description="the study world's generator with every 4 px patch its own cell and its own "
        "region: patches share only z_g, so a near visible patch tells no more about a removed "
        "one than a far one (the control world of Cao Q5's knock-out)",
        config=STUDY_32PX.config.model_copy(update={"cell_size": 4, "region_cells": 1}),
    )
)
