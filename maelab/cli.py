"""The `maelab` command: argument parsing only; each subcommand calls the library."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

from maelab.errors import ConfigError, MaelabError

CONFIG_DIR = Path(__file__).parent / "configs"
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


def _add_config_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", action="append", default=[],
                   help="YAML file or shipped config name; repeat to merge left to right")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides, e.g. train.epochs=5 mask.ratio=0.9 run_dir=runs/x")


def _load(args: argparse.Namespace):  # noqa: ANN202
    from maelab.config import load_config

    return load_config([config_path(c) for c in args.config], args.overrides)


# ------------------------------------------------------------------ pretrain
def _add_pretrain(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pretrain", help="pretrain an MAE (one process or torchrun)",
                       description="Pretrain a masked autoencoder. Config: YAML files + key=value.")
    _add_config_args(p)
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from run_dir/checkpoints/last.pt, or from the given checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--dry-run", action="store_true",
                   help="check config, data, model (and --resume checkpoint), run one batch, write nothing")
    p.set_defaults(handler=_run_pretrain)


def _rank_zero() -> bool:
    """False in the torchrun processes other than rank 0: they print nothing."""
    import torch.distributed as dist

    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def _run_pretrain(args: argparse.Namespace) -> int:
    from maelab.engine.pretrain import pretrain
    from maelab.evaluation.reconstruct import write_reconstruction_figure
    from maelab.run_folder import RunFolder

    if args.resume and "=" in args.resume and not Path(args.resume).exists():
        # `--resume train.epochs=9`: argparse took the override for the optional path
        args.overrides, args.resume = [*args.overrides, args.resume], "auto"
    cfg = _load(args)
    if args.dry_run:
        res = pretrain(cfg, resume=args.resume, quiet=True, dry_run=True)
        if not _rank_zero():
            return 0
        n = sum(p.numel() for p in res.model.parameters())
        print(f"dry run OK: {n / 1e6:.2f}M-parameter model, first-batch loss {res.final_loss:.4f}; "
              f"nothing written to {res.run_dir}")
        return 0
    res = pretrain(cfg, resume=args.resume, quiet=args.quiet)
    if not _rank_zero():
        return 0
    write_reconstruction_figure(res.model, res.splits.test, cfg.mask, RunFolder(res.run_dir))
    print(f"loss {res.first_loss:.4f} -> {res.final_loss:.4f} in {res.steps} steps ({res.seconds:.1f} s)")
    print(f"run folder: {res.run_dir}  (checkpoints/last.pt, figures/reconstruction.png, metrics.jsonl)")
    return 0


# ------------------------------------------------------------------ datasets
def _add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("datasets", help="list the datasets maelab knows",
                       description="List registered datasets, their sizes and whether they work offline.")
    p.set_defaults(handler=_run_datasets)


def _run_datasets(args: argparse.Namespace) -> int:
    from maelab.data import DATASETS

    print(f"{'name':<18}{'train':>8}{'test':>8}  {'offline':<8} description")
    for e in sorted(DATASETS.values(), key=lambda e: (not e.offline, e.name)):
        tr = "-" if e.num_train is None else str(e.num_train)
        te = "-" if e.num_test is None else str(e.num_test)
        print(f"{e.name:<18}{tr:>8}{te:>8}  {'yes' if e.offline else 'download':<8} {e.description}")
    return 0


# ------------------------------------------------------------------ evaluation (probe, finetune, reconstruct)
def _add_ckpt_args(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--ckpt", required=True, help="a pretraining checkpoint, e.g. RUN/checkpoints/last.pt")
    p.add_argument("-c", "--config", action="append", default=[],
                   help="YAML file or shipped config name merged over the checkpoint's settings")
    p.add_argument("overrides", nargs="*", metavar="key=value", help=f"config overrides, e.g. {example}")


def _stored_config(ckpt: str) -> dict:
    from maelab.evaluation.checkpoints import stored_config_tree

    return stored_config_tree(ckpt)


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe", help="linear probe + k-NN of a pretrained encoder and its baselines",
        description="Linear probe and k-NN (frozen, cached features) of the checkpoint's encoder, "
        "a random encoder of the same architecture and raw pixels. Data default to the checkpoint's; "
        "override with data.* and probe.* (e.g. data.name=digits probe.epochs=50 probe.pool=mean). "
        "Writes probe.json and probe.txt into the run folder.")
    _add_ckpt_args(p, "data.name=digits probe.epochs=50 probe.pool=mean")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_probe)


def _run_probe(args: argparse.Namespace) -> int:
    from maelab.evaluation.frozen import evaluate_frozen, frozen_run_config

    cfg = frozen_run_config(_stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides)
    rep = evaluate_frozen(args.ckpt, cfg, quiet=args.quiet)
    print(f"probe of {args.ckpt} on {cfg.data.name} ({cfg.probe.pool} features, "
          f"k-NN k={cfg.probe.k} t={cfg.probe.t:g}, top-1/top-5 in %):")
    print(rep.table)
    print(f"wrote {rep.json_path} ({rep.seconds:.1f} s)")
    return 0


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune", help="fine-tune a pretrained encoder as a timm ViT classifier",
        description="Fine-tune the checkpoint's encoder end to end (layer-wise lr decay, drop path, "
        "mixup/cutmix, label smoothing). Data default to the checkpoint's; override with data.* and "
        "finetune.* (e.g. finetune.epochs=5 finetune.mixup=0). Writes RUN/finetune/.")
    _add_ckpt_args(p, "finetune.epochs=5 finetune.mixup=0 run_dir=runs/ft")
    p.add_argument("--resume", nargs="?", const="auto", default=None,
                   help="continue from the fine-tuning run's checkpoints/last.pt, or the given file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from maelab.evaluation.finetune import finetune, finetune_run_config

    cfg = finetune_run_config(_stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides)
    res = finetune(args.ckpt, cfg, resume=args.resume, quiet=args.quiet)
    top5 = "" if res.top5 is None else f", top-5 {res.top5:.1f}%"
    print(f"fine-tuned {res.epochs} epochs on {cfg.data.name}: test top-1 {res.top1:.1f}%{top5} "
          f"(best {res.best_top1:.1f}%) in {res.seconds:.1f} s")
    print(f"run folder: {res.run_dir}  (finetune.json, metrics.jsonl, checkpoints/last.pt)")
    return 0


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct", help="PNG grid: original / masked / reconstruction / pasted",
        description="Reconstruct test images with a pretraining checkpoint. The checkpoint's config "
        "is the default; override e.g. mask.ratio=0.9 mask.strategy=block mask.unit=8 data.name=...")
    _add_ckpt_args(p, "mask.ratio=0.9 mask.strategy=block mask.unit=8")
    p.add_argument("--num", type=int, default=8, help="number of images (rows)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mask")
    p.add_argument("--out", default=None, help="PNG path (default: RUN/figures/reconstruction_*.png)")
    p.set_defaults(handler=_run_reconstruct)


def _run_reconstruct(args: argparse.Namespace) -> int:
    from maelab.evaluation.reconstruct import reconstruct_checkpoint, reconstruct_config

    if args.num < 1:
        raise ConfigError(f"--num {args.num}: give at least 1 image")
    cfg = reconstruct_config(_stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides)
    path = reconstruct_checkpoint(args.ckpt, cfg, args.out, num_images=args.num, seed=args.seed)
    print(f"wrote {path}")
    return 0


# ------------------------------------------------------------------ experiments (sweep, demo, report, analyze)
def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="grid of pretraining runs + standard evaluations (resumable)",
        description="Pretrain one run per grid point (product of --grid axes, times --seeds), evaluate "
        "each (linear probe, k-NN, collapse, identifiability) into RUN/results.json. Re-running skips "
        "finished runs and resumes unfinished ones. A YAML `sweep:` section may hold the grid.")
    _add_config_args(p)
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="an axis, e.g. mask.ratio=0.1,0.5,0.75,0.9; repeat for a product")
    p.add_argument("--seeds", default=None, help="train.seed values, e.g. 0,1,2")
    p.add_argument("--out", default=None, help="sweep folder (default: sweep.dir or run_dir)")
    p.add_argument("--workers", type=int, default=None, help="runs trained at the same time")
    p.add_argument("--dry-run", action="store_true", help="list the runs and their state, train nothing")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_run_sweep)


def _run_sweep(args: argparse.Namespace) -> int:
    from maelab.experiments.plan import load_sweep
    from maelab.experiments.sweep import run_sweep
    from maelab.run_folder import RunFolder

    overrides = list(args.overrides) + ([f"sweep.workers={args.workers}"] if args.workers else [])
    plan = load_sweep([config_path(c) for c in args.config], overrides, args.grid, args.seeds, args.out)
    if args.dry_run:
        for pt in plan.points:
            print(f"{RunFolder(plan.dir / pt.name).status():8s} {plan.dir / pt.name}")
        return 0
    res = run_sweep(plan, quiet=args.quiet)
    print(f"sweep {res.dir}: {len(res.ran)} run, {len(res.skipped)} already done, "
          f"{len(res.failed)} failed ({res.seconds:.0f} s)")
    for name, why in res.failed.items():
        print(f"  failed: {name}: {why}")
    print(f"report: maelab report {res.dir}")
    return 1 if res.failed else 0


def _add_report(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="one self-contained HTML page over a run or a sweep",
                       description="Training curves, reconstructions, probe tables with baselines, "
                       "identifiability heat map, collapse spectra and the Cao probes, each beside "
                       "the paper's prediction with a computed verdict.")
    p.add_argument("folder", help="a run folder or a sweep folder")
    p.add_argument("--out", default=None, help="HTML path (default: FOLDER/report.html)")
    p.set_defaults(handler=_run_report)


def _run_report(args: argparse.Namespace) -> int:
    from maelab.report import build_report

    if not Path(args.folder).is_dir():
        raise ConfigError(f"'{args.folder}' is not a folder; give a run or sweep folder")
    try:
        report = build_report(args.folder, args.out)
    except FileNotFoundError as exc:
        raise MaelabError(str(exc)) from None
    counts = report.counts()
    print(f"{counts['agrees']} predictions agree, {counts['disagrees']} disagree, "
          f"{counts['not measured']} not measured")
    print(f"report: {report.path}")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the theory study on the embedded synthetic data, with report",
                       description="MAE vs U-MAE, mask ratios 0.1-0.9 x two mask units, a decoder "
                       "ablation, over seeds; then the theory probes and runs/demo/report.html. "
                       "Resumable. Budget: edit maelab/configs/demo.yaml or pass key=value.")
    p.add_argument("-c", "--config", default=None, help="demo YAML (default: the shipped demo.yaml)")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="e.g. train.epochs=5 sweep.seeds=[0] sweep.workers=1")
    p.add_argument("--quick", action="store_true", help="a few steps per run (checks the pipeline)")
    p.add_argument("--out", default=None, help="study folder (default: runs/demo)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from maelab.experiments.demo import run_demo

    cfg = config_path(args.config) if args.config else None
    res = run_demo(cfg, args.overrides, quick=args.quick, out=args.out, quiet=args.quiet)
    for v in res.report.verdicts:
        print(f"  [{v.mark:>12}] {v.source}: {v.claim}")
    counts = res.report.counts()
    print(f"demo finished in {res.seconds / 60:.1f} min: {counts['agrees']} predictions agree, "
          f"{counts['disagrees']} disagree, {counts['not measured']} not measured")
    print(f"report: {res.report.path}")
    return 0


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="collapse analysis or all theory probes of checkpoints",
                       description="`analyze collapse`: spectra, effective rank, RankMe, alignment, "
                       "uniformity of one or more checkpoints (one overlay figure). `analyze probes`: "
                       "every theory probe on one checkpoint.")
    what = p.add_subparsers(dest="analysis", required=True, metavar="ANALYSIS")
    c = what.add_parser("collapse", help="dimensional collapse of one or more checkpoints")
    c.add_argument("--ckpt", action="append", required=True, help="checkpoint; repeat to overlay")
    c.add_argument("--label", action="append", default=None, help="legend label per --ckpt")
    c.add_argument("--out", default=None, help="folder for collapse.json / collapse.png")
    c.add_argument("--images", type=int, default=1024, help="test images to use")
    c.add_argument("--pool", choices=["cls", "mean"], default="cls")
    c.add_argument("--ratio", type=float, default=None, help="mask ratio of the two views (default: each run's)")
    c.set_defaults(handler=_run_analyze_collapse)
    q = what.add_parser("probes", help="all theory probes (Q1-Q5, identifiability) of a checkpoint")
    q.add_argument("--ckpt", required=True)
    q.add_argument("--probe", action="append", default=None, help="only these probes (repeat)")
    q.add_argument("--out", default=None, help="folder (default: RUN/probes)")
    q.set_defaults(handler=_run_analyze_probes)


def _run_analyze_collapse(args: argparse.Namespace) -> int:
    from maelab.evaluation.collapse import write_collapse_analysis

    if args.label and len(args.label) != len(args.ckpt):
        raise ConfigError(f"give one --label per --ckpt ({len(args.ckpt)} checkpoints, {len(args.label)} labels)")
    stats, json_path, png_path = write_collapse_analysis(
        args.ckpt, args.out, args.label, args.images, args.pool, args.ratio)
    print(f"{'run':<40}{'dim':>5}{'eff.rank':>10}{'RankMe':>9}{'align':>8}{'unif':>8}")
    for s in stats:
        print(f"{s.label[:39]:<40}{s.dim:>5}{s.effective_rank:>10.2f}{s.rankme:>9.2f}"
              f"{s.alignment:>8.3f}{s.uniformity:>8.3f}")
    print(f"wrote {json_path} and {png_path}")
    return 0


def _run_analyze_probes(args: argparse.Namespace) -> int:
    from maelab.probes.runner import probe_checkpoint
    from maelab.run_folder import RunFolder

    out = Path(args.out) if args.out else RunFolder.of_checkpoint(args.ckpt).probes
    try:
        records = probe_checkpoint(args.ckpt, out, args.probe)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    for name, rec in records.items():
        print(f"{name:<16} {rec['seconds']:6.1f} s  {out / (name + '.json')}  {out / (name + '.png')}")
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


# ------------------------------------------------------------------ main
COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_pretrain,
    _add_datasets,
    _add_probe,
    _add_finetune,
    _add_reconstruct,
    _add_sweep,
    _add_report,
    _add_demo,
    _add_analyze,
    _add_bench,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maelab", description="Masked autoencoders and measured tests of their theory."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Like `parse_args`, but `key=value` overrides may also follow the options."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if extra and (len(overrides) < len(extra) or not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def one_line(exc: BaseException) -> str:
    """The message of an error as one line.

    An error raised in a DataLoader worker comes back as "Caught X in DataLoader worker process
    N. Original Traceback ...": its last line holds the original message.
    """
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Original Traceback" in text:
        last = lines[-1]
        name = type(exc).__name__
        return last.split(f"{name}: ", 1)[1] if f"{name}: " in last else last
    return lines[0] if len(lines) == 1 else " ".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"maelab: warning: {one_line(Warning(str(message)))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line per warning, no source excerpt
        try:
            return args.handler(args)
        except ConfigError as exc:
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except MaelabError as exc:
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:  # disk full, permissions: the environment, not maelab
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("maelab: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
