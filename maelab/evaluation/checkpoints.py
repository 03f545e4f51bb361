"""A pretrained MaskedAutoencoder and its Config from a maelab pretraining checkpoint."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ValidationError

from maelab.config import Config
from maelab.engine.checkpoint import load_checkpoint
from maelab.errors import CheckpointError
from maelab.models.mae import MAEArch, MaskedAutoencoder


def load_pretrained(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[MaskedAutoencoder, Config]:
    """Rebuild the model from the stored `arch`, load `model`, and parse the stored `config`.

    The model comes back in eval mode on `map_location`.

    Every failure (missing file, foreign checkpoint, arch or weights that do not fit) is one
    CheckpointError line.
    """
    path = Path(path)
    state = load_checkpoint(path, map_location)
    missing = [k for k in ("model", "arch", "config") if k not in state]
    if missing:
        raise CheckpointError(
            f"checkpoint '{path}' is not a maelab pretraining checkpoint (no {', '.join(missing)}); "
            "official MAE weights load with maelab.models.interop.load_official_state_dict"
        )
    for key in ("model", "arch", "config"):
        if not isinstance(state[key], dict):
            raise CheckpointError(
                f"checkpoint '{path}' has a damaged '{key}' entry (not a mapping)"
            )
    arch = arch_from_state(state, path)
    model = MaskedAutoencoder(arch)
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

    Silent: `load_pretrained` warns about the dropped keys when the model is loaded.
    """
    return known_config(load_checkpoint(path).get("config") or {}, path, warn=False)


def arch_from_state(state: dict[str, Any], path: Path) -> MAEArch:
    """The MAEArch stored in a checkpoint, validated."""
    try:
        arch = MAEArch(**state["arch"])
        arch.validate()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}' has an unusable arch ({exc})") from None
    return arch


def checkpoint_fingerprint(path: str | Path) -> dict[str, Any]:
    """What identifies a checkpoint file's content cheaply: resolved path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
