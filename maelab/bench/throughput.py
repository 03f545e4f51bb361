"""Images/s of full MAE pretraining steps: maelab vs Hugging Face ViTMAE vs a textbook timm MAE.

A step is what a pretraining loop does per batch: masking (argsort of fresh uniform noise),
forward, loss, backward, AdamW step, zero_grad, on one fixed batch of random images (the data
path is measured by benchmarks/end_to_end.py). The three models share maelab's initial weights
and are checked to compute the same loss with the same mask before anything is timed. Runs are
interleaved (A B C A B C ...), warmup steps are excluded, figures are medians over repeats.

MFU = matmul FLOPs of the step, counted analytically (encoder on the visible tokens + cls,
decoder on all tokens + cls, backward = 2x forward) / step time / the float32 matmul peak, a
large `torch.mm` timed between the repeats of the same run. Peak memory: the rise of the
process's peak resident set (VmHWM) over the rise when the model is built, each
implementation alone in a fresh subprocess (`--memory`).

    python -m maelab.bench                                      # tiny (32 px) and ViT-B/16
    python -m maelab.bench --configs tiny --memory --json out.json
    maelab bench                                                # a quick tiny run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch

from maelab.bench.clocks import Clocks, Timer, matmul_peak
from maelab.bench.flops import train_flops
from maelab.bench.harness import (
    CONFIGS,
    EXTRA_IMPLS,
    IMPLS,
    MASK_RATIO,
    BenchConfig,
    build,
    same_loss_check,
)
from maelab.bench.memory import child_memory, measure_memory
from maelab.models import make_arch


@dataclass
class ImplResult:
    impl: str
    step_s: float  # wall clock, median over repeats
    images_per_s: float
    mfu: float  # median over repeats of (FLOPs / step time) / peak of that repeat
    step_cpu_s: float  # the same by the process CPU clock
    images_per_cpu_s: float
    mfu_cpu: float
    step_s_all: list[float] = field(default_factory=list)
    step_cpu_s_all: list[float] = field(default_factory=list)
    peak_rss_mb: float | None = None


def run_config(
    name: str,
    cfg: BenchConfig,
    impls: list[str],
    device: torch.device,
    optimizer: str,
    log: Callable[[str], None] = print,
) -> dict:
    """Time every implementation on one config, interleaved; the run's record (JSON-ready)."""
    arch = make_arch(cfg.preset)
    flops = train_flops(arch, cfg.batch, MASK_RATIO)
    losses = same_loss_check(arch, [i for i in impls if i not in EXTRA_IMPLS], device)
    log(
        "  same loss with shared weights and mask: "
        + ", ".join(f"{k} {v:.6f}" for k, v in losses.items())
    )
    steps = {impl: build(impl, arch, device, optimizer)[1] for impl in impls}
    torch.manual_seed(2)
    x = torch.randn(cfg.batch, arch.in_chans, arch.img_size, arch.img_size, device=device)
    warmup_s = {}
    for impl in impls:  # warmup (allocator, oneDNN primitive caches, optimizer state, compilation)
        with Timer(device) as t:
            for _ in range(cfg.warmup):
                steps[impl](x)
        warmup_s[impl] = t.elapsed.wall
    if "maelab-compiled" in impls:
        log(f"  torch.compile + {cfg.warmup} warmup steps: {warmup_s['maelab-compiled']:.0f} s")
    times: dict[str, list[Clocks]] = {impl: [] for impl in impls}
    mfus: dict[str, list[Clocks]] = {impl: [] for impl in impls}
    peaks: list[Clocks] = []
    for r in range(cfg.repeats):
        peak = matmul_peak(device)
        peaks.append(peak)
        order = impls if r % 2 == 0 else impls[::-1]  # no implementation always runs first
        for impl in order:
            with Timer(device) as t:
                for _ in range(cfg.steps):
                    steps[impl](x)
            dt = Clocks(t.elapsed.wall / cfg.steps, t.elapsed.cpu / cfg.steps)
            times[impl].append(dt)
            mfus[impl].append(Clocks(flops / dt.wall / peak.wall, flops / dt.cpu / peak.cpu))
        log(f"  repeat {r + 1}/{cfg.repeats}: peak {peak.wall / 1e9:.0f} GFLOP/s, "
            + ", ".join(f"{k} {times[k][-1].wall:.3f} s (cpu {times[k][-1].cpu:.3f} s)" for k in impls))  # fmt: skip
    results = []
    for impl in impls:
        wall = statistics.median(c.wall for c in times[impl])
        cpu = statistics.median(c.cpu for c in times[impl])
        results.append(
            ImplResult(
                impl, wall, cfg.batch / wall, statistics.median(m.wall for m in mfus[impl]),
                cpu, cfg.batch / cpu, statistics.median(m.cpu for m in mfus[impl]),
                [c.wall for c in times[impl]], [c.cpu for c in times[impl]],
            )
        )  # fmt: skip
    return {
        "config": name,
        "preset": cfg.preset,
        "arch": asdict(arch),
        "batch": cfg.batch,
        "steps_per_repeat": cfg.steps,
        "repeats": cfg.repeats,
        "warmup": cfg.warmup,
        "gflop_per_step": flops / 1e9,
        "peak_gflops_median": statistics.median(p.wall for p in peaks) / 1e9,
        "peak_cpu_gflops_median": statistics.median(p.cpu for p in peaks) / 1e9,
        "peak_gflops_all": [p.wall / 1e9 for p in peaks],
        "loss_check": losses,
        "warmup_s": warmup_s,
        "results": [asdict(r) for r in results],
    }


