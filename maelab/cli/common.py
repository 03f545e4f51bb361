"""What every `maelab` subcommand shares: config files and overrides, checkpoint arguments."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from maelab.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
Handler = Callable[[argparse.Namespace], int]


def config_path(name: str) -> str:
    """A YAML path, or the name of a config shipped with maelab (e.g. `quickstart`)."""
    p = Path(name)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return str(p)
    shipped = CONFIG_DIR / f"{name}.yaml"
    if shipped.exists():
        return str(shipped)
    names = ", ".join(sorted(f.stem for f in CONFIG_DIR.glob("*.yaml")))
    raise ConfigError(f"config '{name}' is neither a file nor a shipped config ({names})")


def add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        help="YAML file or shipped config name; repeat to merge left to right",
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. train.epochs=5 mask.ratio=0.9 run_dir=runs/x",
    )


def load_args(args: argparse.Namespace):  # noqa: ANN202
    from maelab.config import load_config

    return load_config([config_path(c) for c in args.config], args.overrides)


def rank_zero() -> bool:
    """False in the torchrun processes other than rank 0: they print nothing."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def add_ckpt_args(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument(
        "--ckpt", required=True, help="a pretraining checkpoint, e.g. RUN/checkpoints/last.pt"
    )
    p.add_argument(
        "-c",
        "--config",
        action="append",
        default=[],
        help="YAML file or shipped config name merged over the checkpoint's settings",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {example}"
    )


def stored_config(ckpt: str) -> dict:
    from maelab.models.checkpoints import stored_config_tree

    return stored_config_tree(ckpt)
