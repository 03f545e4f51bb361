"""The pretraining loop: one code path for one process and for torchrun/DDP."""

from __future__ import annotations

import math
import os
import random
import sys
import time
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
from maelab.engine.checkpoint import atomic_save, load_checkpoint, prune_numbered
from maelab.engine.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from maelab.engine.logging import MetricsLog
from maelab.engine.optim import build_adamw
from maelab.engine.schedule import lr_at, scaled_lr
from maelab.errors import CheckpointError, ConfigError, MaelabError
from maelab.masking import MaskGeometry, mask_noise
from maelab.models.mae import MaskedAutoencoder
from maelab.models.presets import arch_from_config
from maelab.objectives import ObjectiveOutput, get_objective


class NonFiniteLossError(MaelabError):
    """The loss became NaN or infinite."""


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


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"train.device={name} but CUDA is not available; use train.device=cpu")
    return torch.device(name)


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
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state()[1].tolist(),
        "python": random.getstate()[1],
    }


def checkpoint_state(
    model: MaskedAutoencoder,
    opt: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    cfg: Config,
    epoch: int,
    next_iter: int,
    global_step: int,
    opt_steps: int,
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
        "rng": rng_states(),
        "versions": {"maelab": maelab.__version__, "torch": torch.__version__},
    }


def pretrain(cfg: Config, resume: str | bool | None = None, quiet: bool = False) -> PretrainResult:
    """Pretrain an MAE as configured; returns the trained model and where its run lives."""
    t = cfg.train
    device = resolve_device(t.device)
    if t.threads:
        torch.set_num_threads(t.threads)
    dist_info = init_distributed(device.type)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
        torch.cuda.set_device(device)
    if t.batch_size % dist_info.world or t.batch_size < dist_info.world:
        raise ConfigError(
            f"train.batch_size={t.batch_size} must be a multiple of the {dist_info.world} processes"
        )
    run_dir = Path(cfg.run_dir)
    ckpt_dir = run_dir / "checkpoints"

    splits = build_splits(cfg.data)
    torch.manual_seed(t.seed)
    model = build_model_for(cfg, splits).to(device)
    check_mask_config(cfg, model)
    accum = t.accum_iter
    base_lr = t.lr if t.lr is not None else scaled_lr(t.blr, t.batch_size * accum)
    opt = build_adamw(model, base_lr, t.weight_decay, t.betas, device)
    autocast, scaler = autocast_for(t.amp, device)

    # resume
    start_epoch, start_iter, global_step, opt_steps = 0, 0, 0, 0
    resume_path = _resume_path(resume, ckpt_dir)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        _check_arch(state, model, resume_path)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_epoch, start_iter = int(state["epoch"]), int(state["next_iter"])
        global_step, opt_steps = int(state["global_step"]), int(state["opt_steps"])

    if dist_info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(dump_config(cfg))
    log = MetricsLog(run_dir, dist_info.is_main, resume_step=global_step if resume_path else None)

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
    first_loss = math.nan
    last_loss = math.nan
    skipped = 0
    last_good = str(resume_path) if resume_path else "none"
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
        batches = train_batches(splits.train, batching, epoch, img_size, device, start_step=first_it)
        for it, (imgs, _labels) in enumerate(batches, start=first_it):
            group_start = (it // accum) * accum
            group_size = min(accum, iters - group_start)  # a short tail still updates
            if it == group_start:
                lr = lr_at(it / iters + epoch, t.epochs, t.warmup_epochs, base_lr, t.min_lr)
                for group in opt.param_groups:
                    group["lr"] = lr
            g = torch.Generator(device="cpu").manual_seed(derive_seed(t.seed, epoch, it, dist_info.rank, 31))
            ratio = cfg.mask.ratio
            if cfg.mask.ratio_range is not None:
                lo, hi = cfg.mask.ratio_range
                ratio = lo + (hi - lo) * float(torch.rand(1, generator=g))
            noise = mask_noise(cfg.mask.strategy, imgs.shape[0], geom, ratio, cfg.mask.unit, g).to(device)
            sync = (it + 1 - group_start) == group_size
            no_sync = step_module.no_sync if (dist_info.enabled and not sync) else nullcontext
            with no_sync(), autocast:
                out = step_module(imgs, ratio, noise)
            loss_value = float(out.loss.detach())
            if not math.isfinite(loss_value):
                if t.on_nonfinite == "stop":
                    bar.close()
                    raise NonFiniteLossError(
                        f"loss is {loss_value} at epoch {epoch} iteration {it} (step {global_step}, "
                        f"lr {opt.param_groups[0]['lr']:.3g}); last good checkpoint: {last_good}. "
                        "Lower train.blr, set train.clip_grad, or train.on_nonfinite=skip"
                    )
                skipped += 1
                opt.zero_grad(set_to_none=True)
                global_step += 1
                bar.update(1)
                continue
            with no_sync():
                scaled = out.loss / group_size
                (scaler.scale(scaled) if scaler else scaled).backward()
            if sync:
                if t.clip_grad:
                    if scaler:
                        scaler.unscale_(opt)
                    nn.utils.clip_grad_norm_(model.parameters(), t.clip_grad)
                if scaler:
                    scaler.step(opt)
                    scaler.update()
                else:
                    opt.step()
                opt.zero_grad(set_to_none=True)
                opt_steps += 1
            global_step += 1
            if math.isnan(first_loss):
                first_loss = loss_value
            last_loss = loss_value
            running += loss_value
            count += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch, loss=f"{loss_value:.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}")
            if global_step % t.log_every == 0:
                record = {"kind": "train", "step": global_step, "epoch": epoch, "loss": loss_value,
                          "lr": opt.param_groups[0]["lr"], "mask_ratio": ratio}
                record.update({k: float(v) for k, v in out.logs.items()})
                log.write(record)
            if sync and t.save_every_steps and opt_steps % t.save_every_steps == 0 and it + 1 < iters:
                if dist_info.is_main:
                    atomic_save(
                        checkpoint_state(model, opt, scaler, cfg, epoch, it + 1, global_step, opt_steps),
                        ckpt_dir / "last.pt",
                    )
                    last_good = str(ckpt_dir / "last.pt")
                barrier()
        epoch_loss = all_reduce_mean(running / max(count, 1))
        if dist_info.is_main:
            log.write({"kind": "epoch", "step": global_step, "epoch": epoch, "loss": epoch_loss,
                       "skipped_steps": skipped, "seconds": time.time() - t0})
            state = checkpoint_state(model, opt, scaler, cfg, epoch + 1, 0, global_step, opt_steps)
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


def _resume_path(resume: str | bool | None, ckpt_dir: Path) -> Path | None:
    if not resume:
        return None
    if resume is True or resume == "auto":
        p = ckpt_dir / "last.pt"
        return p if p.exists() else None
    return Path(str(resume))


def _check_arch(state: dict[str, Any], model: MaskedAutoencoder, path: Path) -> None:
    saved = state.get("arch")
    if "model" not in state or saved is None:
        raise CheckpointError(f"checkpoint '{path}' is not a maelab pretraining checkpoint (no model/arch)")
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
