"""`maelab probe`: linear probe and k-NN of a checkpoint's frozen encoder and its baselines."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    add_ckpt_args,
    config_path,
    stored_config,
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="linear probe + k-NN of a pretrained encoder and its baselines",
        description="Linear probe and k-NN (frozen, cached features) of the checkpoint's encoder, "
        "a random encoder of the same architecture and raw pixels. Features: mean of the patch "
        "tokens (probe.pool=cls: the class token). Data default to the checkpoint's; "
        "override with data.*, probe.* and baselines= (e.g. data.name=digits "
        "probe.linear_probe.epochs=50 probe.pool=cls baselines=[random]). "
        "Writes probe.json and probe.txt into the run folder.",
    )
    add_ckpt_args(p, "data.name=digits probe.linear_probe.epochs=50 probe.pool=cls")
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
        f"k-NN k={cfg.probe.knn_k} t={cfg.probe.knn_t:g}, top-1/top-5 in %):"
    )
    print(rep.table)
    print(f"wrote {rep.json_path} ({rep.seconds:.1f} s)")
    return 0
