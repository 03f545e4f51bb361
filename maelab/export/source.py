"""What `maelab export` reads from a checkpoint: the weights, the input the model expects and
the run it came from.

Three kinds of checkpoint are read: a maelab pretraining run, a maelab fine-tuning run (a timm
ViT classifier, `RUN/finetune/checkpoints/last.pt`) and official MAE weights
(`mae_pretrain_vit_*.pth`, encoder only; `mae_visualize_vit_*.pth`, with a decoder). Only the
plain ViT MAE leaves maelab: a model the other libraries would run as a different function under
the same names (ablated encoder blocks) is refused.

A run's mean and std are those of its training images, read again from its data (the checkpoint
stores the data's config, not its statistics); official weights take ImageNet's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from maelab.config import MASK_RATIO, Config, DataConfig, build_config, override_data
from maelab.data import build_splits
from maelab.data.folder import IMAGENET_MEAN, IMAGENET_STD
from maelab.errors import CheckpointError, ConfigError, DataError
from maelab.evaluation.finetune import ENCODER_ARCH
from maelab.models.checkpoints import (
    arch_from_state,
    load_checkpoint,
    load_pretrained,
    official_arch,
)
from maelab.models.interop import ENCODER_PREFIXES
from maelab.models.mae import MAEArch, MaskedAutoencoder

SourceKind = Literal["pretrain", "finetune", "official"]
FINETUNE_KIND = "finetune"  # the `kind` a fine-tuning checkpoint stores
CLASSIFIER_PREFIXES = ("head.", "fc_norm.")  # the layers fine-tuning adds to a timm ViT


@dataclass(frozen=True)
class Preprocess:
    """The input the model expects: side in px, channels, and per-channel mean / std in [0, 1]."""

    image_size: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    origin: str  # where mean / std come from, for the model card
    num_images: int | None = None  # training images the statistics were read from


@dataclass(frozen=True)
class Classifier:
    """A fine-tuned run's timm classifier layers (`head.*`, `fc_norm.*`) and its pooling."""

    tensors: dict[str, torch.Tensor]
    num_classes: int
    global_pool: str  # "avg" (mean patch token + fc_norm, no final norm) or "token"


@dataclass(frozen=True)
class ExportSource:
    """A checkpoint ready to be written for another library."""

    path: Path
    kind: SourceKind
    model: MaskedAutoencoder  # encoder weights always; decoder weights when `has_decoder`
    has_decoder: bool
    preprocess: Preprocess
    mask_ratio: float  # the ratio the model was trained with (HF stores it in its config)
    config: Config | None = None  # a maelab run's config (None for official weights)
    data: DataConfig | None = None  # the data the statistics were read from
    state: dict[str, Any] | None = None  # the checkpoint's other entries (steps, epoch, ...)
    classifier: Classifier | None = None  # fine-tuned runs only

    @property
    def encoder_only(self) -> bool:
        return not self.has_decoder


def read_source(path: str | Path, data_overrides: list[str] | None = None) -> ExportSource:
    """Read any checkpoint maelab reads (see the module docstring) for export.

    `data_overrides` (`data.key=value`) point at the run's data when it has moved. Every
    failure is one MaelabError line.
    """
    path = Path(path)
    state = load_checkpoint(path)
    if state.get("kind") == FINETUNE_KIND:
        return _finetune_source(path, state, data_overrides or [])
    maelab_run = all(k in state for k in ("model", "arch", "config"))
    official = None if maelab_run else official_arch(state, path)
    model, cfg = load_pretrained(path, linear_ok=True)  # refused below, naming the model
    check_plain(model.arch, path, model)
    if official is not None:
        return ExportSource(
            path, "official", model, official.has_decoder,
            official_preprocess(model.arch, path), mask_ratio=MASK_RATIO,
        )  # fmt: skip
    data = override_data(cfg.data, data_overrides or [])
    info = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scaler", "rng")}
    return ExportSource(
        path, "pretrain", model, True, run_preprocess(model.arch, data, path),
        mask_ratio=cfg.mask.ratio, config=cfg, data=data, state=info,
    )  # fmt: skip


