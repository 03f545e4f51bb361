"""The pretraining loop: one code path for one process and for torchrun/DDP."""

from __future__ import annotations

import math
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from maelab.config import Config, TrainConfig, dump_config
from maelab.data import augment_enabled, build_splits
from maelab.data.base import Splits
from maelab.data.loader import Batching, derive_seed, steps_per_epoch, train_batches
from maelab.engine.build import build_model_for, check_mask_config, check_objective, load_init
from maelab.engine.checkpoint import (
    atomic_save,
    checkpoint_state,
    find_resume_checkpoint,
    numbered_checkpoint,
    prune_numbered,
    remove_stale_temps,
    restore_training_state,
    warn_config_changes,
)
from maelab.engine.device import autocast_for, env_world_size, keep_freed_memory, resolve_device
from maelab.engine.distributed import DistInfo, all_reduce_mean, barrier, init_distributed
from maelab.engine.eta import WARNING as ETA_WARNING
from maelab.engine.eta import EtaClock, device_label
from maelab.engine.metrics_log import MetricsLog
from maelab.engine.optim import build_adamw
from maelab.engine.schedule import lr_at, scaled_lr
from maelab.engine.step import GuardedStep, StepPlace
from maelab.errors import ConfigError
from maelab.masking import MaskGeometry, mask_noise_for
from maelab.models.checkpoints import load_checkpoint
from maelab.models.mae import MaskedAutoencoder
from maelab.objectives import ObjectiveOutput, get_objective
from maelab.recipes import apply_recipe
from maelab.run_folder import RunFolder


class TrainStep(nn.Module):
    """Wraps model + objective so DDP sees the whole objective inside one forward."""

    def __init__(self, model: MaskedAutoencoder, cfg: Config) -> None:
        super().__init__()
        self.model = model
        self.objective = get_objective(cfg.objective.name)
        self.objective_cfg = cfg.objective

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float, noise: torch.Tensor
    ) -> ObjectiveOutput:
        return self.objective(self.model, imgs, mask_ratio, noise, self.objective_cfg)


@dataclass
class PretrainResult:
    run_dir: Path
    model: MaskedAutoencoder
    final_loss: float
    first_loss: float
    steps: int
    seconds: float
    splits: Splits  # the data it trained on (callers draw reconstructions of its test split)
    # set when resumed from a run already past train.epochs: its epoch count; nothing ran
    complete_at_epoch: int | None = None


