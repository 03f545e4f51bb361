"""What pays on this machine: each lever measured alone, interleaved, medians over repeats.

    python benchmarks/levers.py                        # all levers
    python benchmarks/levers.py --only optimizer,gather

threads    maelab tiny step (batch 128) with 1 thread, all cores, and all cores with
           OMP_WAIT_POLICY=PASSIVE (fresh subprocesses: OpenMP reads the variable at start)
allocator  the same step with glibc's default malloc vs settings that keep freed memory
           (MALLOC_* variables, or maelab's keep_freed_memory()): step time and peak RSS
optimizer  AdamW step alone: for-loop vs foreach vs fused, tiny and ViT-B parameter sets
gather     masking gather + decoder unshuffle, forward + backward: indices `expand`-ed
           (maelab) vs `repeat`-ed (the official code and Hugging Face)
compile    maelab tiny step eager vs torch.compile (train.compile=true), and the compile time
amp        fp32 vs bf16 autocast on this CPU (train.amp=bf16), tiny and ViT-B
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from maelab.engine.optim import build_adamw, param_groups
from maelab.masking import mask_from_noise
from maelab.models import MaskedAutoencoder, make_arch

LEVERS = ("threads", "allocator", "optimizer", "gather", "compile", "amp")
# glibc: never return freed memory to the kernel (no mmap per large tensor, no heap trimming)
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}
KEEP_FREED = "MAELAB_BENCH_KEEP_FREED"  # tells a child step to call keep_freed_memory()


def interleaved(
    fns: dict[str, Callable[[], None]], repeats: int, inner: int = 1
) -> dict[str, dict[str, float]]:
    """Median seconds per call of each function by the wall and the process CPU clock, called
    A B C A B C ... after one warmup call."""
    for f in fns.values():
        f()
    wall: dict[str, list[float]] = {k: [] for k in fns}
    cpu: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeats):
        for k in list(fns) if r % 2 == 0 else list(fns)[::-1]:
            t, c = time.perf_counter(), time.process_time()
            for _ in range(inner):
                fns[k]()
            wall[k].append((time.perf_counter() - t) / inner)
            cpu[k].append((time.process_time() - c) / inner)
    return {k: {"wall": statistics.median(wall[k]), "cpu": statistics.median(cpu[k])} for k in fns}


def train_step(
    preset: str, batch: int, amp: bool = False, compiled: bool = False
) -> Callable[[], None]:
    torch.manual_seed(0)
    model = MaskedAutoencoder(make_arch(preset))
    opt = build_adamw(model, 1e-4, 0.05, (0.9, 0.95), torch.device("cpu"))
    fwd = torch.compile(model) if compiled else model
    a = model.arch
    x = torch.randn(batch, a.in_chans, a.img_size, a.img_size)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            loss = fwd(x, 0.75)[0]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


# ---------------------------------------------------------------------------- levers
def child_step(threads: int, env_extra: dict[str, str]) -> dict[str, float]:
    """maelab's tiny step in a fresh process: median wall and CPU seconds, peak RSS MB."""
    cmd = [sys.executable, __file__, "--child-step", str(threads)]
    out = subprocess.run(
        cmd, env={**os.environ, **env_extra}, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _children(variants: dict[str, tuple[dict[str, str], int]], repeats: int) -> dict:
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in variants}
    for r in range(repeats):
        for name in list(variants) if r % 2 == 0 else list(variants)[::-1]:
            env_extra, threads = variants[name]
            runs[name].append(child_step(threads, env_extra))
    return {
        name: {key: statistics.median(x[key] for x in rs) for key in rs[0]}
        for name, rs in runs.items()
    }


def lever_threads(repeats: int) -> dict:
    cores = os.cpu_count() or 1
    variants = {"1 thread": ({}, 1), f"{cores} threads": ({}, cores),
                f"{cores} threads, OMP_WAIT_POLICY=PASSIVE": ({"OMP_WAIT_POLICY": "PASSIVE"}, cores)}  # fmt: skip
    return {
        "what": "maelab tiny step, batch 128, fresh process each",
        "median": _children(variants, repeats),
    }


