"""MAE models, presets and checkpoint interop."""

from maelab.models.interop import (
    LoadReport,
    encoder_state_dict,
    load_official_state_dict,
    load_timm_vit_weights,
    to_timm_vit,
)
from maelab.models.mae import MAEArch, MaskedAutoencoder
from maelab.models.presets import PRESETS, make_arch

__all__ = [
    "PRESETS",
    "LoadReport",
    "MAEArch",
    "MaskedAutoencoder",
    "encoder_state_dict",
    "load_official_state_dict",
    "load_timm_vit_weights",
    "make_arch",
    "to_timm_vit",
]
