"""The model a config asks for, and the checks that need the model to be made."""

from __future__ import annotations

from maelab.config import Config, MaskConfig, ObjectiveConfig
from maelab.data.base import Splits
from maelab.errors import CheckpointError, ConfigError
from maelab.masking import MASK_STRATEGIES
from maelab.models.checkpoints import read_state_dict
from maelab.models.interop import load_official_state_dict
from maelab.models.linear import LinearArch, LinearMAE
from maelab.models.mae import MAEArch, MaskedAutoencoder
from maelab.models.presets import arch_from_config, linear_arch_from_config
from maelab.objectives import OBJECTIVES


def build_model_for(cfg: Config, splits: Splits) -> MaskedAutoencoder | LinearMAE:
    """The MAE for a config, sized to the data (image size, channels) unless set explicitly.

    Its weights come from generators seeded by `train.seed` per part, so runs that differ only in
    the decoder (or the objective) start from the same encoder: paired over seeds.
    """
    img_size = cfg.data.image_size or splits.train.image_size
    try:
        arch: MAEArch | LinearArch
        if cfg.model.kind == "linear":
            arch = linear_arch_from_config(cfg.model, cfg.loss.on, img_size, splits.train.channels)
        else:
            arch = arch_from_config(cfg.model, img_size, splits.train.channels, cfg.loss.on)
        arch.validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad model config: {exc}") from None
    if arch.in_chans != splits.train.channels:
        raise ConfigError(
            f"model.in_chans={arch.in_chans} but data '{cfg.data.name}' has "
            f"{splits.train.channels} channels; leave model.in_chans unset"
        )
    if isinstance(arch, LinearArch):
        return LinearMAE(arch, init_seed=cfg.train.seed)
    return MaskedAutoencoder(arch, init_seed=cfg.train.seed)


def load_init(model: MaskedAutoencoder, path: str) -> str:
    """Load `model.init` weights (an official MAE file or a maelab checkpoint) into `model`;
    one line saying what matched. Any tensor of another shape is an architecture mismatch."""
    try:
        sd = read_state_dict(path)
    except CheckpointError as exc:
        raise ConfigError(f"model.init={path}: {exc}") from None
    own = model.state_dict()
    differ = [k for k in sd if k in own and sd[k].shape != own[k].shape]
    if differ:
        k = differ[0]
        raise ConfigError(
            f"model.init={path} was made for another architecture: {k} is "
            f"{tuple(sd[k].shape)} there, {tuple(own[k].shape)} here ({len(differ)} tensors "
            "differ); set the model fields to match it"
        )
    try:
        report = load_official_state_dict(model, sd)
    except CheckpointError as exc:
        raise ConfigError(f"model.init={path}: {exc}") from None
    why = " (decoder: encoder-only file, decoder starts fresh)" if report.encoder_only else ""
    return (
        f"init from {path}: matched {len(report.matched)}, missing {len(report.missing)}{why}, "
        f"unexpected {len(report.unexpected)}"
    )


def check_mask_config(mask: MaskConfig, model: MaskedAutoencoder) -> None:
    """The mask unit fits the model's patches and image; the strategy is registered."""
    unit = mask.unit
    if unit is not None:
        p, size = model.patch_size, model.arch.img_size
        if unit % p:
            raise ConfigError(
                f"mask.unit={unit} is not a multiple of the patch size {p}; use a multiple of {p}"
            )
        if size % unit:
            raise ConfigError(
                f"mask.unit={unit} does not divide the image size {size}; pick a divisor"
            )
    if mask.strategy not in MASK_STRATEGIES:
        raise ConfigError(
            f"unknown mask.strategy '{mask.strategy}' (valid: {', '.join(MASK_STRATEGIES)})"
        )


def check_objective(objective: ObjectiveConfig) -> None:
    """The objective is registered."""
    if objective.name not in OBJECTIVES:
        raise ConfigError(
            f"unknown objective.name '{objective.name}' (valid: {', '.join(OBJECTIVES)})"
        )
