"""`maelab demo`: the theory study on the study world, its verdicts and report."""

from __future__ import annotations

import argparse

from maelab.cli.common import (
    config_path,
)


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the theory study on the study world: verdicts.json and an HTML report",
        description="The study declared in maelab/experiments/studies/world.py: mask units "
        "patch / cell / region / straddled region at ratio 0.75, 5 seeds, and U-MAE, 3 seeds "
        "(--full: the mask-ratio sweep, longer runs, and the real-image rows on digits, "
        "studies/real_images.py); each run probed beside the same seed's random encoder and "
        "raw pixels; rows decided by paired intervals over seeds into OUT/verdicts.json and "
        "OUT/report.html. Resumable. Budgets: edit maelab/configs/demo.yaml or pass key=value.",
    )
    p.add_argument(
        "-c", "--config", default=None, help="demo YAML (default: the shipped demo.yaml)"
    )
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="e.g. train.epochs=5 sweep.seeds=[0] sweep.workers=1",
    )
    p.add_argument("--quick", action="store_true", help="a few steps per run (checks the pipeline)")
    p.add_argument(
        "--full",
        action="store_true",
        help="add the mask-ratio sweep, longer runs and the real-image rows (digits)",
    )
    p.add_argument(
        "--pilot",
        action="store_true",
        help="train every condition 3x longer on the tuning seed (seed 0) into OUT/pilot: the "
        "pilots the demo's convergence check reads (shipped for the default budget)",
    )
    p.add_argument("--out", default=None, help="study folder (default: runs/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from maelab.experiments.calibration_verdicts import misses
    from maelab.experiments.decide import format_decision
    from maelab.experiments.demo import run_demo
    from maelab.experiments.validity import validity_problems
    from maelab.verdicts import VERDICTS_FILE, read_verdicts, summary

    cfg = config_path(args.config) if args.config else None
    if args.pilot:
        from maelab.experiments.demo import run_pilot

        path, entry = run_pilot(cfg, args.overrides, quick=args.quick, out=args.out,
                                quiet=args.quiet, full=args.full)  # fmt: skip
        for cond, v in entry["conditions"].items():
            print(f"pilot {cond}: loss {v['loss']:.4f}, gate readout {v['readout']:.3f} "
                  f"(3x the runs' steps, seed {entry['seed']})")  # fmt: skip
        print(f"pilots: {path}")
        return 0
    res = run_demo(
        cfg, args.overrides, quick=args.quick, out=args.out, quiet=args.quiet, full=args.full
    )
    if res.calibration is not None:
        missed = misses(res.calibration)
        rows = len(res.calibration.verdicts)
        print(
            f"calibration: {rows - len(missed)} of {rows} rows reproduce their exact answers"
            + (f"; MISSED: {', '.join(v.claim for v in missed[:3])}" if missed else "")
        )
    print(format_decision(res.decision))
    counts = summary(res.decision.verdicts)
    print(
        f"demo finished in {res.seconds / 60:.1f} min: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + " (predictions; instrument checks apart)"
    )
    problems = validity_problems(read_verdicts(res.dir / VERDICTS_FILE))
    print("validity: " + ("placebo, positive controls and convergence hold for every decided row"
                          if not problems else f"{len(problems)} PROBLEM(S): "
                          + "; ".join(problems[:3])))  # fmt: skip
    print(f"verdicts: {res.dir / VERDICTS_FILE}")
    print(f"report: {res.report.path}")
    return 0