def lever_allocator(repeats: int) -> dict:
    threads = torch.get_num_threads()
    trim = {"MALLOC_TRIM_THRESHOLD_": MALLOC_ENV["MALLOC_TRIM_THRESHOLD_"]}
    variants = {
        "glibc default": ({}, threads),
        "no heap trimming": (trim, threads),
        "no heap trimming, mmap only above 32 MB": (
            {**trim, "MALLOC_MMAP_THRESHOLD_": str(2**25)},
            threads,
        ),
        "no heap trimming, no mmap": (MALLOC_ENV, threads),
        # what `maelab pretrain` does on CPU: the 32 MB variant, set from inside the process
        "keep_freed_memory() in process": ({KEEP_FREED: "1"}, threads),
    }
    return {"what": f"maelab tiny step, batch 128, {threads} threads, fresh process each",
            "median": _children(variants, repeats)}  # fmt: skip


def lever_optimizer(repeats: int) -> dict:
    out = {}
    for preset in ("tiny", "vit_base_patch16"):
        model = MaskedAutoencoder(make_arch(preset))
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.randn_like(p) * 1e-3
        flags = {
            "for-loop": {"foreach": False},
            "foreach": {"foreach": True},
            "fused": {"fused": True},
        }
        opts = {
            k: torch.optim.AdamW(param_groups(model, 0.05), lr=1e-4, betas=(0.9, 0.95), **f)
            for k, f in flags.items()
        }
        out[preset] = interleaved({k: o.step for k, o in opts.items()}, repeats, inner=3)
    return {"what": "AdamW step alone, seconds", "median": out}


def lever_gather(repeats: int) -> dict:
    a = make_arch("tiny")
    n, length, d, dd = 128, a.num_patches, a.embed_dim, a.decoder_embed_dim
    x = torch.randn(n, length, d, requires_grad=True)
    dec = torch.randn(n, 1 + length // 4, dd, requires_grad=True)
    token = torch.randn(1, 1, dd, requires_grad=True)
    noise = torch.rand(n, length)

    def masking(repeat: bool) -> Callable[[], None]:
        def run() -> None:
            ids_keep, _, ids_restore = mask_from_noise(noise, 0.75)
            if repeat:
                kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).repeat(1, 1, d))
                tokens = token.repeat(n, length + 1 - dec.shape[1], 1)
                y = torch.cat([dec[:, 1:], tokens], dim=1)
                y = torch.gather(y, 1, ids_restore.unsqueeze(-1).repeat(1, 1, dd))
            else:
                kept = torch.gather(x, 1, ids_keep.unsqueeze(-1).expand(-1, -1, d))
                tokens = token.expand(n, length + 1 - dec.shape[1], -1)
                y = torch.cat([dec[:, 1:], tokens], dim=1)
                y = torch.gather(y, 1, ids_restore.unsqueeze(-1).expand(-1, -1, dd))
            (kept.sum() + y.sum()).backward()

        return run

    med = interleaved(
        {"expand (maelab)": masking(False), "repeat (official, HF)": masking(True)}, repeats, 5
    )
    return {
        "what": "tiny shapes, batch 128: masking + gathers, fwd + bwd, seconds",
        "median": med,
    }


def lever_compile(repeats: int) -> dict:
    eager, compiled = train_step("tiny", 128), train_step("tiny", 128, compiled=True)
    t = time.perf_counter()
    compiled()
    compile_s = time.perf_counter() - t
    med = interleaved({"eager": eager, "torch.compile": compiled}, repeats, 2)
    return {"what": "maelab tiny step, batch 128, seconds", "median": med, "compile_s": compile_s}


def lever_amp(repeats: int) -> dict:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    out = {"amx_bf16": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags}
    for preset, batch in (("tiny", 128), ("vit_base_patch16", 8)):
        fns = {
            "fp32": train_step(preset, batch),
            "bf16 autocast": train_step(preset, batch, amp=True),
        }
        out[preset] = interleaved(fns, repeats if preset == "tiny" else max(2, repeats // 2))
    return {"what": "maelab step, seconds", "median": out}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--only", default=",".join(LEVERS), help=f"comma-separated, of {', '.join(LEVERS)}"
    )
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads for the in-process levers"
    )
    p.add_argument("--json", default=None)
    p.add_argument("--child-step", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child_step:
        torch.set_num_threads(args.child_step)
        if os.environ.get(KEEP_FREED):
            from maelab.engine.device import keep_freed_memory

            keep_freed_memory()
        step = train_step("tiny", 128)
        import resource

        med = interleaved({"step": step}, 3)["step"]
        med["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(med))
        return {}
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results = {}
    for name in [x for x in args.only.split(",") if x]:
        fn = globals()[f"lever_{name}"]
        results[name] = fn(args.repeats)
        print(f"[{name}] {json.dumps(results[name], default=str)}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    return results


if __name__ == "__main__":
    main()