def check_plain(arch: MAEArch, path: Path, model: torch.nn.Module | None = None) -> None:
    """Refuse a model that is not the plain ViT MAE (one line naming the variant)."""
    if model is not None and type(model) is not MaskedAutoencoder:
        raise CheckpointError(
            f"checkpoint '{path}' holds a {type(model).__name__}, not the plain ViT MAE; "
            "Hugging Face and timm have no such model, so it cannot be exported"
        )
    if arch.ablation != "none":
        raise CheckpointError(
            f"checkpoint '{path}' holds encoder blocks without {arch.ablation.removeprefix('no_')} "
            f"(model.ablation={arch.ablation}), which Hugging Face and timm do not have; "
            "only the plain ViT MAE can be exported"
        )


def official_preprocess(arch: MAEArch, path: Path) -> Preprocess:
    """ImageNet statistics, as the released weights were trained."""
    if arch.in_chans != 3:
        raise CheckpointError(
            f"official-layout checkpoint '{path}' takes {arch.in_chans} channel(s) and stores no "
            "statistics (ImageNet's are for 3 channels); load it into a maelab run to export it"
        )
    origin = "ImageNet statistics (official MAE weights)"
    return Preprocess(arch.img_size, 3, IMAGENET_MEAN, IMAGENET_STD, origin)


def run_preprocess(arch: MAEArch, data: DataConfig, path: Path) -> Preprocess:
    """The mean and std of the run's training images, read again from its data."""
    try:
        train = build_splits(data).train
    except DataError as exc:
        raise DataError(
            f"export reads the mean and std of {path}'s training images, but its data cannot be "
            f"read ({exc}); point at it with data.root=DIR or other data.* overrides"
        ) from None
    if train.channels != arch.in_chans:
        raise ConfigError(
            f"data.name={data.name} has {train.channels} channel(s) but the model takes "
            f"{arch.in_chans}; give the run's own data (data.* overrides)"
        )
    origin = f"the {len(train):,} training images of data.name={data.name}"
    mean, std = tuple(train.mean), tuple(train.std)
    return Preprocess(arch.img_size, train.channels, mean, std, origin, len(train))


def _finetune_source(path: Path, state: dict[str, Any], data_overrides: list[str]) -> ExportSource:
    """A fine-tuning checkpoint: its timm ViT state dict split into encoder and classifier."""
    try:
        sd: dict[str, torch.Tensor] = dict(state["model"])
        num_classes, pool = int(state["num_classes"]), str(state["global_pool"])
        data = build_config(dict(state["config"]).get("data", {}), DataConfig)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"fine-tuning checkpoint '{path}' lacks {exc}") from None
    arch = _finetune_arch(path, state)
    check_plain(arch, path)
    model = MaskedAutoencoder(arch).eval()
    encoder = {k: v for k, v in sd.items() if k.startswith(ENCODER_PREFIXES)}
    result = model.load_state_dict(encoder, strict=False)
    # avg pooling drops the encoder's final norm (timm's fc_norm replaces it)
    allowed = ("decoder_", "mask_token", *(("norm.",) if pool == "avg" else ()))
    bad = [k for k in result.missing_keys if not k.startswith(allowed)]
    if bad:
        raise CheckpointError(f"fine-tuning checkpoint '{path}' lacks encoder tensors {bad[:3]}")
    classifier = Classifier(
        {k: v for k, v in sd.items() if k.startswith(CLASSIFIER_PREFIXES)}, num_classes, pool
    )
    data = override_data(data, data_overrides)
    info = {k: v for k, v in state.items() if k not in ("model", "optimizer", "scaler")}
    return ExportSource(
        path, "finetune", model, False, run_preprocess(arch, data, path), mask_ratio=0.0,
        data=data, state=info, classifier=classifier,
    )  # fmt: skip


def _finetune_arch(path: Path, state: dict[str, Any]) -> MAEArch:
    """The encoder's MAEArch: stored with the fine-tuning run, else read from the pretraining
    checkpoint it started from (heads cannot be read from the weights)."""
    if isinstance(state.get(ENCODER_ARCH), dict):
        return arch_from_state({"arch": state[ENCODER_ARCH]}, path)
    pretrained = Path(str(state.get("pretrained", "")))
    if pretrained.is_file():
        stored = load_checkpoint(pretrained)
        if isinstance(stored.get("arch"), dict):
            return arch_from_state(stored, pretrained)
    raise CheckpointError(
        f"fine-tuning checkpoint '{path}' stores no architecture and its pretraining checkpoint "
        f"'{pretrained}' is gone; fine-tune again with this maelab (it stores the architecture)"
    )
