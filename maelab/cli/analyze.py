"""`maelab analyze collapse | probes | decoder`: analyses of checkpoints and sweeps."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maelab.errors import ConfigError


def add(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="collapse analysis or all theory probes of checkpoints",
        description="`analyze collapse`: spectra, effective rank, RankMe, alignment, "
        "uniformity of one or more checkpoints (one overlay figure). `analyze probes`: "
        "theory probes and Cao's questions on one checkpoint. `analyze decoder`: Cao Q4 from "
        "a decoder-depth sweep.",
    )
    what = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    c = what.add_parser("collapse", help="dimensional collapse of one or more checkpoints")
    c.add_argument("--ckpt", action="append", required=True, help="checkpoint; repeat to overlay")
    c.add_argument("--label", action="append", default=None, help="legend label per --ckpt")
    c.add_argument("--out", default=None, help="folder for collapse.json / collapse.png")
    c.add_argument("--images", type=int, default=1024, help="test images to use")
    # models.pooling.DEFAULT_POOL, typed here: importing the models would slow `maelab --help`
    c.add_argument("--pool", choices=["cls", "mean"], default="mean", help="default: mean")
    c.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="mask ratio of the two views (default: each run's)",
    )
    c.add_argument("overrides", nargs="*", metavar="data.key=value", help="data overrides")
    c.set_defaults(handler=_run_analyze_collapse)
    _add_probes(what)
    _add_decoder(what)


def _run_analyze_collapse(args: argparse.Namespace) -> int:
    from maelab.evaluation.collapse import write_collapse_analysis

    if args.label and len(args.label) != len(args.ckpt):
        raise ConfigError(
            f"give one --label per --ckpt ({len(args.ckpt)} checkpoints, {len(args.label)} labels)"
        )
    stats, json_path, png_path = write_collapse_analysis(
        args.ckpt, args.out, args.label, args.images, args.pool, args.ratio, args.overrides
    )
    print(f"{'run':<40}{'dim':>5}{'eff.rank':>10}{'RankMe':>9}{'align':>8}{'unif':>8}")
    for s in stats:
        print(
            f"{s.label[:39]:<40}{s.dim:>5}{s.effective_rank:>10.2f}{s.rankme:>9.2f}"
            f"{s.alignment:>8.3f}{s.uniformity:>8.3f}"
        )
    print(f"wrote {json_path} and {png_path}")
    return 0


def _add_probes(what: argparse._SubParsersAction) -> None:
    q = what.add_parser(
        "probes",
        help="theory probes and Cao's questions (Q1-Q5) on one checkpoint",
        description="Every per-model theory probe and question experiment that applies to one "
        "checkpoint: a maelab run or official MAE weights (mae_pretrain_vit_*.pth, encoder "
        "only). Images: the checkpoint's data or data.* overrides (data.name=digits, "
        "data.name=folder data.root=DIR); they follow the model (its image size and channels; "
        "grey replicated to 3 channels with ImageNet statistics for official weights). Writes "
        "one JSON (+ PNG) per probe, question_Qn.json per question and verdicts.json (bootstrap "
        "intervals over images, n_seeds = 1) into RUN/probes (or --out). Q1, Q3 and Q5 are "
        "decided on the trained contrast minus the same contrast of the run's untrained start "
        "(same images, masks, perturbations); Q2 (lowrank data) on where the error-against-rank "
        "curve bends against the optimum's; Q5 (synthetic data) on the world minus its "
        "no-regions control world.",
    )
    q.add_argument("--ckpt", required=True, help="RUN/checkpoints/last.pt or an official .pth")
    q.add_argument(
        "--probe", action="append", default=None, help="only these probes / questions (repeat)"
    )
    q.add_argument("--out", default=None, help="folder (default: RUN/probes)")
    q.add_argument("--max-images", type=int, default=None, help="test images per probe")
    q.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, mps or auto")
    q.add_argument("--quiet", action="store_true", help="no progress bar")
    q.add_argument("overrides", nargs="*", metavar="data.key=value", help="data overrides")
    q.set_defaults(handler=_run_analyze_probes)


def _run_analyze_probes(args: argparse.Namespace) -> int:
    from maelab.engine.device import resolve_device
    from maelab.probes.runner import probe_checkpoint
    from maelab.run_folder import RunFolder

    if args.max_images is not None and args.max_images < 2:
        raise ConfigError(f"--max-images {args.max_images}: give at least 2 images")
    out = Path(args.out) if args.out else RunFolder.of_checkpoint(args.ckpt).probes
    try:
        run = probe_checkpoint(
            args.ckpt, out, args.probe, device=resolve_device(args.device),
            data_overrides=args.overrides, max_images=args.max_images, quiet=args.quiet,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for line in run.skipped:
        print(line)
    for name, rec in run.records.items():
        print(f"{name:<16} {rec['seconds']:6.1f} s  {out / (name + '.json')}")
    q5 = run.questions.get("Q5")
    if q5 is not None:  # the sign of each effect, before the row decides on their contrast
        print("Q5 effect (near advantage beyond the reference): " + ", ".join(
            f"{k} {v:+.4g}" for k, v in q5.details.items() if "_effect" in k))  # fmt: skip
    if run.verdicts is not None:
        from maelab.verdicts import read_verdicts

        for v in read_verdicts(run.verdicts).verdicts:
            print(format_verdict(v))
        print(f"verdicts: {run.verdicts}")
    return 0


def format_verdict(v: Any) -> str:
    """One verdict row as a line: claim, effect [CI] vs the control value, outcome."""
    lo, hi = v.ci
    control = "" if v.control is None else f", control {v.control:.4g}"
    return f"{v.claim}: effect {v.effect:+.4g} [{lo:+.4g}, {hi:+.4g}]{control} -> {v.outcome}"


def _add_decoder(what: argparse._SubParsersAction) -> None:
    d = what.add_parser(
        "decoder",
        help="Cao Q4 verdicts from a decoder-depth sweep (maelab sweep -c cao_q4)",
        description="Pairs the runs of a sweep over model.decoder_depth seed by seed (depth 0, "
        "1 and the deepest) and decides Q4's rows on the encoder's linear probe; writes "
        "verdicts.json (or --out) and the decoder-ablation figure into SWEEP/probes, where "
        "maelab report shows them.",
    )
    d.add_argument("--sweep", required=True, help="the sweep folder, e.g. runs/cao_q4")
    d.add_argument("--out", default=None, help="verdicts file or folder (default: the sweep's)")
    d.add_argument(
        "--pilot",
        default=None,
        help="the same sweep with 3x the epochs (e.g. maelab sweep -c cao_q4 train.epochs=X "
        "sweep.seeds=[0] --out runs/cao_q4_pilot): each condition must have converged against it",
    )
    d.set_defaults(handler=_run_analyze_decoder)


def _run_analyze_decoder(args: argparse.Namespace) -> int:
    from maelab.experiments.decoder_analysis import analyze_decoder, format_q4

    depths, decision, path = analyze_decoder(args.sweep, args.out, args.pilot)
    print(format_q4(depths, decision))
    print(f"verdicts: {path}")
    return 0
