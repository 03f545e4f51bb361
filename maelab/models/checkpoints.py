"""Reading checkpoints: the one module that opens a torch file for maelab.

`load_checkpoint` reads any file (maelab runs, finetuned runs, official MAE layouts, a
`model.init` file) with `weights_only=True`; `read_state_dict` unwraps the state dict;
`load_pretrained` rebuilds the model (a MaskedAutoencoder, or a LinearMAE where the stored arch's
`kind` is "linear") and its Config from a maelab run or an official layout. Writing checkpoints
(atomic saves, resume state) is the engine's (`engine/checkpoint.py`).
"""

from __future__ import annotations

import argparse
import copy
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from maelab.config import NOT_ARCH_FIELDS, Config, ModelConfig
from maelab.errors import CheckpointError
from maelab.models.linear import LINEAR_KIND, LinearArch, LinearMAE
from maelab.models.mae import MAEArch, MaskedAutoencoder
from maelab.models.official_arch import OfficialArch, infer_official_arch, is_official_layout

StateDict = Mapping[str, torch.Tensor]
CheckpointSource = StateDict | str | Path
DECODER_PREFIXES = ("decoder_", "mask_token")
Model = MaskedAutoencoder | LinearMAE
# the stored arch's `kind` -> its arch and model (no `kind`: the ViT MAE)
MODEL_KINDS: dict[str | None, tuple[type[MAEArch] | type[LinearArch], type[Model]]] = {
    None: (MAEArch, MaskedAutoencoder),
    LINEAR_KIND: (LinearArch, LinearMAE),
}


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with `weights_only=True`; any failure is one CheckpointError line."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(
            f"checkpoint '{path}' is a folder; give a .pt file such as {path / 'checkpoints' / 'last.pt'}"
        )
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; give the path of a .pt file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint '{path}' is an empty file (an interrupted copy?)")
    try:
        # official MAE checkpoints pickle their argparse.Namespace next to the weights
        with warnings.catch_warnings(), torch.serialization.safe_globals([argparse.Namespace]):
            warnings.simplefilter("ignore")  # torch warns about pickle protocols of foreign files
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # a foreign file makes torch raise anything
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read ({_load_reason(exc)}); "
            "it is truncated, damaged or not a torch checkpoint"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"checkpoint '{path}' holds a {type(obj).__name__}, not a dict of states"
        )
    return obj


