"""`maelab finetune`: fine-tune a checkpoint's encoder as a timm ViT classifier."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    add_ckpt_args,
    config_path,
    stored_config,
)


def add(sub: argparse._SubParsersAction) -> None:
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
