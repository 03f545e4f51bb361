"""`maelab sweep`: a grid of pretraining runs and their evaluations (resumable)."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    add_config_args,
    config_path,
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="grid of pretraining runs + standard evaluations (resumable)",
        description="Pretrain one run per grid point (product of --grid axes, times --seeds), evaluate "
        "each (linear probe, k-NN, collapse, identifiability) into RUN/results.json. Re-running skips "
        "finished runs and resumes unfinished ones. A YAML `sweep:` section may hold the grid.",
    )
    add_config_args(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="an axis, e.g. mask.ratio=0.1,0.5,0.75,0.9; repeat for a product",
    )
    p.add_argument("--seeds", default=None, help="train.seed values, e.g. 0,1,2")
    p.add_argument("--out", default=None, help="sweep folder (default: sweep.dir or run_dir)")
    p.add_argument("--workers", type=int, default=None, help="runs trained at the same time")
    p.add_argument(
        "--dry-run", action="store_true", help="list the runs and their state, train nothing"
    )
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from maelab.experiments.plan import load_sweep
    from maelab.experiments.sweep import run_sweep
    from maelab.run_folder import RunFolder

    overrides = list(args.overrides) + ([f"sweep.workers={args.workers}"] if args.workers else [])
    plan = load_sweep(
        [config_path(c) for c in args.config], overrides, args.grid, args.seeds, args.out
    )
    if args.dry_run:
        for pt in plan.points:
            print(f"{RunFolder(plan.dir / pt.name).status():8s} {plan.dir / pt.name}")
        return 0
    res = run_sweep(plan, quiet=args.quiet)
    print(
        f"sweep {res.dir}: {len(res.ran)} run, {len(res.skipped)} already done, "
        f"{len(res.failed)} failed ({res.seconds:.0f} s)"
    )
    for name, why in res.failed.items():
        print(f"  failed: {name}: {why}")
    print(f"report: maelab report {res.dir}")
    return 1 if res.failed else 0
