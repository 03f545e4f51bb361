"""Atomic checkpoints: write to a temporary file, fsync, rename; keep the last K numbered ones."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from maelab.errors import CheckpointError


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save through a temp file in the same directory + os.replace (never a torn file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def prune_numbered(ckpt_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` files named `epoch_NNNN.pt`."""
    files = sorted(Path(ckpt_dir).glob("epoch_*.pt"), key=lambda p: int(re.findall(r"\d+", p.stem)[0]))
    for old in files[: max(0, len(files) - keep_last)]:
        old.unlink(missing_ok=True)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with `weights_only=True`; any failure is one CheckpointError line."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' not found; give the path of a .pt file")
    try:
        obj = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError, OSError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"checkpoint '{path}' cannot be read ({first[:160]}); it is truncated or not a torch file"
        ) from None
    if not isinstance(obj, dict):
        raise CheckpointError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a dict of states")
    return obj
