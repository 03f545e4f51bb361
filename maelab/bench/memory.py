"""Peak resident memory of one implementation's training, each measured in a fresh process."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

import maelab
from maelab.bench.harness import BenchConfig, build
from maelab.models import make_arch

try:
    import resource
except ImportError:  # Windows: neither /proc nor getrusage
    resource = None  # type: ignore[assignment]


def _status_kb(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def child_memory(impl: str, cfg: BenchConfig, device: torch.device, optimizer: str) -> dict:
    """In a fresh process: peak RSS rise of building `impl` and training it a few steps.

    Everything is imported and the input batch exists before the baseline; building runs
    maelab's model first for every implementation (the weights source), then frees it, and
    the peak is reset after building when the kernel allows, so only the implementation's
    own weights, optimizer state, activations and allocator behaviour count.
    """
    try:  # the same imports in every child
        import transformers  # noqa: F401
    except ImportError:
        pass

    arch = make_arch(cfg.preset)
    x = torch.randn(cfg.batch, arch.in_chans, arch.img_size, arch.img_size, device=device)
    base = _status_kb("VmRSS")
    _, step = build(impl, arch, device, optimizer)
    reset = _reset_peak()
    for _ in range(cfg.warmup + 2):
        step(x)
    peak = _status_kb("VmHWM")
    if base is None or peak is None:  # not Linux: getrusage's peak since the process started
        if resource is None:
            raise RuntimeError("peak memory needs /proc (Linux) or the resource module")
        return {"impl": impl, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "method": "ru_maxrss (whole process)"}  # fmt: skip
    return {"impl": impl, "peak_rss_mb": (peak - base) / 1024,
            "method": "VmHWM - VmRSS before the model" + (" (peak reset after build)" if reset else "")}  # fmt: skip


def measure_memory(
    name: str, impls: list[str], args: argparse.Namespace, cfg: BenchConfig
) -> dict[str, dict]:
    """`child_memory` of each implementation, each in a fresh `python -m maelab.bench`."""
    # run from the folder above this maelab: `-m` puts the working directory first on the
    # child's path, so the child measures the same code as this process
    package_root = Path(maelab.__file__).resolve().parents[1]
    out = {}
    for impl in impls:
        cmd = [sys.executable, "-m", "maelab.bench", "--child-memory", impl, "--configs", name,
               "--batch", str(cfg.batch), "--device", args.device, "--optimizer", args.optimizer]  # fmt: skip
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=package_root)
        if proc.returncode:
            raise RuntimeError(f"memory child for {impl} failed:\n{proc.stderr[-2000:]}")
        out[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out
