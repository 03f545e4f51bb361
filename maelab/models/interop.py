"""Weights in and out of maelab: official MAE checkpoints, timm ViTs, Hugging Face ViTMAE.

maelab's parameter names are the official `models_mae.py` names, so official checkpoints load
by name. The encoder part is also a timm `VisionTransformer` state dict. Hugging Face names
differ (split q/k/v, other module names) and are mapped here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from maelab.errors import CheckpointError
from maelab.models.checkpoints import CheckpointSource, StateDict, read_state_dict
from maelab.models.mae import MaskedAutoencoder

if TYPE_CHECKING:
    from timm.models.vision_transformer import VisionTransformer
    from transformers import ViTMAEConfig, ViTMAEForPreTraining

ENCODER_PREFIXES = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.")


# ---------------------------------------------------------------------------- load report
@dataclass(frozen=True)
class LoadReport:
    """What a partial load did, key by key (names in maelab's layout)."""

    matched: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unexpected: list[str] = field(default_factory=list)  # in the checkpoint, not in the model
    # (key, checkpoint shape, model shape)
    shape_mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(
        default_factory=list
    )

    @property
    def ok(self) -> bool:
        """True when every model tensor was loaded and nothing was left over."""
        return not (self.missing or self.unexpected or self.shape_mismatched)

    @property
    def encoder_only(self) -> bool:
        """True when only decoder tensors are missing (an encoder-only checkpoint)."""
        return bool(self.missing) and all(not k.startswith(ENCODER_PREFIXES) for k in self.missing)

    def summary(self) -> str:
        """One line: counts, then the first few names of each problem."""
        total = len(self.matched) + len(self.missing) + len(self.shape_mismatched)
        parts = [f"loaded {len(self.matched)}/{total} tensors"]
        if self.missing:
            why = " (decoder; encoder-only checkpoint)" if self.encoder_only else ""
            parts.append(f"missing {len(self.missing)}{why}: {_first(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected {len(self.unexpected)}: {_first(self.unexpected)}")
        if self.shape_mismatched:
            shown = ", ".join(
                f"{k} checkpoint {tuple(a)} vs model {tuple(b)}"
                for k, a, b in self.shape_mismatched[:3]
            )
            more = ", ..." if len(self.shape_mismatched) > 3 else ""
            parts.append(
                f"shape mismatch {len(self.shape_mismatched)} (checkpoint made for another "
                f"model size or image size?): {shown}{more}"
            )
        return "; ".join(parts)

    def __str__(self) -> str:
        return self.summary()


def _first(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")


def _compare(
    model_sd: StateDict, sd: StateDict, scope: list[str]
) -> tuple[LoadReport, dict[str, torch.Tensor]]:
    """Match `sd` against the model keys in `scope`; returns the report and the loadable part."""
    scope_set = set(scope)
    matched, mismatched, loadable = [], [], {}
    for k in scope:
        if k in sd:
            if tuple(sd[k].shape) == tuple(model_sd[k].shape):
                matched.append(k)
                loadable[k] = sd[k]
            else:
                mismatched.append((k, tuple(sd[k].shape), tuple(model_sd[k].shape)))
    missing = [k for k in scope if k not in sd]
    unexpected = [k for k in sd if k not in scope_set]
    return LoadReport(matched, missing, unexpected, mismatched), loadable


def _load(
    module: nn.Module, sd: StateDict, scope: list[str], strict: bool, source_hint: str
) -> LoadReport:
    report, loadable = _compare(module.state_dict(), sd, scope)
    if not report.matched and not report.shape_mismatched:
        raise CheckpointError(
            f"no tensor name of {source_hint} matches this model (its keys start "
            f"{_first(sorted(sd))}); expected names such as 'blocks.0.attn.qkv.weight'"
        )
    if not report.matched:
        raise CheckpointError(f"nothing loaded from {source_hint}: {report.summary()}")
    if strict and not report.ok:
        raise CheckpointError(f"checkpoint does not match the model: {report.summary()}")
    module.load_state_dict(loadable, strict=False)
    return report


def _hint(source: CheckpointSource | nn.Module) -> str:
    return str(source) if isinstance(source, (str, Path)) else "the checkpoint"


# ---------------------------------------------------------------------------- official MAE
def load_official_state_dict(
    model: MaskedAutoencoder, source: CheckpointSource, strict: bool = False
) -> LoadReport:
    """Load an official MAE checkpoint (`{"model": sd}` or a bare state dict, file or mapping).

    Encoder-only files such as `mae_pretrain_vit_base.pth` leave the decoder as it is and
    report its keys as missing. Tensors whose shape differs are skipped and reported; with
    `strict=True` any difference raises CheckpointError before anything is loaded.
    """
    sd = read_state_dict(source)
    return _load(model, sd, list(model.state_dict()), strict, _hint(source))


# ---------------------------------------------------------------------------- timm
def encoder_state_dict(model: MaskedAutoencoder) -> dict[str, torch.Tensor]:
    """Encoder weights under timm `VisionTransformer` names (no decoder, no mask token)."""
    return {k: v for k, v in model.state_dict().items() if k.startswith(ENCODER_PREFIXES)}


def to_timm_vit(
    model: MaskedAutoencoder, num_classes: int = 0, global_pool: str = "token", **kwargs: Any
) -> VisionTransformer:
    """A timm VisionTransformer with the encoder's weights (the head, if any, stays fresh).

    The sin-cos table is copied into timm's learnable `pos_embed`. `fc_norm` defaults to False
    so that the encoder's final `norm` is kept for every pooling; the official fine-tuning recipe
    (`global_pool="avg", fc_norm=True`) drops that norm and trains a new `fc_norm` instead.
    """
    from timm.models.vision_transformer import VisionTransformer

    _require_plain_blocks(model, "timm's VisionTransformer")
    a = model.arch
    kwargs.setdefault("fc_norm", False)
    vit = VisionTransformer(
        img_size=a.img_size,
        patch_size=a.patch_size,
        in_chans=a.in_chans,
        num_classes=num_classes,
        global_pool=global_pool,
        embed_dim=a.embed_dim,
        depth=a.depth,
        num_heads=a.num_heads,
        mlp_ratio=a.mlp_ratio,
        qkv_bias=True,
        class_token=True,
        norm_layer=partial(nn.LayerNorm, eps=1e-6),
        **kwargs,
    )
    report, loadable = _compare(vit.state_dict(), encoder_state_dict(model), list(vit.state_dict()))
    fresh = ("head.", "fc_norm.")  # new layers of a classifier
    dropped_norm = isinstance(vit.norm, nn.Identity)
    bad = [k for k in report.missing if not k.startswith(fresh)]
    bad += [k for k in report.unexpected if not (k.startswith("norm.") and dropped_norm)]
    bad += [k for k, _, _ in report.shape_mismatched]
    if bad:
        raise ValueError(
            f"timm ViT built with {sorted(kwargs)} does not take the encoder weights "
            f"({_first(bad)}); drop the options that add or remove parameters"
        )
    vit.load_state_dict(loadable, strict=False)
    return vit.to(next(model.parameters()).dtype)


def load_timm_vit_weights(
    model: MaskedAutoencoder, source: CheckpointSource | nn.Module, strict: bool = False
) -> LoadReport:
    """Load timm ViT weights (a module, state dict or file) into the encoder.

    Classifier tensors (`head.*`, `fc_norm.*`) come back as unexpected; the decoder is untouched
    and not counted as missing.
    """
    sd = source.state_dict() if isinstance(source, nn.Module) else read_state_dict(source)
    scope = [k for k in model.state_dict() if k.startswith(ENCODER_PREFIXES)]
    return _load(model, sd, scope, strict, _hint(source))


# ---------------------------------------------------------------------------- Hugging Face
# maelab block name -> (transformers >= 5 name, transformers 4.x name)
_HF_BLOCK = {
    "norm1": ("layernorm_before", "layernorm_before"),
    "norm2": ("layernorm_after", "layernorm_after"),
    "attn.proj": ("attention.o_proj", "attention.output.dense"),
    "mlp.fc1": ("mlp.fc1", "intermediate.dense"),
    "mlp.fc2": ("mlp.fc2", "output.dense"),
}
_HF_QKV = (
    ("attention.q_proj", "attention.k_proj", "attention.v_proj"),
    ("attention.attention.query", "attention.attention.key", "attention.attention.value"),
)
_HF_STACK = {
    "blocks": ("vit.layers", "vit.encoder.layer"),
    "decoder_blocks": ("decoder.decoder_layers",) * 2,
}
_HF_TOP = {
    "cls_token": "vit.embeddings.cls_token",
    "pos_embed": "vit.embeddings.position_embeddings",
    "patch_embed.proj": "vit.embeddings.patch_embeddings.projection",
    "norm": "vit.layernorm",
    "decoder_embed": "decoder.decoder_embed",
    "mask_token": "decoder.mask_token",
    "decoder_pos_embed": "decoder.decoder_pos_embed",
    "decoder_norm": "decoder.decoder_norm",
    "decoder_pred": "decoder.decoder_pred",
}
_BLOCK_KEY = re.compile(r"(blocks|decoder_blocks)\.(\d+)\.(.+)\.(weight|bias)$")


def _hf_names(key: str, legacy: bool) -> list[str]:
    """HF names of one maelab tensor: three for a fused qkv (q, k, v row blocks), else one."""
    m = _BLOCK_KEY.match(key)
    if m:
        stack, i, name, kind = m.groups()
        prefix = f"{_HF_STACK[stack][legacy]}.{i}"
        if name == "attn.qkv":
            return [f"{prefix}.{n}.{kind}" for n in _HF_QKV[legacy]]
        if name in _HF_BLOCK:
            return [f"{prefix}.{_HF_BLOCK[name][legacy]}.{kind}"]
    elif key in _HF_TOP:
        return [_HF_TOP[key]]
    else:
        module, _, kind = key.rpartition(".")
        if module in _HF_TOP:
            return [f"{_HF_TOP[module]}.{kind}"]
    raise KeyError(f"no Hugging Face ViTMAE name for maelab tensor '{key}'")


def hf_vitmae_state_dict(
    model: MaskedAutoencoder, legacy: bool = False, encoder_only: bool = False
) -> dict[str, torch.Tensor]:
    """The weights under `ViTMAEForPreTraining` names (`legacy`: transformers 4.x names;
    `encoder_only`: the `vit.*` tensors alone)."""
    out: dict[str, torch.Tensor] = {}
    weights = encoder_state_dict(model) if encoder_only else model.state_dict()
    for key, t in weights.items():
        names = _hf_names(key, legacy)
        parts = t.chunk(3, dim=0) if len(names) == 3 else (t,)
        out.update((n, p.clone()) for n, p in zip(names, parts, strict=True))
    return out


def load_hf_vitmae_weights(
    model: MaskedAutoencoder, source: StateDict | nn.Module, strict: bool = False
) -> LoadReport:
    """Load `ViTMAEForPreTraining` weights (module or state dict, either naming) into maelab."""
    hf = dict(source.state_dict() if isinstance(source, nn.Module) else source)
    keys = list(model.state_dict())
    # pick the naming that covers more of the given keys
    maps = [{k: _hf_names(k, legacy) for k in keys} for legacy in (False, True)]
    names = max(maps, key=lambda m: sum(n in hf for ns in m.values() for n in ns))
    sd: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for k, ns in names.items():
        if all(n in hf for n in ns):
            sd[k] = torch.cat([hf[n] for n in ns], dim=0) if len(ns) == 3 else hf[ns[0]]
            used.update(ns)
    sd.update((k, v) for k, v in hf.items() if k not in used)  # reported as unexpected
    return _load(model, sd, keys, strict, "the Hugging Face state dict")


def hf_vitmae_config(model: MaskedAutoencoder, mask_ratio: float = 0.75) -> ViTMAEConfig:
    """A `ViTMAEConfig` with the same shapes and numerics (LayerNorm eps 1e-6, exact GELU)."""
    transformers = _import_transformers()
    a = model.arch
    return transformers.ViTMAEConfig(
        image_size=a.img_size,
        patch_size=a.patch_size,
        num_channels=a.in_chans,
        hidden_size=a.embed_dim,
        num_hidden_layers=a.depth,
        num_attention_heads=a.num_heads,
        intermediate_size=int(a.embed_dim * a.mlp_ratio),
        decoder_hidden_size=a.decoder_embed_dim,
        decoder_num_hidden_layers=a.decoder_depth,
        decoder_num_attention_heads=a.decoder_num_heads,
        decoder_intermediate_size=int(a.decoder_embed_dim * a.mlp_ratio),
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        layer_norm_eps=1e-6,
        qkv_bias=True,
        norm_pix_loss=a.norm_pix_loss,
        mask_ratio=mask_ratio,
    )


def to_hf_vitmae(model: MaskedAutoencoder, mask_ratio: float = 0.75) -> ViTMAEForPreTraining:
    """A Hugging Face `ViTMAEForPreTraining` carrying this model's weights.

    All tensors are copied, the positional tables included: a `ViTMAEForPreTraining` built
    from a config starts with all-zero, frozen position embeddings and a zero mask token. HF fixes
    the mask ratio in the config, so it is an argument here.
    """
    _require_plain_blocks(model, "ViTMAEForPreTraining")
    if model.arch.code_dim is not None:
        raise ValueError(
            f"ViTMAEForPreTraining's decoder reads the visible tokens, not a "
            f"{model.arch.code_dim}-wide code (model.code_dim); export the encoder alone"
        )
    transformers = _import_transformers()
    hf = transformers.ViTMAEForPreTraining(hf_vitmae_config(model, mask_ratio))
    legacy = any(".encoder.layer." in k for k in hf.state_dict())
    hf.load_state_dict(hf_vitmae_state_dict(model, legacy=legacy), strict=True)
    return hf.to(next(model.parameters()).dtype).train(model.training)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError as e:
        raise ImportError(
            "the Hugging Face bridge needs the `transformers` package: "
            "pip install 'maelab[hf]' (or pip install transformers)"
        ) from e
    return transformers


def _require_plain_blocks(model: MaskedAutoencoder, target: str) -> None:
    """Refuse an encoder with ablated blocks: the other library would run plain blocks on the
    same weights, a different function under the same names."""
    if model.arch.ablation != "none":
        raise ValueError(
            f"{target} has no '{model.arch.ablation}' blocks; a model trained with "
            f"model.ablation={model.arch.ablation} runs only in maelab"
        )
