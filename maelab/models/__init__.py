"""MAE models, presets and checkpoint interop."""

from maelab.models.mae import MAEArch, MaskedAutoencoder
from maelab.models.presets import PRESETS, make_arch

__all__ = ["MAEArch", "MaskedAutoencoder", "PRESETS", "make_arch"]