def pretrain(
    cfg: Config, resume: str | bool | None = None, quiet: bool = False, dry_run: bool = False
) -> PretrainResult:
    """Pretrain an MAE as configured; returns the trained model and where its run lives.

    `dry_run`: check the config, build the data and the model, restore `resume` if given, run
    one forward pass on the first batch, and return without writing anything.
    """
    t = cfg.train
    device, dist_info = _place_process(t)
    run = RunFolder(cfg.run_dir)
    for d in (run.root, run.checkpoints):
        if d.exists() and not d.is_dir():
            raise ConfigError(f"run_dir: {d} is a file, not a folder; choose another run_dir")

    splits = build_splits(cfg.data)
    cfg, recipe_line = apply_recipe(cfg, splits)
    t = cfg.train
    if not quiet and dist_info.is_main:
        print(recipe_line, flush=True)
    torch.manual_seed(t.seed)
    model = build_model_for(cfg, splits).to(device)
    init_line = load_init(model, cfg.model.init) if cfg.model.init else ""
    if init_line and not quiet and dist_info.is_main:
        print(init_line, flush=True)
    check_mask_config(cfg.mask, model)
    check_objective(cfg.objective)
    accum = t.accum_iter
    base_lr = t.lr if t.lr is not None else scaled_lr(t.blr, t.batch_size * accum)
    opt = build_adamw(model, base_lr, t.weight_decay, t.betas, device)
    autocast, scaler = autocast_for(t.amp, device)
    guard = GuardedStep(opt, list(model.parameters()), scaler, t.clip_grad, t.on_nonfinite)

    start_epoch, start_iter, global_step = 0, 0, 0
    resume_path = find_resume_checkpoint(resume, run.checkpoints)
    progress: dict[str, Any] = {}
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        start_epoch, start_iter, global_step, guard.steps = restore_training_state(
            state, resume_path, model, opt, scaler
        )
        progress = state.get("progress") or {}
        warn_config_changes(state.get("config"), cfg, resume_path)
        guard.last_good = str(resume_path)
    guard.skipped = int(progress.get("skipped", 0))
    if resume_path is not None and start_epoch >= t.epochs and not dry_run:
        return PretrainResult(
            run.root, model, math.nan, math.nan, global_step, 0.0, splits, start_epoch
        )

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
        return PretrainResult(run.root, model, loss, loss, 0, time.time() - t0, splits)

    if dist_info.is_main:
        try:
            run.root.mkdir(parents=True, exist_ok=True)
            run.config.write_text(dump_config(cfg))
        except OSError as exc:
            raise ConfigError(
                f"run_dir={cfg.run_dir} cannot be written ({exc.strerror or exc}); choose a writable folder"
            ) from None
        remove_stale_temps(run.checkpoints)  # left by a run killed while saving
    log = MetricsLog(run, dist_info.is_main, resume_step=global_step if resume_path else None)
    schedule = {"base_lr": base_lr, "min_lr": t.min_lr, "warmup_epochs": t.warmup_epochs,
                "epochs": t.epochs, "iters_per_epoch": iters, "accum_iter": accum}  # fmt: skip

    def save_last(epoch: int, next_iter: int, progress: dict[str, Any]) -> dict[str, Any]:
        """RUN/checkpoints/last.pt at this position, if the weights are finite; the state."""
        guard.check_weights(model, global_step)
        state = checkpoint_state(
            model, opt, scaler, cfg, epoch, next_iter, global_step, guard.steps, schedule, progress
        )
        atomic_save(state, run.last_checkpoint)
        guard.last_good = str(run.last_checkpoint)
        return state

    first_loss = math.nan
    last_loss = math.nan
    bar = tqdm(
        total=t.epochs * iters,
        initial=start_epoch * iters + start_iter,
        desc="pretrain",
        disable=quiet or not dist_info.is_main,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    eta = EtaClock(t.epochs * iters - bar.n, device_label(device))
    model.train()
    try:
        for epoch in range(start_epoch, t.epochs):
            first_it = start_iter if epoch == start_epoch else 0
            running, count = 0.0, 0
            if epoch == start_epoch and first_it and progress:
                running, count = float(progress.get("loss_sum", 0.0)), int(progress.get("count", 0))
            batches = train_batches(
                splits.train, batching, epoch, img_size, device, start_step=first_it
            )
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
                place = StepPlace(global_step + 1, epoch, it, opt.param_groups[0]["lr"])
                finite = guard.check_loss(loss_value, place)
                with no_sync():
                    guard.backward(out.loss / group_size)
                stepped = sync and guard.update(place)
                global_step += 1
                bar.update(1)
                lines = eta.tick() if dist_info.is_main else []
                for line in [x for x in lines if x.startswith(ETA_WARNING)] if quiet else lines:
                    tqdm.write(line, file=sys.stdout)
                if not finite:
                    continue
                if math.isnan(first_loss):
                    first_loss = loss_value
                last_loss = loss_value
                running += loss_value
                count += 1
                bar.set_postfix(
                    epoch=epoch, loss=f"{loss_value:.4f}", lr=f"{opt.param_groups[0]['lr']:.2e}"
                )
                if global_step % t.log_every == 0:
                    record = {
                        "kind": "train",
                        "step": global_step,
                        "epoch": epoch,
                        "loss": loss_value,
                        "lr": opt.param_groups[0]["lr"],
                        "mask_ratio": ratio,
                    }
                    record.update({k: float(v) for k, v in out.logs.items()})
                    log.write(record)
                if (
                    stepped
                    and t.save_every_steps
                    and guard.steps % t.save_every_steps == 0
                    and it + 1 < iters
                ):
                    if dist_info.is_main:
                        progress = {"loss_sum": running, "count": count, "skipped": guard.skipped}
                        save_last(epoch, it + 1, progress)
                    barrier()
            epoch_loss = all_reduce_mean(running / max(count, 1))
            if dist_info.is_main:
                log.write(
                    {
                        "kind": "epoch",
                        "step": global_step,
                        "epoch": epoch,
                        "loss": epoch_loss,
                        "skipped_steps": guard.skipped,
                        "seconds": time.time() - t0,
                    }
                )
                state = save_last(epoch + 1, 0, {"skipped": guard.skipped})
                if t.save_every and (epoch + 1) % t.save_every == 0:
                    atomic_save(state, numbered_checkpoint(run.checkpoints, epoch + 1))
                    prune_numbered(run.checkpoints, t.keep_last)
            barrier()
    finally:
        bar.close()
        log.close()
    return PretrainResult(
        run.root, model, last_loss, first_loss, global_step, time.time() - t0, splits
    )


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
    noise = mask_noise_for(cfg.mask, n * dist_info.world, geom, g, ratio)
    return ratio, noise[dist_info.rank * n : (dist_info.rank + 1) * n]


def _place_process(t: TrainConfig) -> tuple[torch.device, DistInfo]:
    """This process's device and place in the process group (torchrun or one process)."""
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
    return device, dist_info


def _dry_run_loss(
    step_module: nn.Module,
    splits: Splits,
    batching: Batching,
    img_size: int,
    device: torch.device,
    geom: MaskGeometry,
    cfg: Config,
    autocast: AbstractContextManager[None],
) -> float:
    """Loss of the first training batch, without a gradient (checks shapes end to end)."""
    imgs, _ = next(iter(train_batches(splits.train, batching, 0, img_size, device)))
    g = torch.Generator(device="cpu").manual_seed(derive_seed(cfg.train.seed, 0, 0, 0, 31))
    noise = mask_noise_for(cfg.mask, imgs.shape[0], geom, g)
    with torch.no_grad(), autocast:
        return float(step_module(imgs, cfg.mask.ratio, noise.to(device)).loss)
