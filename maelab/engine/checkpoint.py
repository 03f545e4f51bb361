"""Pretraining checkpoints: their format, RNG state, atomic writing, loading and restoring.

Writing goes to a temporary file, fsync, rename; the last K numbered ones are kept.
"""

from __future__ import annotations

import dataclasses
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

import maelab
from maelab.config import Config, flatten
from maelab.errors import CheckpointError
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import LAST_CHECKPOINT, TEMP_SUFFIX, atomic_write

CHECKPOINT_KEYS = ("model", "arch", "optimizer", "epoch", "next_iter", "global_step", "opt_steps")
# fields that change how a run is operated, not what it computes (no warning when they change
# between a checkpoint and the run that resumes it)
OPERATIONAL_FIELDS = (
    "run_dir", "data.root", "data.download", "data.num_workers", "data.num_test",
    "data.on_bad_image", "train.device", "train.threads", "train.compile", "train.log_every",
    "train.save_every", "train.save_every_steps", "train.keep_last", "train.on_nonfinite",
)  # fmt: skip


# ---------------------------------------------------------------- format
def rng_states() -> dict[str, Any]:
    """Global RNG states in types `torch.load(weights_only=True)` reads back.

    Training draws every random number from generators seeded by (seed, epoch, step), so these
    are stored for completeness (and for user code that uses the global generators).
    """
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }


def restore_rng_states(states: Any) -> None:
    """Undo `rng_states`; states of another format (older maelab) are ignored."""
    try:
        torch.set_rng_state(states["torch"])
        if states.get("cuda") and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(states["cuda"])
        kind, keys, pos, has_gauss, gauss = states["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
        version, internal, gauss_next = states["python"]
        random.setstate((version, tuple(internal), gauss_next))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError):
        pass


def checkpoint_state(
    model: MaskedAutoencoder,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    cfg: Config,
    epoch: int,
    next_iter: int,
    global_step: int,
    opt_steps: int,
    schedule: dict[str, Any] | None = None,
    progress: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything a resume needs, in types `torch.load(weights_only=True)` reads back."""
    return {
        "model": model.state_dict(),
        "arch": model.arch_dict(),
        "optimizer": opt.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "config": cfg.model_dump(mode="json"),
        "epoch": epoch,
        "next_iter": next_iter,  # iteration of `epoch` to continue from
        "global_step": global_step,
        "opt_steps": opt_steps,
        # lr is a pure function of the step; the parameters are kept to make that visible
        "schedule": schedule or {},
        # running sums of the epoch in progress, so a mid-epoch resume logs the same epoch loss
        "progress": progress or {},
        "rng": rng_states(),
        "versions": {"maelab": maelab.__version__, "torch": str(torch.__version__)},
    }


# ---------------------------------------------------------------- writing


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save through `run_folder.atomic_write` (temp file, fsync, rename: never torn).

    On any failure (disk full, Ctrl-C, a kill) the previous file at `path` is left as it was;
    the temp file is removed, except after a hard kill (see `remove_stale_temps`). Write errors
    become one CheckpointError line.
    """
    try:
        return atomic_write(path, lambda f: torch.save(obj, f))
    except (OSError, RuntimeError) as exc:  # torch reports a full disk as RuntimeError
        raise CheckpointError(
            f"cannot write checkpoint {path} ({_reason(exc)}); the previous file is unchanged. "
            "Free disk space or set run_dir to another disk"
        ) from None


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


def numbered_checkpoint(ckpt_dir: str | Path, epoch: int) -> Path:
    """The kept copy of the checkpoint after `epoch` epochs (`epoch_NNNN.pt`)."""
    return Path(ckpt_dir) / f"epoch_{epoch:04d}.pt"


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


def find_resume_checkpoint(resume: str | bool | None, ckpt_dir: Path) -> Path | None:
    """The checkpoint `--resume` means: `auto`/True -> ckpt_dir/last.pt if it exists, else a path."""
    if not resume:
        return None
    if resume is True or resume == "auto":
        p = ckpt_dir / LAST_CHECKPOINT
        return p if p.exists() else None
    return Path(str(resume))


def restore_training_state(
    state: dict[str, Any],
    path: Path,
    model: MaskedAutoencoder,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
) -> tuple[int, int, int, int]:
    """Load a training checkpoint into model, optimizer and scaler; returns the position
    (epoch, next iteration, global step, optimizer steps). Mismatches are one CheckpointError."""
    missing = [k for k in CHECKPOINT_KEYS if k not in state]
    if missing:
        what = (
            "an official MAE / timm file? load it with maelab.models.interop"
            if "arch" in missing
            else ""
        )
        raise CheckpointError(
            f"checkpoint '{path}' is not a maelab pretraining checkpoint (no {', '.join(missing)})"
            + (f"; {what}" if what else "")
        )
    _check_arch(state, model, path)
    _check_state_dict(state["model"], model, path)
    try:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        position = tuple(int(state[k]) for k in ("epoch", "next_iter", "global_step", "opt_steps"))
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise CheckpointError(f"checkpoint '{path}' does not fit this run ({first})") from None
    restore_rng_states(state.get("rng"))
    return position  # type: ignore[return-value]


def _check_arch(state: dict[str, Any], model: MaskedAutoencoder, path: Path) -> None:
    saved = state.get("arch")
    if not isinstance(saved, dict):
        raise CheckpointError(
            f"checkpoint '{path}' is not a maelab pretraining checkpoint (no arch)"
        )
    ours = model.arch_dict()
    # a field the checkpoint lacks was written before it existed: it held the field's default
    default = {f.name: f.default for f in dataclasses.fields(model.arch)}
    diff = [
        f"{k}: checkpoint {saved.get(k, default.get(k))} vs config {v}"
        for k, v in ours.items()
        if saved.get(k, default.get(k)) != v
    ]
    if diff:
        raise CheckpointError(f"checkpoint '{path}' is for another model ({'; '.join(diff[:3])})")


def _check_state_dict(sd: Any, model: MaskedAutoencoder, path: Path) -> None:
    if not isinstance(sd, dict):
        raise CheckpointError(
            f"checkpoint '{path}': 'model' holds a {type(sd).__name__}, not a state dict"
        )
    ours = model.state_dict()
    missing = [k for k in ours if k not in sd]
    unexpected = [k for k in sd if k not in ours]
    shapes = [
        f"{k} {tuple(sd[k].shape)} vs {tuple(v.shape)}"
        for k, v in ours.items()
        if k in sd and (not isinstance(sd[k], torch.Tensor) or sd[k].shape != v.shape)
    ]
    problems = [
        f"{name} {len(keys)}: {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
        for name, keys in (
            ("missing", missing),
            ("unexpected", unexpected),
            ("shape mismatch", shapes),
        )
        if keys
    ]
    if problems:
        raise CheckpointError(
            f"checkpoint '{path}' does not match the model ({'; '.join(problems)})"
        )


def warn_config_changes(saved: Any, cfg: Config, path: Path) -> None:
    """Warn (one line) when the resumed run computes something else than the saved one."""
    if not isinstance(saved, dict):
        return
    old, new = flatten(saved), flatten(cfg.model_dump(mode="json"))
    changed = [
        f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k) and not k.startswith(OPERATIONAL_FIELDS)
    ]
    if changed:
        more = f" (+{len(changed) - 4} more)" if len(changed) > 4 else ""
        warnings.warn(
            f"resuming {path} with a changed config: {'; '.join(changed[:4])}{more}; "
            "the result will differ from an uninterrupted run",
            stacklevel=3,
        )
