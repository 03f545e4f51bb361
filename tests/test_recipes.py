"""Recipes chosen from the data fill only the fields a config leaves unset."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from maelab.cli import config_path
from maelab.config import Config, deep_merge, load_config
from maelab.recipes import (
    SAMPLE_BUDGET,
    DataFacts,
    choose_recipe,
    describe,
    fill_unset,
    is_set,
    patch_for,
    small_data_epochs,
)

SMALL = DataFacts(num_images=4000, image_size=28, augment=True)
LARGE = DataFacts(num_images=4000, image_size=224, augment=True)


@pytest.mark.parametrize(
    ("size", "patch"),
    [(28, 4), (32, 4), (64, 8), (16, 2), (8, 2), (24, 3), (48, 6), (29, None), (2, None)],
)
def test_patch_gives_at_most_8_patches_a_side(size: int, patch: int | None) -> None:
    assert patch_for(size) == patch


def test_epochs_follow_the_sample_budget() -> None:
    assert small_data_epochs(4000, 128) == 39  # 31 steps of 128 per epoch: 1,209 steps
    assert 39 * 31 * 128 >= SAMPLE_BUDGET > 38 * 31 * 128
    assert small_data_epochs(1437, 128) == 110
    assert small_data_epochs(100, 128) == 1200  # fewer images than a batch: one step per epoch
    assert small_data_epochs(10**6, 128) == 1


def test_unset_config_gets_the_small_data_recipe() -> None:
    cfg = load_config([], ["data.name=folder"])
    out, filled = fill_unset(cfg, choose_recipe(cfg, SMALL))
    assert filled == {
        "train.epochs": 39,
        "train.warmup_epochs": 4.88,
        "train.blr": 2.0e-3,
        "model.preset": "micro",
        "model.depth": 6,
        "model.patch_size": 4,
        "data.crop_scale": (0.6, 1.0),
        "data.hflip": False,
    }
    assert out.train.epochs == 39 and out.model.preset == "micro" and out.data.hflip is False
    assert out.data.name == "folder" and cfg.train.epochs == 10  # the input is not changed
    assert all(is_set(out, k) for k in filled)  # a second pass (a resume) fills nothing
    assert fill_unset(out, choose_recipe(out, SMALL))[1] == {}


def test_set_fields_and_their_groups_are_kept() -> None:
    cfg = load_config([], ["train.epochs=5", "train.lr=0.01", "model.embed_dim=64"])
    out, filled = fill_unset(cfg, choose_recipe(cfg, SMALL))
    assert filled == {
        "train.warmup_epochs": 1.0,  # an eighth of the user's 5 epochs, at least one
        "data.crop_scale": (0.6, 1.0),
        "data.hflip": False,
    }
    assert out.train.lr == 0.01 and out.train.blr == 1.5e-4 and out.model.preset == "tiny"


def test_no_augmentation_fields_when_augmentation_is_off() -> None:
    cfg = load_config([], [])
    facts = DataFacts(num_images=4000, image_size=28, augment=False)
    assert not any(k.startswith("data.") for k in choose_recipe(cfg, facts).values)


def test_large_images_and_recipe_paper_fill_nothing() -> None:
    cfg = load_config([], [])
    recipe = choose_recipe(cfg, LARGE)
    assert recipe.name == "paper" and fill_unset(cfg, recipe) == (cfg, {})
    assert describe(recipe, {}) == "recipe paper: images of 224 px: the MAE paper's ImageNet recipe"
    pinned = load_config([], ["train.recipe=paper"])
    assert choose_recipe(pinned, SMALL).name == "paper"
    forced = load_config([], ["train.recipe=small-data"])
    assert choose_recipe(forced, LARGE).name == "small-data"


def test_describe_names_the_data_and_the_filled_values() -> None:
    cfg = load_config([], [])
    recipe = choose_recipe(cfg, SMALL)
    _, filled = fill_unset(cfg, recipe)
    line = describe(recipe, filled)
    assert line.startswith(
        "recipe small-data: 4,000 images of 28 px (epochs=39, warmup_epochs=4.88"
    )
    assert line.endswith("crop_scale=(0.6, 1.0), hflip=False)")
    assert describe(recipe, {}).endswith("(the config sets all its fields)")


def test_stored_config_is_fully_set() -> None:
    """A config rebuilt from a checkpoint (every field written) gets nothing filled."""
    stored = Config.model_validate(load_config([], []).model_dump(mode="json"))
    assert fill_unset(stored, choose_recipe(stored, SMALL))[1] == {}


def _shipped(name: str) -> Config:
    tree = yaml.safe_load(Path(config_path(name)).read_text())
    if name == "demo":  # the demo reads the study world's config first, then demo.yaml
        base = yaml.safe_load(Path(config_path("study_world")).read_text())
        tree = deep_merge(base, tree)
    for key in ("sweep", "demo"):  # the demo's extra sections are not pretraining config
        tree.pop(key, None)
    return Config.model_validate(tree)


@pytest.mark.parametrize("name", ["quickstart", "demo"])
def test_shipped_configs_are_unchanged(name: str) -> None:
    cfg = _shipped(name)
    facts = DataFacts(num_images=cfg.data.num_train or 0, image_size=16, augment=False)
    recipe = choose_recipe(cfg, facts)
    assert recipe.name == "small-data"  # 16-px synthetic images: small, but the config sets it all
    out, filled = fill_unset(cfg, recipe)
    assert filled == {} and out is cfg


def test_pretrain_applies_and_records_the_recipe(tmp_path: Path, capsys) -> None:
    import numpy as np
    import torch
    from PIL import Image

    from maelab.engine.pretrain import pretrain

    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 2)):
        for c in "ab":
            d = tmp_path / "tree" / split / c
            d.mkdir(parents=True)
            for i, a in enumerate(rng.integers(0, 256, (n, 8, 8), dtype=np.uint8)):
                Image.fromarray(a).save(d / f"{i}.png")
    overrides = [
        "data.name=folder", f"data.root={tmp_path / 'tree'}", f"run_dir={tmp_path / 'run'}",
        "train.epochs=1", "train.batch_size=8", "train.device=cpu", "model.embed_dim=16",
        "model.depth=1", "model.num_heads=2", "model.decoder_embed_dim=16",
    ]  # fmt: skip
    res = pretrain(load_config([], overrides))
    line = capsys.readouterr().out.splitlines()[0]
    assert line == (
        "recipe small-data: 16 images of 8 px (warmup_epochs=1.0, blr=0.002, crop_scale=(0.6, 1.0), "
        "hflip=False)"
    )
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["train"]["blr"] == 2.0e-3 and stored["data"]["hflip"] is False
    assert stored["model"]["preset"] == "tiny"  # the user set an architecture field: kept whole
    assert res.model.arch.in_chans == 1 and res.model.arch.img_size == 8
    assert torch.isfinite(torch.tensor(res.final_loss))