def _load_reason(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    if isinstance(exc, pickle.UnpicklingError) and text.startswith("Weights only load failed"):
        return "it holds Python objects that weights-only loading refuses"
    if not text:
        return f"{type(exc).__name__}, the file ends early"
    first = text.splitlines()[0].split(". ")[0]  # torch appends paragraphs of advice
    return f"{type(exc).__name__}: {first[:160]}"


def read_state_dict(source: CheckpointSource) -> dict[str, torch.Tensor]:
    """A state dict from a mapping or a file; `{"model": sd}` and `module.` prefixes unwrapped.

    Files are read by `load_checkpoint`; anything unreadable or without tensors raises
    CheckpointError with one line.
    """
    where = "the given mapping"
    obj: Any = source
    if isinstance(source, (str, Path)):
        where = str(source)
        obj = load_checkpoint(source)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{where} holds a {type(obj).__name__}, not a state dict")
    for wrapper in ("model", "state_dict"):
        if isinstance(obj.get(wrapper), Mapping):
            obj = obj[wrapper]
            break
    sd = {str(k): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not sd:
        raise CheckpointError(f"{where} contains no tensors; it is not a model checkpoint")
    if all(k.startswith("module.") for k in sd):  # saved from a DDP wrapper
        sd = {k[len("module.") :]: v for k, v in sd.items()}
    return sd


def load_pretrained(
    path: str | Path, map_location: str | torch.device = "cpu", need_decoder: bool = False,
    linear_ok: bool = False,
) -> tuple[Model, Config]:  # fmt: skip
    """Rebuild the model from the stored `arch`, load `model`, and parse the stored `config`.

    A linear-MAE run (`model.kind=linear`) loads as a LinearMAE when the caller can use one
    (`linear_ok`); otherwise it is refused in one line, since the caller needs the ViT MAE's
    tokens and blocks.

    Official MAE checkpoints (`mae_pretrain_vit_*.pth`, `mae_visualize_vit_*.pth`) load too:
    their architecture is read from the weights, their config is `official_config_tree`.
    The model comes back in eval mode on `map_location`.

    Every failure (missing file, foreign checkpoint, arch or weights that do not fit, no decoder
    when `need_decoder`) is one CheckpointError line.
    """
    path = Path(path)
    state = load_checkpoint(path, map_location)
    missing = [k for k in ("model", "arch", "config") if k not in state]
    official = official_arch(state, path) if missing else None
    if official is not None:
        return load_official(path, state, official, map_location, need_decoder)
    if missing:
        raise CheckpointError(
            f"checkpoint '{path}' is neither a maelab pretraining checkpoint (no "
            f"{', '.join(missing)}) nor official MAE weights (no cls_token / pos_embed / blocks)"
        )
    for key in ("model", "arch", "config"):
        if not isinstance(state[key], dict):
            raise CheckpointError(
                f"checkpoint '{path}' has a damaged '{key}' entry (not a mapping)"
            )
    arch = arch_from_state(state, path)
    if isinstance(arch, LinearArch) and not linear_ok:
        raise CheckpointError(
            f"checkpoint '{path}' holds a linear MAE (model.kind=linear); this command needs the "
            "ViT MAE (its tokens and blocks), so it cannot use this run"
        )
    model = MODEL_KINDS[getattr(arch, "kind", None)][1](arch)  # type: ignore[arg-type]
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(
            f"checkpoint '{path}' weights do not fit its arch ({first[:160]})"
        ) from None
    try:
        cfg = Config.model_validate(known_config(state["config"], path))
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        raise CheckpointError(
            f"checkpoint '{path}' stores a config this maelab cannot read ({loc}: {e['msg']})"
        ) from None
    return model.to(map_location).eval(), cfg


def prune_unknown(tree: dict[str, Any], model: type[BaseModel], prefix: str = "") -> list[str]:
    """Remove (in place) keys that `model` does not define; returns their dotted names."""
    dropped = []
    for key in list(tree):
        field = model.model_fields.get(key)
        if field is None:
            dropped.append(prefix + key)
            del tree[key]
            continue
        sub = field.annotation
        if isinstance(tree[key], dict) and isinstance(sub, type) and issubclass(sub, BaseModel):
            dropped += prune_unknown(tree[key], sub, f"{prefix}{key}.")
    return dropped


def known_config(raw: dict[str, Any], path: str | Path, warn: bool = True) -> dict[str, Any]:
    """The stored config tree without keys this maelab's Config lacks (written by another
    version); warns, since a dropped data key can mean different data than at pretraining."""
    tree = copy.deepcopy(dict(raw))
    dropped = prune_unknown(tree, Config)
    if dropped and warn:
        warnings.warn(
            f"checkpoint '{path}' config has keys this maelab does not know, ignored: "
            f"{', '.join(dropped[:5])}{', ...' if len(dropped) > 5 else ''}",
            stacklevel=2,
        )
    return tree


def stored_config_tree(path: str | Path) -> dict[str, Any]:
    """The config stored in a checkpoint as a plain tree of known keys ({} when there is none).

    Official MAE checkpoints give `official_config_tree`. Silent: `load_pretrained` warns about
    the dropped keys when the model is loaded.
    """
    state = load_checkpoint(path)
    official = None if "config" in state else official_arch(state, Path(path))
    if official is not None:
        return official_config_tree(official)
    return known_config(state.get("config") or {}, path, warn=False)


def official_arch(state: dict[str, Any], path: Path) -> OfficialArch | None:
    """The inferred architecture when `state` is an official MAE checkpoint, else None."""
    try:
        sd = read_state_dict(state)
    except CheckpointError:
        return None
    if not is_official_layout(sd):
        return None
    try:
        return infer_official_arch(sd)
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"official checkpoint '{path}': unusable shapes ({exc})") from None


def official_config_tree(official: OfficialArch) -> dict[str, Any]:
    """The config an official checkpoint implies: its model sizes and probe-time data at its
    image size and channels (folder data normalises 3-channel images with ImageNet statistics,
    as the released weights were trained)."""
    a = official.arch
    model = {k: getattr(a, k) for k in ModelConfig.model_fields if k not in NOT_ARCH_FIELDS}
    return {"model": {**model, "preset": None}, "data": {"image_size": a.img_size}}


def load_official(
    path: Path,
    state: dict[str, Any],
    official: OfficialArch,
    map_location: str | torch.device,
    need_decoder: bool,
) -> tuple[MaskedAutoencoder, Config]:
    """Build the inferred model and load the official weights (strictly, bar a missing
    decoder); prints one line saying what was inferred and what the file lacks."""
    print(official.describe())
    if need_decoder and not official.has_decoder:
        raise CheckpointError(
            f"'{path}' is an encoder-only official checkpoint: no decoder, so nothing to "
            "reconstruct with (use a mae_visualize_vit_* file or a maelab run)"
        )
    model = MaskedAutoencoder(official.arch)
    sd = read_state_dict(state)
    result = model.load_state_dict(sd, strict=False)
    bad = [k for k in result.missing_keys if not k.startswith(DECODER_PREFIXES)]
    if bad or result.unexpected_keys:
        raise CheckpointError(
            f"official checkpoint '{path}' does not fit the inferred model (missing "
            f"{bad[:3]}, unexpected {result.unexpected_keys[:3]})"
        )
    cfg = Config.model_validate(official_config_tree(official))
    return model.to(map_location).eval(), cfg


def arch_from_state(state: dict[str, Any], path: Path) -> MAEArch | LinearArch:
    """The arch stored in a checkpoint (a LinearArch where its `kind` says so), validated."""
    stored = state["arch"]
    kind = stored.get("kind") if isinstance(stored, Mapping) else None
    if kind not in MODEL_KINDS:
        known = ", ".join(repr(k) for k in MODEL_KINDS if k)
        raise CheckpointError(
            f"checkpoint '{path}' holds a model of kind {kind!r} this maelab does not know "
            f"(known: {known} and the ViT MAE)"
        )
    try:
        arch = MODEL_KINDS[kind][0](**stored)
        arch.validate()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}' has an unusable arch ({exc})") from None
    return arch


def checkpoint_fingerprint(path: str | Path) -> dict[str, Any]:
    """What identifies a checkpoint file's content cheaply: resolved path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
