"""End-to-end fine-tuning of a pretrained encoder as a timm VisionTransformer (the MAE recipe).

Layer-wise lr decay, AdamW without decay on biases / norms / tokens, drop path, mixup + cutmix
with label smoothing, warmup + half-cycle cosine per iteration, test top-1 after every epoch,
atomic checkpoints and exact resume (every random draw is seeded by (seed, epoch, step)).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field
from timm.data import Mixup
from timm.loss import LabelSmoothingCrossEntropy, SoftTargetCrossEntropy
from torch import nn
from tqdm import tqdm

from maelab.config import DataConfig, Strict, dump_config, load_config
from maelab.data import augment_enabled, build_splits
from maelab.data.base import Split
from maelab.data.loader import Batching, derive_seed, eval_batches, steps_per_epoch, train_batches
from maelab.engine.checkpoint import atomic_save, find_resume_checkpoint
from maelab.engine.device import autocast_for, resolve_device
from maelab.engine.metrics_log import MetricsLog
from maelab.engine.schedule import lr_at, scaled_lr
from maelab.engine.step import GuardedStep, StepPlace
from maelab.errors import CheckpointError, ConfigError
from maelab.evaluation.knn import topk_accuracy
from maelab.models.checkpoints import load_checkpoint, load_pretrained
from maelab.models.interop import to_timm_vit
from maelab.run_folder import RunFolder, write_json_atomic

NO_WEIGHT_DECAY = ("cls_token", "pos_embed", "dist_token")
ENCODER_ARCH = "encoder_arch"  # checkpoint entry: the encoder's MAEArch (heads are not in weights)


class FinetuneConfig(Strict):
    """The fine-tuning recipe, sized for a few CPU minutes on small data.

    The official ViT-B recipe differs in length, batch, lr and mixing: epochs 100, batch 1024,
    blr 5e-4, warmup 5, layer_decay 0.65, mixup 0.8, cutmix 1.0. Mixing regularises long runs;
    in 15 epochs on digits it cost 8 points (85.8% vs 94.2% top-1), so it is off by default.
    """

    epochs: int = Field(15, ge=1)
    batch_size: int = Field(
        64, ge=2
    )  # must be even with mixup / cutmix (images are mixed in pairs)
    blr: float = 4e-3  # lr = blr * batch / 256 unless `lr` is set
    lr: float | None = None
    min_lr: float = 1e-6
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    layer_decay: float = Field(0.75, gt=0.0, le=1.0)
    drop_path: float = Field(0.1, ge=0.0, lt=1.0)
    mixup: float = Field(0.0, ge=0.0)  # beta(alpha, alpha) mixing strength; official 0.8
    cutmix: float = Field(0.0, ge=0.0)  # official 1.0
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    global_pool: Literal["avg", "token"] = "avg"  # avg: mean patch token + a fresh fc_norm
    clip_grad: float | None = None
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"  # auto: bf16 on CUDA, else off
    seed: int = 0
    device: str = "auto"
    threads: int | None = None  # CPU threads; 1 is fastest on a busy machine


class FinetuneRunConfig(Strict):
    """What `maelab finetune` validates: data (default: the checkpoint's) and the recipe."""

    data: DataConfig = DataConfig()
    finetune: FinetuneConfig = FinetuneConfig()
    run_dir: str | None = None  # None: RUN/finetune next to the checkpoint's run


@dataclass
class FinetuneResult:
    run_dir: Path
    top1: float  # test top-1 after the last epoch, percent
    top5: float | None
    best_top1: float
    epochs: int
    seconds: float
    history: list[dict[str, Any]] = field(default_factory=list)


def finetune_run_config(
    ckpt_config: dict[str, Any], files: list[str] | None = None, overrides: list[str] | None = None
) -> FinetuneRunConfig:
    """The checkpoint's data section, then YAML files, then `key=value` overrides, validated."""
    base = {"data": ckpt_config.get("data", {})}
    return load_config(files, overrides, FinetuneRunConfig, base=base)


# ---------------------------------------------------------------------------- layer-wise lr decay
def layer_id_for_vit(name: str, num_layers: int) -> int:
    """0 for the embedding (cls token, pos embed, patch embed), i + 1 for blocks.i, else the top."""
    if name in ("cls_token", "pos_embed", "dist_token", "reg_token") or name.startswith(
        "patch_embed"
    ):
        return 0
    if name.startswith("blocks."):
        return int(name.split(".")[1]) + 1
    return num_layers


def param_groups_lrd(
    model: nn.Module,
    weight_decay: float = 0.05,
    layer_decay: float = 0.75,
    no_weight_decay: tuple[str, ...] = NO_WEIGHT_DECAY,
) -> list[dict[str, Any]]:
    """Parameter groups with `lr_scale = layer_decay ** (num_layers - layer_id)` (official BEiT/MAE).

    `num_layers = len(model.blocks) + 1`, so the head and final norms train at the full lr and
    the embedding at `layer_decay ** (depth + 1)`. 1-D tensors and the tokens get no decay.
    Each group carries its `name` ("layer_{id}_{decay|no_decay}") for inspection.
    """
    num_layers = len(model.blocks) + 1  # type: ignore[arg-type]
    groups: dict[str, dict[str, Any]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim == 1 or name in no_weight_decay
        layer_id = layer_id_for_vit(name, num_layers)
        key = f"layer_{layer_id}_{'no_decay' if no_decay else 'decay'}"
        if key not in groups:
            groups[key] = {
                "name": key,
                "lr_scale": layer_decay ** (num_layers - layer_id),
                "weight_decay": 0.0 if no_decay else weight_decay,
                "params": [],
                "param_names": [],
            }
        groups[key]["params"].append(p)
        groups[key]["param_names"].append(name)
    return list(groups.values())


# ---------------------------------------------------------------------------- evaluation
@torch.no_grad()
def evaluate_classifier(
    model: nn.Module, split: Split, image_size: int, device: torch.device, batch_size: int = 256
) -> tuple[float, float | None]:
    """Test top-1 and top-5 (None with 5 classes or fewer) of a classifier, in percent."""
    was_training = model.training
    model.eval()
    scores, targets = [], []
    for x, y in eval_batches(split, batch_size, image_size, device):
        scores.append(model(x).float().cpu())
        targets.append(y.cpu())
    model.train(was_training)
    s, t = torch.cat(scores), torch.cat(targets)
    return topk_accuracy(s, t, 1), (topk_accuracy(s, t, 5) if s.shape[1] > 5 else None)


def _criterion_and_mixup(cfg: FinetuneConfig, num_classes: int) -> tuple[nn.Module, Any]:
    if cfg.mixup > 0 or cfg.cutmix > 0:
        if cfg.batch_size % 2:
            raise ConfigError(
                f"finetune.batch_size={cfg.batch_size} must be even with mixup/cutmix"
            )
        mix = Mixup(
            mixup_alpha=cfg.mixup,
            cutmix_alpha=cfg.cutmix,
            label_smoothing=cfg.label_smoothing,
            num_classes=num_classes,
        )
        return SoftTargetCrossEntropy(), mix
    if cfg.label_smoothing > 0:
        return LabelSmoothingCrossEntropy(cfg.label_smoothing), None
    return nn.CrossEntropyLoss(), None


# ---------------------------------------------------------------------------- the loop
def finetune(
    ckpt: str | Path,
    run_cfg: FinetuneRunConfig,
    resume: str | bool | None = None,
    quiet: bool = False,
) -> FinetuneResult:
    """Fine-tune the encoder of a pretraining checkpoint on `run_cfg.data`; see the module doc."""
    cfg = run_cfg.finetune
    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out = RunFolder(run_cfg.run_dir or RunFolder.of_checkpoint(ckpt).finetune_run)
    splits = build_splits(run_cfg.data)
    mae, _ = load_pretrained(ckpt)
    if splits.train.channels != mae.arch.in_chans:
        raise ConfigError(
            f"data.name={run_cfg.data.name} has {splits.train.channels} channel(s) but the checkpoint's "
            f"encoder takes {mae.arch.in_chans}"
        )
    num_classes = splits.train.num_classes
    img_size = mae.arch.img_size
    encoder_arch = mae.arch_dict()

    torch.manual_seed(cfg.seed)
    vit = to_timm_vit(
        mae,
        num_classes,
        cfg.global_pool,
        drop_path_rate=cfg.drop_path,
        fc_norm=cfg.global_pool == "avg",
    )
    # the official head init: tiny weights so the first steps do not disturb the encoder
    nn.init.trunc_normal_(vit.head.weight, std=2e-5)
    nn.init.zeros_(vit.head.bias)
    vit = vit.to(device)
    del mae

    batching = Batching(
        batch_size=cfg.batch_size,
        seed=run_cfg.data.seed + cfg.seed,
        crop_scale=run_cfg.data.crop_scale,
        hflip=run_cfg.data.hflip,
        augment=augment_enabled(run_cfg.data),
        num_workers=run_cfg.data.num_workers,
    )
    iters = steps_per_epoch(len(splits.train), batching)
    base_lr = cfg.lr if cfg.lr is not None else scaled_lr(cfg.blr, cfg.batch_size)
    opt = torch.optim.AdamW(
        param_groups_lrd(vit, cfg.weight_decay, cfg.layer_decay), lr=base_lr, betas=cfg.betas
    )
    criterion, mixup_fn = _criterion_and_mixup(cfg, num_classes)
    autocast, scaler = autocast_for(cfg.amp, device)
    guard = GuardedStep(
        opt, list(vit.parameters()), scaler, cfg.clip_grad,
        section="finetune", what="fine-tuning ", can_skip=False,
    )  # fmt: skip

    start_epoch, best, history = 0, -math.inf, []
    resume_path = find_resume_checkpoint(resume, out.checkpoints)
    if resume_path is not None:
        state = load_checkpoint(resume_path)
        if state.get("kind") != "finetune":
            raise CheckpointError(
                f"checkpoint '{resume_path}' is not a maelab fine-tuning checkpoint"
            )
        try:
            vit.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if scaler and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0][:160]
            raise CheckpointError(
                f"checkpoint '{resume_path}' does not fit this fine-tuning run ({first})"
            ) from None
        start_epoch, best, history = (
            int(state["epoch"]),
            float(state["best_top1"]),
            list(state["history"]),
        )
        guard.last_good = str(resume_path)
    out.root.mkdir(parents=True, exist_ok=True)
    out.config.write_text(dump_config(run_cfg))
    log = MetricsLog(out, resume_step=start_epoch * iters if resume_path else None)

    t0 = time.time()
    bar = tqdm(
        total=cfg.epochs * iters,
        initial=start_epoch * iters,
        desc="finetune",
        disable=quiet,
        dynamic_ncols=True,
        file=sys.stderr,
    )
    top1, top5 = math.nan, None
    try:
        for epoch in range(start_epoch, cfg.epochs):
            vit.train()
            running = 0.0
            for it, (x, y) in enumerate(
                train_batches(splits.train, batching, epoch, img_size, device)
            ):
                lr = lr_at(epoch + it / iters, cfg.epochs, cfg.warmup_epochs, base_lr, cfg.min_lr)
                for group in opt.param_groups:
                    group["lr"] = lr * group["lr_scale"]
                # drop path (torch RNG) and mixup (numpy RNG) draw from per-step seeds: exact resume
                step_seed = derive_seed(cfg.seed, epoch, it, 43)
                torch.manual_seed(step_seed)
                np.random.seed(step_seed % 2**32)
                target: torch.Tensor = y
                if mixup_fn is not None:
                    x, target = mixup_fn(x, y)
                with autocast:
                    loss = criterion(vit(x).float(), target)
                value = float(loss.detach())
                place = StepPlace(epoch * iters + it + 1, epoch, it, lr)
                guard.check_loss(value, place)
                guard.backward(loss)
                guard.update(place)
                running += value
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{value:.3f}", lr=f"{lr:.2e}")
            top1, top5 = evaluate_classifier(vit, splits.test, img_size, device)
            best = max(best, top1)
            record = {
                "kind": "finetune",
                "step": (epoch + 1) * iters,
                "epoch": epoch,
                "loss": running / iters,
                "lr": lr,
                "test_top1": top1,
                "test_top5": top5,
                "seconds": time.time() - t0,
            }
            history.append(record)
            log.write({k: v for k, v in record.items() if v is not None})
            if not quiet:
                bar.write(
                    f"epoch {epoch}: loss {running / iters:.4f}  test top-1 {top1:.1f}%",
                    file=sys.stderr,
                )
            guard.check_weights(vit, (epoch + 1) * iters)
            atomic_save(
                {
                    "kind": "finetune",
                    "model": vit.state_dict(),
                    "optimizer": opt.state_dict(),
                    "scaler": scaler.state_dict() if scaler else None,
                    "epoch": epoch + 1,
                    "best_top1": best,
                    "history": history,
                    "num_classes": num_classes,
                    "global_pool": cfg.global_pool,
                    ENCODER_ARCH: encoder_arch,
                    "pretrained": str(Path(ckpt).resolve()),
                    "config": run_cfg.model_dump(mode="json"),
                },
                out.last_checkpoint,
            )
            guard.last_good = str(out.last_checkpoint)
    finally:
        bar.close()
        log.close()
    if start_epoch >= cfg.epochs and history:  # nothing left to train: report the saved state
        top1, top5 = history[-1]["test_top1"], history[-1].get("test_top5")
    result = FinetuneResult(out.root, top1, top5, best, cfg.epochs, time.time() - t0, history)
    write_json_atomic(
        out.finetune_result,
        {
            "checkpoint": str(Path(ckpt).resolve()),
            "top1": top1,
            "top5": top5,
            "best_top1": best,
            "epochs": cfg.epochs,
            "seconds": result.seconds,
            "history": history,
        },
    )
    return result