def machine() -> dict:
    """The machine and library versions, for the record."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d %H:%M %Z")}  # fmt: skip
    if hasattr(os, "getloadavg"):
        info["load_avg_1m"] = round(os.getloadavg()[0], 2)
    try:  # optional: only the Hugging Face peer needs it
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    info["timm"] = timm.__version__
    return info


def table(run: dict) -> str:
    """One config's results as a text table, with maelab's ratios to each peer."""
    a = run["arch"]
    lines = [
        f"{run['config']}: {a['img_size']} px, patch {a['patch_size']}, encoder {a['embed_dim']}x{a['depth']}, "
        f"decoder {a['decoder_embed_dim']}x{a['decoder_depth']}, batch {run['batch']}, mask {MASK_RATIO}; "
        f"{run['gflop_per_step']:.1f} GFLOP/step; fp32 matmul peak {run['peak_gflops_median']:.0f} GFLOP/s "
        f"wall, {run['peak_cpu_gflops_median']:.0f} by CPU clock (medians of {run['repeats']})",
        f"  {'':<16}{'---- wall clock ----':>26}{'---- CPU clock ----':>27}",
        f"  {'impl':<16}{'step s':>9}{'img/s':>9}{'MFU':>8}{'step s':>10}{'img/s':>9}{'MFU':>8}{'peak MB':>10}",
    ]  # fmt: skip
    for r in run["results"]:
        mem = "" if r["peak_rss_mb"] is None else f"{r['peak_rss_mb']:10.0f}"
        lines.append(
            f"  {r['impl']:<16}{r['step_s']:9.3f}{r['images_per_s']:9.1f}{r['mfu']:8.1%}"
            f"{r['step_cpu_s']:10.3f}{r['images_per_cpu_s']:9.1f}{r['mfu_cpu']:8.1%}{mem}"
        )
    by = {r["impl"]: r for r in run["results"]}
    for ours in ("maelab", "maelab-compiled"):
        for peer, target in (("hf", 1.3), ("timm-ref", 1.0)):
            if ours not in by or peer not in by:
                continue
            wall = by[ours]["images_per_s"] / by[peer]["images_per_s"]
            cpu = by[ours]["images_per_cpu_s"] / by[peer]["images_per_cpu_s"]
            line = f"  {ours}/{peer}: {wall:.2f}x images/s wall, {cpu:.2f}x CPU clock (target >= {target}x)"
            if by[peer]["peak_rss_mb"] and by[ours]["peak_rss_mb"] is not None:
                line += f"; {by[ours]['peak_rss_mb'] / by[peer]['peak_rss_mb']:.2f}x peak memory"
            lines.append(line)
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--configs", default="tiny,vit-b", help=f"comma-separated, of {', '.join(CONFIGS)}"
    )
    p.add_argument("--impls", default=",".join(IMPLS),
                   help="comma-separated, of " + ", ".join(IMPLS + EXTRA_IMPLS))  # fmt: skip
    p.add_argument("--batch", type=int, default=None, help="override every config's batch")
    p.add_argument("--steps", type=int, default=None, help="timed steps per repeat")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    p.add_argument("--optimizer", default="native", choices=["native", "fused", "foreach", "forloop"],
                   help="native: each implementation's own default AdamW")  # fmt: skip
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--memory", action="store_true", help="peak RSS of each implementation (subprocesses)"
    )
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--child-memory", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def config_for(name: str, args: argparse.Namespace) -> BenchConfig:
    """The named config with the command line's overrides."""
    if name not in CONFIGS:
        raise SystemExit(f"unknown config '{name}' (valid: {', '.join(CONFIGS)})")
    c = CONFIGS[name]
    return BenchConfig(
        c.preset,
        args.batch or c.batch,
        args.steps or c.steps,
        args.repeats or c.repeats,
        c.warmup if args.warmup is None else args.warmup,
    )


def main(argv: list[str] | None = None) -> dict:
    """Run the benchmark from command-line arguments; print the tables, return the record."""
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> dict:
    """Run the benchmark with parsed arguments (`parse_args`); print the tables, return the
    record."""
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if args.child_memory:
        res = child_memory(
            args.child_memory, config_for(args.configs, args), device, args.optimizer
        )
        print(json.dumps(res))
        return res
    impls = [i for i in args.impls.split(",") if i]
    if "hf" in impls:
        try:
            import transformers  # noqa: F401
        except ImportError:
            print("transformers is not installed: skipping the Hugging Face peer")
            impls.remove("hf")
    info = machine()
    print(f"machine: {info['cpu']}, {info['cores']} cores, {info['threads']} torch threads, "
          f"torch {info['torch']}, timm {info['timm']}, transformers {info.get('transformers', '-')}; "
          f"load average {info.get('load_avg_1m', '?')}; {info['date']}")  # fmt: skip
    print(f"optimizer: {args.optimizer}; HF: ViTMAEForPreTraining from a config (LayerNorm eps 1e-6, "
          "SDPA attention) with maelab's weights and sin-cos tables written into its zero, frozen "
          "position embeddings (fairness of the model, no effect on speed)")  # fmt: skip
    runs = []
    for name in [c for c in args.configs.split(",") if c]:
        cfg = config_for(name, args)
        print(f"[{name}] {cfg.preset}, batch {cfg.batch}: warmup {cfg.warmup}, "
              f"{cfg.repeats} repeats x {cfg.steps} steps, interleaved")  # fmt: skip
        run = run_config(name, cfg, impls, device, args.optimizer)
        if args.memory:
            mem = measure_memory(name, impls, args, cfg)
            for r in run["results"]:
                r["peak_rss_mb"] = mem[r["impl"]]["peak_rss_mb"]
            run["memory_method"] = next(iter(mem.values()))["method"]
        runs.append(run)
        print(table(run), flush=True)
    info["load_avg_1m_end"] = round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None
    out = {"machine": info, "optimizer": args.optimizer, "runs": runs}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out
