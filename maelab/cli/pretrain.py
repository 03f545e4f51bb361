"""`maelab pretrain`: pretrain an MAE (one process or torchrun)."""

from __future__ import annotations

import argparse
from pathlib import Path

from maelab.cli.common import (
    add_config_args,
    load_args,
    rank_zero,
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain",
        help="pretrain an MAE (one process or torchrun)",
        description="Pretrain a masked autoencoder. Config: YAML files + key=value.",
    )
    add_config_args(p)
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from run_dir/checkpoints/last.pt, or from the given checkpoint",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="check config, data, model (and --resume checkpoint), run one batch, write nothing",
    )
    p.set_defaults(handler=_run_pretrain)


def _run_pretrain(args: argparse.Namespace) -> int:
    from maelab.engine.pretrain import pretrain
    from maelab.evaluation.reconstruct import write_reconstruction_figure
    from maelab.run_folder import RunFolder

    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        # `--resume train.epochs=9`: argparse took the override for the optional path
        args.overrides, args.resume = [*args.overrides, args.resume], "auto"
    cfg = load_args(args)
    if args.dry_run:
        res = pretrain(cfg, resume=args.resume, quiet=True, dry_run=True)
        if not rank_zero():
            return 0
        n = sum(p.numel() for p in res.model.parameters())
        print(
            f"dry run OK: {n / 1e6:.2f}M-parameter model, first-batch loss {res.final_loss:.4f}; "
            f"nothing written to {res.run_dir}"
        )
        return 0
    res = pretrain(cfg, resume=args.resume, quiet=args.quiet)
    if not rank_zero():
        return 0
    if res.complete_at_epoch is not None:
        epoch = res.complete_at_epoch
        print(f"run already complete at step {res.steps} (epoch {epoch}); nothing to do")
        return 0
    write_reconstruction_figure(res.model, res.splits.test, cfg.mask, RunFolder(res.run_dir))
    print(
        f"loss {res.first_loss:.4f} -> {res.final_loss:.4f} in {res.steps} steps ({res.seconds:.1f} s)"
    )
    print(
        f"run folder: {res.run_dir}  (checkpoints/last.pt, figures/reconstruction.png, metrics.jsonl)"
    )
    return 0
