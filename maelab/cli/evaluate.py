"""`maelab probe`, `finetune`, `reconstruct` and `analyze probes / decoder`: evaluating a
checkpoint (or, for Cao Q4, the runs of a decoder-depth sweep)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from maelab.cli.common import (
    add_ckpt_args,
    config_path,
    stored_config,
)
from maelab.errors import ConfigError


def _add_probe(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "probe",
        help="linear probe + k-NN of a pretrained encoder and its baselines",
        description="Linear probe and k-NN (frozen, cached features) of the checkpoint's encoder, "
        "a random encoder of the same architecture and raw pixels. Features: mean of the patch "
        "tokens (probe.pool=cls: the class token). Data default to the checkpoint's; "
        "override with data.* and probe.* (e.g. data.name=digits probe.epochs=50 probe.pool=cls). "
        "Writes probe.json and probe.txt into the run folder.",
    )
    add_ckpt_args(p, "data.name=digits probe.epochs=50 probe.pool=cls")
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
        f"k-NN k={cfg.probe.k} t={cfg.probe.t:g}, top-1/top-5 in %):"
    )
    print(rep.table)
    print(f"wrote {rep.json_path} ({rep.seconds:.1f} s)")
    return 0


def _add_finetune(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "finetune",
        help="fine-tune a pretrained encoder as a timm ViT classifier",
        description="Fine-tune the checkpoint's encoder end to end (layer-wise lr decay, drop path, "
        "mixup/cutmix, label smoothing). Data default to the checkpoint's; override with data.* and "
        "finetune.* (e.g. finetune.epochs=5 finetune.mixup=0). Writes RUN/finetune/.",
    )
    add_ckpt_args(p, "finetune.epochs=5 finetune.mixup=0 run_dir=runs/ft")
    p.add_argument(
        "--resume",
        nargs="?",
        const="auto",
        default=None,
        help="continue from the fine-tuning run's checkpoints/last.pt, or the given file",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_run_finetune)


def _run_finetune(args: argparse.Namespace) -> int:
    from maelab.evaluation.finetune import finetune, finetune_run_config

    cfg = finetune_run_config(
        stored_config(args.ckpt), [config_path(c) for c in args.config], args.overrides
    )
    res = finetune(args.ckpt, cfg, resume=args.resume, quiet=args.quiet)
    top5 = "" if res.top5 is None else f", top-5 {res.top5:.1f}%"
    print(
        f"fine-tuned {res.epochs} epochs on {cfg.data.name}: test top-1 {res.top1:.1f}%{top5} "
        f"(best {res.best_top1:.1f}%) in {res.seconds:.1f} s"
    )
    print(f"run folder: {res.run_dir}  (finetune.json, metrics.jsonl, checkpoints/last.pt)")
    return 0


def _add_reconstruct(sub: argparse._SubParsersAction) -> None:
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


# ------------------------------------------------------------------ analyze probes / decoder
def add_analyze_probes(what: argparse._SubParsersAction) -> None:
    q = what.add_parser(
        "probes",
        help="theory probes and Cao's questions (Q1-Q5) on one checkpoint",
        description="Every per-model theory probe and question experiment that applies to one "
        "checkpoint: a maelab run or official MAE weights (mae_pretrain_vit_*.pth, encoder "
        "only). Images: the checkpoint's data or data.* overrides (data.name=digits, "
        "data.name=folder data.root=DIR); they follow the model (its image size and channels; "
        "grey replicated to 3 channels with ImageNet statistics for official weights). Writes "
        "one JSON (+ PNG) per probe, question_Qn.json per question and verdicts.json (bootstrap "
        "intervals over images, n_seeds = 1) into RUN/probes (or --out).",
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


def add_analyze_decoder(what: argparse._SubParsersAction) -> None:
    d = what.add_parser(
        "decoder",
        help="Cao Q4 verdicts from a decoder-depth sweep (maelab sweep -c cao_q4)",
        description="Pairs the runs of a sweep over model.decoder_depth seed by seed (depth 0, "
        "1 and the deepest) and decides Q4's rows on the encoder's linear probe; writes "
        "verdicts.json into the sweep folder (or --out).",
    )
    d.add_argument("--sweep", required=True, help="the sweep folder, e.g. runs/cao_q4")
    d.add_argument("--out", default=None, help="verdicts file or folder (default: the sweep's)")
    d.set_defaults(handler=_run_analyze_decoder)


def _run_analyze_decoder(args: argparse.Namespace) -> int:
    from maelab.experiments.cao_rows import decide_q4, format_q4

    table, path = decide_q4(args.sweep, args.out)
    print(format_q4(table))
    print(f"verdicts: {path}")
    return 0
