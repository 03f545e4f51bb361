"""The pretraining loop: one code path for one process and for torchrun/DDP."""

from __future__ import annotations

import math
import os
import random
import sys
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

import maelab
from maelab.config import Config, dump_config
from maelab.data import augment_enabled, build_splits
from maelab.data.base import Splits
from maelab.data.loader import Batching, derive_seed, steps_per_epoch, train_batches
from maelab.engine.checkpoint import (
    atomic_save,
    find_resume_checkpoint,
    load_checkpoint,
    prune_numbered,
    remove_stale_temps,
)
from maelab.engine.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from maelab.engine.logging import MetricsLog
from maelab.engine.optim import build_adamw
from maelab.engine.schedule import lr_at, scaled_lr
from maelab.errors import CheckpointError, ConfigError, MaelabError
from maelab.masking import MaskGeometry, mask_noise
from maelab.models.mae import MaskedAutoencoder
from maelab.models.presets import arch_from_config
from maelab.objectives import ObjectiveOutput, get_objective
from maelab.recipes import apply_recipe


class NonFiniteLossError(MaelabError):
    """The loss became NaN or infinite."""


# with train.on_nonfinite=skip, this many skipped updates in a row end the run: the weights
# no longer produce finite losses and skipping would only burn time
MAX_SKIPS_IN_A_ROW = 100
# fields that change how a run is operated, not what it computes (no warning when they change
# between a checkpoint and the run that resumes it)
OPERATIONAL_FIELDS = (
    "run_dir", "data.root", "data.download", "data.num_workers", "data.num_test",
    "data.on_bad_image", "train.device", "train.threads", "train.compile", "train.log_every",
    "train.save_every", "train.save_every_steps", "train.keep_last", "train.on_nonfinite",
)  # fmt: skip
CHECKPOINT_KEYS = ("model", "arch", "optimizer", "epoch", "next_iter", "global_step", "opt_steps")


class TrainStep(nn.Module):
    """Wraps model + objective so DDP sees the whole objective inside one forward."""

    def __init__(self, model: MaskedAutoencoder, cfg: Config) -> None:
        super().__init__()
        self.model = model
        self.objective = get_objective(cfg.objective.name)
        self.objective_cfg = cfg.objective

    def forward(self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor) -> ObjectiveOutput:
        return self.objective(self.model, imgs, mask_ratio, noise, self.objective_cfg)


@dataclass
class PretrainResult:
    run_dir: Path
    model: MaskedAutoencoder
    final_loss: float
    first_loss: float
    steps: int
    seconds: float


