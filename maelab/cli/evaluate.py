"""`maelab probe`, `finetune` and `reconstruct`: evaluating a checkpoint."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    add_ckpt_args,
    config_path,
    stored_config,
)
from maelab.errors import ConfigError


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="linear probe + k-NN of a pretrained encoder and its baselines",
        description="Linear probe and k-NN (frozen, cached features) of the checkpoint's encoder, "
        "a random encoder of the same architecture and raw pixels. Features: mean of the patch "
        "tokens (probe.pool=cls: the class token). Data default to the checkpoint's; "
        "override with data.* and probe.* (e.g. data.name=digits probe.epochs=50 probe.pool=cls). "
        "Writes probe.json and probe.txt into the run folder.",
    )
    add_ckpt_args(p, "data.name=digits probe.epochs=50 probe.pool=cls")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_probe)


def _run_probe(args: argparse.Namespace) -> int:
    from maelab.evaluation.frozen import evaluate_frozen, frozen_run_config

    cfg = frozen_run_config(
        stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides
    )
    rep = evaluate_frozen(args.ckpt, cfg, quiet=args.quiet)
    print(
        f"probe of {args.ckpt} on {cfg.data.name} ({cfg.probe.pool} features, "
        f"k-NN k={cfg.probe.k} t={cfg.probe.t:g}, top-1/top-5 in %):"
    )
    print(rep.table)
    print(f"wrote {rep.json_path} ({rep.seconds:.1f} s)")
    return 0


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder as a timm ViT classifier",
        description="Fine-tune the checkpoint's encoder end to end (layer-wise lr decay, drop path, "
        "mixup/cutmix, label smoothing). Data default to the checkpoint's; override with data.* and "
        "finetune.* (e.g. finetune.epochs=5 finetune.mixup=0). Writes RUN/finetune/.",
    )
    add_ckpt_args(p, "finetune.epochs=5 finetune.mixup=0 run_dir=runs/ft")
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from the fine-tuning run's checkpoints/last.pt, or the given file",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from maelab.evaluation.finetune import finetune, finetune_run_config

    cfg = finetune_run_config(
        stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides
    )
    res = finetune(args.ckpt, cfg, resume=args.resume, quiet=args.quiet)
    top5 = "" if res.top5 is None else f", top-5 {res.top5:.1f}%"
    print(
        f"fine-tuned {res.epochs} epochs on {cfg.data.name}: test top-1 {res.top1:.1f}%{top5} "
        f"(best {res.best_top1:.1f}%) in {res.seconds:.1f} s"
    )
    print(f"run folder: {res.run_dir}  (finetune.json, metrics.jsonl, checkpoints/last.pt)")
    return 0


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="PNG grid: original / masked / reconstruction (visible patches as input)",
        description="Reconstruct test images with a pretraining checkpoint. The checkpoint's config "
        "is the default; override e.g. mask.ratio=0.9 mask.strategy=block mask.unit=8 data.name=...",
    )
    add_ckpt_args(p, "mask.ratio=0.9 mask.strategy=block mask.unit=8")
    p.add_argument("--num", type=int, default=8, help="number of images (rows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask")
    p.add_argument(
        "--out", default=None, help="PNG path (default: RUN/figures/reconstruction_*.png)"
    )
    p.set_defaults(handler=_run_reconstruct)


def _run_reconstruct(args: argparse.Namespace) -> int:
    from maelab.evaluation.reconstruct import reconstruct_checkpoint, reconstruct_config

    if args.num < 1:
        raise ConfigError(f"--num {args.num}: give at least 1 image")
    cfg = reconstruct_config(
        stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides
    )
    path = reconstruct_checkpoint(args.ckpt, cfg, args.out, num_images=args.num, seed=args.seed)
    print(f"wrote {path}")
    return 0
