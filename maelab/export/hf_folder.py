"""A Hugging Face `save_pretrained` folder of a maelab checkpoint.

With a decoder the folder holds a `ViTMAEForPreTraining` (its encoder also loads alone with
`ViTMAEModel.from_pretrained`); an encoder-only checkpoint (official `mae_pretrain_vit_*`, a
fine-tuned run, a depth-0 decoder) gives a `ViTMAEModel`. The sin-cos position tables are
written as tensors: HF builds them as all-zero, frozen parameters from a config, so a folder
without them would load a model that has no positional information.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from maelab.errors import CheckpointError, MaelabError
from maelab.export.folder import Written
from maelab.export.source import ExportSource, Preprocess
from maelab.models.interop import hf_vitmae_config, hf_vitmae_state_dict, to_hf_vitmae

ENCODER_PREFIX = "vit."  # ViTMAEForPreTraining's encoder; ViTMAEModel has no prefix
BICUBIC = 3  # PIL's resampling code, as HF image processors store it
HF_EXTRA = "pip install 'maelab[hf]' (transformers and safetensors)"


def import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise MaelabError(f"--to hf needs the transformers package: {HF_EXTRA}") from None
    return transformers


def encoder_only_reason(source: ExportSource) -> str | None:
    """Why only the encoder goes into the folder, or None when the whole MAE does."""
    if source.classifier is not None:
        return "a fine-tuned run has no decoder and HF ViTMAE no classifier head"
    if source.encoder_only:
        return "the checkpoint holds no decoder"
    if source.model.arch.decoder_depth == 0:
        return "its depth-0 decoder (a token-mixing linear head) has no HF counterpart"
    if source.model.arch.code_dim is not None:
        return "its decoder reads a k-wide code (model.code_dim), which HF ViTMAE has not"
    return None


def write_hf(source: ExportSource, into: Path, out: Path) -> Written:
    """Write `save_pretrained` files and `preprocessor_config.json` into `into` (renamed to
    `out` later); returns how to load it and what was left out."""
    transformers = import_transformers()
    if source.classifier is not None and source.classifier.global_pool == "avg":
        raise CheckpointError(
            f"'{source.path}' was fine-tuned with global_pool=avg: timm's fc_norm replaced the "
            "encoder's final norm, which ViTMAEModel cannot hold; export it with --to timm"
        )
    transformers.utils.logging.disable_progress_bar()
    why = encoder_only_reason(source)
    load = f'AutoImageProcessor.from_pretrained("{out}")'
    if why is None:
        hf = to_hf_vitmae(source.model, mask_ratio=source.mask_ratio).eval()
        written = Written(
            [
                "from transformers import AutoImageProcessor, ViTMAEForPreTraining, ViTMAEModel",
                f'mae = ViTMAEForPreTraining.from_pretrained("{out}")',
                f'encoder = ViTMAEModel.from_pretrained("{out}", mask_ratio=0.0)',
                f"processor = {load}",
            ]
        )
    else:
        hf = hf_encoder(source.model, transformers)
        written = Written(
            [
                "from transformers import AutoImageProcessor, ViTMAEModel",
                f'encoder = ViTMAEModel.from_pretrained("{out}")',
                f"processor = {load}",
            ],
            [f"encoder only: {why}; it loads with ViTMAEModel"],
        )
    hf.save_pretrained(into)
    image_processor(source.preprocess, transformers).save_pretrained(into)
    return written


def hf_encoder(model: torch.nn.Module, transformers: Any) -> Any:
    """A `ViTMAEModel` with the encoder's weights; mask ratio 0 so that it sees every patch."""
    hf = transformers.ViTMAEModel(hf_vitmae_config(model, mask_ratio=0.0))  # type: ignore[arg-type]
    legacy = any(k.startswith("encoder.layer.") for k in hf.state_dict())
    sd = hf_vitmae_state_dict(model, legacy=legacy, encoder_only=True)  # type: ignore[arg-type]
    hf.load_state_dict({k.removeprefix(ENCODER_PREFIX): v for k, v in sd.items()}, strict=True)
    return hf.to(next(model.parameters()).dtype).eval()


def image_processor(pre: Preprocess, transformers: Any) -> Any:
    """A `ViTImageProcessor` that resizes to the model's side and standardises with the run's
    mean and std (grey images stay one channel for a 1-channel model)."""
    return transformers.ViTImageProcessor(
        do_resize=True,
        size={"height": pre.image_size, "width": pre.image_size},
        resample=BICUBIC,
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(pre.mean),
        image_std=list(pre.std),
        do_convert_rgb=pre.channels == 3,
    )
