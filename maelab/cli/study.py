"""`maelab sweep`, `report`, `demo`, `analyze` and `bench`."""

from __future__ import annotations

import argparse
from pathlib import Path

from maelab.cli.common import (
    add_config_args,
    config_path,
)
from maelab.cli.evaluate import add_analyze_decoder, add_analyze_probes
from maelab.errors import ConfigError, MaelabError


# ------------------------------------------------------------------ experiments (sweep, demo, report, analyze)
def _add_sweep(sub: argparse._SubParsersAction) -> None:
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


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one self-contained HTML page over a run or a sweep",
        description="Training curves, reconstructions, probe tables with baselines, "
        "identifiability heat map, collapse spectra and the Cao probes, each beside "
        "the paper's prediction with a computed verdict.",
    )
    p.add_argument("folder", help="a run folder or a sweep folder")
    p.add_argument("--out", default=None, help="HTML path (default: FOLDER/report.html)")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from maelab import verdicts as vd
    from maelab.report import build_report
    from maelab.run_folder import RunFolder

    if not Path(args.folder).is_dir():
        raise ConfigError(f"'{args.folder}' is not a folder; give a run or sweep folder")
    try:
        report = build_report(args.folder, args.out)
    except FileNotFoundError as exc:
        raise MaelabError(str(exc)) from None
    counts = report.counts()
    decided = "".join(
        f", {n} {k}" for k, n in counts.items() if k not in ("agrees", "disagrees", "not measured")
    )  # outcomes of rows decided by an interval: inconclusive, regime not reached
    study = RunFolder(args.folder).verdicts
    print(
        ("outside the study: " if study.is_file() else "")
        + f"{counts['agrees']} predictions agree, {counts['disagrees']} disagree{decided}, "
        f"{counts['not measured']} not measured"
    )
    if study.is_file():  # a demo folder: the study's own rows, decided by paired intervals
        try:
            rows = vd.summary(vd.read_verdicts(study).verdicts)
            print("study (verdicts.json): " + ", ".join(f"{n} {k}" for k, n in rows.items()))
        except vd.VerdictsError as exc:
            print(f"study: not read ({exc}); rerun `maelab demo` on this folder to rewrite it")
    print(f"report: {report.path}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="the theory study on the study world: verdicts.json and an HTML report",
        description="Mask units patch / cell / region / straddled region at ratio 0.75, 5 "
        "seeds, and U-MAE, 3 seeds (--full: the mask-ratio sweep, longer runs, and the "
        "real-image rows on digits, demo_real.yaml); each run probed "
        "beside the same seed's random encoder and raw pixels; rows decided by paired "
        "intervals over seeds into OUT/verdicts.json and OUT/report.html. Resumable. Budget: "
        "edit maelab/configs/demo.yaml or pass key=value.",
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
    p.add_argument("--out", default=None, help="study folder (default: runs/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from maelab.experiments.demo import run_demo
    from maelab.experiments.study_rows import format_table
    from maelab.verdicts import VERDICTS_FILE, summary

    cfg = config_path(args.config) if args.config else None
    res = run_demo(
        cfg, args.overrides, quick=args.quick, out=args.out, quiet=args.quiet, full=args.full
    )
    print(format_table(res.table))
    counts = summary(res.table.verdicts)
    print(
        f"demo finished in {res.seconds / 60:.1f} min: "
        + ", ".join(f"{n} {k}" for k, n in counts.items())
        + " (predictions; instrument checks apart)"
    )
    print(f"verdicts: {res.dir / VERDICTS_FILE}")
    print(f"report: {res.report.path}")
    return 0


def _add_analyze(sub: argparse._SubParsersAction) -> None:
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
    c.add_argument("--pool", choices=["cls", "mean"], default="cls")
    c.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="mask ratio of the two views (default: each run's)",
    )
    c.add_argument("overrides", nargs="*", metavar="data.key=value", help="data overrides")
    c.set_defaults(handler=_run_analyze_collapse)
    add_analyze_probes(what)
    add_analyze_decoder(what)


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


# ------------------------------------------------------------------ bench
def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench", help="training throughput vs Hugging Face ViTMAE and a textbook timm MAE",
        description="Images/s, MFU (and peak memory with --memory) of full pretraining steps of "
        "maelab, Hugging Face ViTMAEForPreTraining and a textbook timm MAE with the same weights, "
        "interleaved, medians of repeats. Quick defaults; `python -m maelab.bench` (or "
        "benchmarks/train_throughput.py) runs the full set.")  # fmt: skip
    p.add_argument("--configs", default="tiny", help="comma-separated, of tiny, vit-b")
    p.add_argument("--impls", default="maelab,hf,timm-ref",
                   help="comma-separated, of maelab, hf, timm-ref, maelab-compiled")  # fmt: skip
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=2, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--memory", action="store_true", help="also peak memory (one subprocess each)")
    p.add_argument("--json", default=None, help="write the results to this file")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    from maelab.bench.throughput import main as bench_main

    argv = ["--configs", args.configs, "--impls", args.impls, "--batch", str(args.batch),
            "--steps", str(args.steps), "--repeats", str(args.repeats), "--warmup", str(args.warmup)]  # fmt: skip
    if args.threads:
        argv += ["--threads", str(args.threads)]
    if args.memory:
        argv.append("--memory")
    if args.json:
        argv += ["--json", args.json]
    try:
        bench_main(argv)
    except (ValueError, RuntimeError) as exc:
        raise MaelabError(str(exc)) from None
    return 0
