"""`maelab calibrate`: the pipeline on Gaussian worlds whose answers are exact."""

from __future__ import annotations

import argparse

from maelab.errors import ConfigError

DEFAULT_OUT = "runs/calibration"


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "calibrate",
        help="known answers first: the trainer and readouts on Gaussian worlds with exact optima",
        description="Trains linear MAEs and a micro ViT MAE on Gaussian worlds with maelab's "
        "engine and masks, and compares each with its exact answer (the linear MAE's optimum, "
        "its reach, the latent shares of a linear-Gaussian hierarchy, the Bayes bound of the "
        "masked loss). Writes OUT/verdicts.json (kind calibration), OUT/calibration.json and "
        "figures; exits 1 when a row misses its expected outcome (docs/theory.md, "
        "'Calibration: known answers').",
    )
    p.add_argument("--out", default=DEFAULT_OUT, help=f"folder (default: {DEFAULT_OUT})")
    p.add_argument("--workers", type=int, default=2, help="training runs at the same time")
    p.add_argument(
        "--quick", action="store_true", help="a small grid on a small budget (a smoke test)"
    )
    p.set_defaults(handler=_run_calibrate)


def _run_calibrate(args: argparse.Namespace) -> int:
    from maelab.experiments.calibration import run_calibration
    from maelab.experiments.calibration_verdicts import misses, write_calibration_verdicts

    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: give at least 1")
    result = run_calibration(args.out, quick=args.quick, workers=args.workers)
    path, record = write_calibration_verdicts(result)
    for row in result.rows:
        status = "pass" if row.passed else f"MISS ({len(row.failed)} of {len(row.checks)} checks)"
        print(f"{row.name:<26} {status}")
        for check in row.failed:
            print(
                f"    {check.condition}, {check.quantity}: measured {check.treated:.4g}, "
                f"exact {check.expected:.4g}, tolerance {check.tolerance:.3g}"
            )
    missed = misses(record)
    print(
        f"calibration: {len(record.verdicts) - len(missed)} of {len(record.verdicts)} rows as "
        f"expected in {result.seconds:.0f} s; verdicts: {path}"
    )
    return 1 if missed else 0
