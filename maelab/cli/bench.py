"""`maelab bench`: training throughput against Hugging Face ViTMAE and a timm MAE."""

from __future__ import annotations

import argparse

from maelab.errors import MaelabError


def add(sub: argparse._SubParsersAction) -> None:
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
    from maelab.bench.throughput import parse_args, run

    bench_args = parse_args([])  # the benchmark's own defaults, then this command's options
    for key in (
        "configs",
        "impls",
        "batch",
        "steps",
        "repeats",
        "warmup",
        "threads",
        "memory",
        "json",
    ):
        setattr(bench_args, key, getattr(args, key))
    try:
        run(bench_args)
    except (ValueError, RuntimeError) as exc:
        raise MaelabError(str(exc)) from None
    return 0
