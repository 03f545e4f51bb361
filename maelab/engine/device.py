"""Where a process computes: the device, mixed precision and the allocator, read once per run."""

from __future__ import annotations

import ctypes
import os
from contextlib import AbstractContextManager, nullcontext

import torch

from maelab.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """`auto`, `cpu`, `cuda` or `cuda:N` as a device; anything unusable is one ConfigError."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise ConfigError(f"train.device={name!r} is not supported; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"train.device={name} but CUDA is not available; use train.device=cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"train.device={name} but only {torch.cuda.device_count()} CUDA devices are visible"
            )
    return device


def autocast_for(
    amp: str, device: torch.device
) -> tuple[AbstractContextManager[None], torch.amp.GradScaler | None]:
    """Autocast context and grad scaler. 'auto' is bf16 on CUDA when supported, else off."""
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    if amp == "off":
        return nullcontext(), None
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    if amp == "fp16" and device.type != "cuda":
        raise ConfigError("train.amp=fp16 needs CUDA; use train.amp=bf16 or off on a CPU")
    scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None
    return torch.autocast(device_type=device.type, dtype=dtype), scaler


def keep_freed_memory() -> bool:
    """glibc: keep heap memory freed by one training step for the next (process-wide).

    By default glibc hands the freed top of the heap back to the kernel, so every CPU step maps
    and zero-fills fresh pages for its activations: 1.10x faster tiny-model steps without that,
    peak memory +1% (benchmarks/levers.py, allocator). Blocks above 32 MB still go to and from
    mmap. False where the C library has no `mallopt` (not glibc).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # <malloc.h>
    return bool(mallopt(m_mmap_threshold, 32 << 20)) and bool(mallopt(m_trim_threshold, 2**31 - 1))


def env_world_size() -> int:
    """The number of processes torchrun started (1 without torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))