def keep_freed_memory() -> bool:
    """glibc: keep heap memory freed by one training step for the next (process-wide).

    By default glibc hands the freed top of the heap back to the kernel, so every CPU step maps
    and zero-fills fresh pages for its activations: 1.10x faster tiny-model steps without that,
    peak memory +1% (benchmarks/levers.py, allocator). Blocks above 32 MB still go to and from
    mmap. False where the C library has no `mallopt` (not glibc).
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.device={name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"train.device={name} but CUDA is not available; use train.device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device={name} but only {torch.cuda.device_count()} CUDA devices are visible"
            )
    return device


def autocast_for(amp: str, device: torch.device) -> tuple[Any, torch.amp.GradScaler | None]:
    """Autocast context and grad scaler. 'auto' is bf16 on CUDA when supported, else off."""
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    if amp == "off":
        return nullcontext(), None
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp=fp16 needs CUDA; use train.amp=bf16 or off on a CPU")
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return torch.autocast(device_type=device.type, dtype=dtype), scaler


def build_model_for(cfg: Config, splits: Splits) -> MaskedAutoencoder:
    """The MAE for a config, sized to the data (image size, channels) unless set explicitly."""
    img_size = cfg.data.image_size or splits.train.image_size
    try:
        arch = arch_from_config(cfg.model, img_size, splits.train.channels)
        arch.validate()
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"bad model config: {exc}") from None
    if arch.in_chans != splits.train.channels:
        raise ConfigError(
            f"model.in_chans={arch.in_chans} but data '{cfg.data.name}' has "
            f"{splits.train.channels} channels; leave model.in_chans unset"
        )
    return MaskedAutoencoder(arch)


def check_mask_config(cfg: Config, model: MaskedAutoencoder) -> None:
    unit = cfg.mask.unit
    if unit is not None:
        p, size = model.patch_size, model.arch.img_size
        if unit % p:
            raise ConfigError(f"mask.unit={unit} is not a multiple of the patch size {p}; use a multiple of {p}")
        if size % unit:
            raise ConfigError(f"mask.unit={unit} does not divide the image size {size}; pick a divisor")
    from maelab.masking import MASK_STRATEGIES

    if cfg.mask.strategy not in MASK_STRATEGIES:
        raise ConfigError(
            f"unknown mask.strategy '{cfg.mask.strategy}' (valid: {', '.join(MASK_STRATEGIES)})"
        )
    from maelab.objectives import OBJECTIVES

    if cfg.objective.name not in OBJECTIVES:
        raise ConfigError(f"unknown objective.name '{cfg.objective.name}' (valid: {', '.join(OBJECTIVES)})")


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


def pretrain(
    cfg: Config, resume: str | bool | None = None, quiet: bool = False, dry_run: bool = False
) -> PretrainResult:
    """Pretrain an MAE as configured; returns the trained model and where its run lives.

    `dry_run`: check the config, build the data and the model, restore `resume` if given, run
    one forward pass on the first batch, and return without writing anything.
    """
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    if device.type == "cpu":
        keep_freed_memory()
    world = env_world_size()
    if t.batch_size % world:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be a multiple of the {world} processes "
            f"(at least one image each); use train.batch_size={world * max(1, t.batch_size // world)}"
        )
    dist_info = init_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if t.batch_size % dist_info.world or t.batch_size < dist_info.world:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be a multiple of the {dist_info.world} processes"
        )
    run_dir = Path(cfg.run_dir).expanduser()
    ckpt_dir = run_dir / "checkpoints"
    for d in (run_dir, ckpt_dir):
        if d.exists() and not d.is_dir():
            raise ConfigError(f"run_dir: {d} is a file, not a folder; choose another run_dir")

    splits = build_splits(cfg.data)
    cfg, recipe_line = apply_recipe(cfg, splits)
    t = cfg.train
    if not quiet and dist_info.is_main:
        print(recipe_line, flush=True)
    torch.manual_seed(t.seed)
    model = build_model_for(cfg, splits).to(device)
    check_mask_config(cfg, model)
    accum = t.accum_iter
    base_lr = t.lr if t.lr is not None else scaled_lr(t.blr, t.batch_size * accum)
    opt = build_adamw(model, base_lr, t.weight_decay, t.betas, device)
    autocast, scaler = autocast_for(t.amp, device)

    # resume
    start_epoch, start_iter, global_step, opt_steps = 0, 0, 0, 0
    resume_path = find_resume_checkpoint(resume, ckpt_dir)
    progress: dict[str, Any] = {}
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        start_epoch, start_iter, global_step, opt_steps = _restore(state, resume_path, model, opt, scaler)
        progress = state.get("progress") or {}
        _warn_config_changes(state.get("config"), cfg, resume_path)

    step_module: nn.Module = TrainStep(model, cfg)
    if dist_info.enabled:
        ids = [device.index] if device.type == "cuda" else None
        step_module = nn.parallel.DistributedDataParallel(step_module, device_ids=ids)
    if t.compile:
        step_module = torch.compile(step_module)

    batching = Batching(
        batch_size=t.batch_size // dist_info.world,
        seed=cfg.data.seed + t.seed,
        rank=dist_info.rank,
        world=dist_info.world,
        crop_scale=cfg.data.crop_scale,
        hflip=cfg.data.hflip,
        augment=augment_enabled(cfg.data),
        num_workers=cfg.data.num_workers,
    )
    iters = steps_per_epoch(len(splits.train), batching)
    geom = MaskGeometry(model.arch.grid_size, model.patch_size)
    img_size = model.arch.img_size
    t0 = time.time()
    if dry_run:
        loss = _dry_run_loss(step_module, splits, batching, img_size, device, geom, cfg, autocast)
        return PretrainResult(run_dir, model, loss, loss, 0, time.time() - t0)

    if dist_info.is_main:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            (run_dir / "config.yaml").write_text(dump_config(cfg))
        except OSError as exc:
            raise ConfigError(
                f"run_dir={cfg.run_dir} cannot be written ({exc.strerror or exc}); choose a writable folder"
            ) from None
        remove_stale_temps(ckpt_dir)  # left by a run killed while saving
    log = MetricsLog(run_dir, dist_info.is_main, resume_step=global_step if resume_path else None)
    schedule = {"base_lr": base_lr, "min_lr": t.min_lr, "warmup_epochs": t.warmup_epochs,
                "epochs": t.epochs, "iters_per_epoch": iters, "accum_iter": accum}  # fmt: skip
    first_loss = math.nan
    last_loss = math.nan
    skipped = int(progress.get("skipped", 0))
    skips_in_a_row = 0
    last_good = str(resume_path) if resume_path else "none yet"
    total = t.epochs * iters
    bar = tqdm(
        total=total,
        initial=start_epoch * iters + start_iter,
        desc="pretrain",
        disable=quiet or not dist_info.is_main,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    model.train()
    for epoch in range(start_epoch, t.epochs):
        first_it = start_iter if epoch == start_epoch else 0
        running, count = 0.0, 0
        if epoch == start_epoch and first_it and progress:
            running, count = float(progress.get("loss_sum", 0.0)), int(progress.get("count", 0))
        batches = train_batches(splits.train, batching, epoch, img_size, device, start_step=first_it)
        for it, (imgs, _labels) in enumerate(batches, start=first_it):
            group_start = (it // accum) * accum
            group_size = min(accum, iters - group_start)  # a short tail still updates
            if it == group_start:
                lr = lr_at(it / iters + epoch, t.epochs, t.warmup_epochs, base_lr, t.min_lr)
                for group in opt.param_groups:
                    group["lr"] = lr
            ratio, noise = step_mask(cfg, geom, epoch, it, imgs.shape[0], dist_info)
            noise = noise.to(device)
            sync = (it + 1 - group_start) == group_size
            no_sync = step_module.no_sync if (dist_info.enabled and not sync) else nullcontext
            with no_sync(), autocast:
                out = step_module(imgs, ratio, noise)
            # the global batch's loss: every process logs it and takes the same non-finite branch
            loss_value = all_reduce_mean(float(out.loss.detach()))
            finite = math.isfinite(loss_value)
            if not finite and t.on_nonfinite == "stop":
                bar.close()
                raise NonFiniteLossError(
                    f"loss is {loss_value} at step {global_step + 1} (epoch {epoch}, iteration {it}, "
                    f"lr {opt.param_groups[0]['lr']:.3g}); last good checkpoint: {last_good}. "
                    "Lower train.blr, set train.clip_grad, or pass train.on_nonfinite=skip"
                )
            # with `skip`, a non-finite loss still runs backward: its gradients are non-finite on
            # every process after the all-reduce, so all processes skip the update together
            with no_sync():
                scaled = out.loss / group_size
                (scaler.scale(scaled) if scaler else scaled).backward()
            stepped = False
            if sync:
                grads_ok = True
                if t.clip_grad or t.on_nonfinite == "skip":
                    if scaler:
                        scaler.unscale_(opt)
                    if t.clip_grad:
                        norm = nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad)
                    else:
                        norm = nn.utils.get_total_norm([p.grad for p in model.parameters() if p.grad is not None])
                    # the fp16 scaler skips non-finite updates itself (and lowers its scale)
                    grads_ok = scaler is not None or bool(torch.isfinite(norm))
                    if not grads_ok and t.on_nonfinite == "stop":
                        bar.close()
                        raise NonFiniteLossError(
                            f"gradient norm is {float(norm)} at step {global_step + 1} (epoch {epoch}, "
                            f"iteration {it}, lr {opt.param_groups[0]['lr']:.3g}); last good checkpoint: "
                            f"{last_good}. Lower train.blr or pass train.on_nonfinite=skip"
                        )
                if grads_ok:
                    if scaler:
                        scaler.step(opt)
                        scaler.update()
                    else:
                        opt.step()
                    opt_steps += 1
                    stepped = True
                    skips_in_a_row = 0
                else:
                    skipped += 1
                    skips_in_a_row += 1
                    if skips_in_a_row >= MAX_SKIPS_IN_A_ROW:
                        bar.close()
                        raise NonFiniteLossError(
                            f"{skips_in_a_row} updates in a row skipped for non-finite values, up to "
                            f"step {global_step + 1} (lr {opt.param_groups[0]['lr']:.3g}); last good "
                            f"checkpoint: {last_good}. Lower train.blr or set train.clip_grad"
                        )
                opt.zero_grad(set_to_none=True)
            global_step += 1
            bar.update(1)
            if not finite:
                continue
            if math.isnan(first_loss):
                first_loss = loss_value
            last_loss = loss_value
            running += loss_value
            count += 1
            bar.set_postfix(epoch=epoch, loss=f"{loss_value:.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
            if global_step % t.log_every == 0:
                record = {"kind": "train", "step": global_step, "epoch": epoch, "loss": loss_value,
                          "lr": opt.param_groups[0]["lr"], "mask_ratio": ratio}
                record.update({k: float(v) for k, v in out.logs.items()})
                log.write(record)
            if stepped and t.save_every_steps and opt_steps % t.save_every_steps == 0 and it + 1 < iters:
                if dist_info.is_main:
                    _check_weights(model, global_step, last_good)
                    progress = {"loss_sum": running, "count": count, "skipped": skipped}
                    atomic_save(
                        checkpoint_state(model, opt, scaler, cfg, epoch, it + 1, global_step, opt_steps,
                                         schedule, progress),
                        ckpt_dir / "last.pt",
                    )
                    last_good = str(ckpt_dir / "last.pt")
                barrier()
        epoch_loss = all_reduce_mean(running / max(count, 1))
        if dist_info.is_main:
            log.write({"kind": "epoch", "step": global_step, "epoch": epoch, "loss": epoch_loss,
                       "skipped_steps": skipped, "seconds": time.time() - t0})
            _check_weights(model, global_step, last_good)
            state = checkpoint_state(model, opt, scaler, cfg, epoch + 1, 0, global_step, opt_steps,
                                     schedule, {"skipped": skipped})
            atomic_save(state, ckpt_dir / "last.pt")
            last_good = str(ckpt_dir / "last.pt")
            if t.save_every and (epoch + 1) % t.save_every == 0:
                atomic_save(state, ckpt_dir / f"epoch_{epoch + 1:04d}.pt")
                prune_numbered(ckpt_dir, t.keep_last)
        barrier()
    bar.close()
    log.close()
    if dist_info.is_main:
        _final_figures(model, splits, cfg, run_dir, device)
    return PretrainResult(run_dir, model, last_loss, first_loss, global_step, time.time() - t0)


def step_mask(
    cfg: Config, geom: MaskGeometry, epoch: int, it: int, n: int, dist_info: DistInfo
) -> tuple[float, torch.Tensor]:
    """Mask ratio and noise (n, L) of this process's rows of global batch `it` of `epoch`.

    Drawn for the whole global batch from a seed without the rank, then sliced: the masks
    depend only on (seed, epoch, step, place in the global batch), so N processes train
    exactly like one process with the same global batch.
    """
    # the 0 stands where the rank was: one-process masks stay as they were
    g = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.train.seed, epoch, it, 0, 31))
    ratio = cfg.mask.ratio
    if cfg.mask.ratio_range is not None:
        lo, hi = cfg.mask.ratio_range
        ratio = lo + (hi - lo) * float(torch.rand(1, generator=g))
    noise = mask_noise(cfg.mask.strategy, n * dist_info.world, geom, ratio, cfg.mask.unit, g)
    return ratio, noise[dist_info.rank * n : (dist_info.rank + 1) * n]


def _restore(
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
        what = "an official MAE / timm file? load it with maelab.models.interop" if "arch" in missing else ""
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


def _check_state_dict(sd: Any, model: MaskedAutoencoder, path: Path) -> None:
    if not isinstance(sd, dict):
        raise CheckpointError(f"checkpoint '{path}': 'model' holds a {type(sd).__name__}, not a state dict")
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
        for name, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes))
        if keys
    ]
    if problems:
        raise CheckpointError(f"checkpoint '{path}' does not match the model ({'; '.join(problems)})")


def _warn_config_changes(saved: Any, cfg: Config, path: Path) -> None:
    """Warn (one line) when the resumed run computes something else than the saved one."""
    if not isinstance(saved, dict):
        return
    old, new = _flatten(saved), _flatten(cfg.model_dump(mode="json"))
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


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def _check_weights(model: nn.Module, step: int, last_good: str) -> None:
    """Refuse to save non-finite weights over a good checkpoint."""
    flags = [torch.isfinite(p).all() for p in model.parameters()]
    if flags and not bool(torch.stack(flags).all()):
        raise NonFiniteLossError(
            f"weights became non-finite by step {step} (not saved); last good checkpoint: {last_good}. "
            "Lower train.blr or set train.clip_grad"
        )


def _dry_run_loss(
    step_module: nn.Module,
    splits: Splits,
    batching: Batching,
    img_size: int,
    device: torch.device,
    geom: MaskGeometry,
    cfg: Config,
    autocast: Any,
) -> float:
    """Loss of the first training batch, without a gradient (checks shapes end to end)."""
    imgs, _ = next(iter(train_batches(splits.train, batching, 0, img_size, device)))
    g = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.train.seed, 0, 0, 0, 31))
    noise = mask_noise(cfg.mask.strategy, imgs.shape[0], geom, cfg.mask.ratio, cfg.mask.unit, g)
    with torch.no_grad(), autocast:
        return float(step_module(imgs, cfg.mask.ratio, noise.to(device)).loss)


def _check_arch(state: dict[str, Any], model: MaskedAutoencoder, path: Path) -> None:
    saved = state.get("arch")
    if not isinstance(saved, dict):
        raise CheckpointError(f"checkpoint '{path}' is not a maelab pretraining checkpoint (no arch)")
    ours = model.arch_dict()
    diff = [f"{k}: checkpoint {saved.get(k)} vs config {v}" for k, v in ours.items() if saved.get(k) != v]
    if diff:
        raise CheckpointError(f"checkpoint '{path}' is for another model ({'; '.join(diff[:3])})")


def _final_figures(model: MaskedAutoencoder, splits: Splits, cfg: Config, run_dir: Path, device: torch.device) -> None:
    from maelab.evaluation.reconstruct import reconstruction_figure

    fig_dir = run_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    reconstruction_figure(model, splits.test, fig_dir / "reconstruction.png", mask_ratio=cfg.mask.ratio,
                          strategy=cfg.mask.strategy, unit=cfg.mask.unit, device=device)


def env_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))
