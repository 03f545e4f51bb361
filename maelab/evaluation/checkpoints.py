"""A pretrained MaskedAutoencoder and its Config from a maelab pretraining checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError

from maelab.config import Config
from maelab.engine.checkpoint import load_checkpoint
from maelab.errors import CheckpointError
from maelab.models.mae import MAEArch, MaskedAutoencoder


def load_pretrained(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[MaskedAutoencoder, Config]:
    """Rebuild the model from the stored `arch`, load `model`, and parse the stored `config`.

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
        cfg = Config.model_validate(state["config"])
    except ValidationError as exc:
        e = exc.errors()[0]
        loc = ".".join(str(p) for p in e["loc"])
        raise CheckpointError(
            f"checkpoint '{path}' stores a config this maelab cannot read ({loc}: {e['msg']})"
        ) from None
    model.eval()
    return model, cfg


def arch_from_state(state: dict[str, Any], path: Path) -> MAEArch:
    """The MAEArch stored in a checkpoint, validated."""
    try:
        arch = MAEArch(**state["arch"])
        arch.validate()
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint '{path}' has an unusable arch ({exc})") from None
    return arch


def run_dir_of(ckpt: str | Path) -> Path:
    """The run folder of a checkpoint: RUN for RUN/checkpoints/x.pt, else the file's folder."""
    p = Path(ckpt).resolve()
    return p.parent.parent if p.parent.name == "checkpoints" else p.parent


def checkpoint_fingerprint(path: str | Path) -> dict[str, Any]:
    """What identifies a checkpoint file's content cheaply: resolved path, size and mtime."""
    p = Path(path).resolve()
    st = p.stat()
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
