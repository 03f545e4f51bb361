"""Atomic checkpoints: write to a temporary file, fsync, rename; keep the last K numbered ones."""

from __future__ import annotations

import argparse
import os
import pickle
import re
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from maelab.errors import CheckpointError

TEMP_SUFFIX = ".tmp"


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save through a temp file in the same directory + os.replace (never a torn file).

    On any failure (disk full, Ctrl-C, a kill) the previous file at `path` is left as it was;
    the temp file is removed, except after a hard kill (see `remove_stale_temps`). Write errors
    become one CheckpointError line.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {path} ({_reason(exc)})") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())  # mkstemp makes private 0600 files
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, (OSError, RuntimeError)):  # torch reports a full disk as RuntimeError
            raise CheckpointError(
                f"cannot write checkpoint {path} ({_reason(exc)}); the previous file is unchanged. "
                "Free disk space or set run_dir to another disk"
            ) from None
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def remove_stale_temps(ckpt_dir: str | Path) -> list[Path]:
    """Delete temp files that a killed `atomic_save` left behind; returns what it removed."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    stale = [p for p in d.glob(f".*{TEMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def prune_numbered(ckpt_dir: str | Path, keep_last: int) -> None:
    """Delete all but the newest `keep_last` files named `epoch_NNNN.pt`."""
    numbered = []
    for p in Path(ckpt_dir).glob("epoch_*.pt"):
        m = re.fullmatch(r"epoch_(\d+)", p.stem)
        if m:
            numbered.append((int(m.group(1)), p))
    numbered.sort()
    for _, old in numbered[: max(0, len(numbered) - keep_last)]:
        old.unlink(missing_ok=True)


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
        raise CheckpointError(f"checkpoint '{path}' holds a {type(obj).__name__}, not a dict of states")
    return obj


def _load_reason(exc: BaseException) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).strip()
    if isinstance(exc, pickle.UnpicklingError) and text.startswith("Weights only load failed"):
        return "it holds Python objects that weights-only loading refuses"
    if not text:
        return f"{type(exc).__name__}, the file ends early"
    first = text.splitlines()[0].split(". ")[0]  # torch appends paragraphs of advice
    return f"{type(exc).__name__}: {first[:160]}"


def find_resume_checkpoint(resume: str | bool | None, ckpt_dir: Path) -> Path | None:
    """The checkpoint `--resume` means: `auto`/True -> ckpt_dir/last.pt if it exists, else a path."""
    if not resume:
        return None
    if resume is True or resume == "auto":
        p = ckpt_dir / "last.pt"
        return p if p.exists() else None
    return Path(str(resume))
