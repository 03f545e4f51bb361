"""Training recipes chosen from the data: the paper's for large images, a small-data one for small.

A recipe is a set of config values plus the reason it was chosen. It fills only the fields the
user left unset (pydantic's `model_fields_set`: a YAML file, an override or a stored config sets
a field; a default does not), so shipped configs and resumed runs keep what they say. Related
fields go together: a user who set `model.preset` or any architecture field keeps the whole
architecture, one who set `train.blr` or `train.lr` keeps the learning rate.

The small-data recipe (images of at most `SMALL_SIDE` px) and why (measured: docs/small_data.md):
the paper's ImageNet recipe (blr 1.5e-4, 1 warmup epoch, random-resized crop at scale 0.2 and
flips) learns nothing a random encoder lacks in a few hundred CPU steps on 28-px digits; a
128-wide x 6-deep encoder at lr 1e-3, an eighth of the run as warmup, ~`SAMPLE_BUDGET` images
seen and no augmentation does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel

from maelab.config import Config, build_config, set_dotted
from maelab.data import augment_enabled
from maelab.data.base import Splits

RecipeName = Literal["auto", "small-data", "paper"]

SMALL_SIDE = 64  # px; images up to this side get the small-data recipe
MAX_GRID = 8  # patches per side: at most 64 tokens, what a CPU trains in minutes
SAMPLE_BUDGET = 153_600  # images seen (1,200 steps of 128): about 8 min on 2 CPU cores at 28 px
WARMUP_FRACTION = 1 / 8  # of the epochs
SMALL_BLR = 2.0e-3  # lr 1e-3 at batch 128 (lr = blr * batch / 256)
SMALL_ARCH: dict[str, Any] = {"preset": "micro", "depth": 6}  # 128 wide x 6 deep, 64 x 2 decoder
ARCH_FIELDS = (
    "preset", "img_size", "patch_size", "embed_dim", "depth", "num_heads", "decoder_embed_dim",
    "decoder_depth", "decoder_num_heads", "mlp_ratio",
)  # fmt: skip


@dataclass(frozen=True)
class DataFacts:
    """What a recipe looks at: the training split as the model will see it."""

    num_images: int
    image_size: int  # px side the model sees
    augment: bool  # augmentation on for this run (configured or the dataset's default)

    @classmethod
    def of(cls, cfg: Config, splits: Splits) -> DataFacts:
        size = cfg.data.image_size or splits.train.image_size
        return cls(len(splits.train), size, augment_enabled(cfg.data))


@dataclass(frozen=True)
class Recipe:
    """A named set of values (dotted key -> value) that fills unset config fields."""

    name: str
    reason: str
    values: dict[str, Any] = field(default_factory=dict)
    groups: tuple[tuple[str, ...], ...] = ()  # keys filled all or none (one set: none)


def patch_for(size: int, max_grid: int = MAX_GRID) -> int | None:
    """Smallest patch side >= 2 dividing `size` with at most `max_grid` patches per side
    (28 -> 4: a 7x7 grid; 32 -> 4; 64 -> 8; 16 -> 2); None when no such divisor exists."""
    for p in range(2, size + 1):
        if size % p == 0 and size // p <= max_grid:
            return p if size // p >= 2 else None
    return None


def small_data_epochs(num_images: int, global_batch: int, budget: int = SAMPLE_BUDGET) -> int:
    """Epochs that show about `budget` images (whole batches per epoch, remainder dropped)."""
    per_epoch = max(1, num_images // global_batch) * global_batch
    return max(1, math.ceil(budget / per_epoch))


def choose_recipe(cfg: Config, facts: DataFacts) -> Recipe:
    """The recipe `train.recipe` names, or for `auto` the one that fits the images."""
    name = cfg.train.recipe
    if name == "auto":
        name = "small-data" if facts.image_size <= SMALL_SIDE else "paper"
    if name == "paper":
        return Recipe("paper", f"images of {facts.image_size} px: the MAE paper's ImageNet recipe")
    t = cfg.train
    epochs = (
        t.epochs
        if is_set(cfg, "train.epochs")
        else small_data_epochs(facts.num_images, t.batch_size * t.accum_iter)
    )
    values: dict[str, Any] = {
        "train.epochs": epochs,
        "train.warmup_epochs": round(max(1.0, WARMUP_FRACTION * epochs), 2),
        "train.blr": SMALL_BLR,
    }
    arch = tuple(f"model.{k}" for k in ARCH_FIELDS)
    values.update({f"model.{k}": v for k, v in SMALL_ARCH.items()})
    patch = patch_for(facts.image_size)
    if patch is not None:
        values["model.patch_size"] = patch
    if facts.augment:  # small images: a 0.2-area crop or a mirror can change what they show
        values["data.crop_scale"] = (0.6, 1.0)
        values["data.hflip"] = False
    reason = f"{facts.num_images:,} images of {facts.image_size} px"
    return Recipe("small-data", reason, values, (arch, ("train.blr", "train.lr")))


def is_set(cfg: BaseModel, dotted: str) -> bool:
    """Whether a config field was given (by a file, an override or a stored config)."""
    node: Any = cfg
    for part in dotted.split("."):
        if part not in node.model_fields_set:
            return False
        node = getattr(node, part)
    return True


def fill_unset(cfg: Config, recipe: Recipe) -> tuple[Config, dict[str, Any]]:
    """A new Config with the recipe's values where the user left fields unset, and those values.

    A group whose keys include one that is set is left out whole.
    """
    skip = {k for g in recipe.groups if any(is_set(cfg, k) for k in g) for k in g}
    filled = {k: v for k, v in recipe.values.items() if k not in skip and not is_set(cfg, k)}
    if not filled:
        return cfg, {}
    tree = cfg.model_dump(exclude_unset=True)  # what the user set: stays set in the new config
    for key, value in filled.items():
        set_dotted(tree, key, value)
    return build_config(tree, Config), filled


def describe(recipe: Recipe, filled: dict[str, Any]) -> str:
    """One line for the start of a run: the recipe, why, and what it filled."""
    if recipe.name == "paper":
        return f"recipe paper: {recipe.reason}"
    if not filled:
        return f"recipe {recipe.name}: {recipe.reason} (the config sets all its fields)"
    shown = ", ".join(f"{k.split('.', 1)[1]}={_show(v)}" for k, v in filled.items())
    return f"recipe {recipe.name}: {recipe.reason} ({shown})"


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return str(value)


def apply_recipe(cfg: Config, splits: Splits) -> tuple[Config, str]:
    """Choose the recipe for this data, fill the unset fields, and say so in one line."""
    recipe = choose_recipe(cfg, DataFacts.of(cfg, splits))
    cfg, filled = fill_unset(cfg, recipe)
    return cfg, describe(recipe, filled)
