"""`maelab reconstruct`: original / masked / reconstruction grids of a checkpoint."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    add_ckpt_args,
    config_path,
    stored_config,
)
from maelab.errors import ConfigError


def add(sub: argparse._SubParsersAction) -> None:
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
