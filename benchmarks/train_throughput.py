"""Images/s of full MAE pretraining steps: maelab vs Hugging Face ViTMAE vs a textbook timm MAE.

A step is what a pretraining loop does per batch: masking (argsort of fresh uniform noise),
forward, loss, backward, AdamW step, zero_grad, on one fixed batch of random images (the data
path is measured by end_to_end.py). The three models share maelab's initial weights and are
checked to compute the same loss with the same mask before anything is timed. Runs are
interleaved (A B C A B C ...), warmup steps are excluded, figures are medians over repeats.

MFU = matmul FLOPs of the step, counted analytically (encoder on the visible tokens + cls,
decoder on all tokens + cls, backward = 2x forward) / step time / the float32 matmul peak, a
large `torch.mm` timed between the repeats of the same run. Peak memory: the rise of the
process's peak resident set (VmHWM) over the rise when the model is built, each
implementation alone in a fresh subprocess (`--memory`).

    python benchmarks/train_throughput.py                       # tiny (32 px) and ViT-B/16
    python benchmarks/train_throughput.py --configs tiny --memory --json out.json
    maelab bench                                                # a quick tiny run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

import torch
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block
from torch import nn

from maelab.engine.optim import build_adamw, param_groups
from maelab.masking import num_keep
from maelab.models import MAEArch, MaskedAutoencoder, make_arch

IMPLS = ("maelab", "hf", "timm-ref")
EXTRA_IMPLS = ("maelab-compiled",)  # torch.compile of maelab's model (train.compile=true)
MASK_RATIO = 0.75
LR, WEIGHT_DECAY, BETAS = 1.5e-4, 0.05, (0.9, 0.95)


@dataclass(frozen=True)
class BenchConfig:
    preset: str
    batch: int
    steps: int  # timed steps per repeat
    repeats: int
    warmup: int  # untimed steps per implementation before the first repeat


CONFIGS = {
    "tiny": BenchConfig("tiny", batch=128, steps=3, repeats=5, warmup=2),
    "vit-b": BenchConfig("vit_base_patch16", batch=8, steps=1, repeats=3, warmup=1),
}

Step = Callable[[torch.Tensor], None]


# ---------------------------------------------------------------------------- FLOPs and peak
def _block_flops(tokens: int, width: int, mlp_ratio: float) -> int:
    """Matmul FLOPs of one ViT block's forward on `tokens` tokens (per image)."""
    hidden = int(width * mlp_ratio)
    linear = (
        2 * tokens * (3 * width * width + width * width + 2 * width * hidden)
    )  # qkv, proj, fc1, fc2
    attention = 2 * 2 * tokens * tokens * width  # q k^T and attn v over all heads
    return linear + attention


def train_flops(arch: MAEArch, batch: int, mask_ratio: float = MASK_RATIO) -> int:
    """Matmul FLOPs of one training step: 3x the forward (the backward costs 2x the forward)."""
    n = arch.num_patches
    visible = num_keep(n, mask_ratio) + 1  # + cls
    pix = arch.patch_size**2 * arch.in_chans
    d, dd = arch.embed_dim, arch.decoder_embed_dim
    fwd = 2 * n * pix * d  # patch embedding of every patch
    fwd += arch.depth * _block_flops(visible, d, arch.mlp_ratio)
    fwd += 2 * visible * d * dd  # decoder_embed
    fwd += arch.decoder_depth * _block_flops(n + 1, dd, arch.mlp_ratio)
    fwd += 2 * (n + 1) * dd * pix  # decoder_pred
    return 3 * batch * fwd


def matmul_peak(device: torch.device, dtype: torch.dtype = torch.float32, reps: int = 3) -> Clocks:
    """Best FLOP/s of a large square `torch.mm` (the roofline the model's matmuls aim at), by
    the wall clock and by the process's CPU clock."""
    size = 2048 if device.type == "cpu" else 8192
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    a @ b
    best = Clocks(float("inf"), float("inf"))
    for _ in range(reps):
        with Timer(device) as t:
            a @ b
        best = Clocks(min(best.wall, t.elapsed.wall), min(best.cpu, t.elapsed.cpu))
    return Clocks(2 * size**3 / best.wall, 2 * size**3 / best.cpu)


@dataclass(frozen=True)
class Clocks:
    """A figure by the wall clock and by the process CPU clock (all threads of the process).

    On a shared machine the wall clock also counts time when other processes hold the cores;
    with one thread, CPU time is what an idle core would take. With several threads it also
    counts OpenMP threads spinning at barriers.
    """

    wall: float
    cpu: float


class Timer:
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.elapsed = Clocks(0.0, 0.0)

    def __enter__(self) -> Timer:
        _sync(self.device)
        self._wall, self._cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        _sync(self.device)
        self.elapsed = Clocks(time.perf_counter() - self._wall, time.process_time() - self._cpu)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------- textbook reference
class TextbookMAE(nn.Module):
    """The official `models_mae.py` (He et al.) rebuilt on current timm blocks: PatchEmbed,
    argsort masking, gather with `repeat`-ed indices, encoder, decoder, norm-pix loss.
    Parameter names are the official ones, so maelab's state dict loads unchanged."""

    def __init__(self, a: MAEArch) -> None:
        super().__init__()
        norm = partial(nn.LayerNorm, eps=1e-6)
        self.patch_embed = PatchEmbed(a.img_size, a.patch_size, a.in_chans, a.embed_dim)
        n = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, a.embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, n + 1, a.embed_dim), requires_grad=False)
        self.blocks = nn.ModuleList(
            Block(a.embed_dim, a.num_heads, a.mlp_ratio, qkv_bias=True, norm_layer=norm)
            for _ in range(a.depth)
        )
        self.norm = norm(a.embed_dim)
        self.decoder_embed = nn.Linear(a.embed_dim, a.decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, a.decoder_embed_dim))
        self.decoder_pos_embed = nn.Parameter(
            torch.zeros(1, n + 1, a.decoder_embed_dim), requires_grad=False
        )
        self.decoder_blocks = nn.ModuleList(
            Block(
                a.decoder_embed_dim,
                a.decoder_num_heads,
                a.mlp_ratio,
                qkv_bias=True,
                norm_layer=norm,
            )
            for _ in range(a.decoder_depth)
        )
        self.decoder_norm = norm(a.decoder_embed_dim)
        self.decoder_pred = nn.Linear(a.decoder_embed_dim, a.patch_size**2 * a.in_chans)
        self.p, self.c, self.norm_pix_loss = a.patch_size, a.in_chans, a.norm_pix_loss

    def patchify(self, imgs: torch.Tensor) -> torch.Tensor:
        p, h = self.p, imgs.shape[2] // self.p
        x = imgs.reshape(imgs.shape[0], self.c, h, p, h, p)
        x = torch.einsum("nchpwq->nhwpqc", x)
        return x.reshape(imgs.shape[0], h * h, p**2 * self.c)

    def random_masking(self, x: torch.Tensor, mask_ratio: float, noise: torch.Tensor | None):
        n, length, d = x.shape
        len_keep = int(length * (1 - mask_ratio))
        if noise is None:
            noise = torch.rand(n, length, device=x.device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        ids_keep = ids_shuffle[:, :len_keep]
        x_masked = torch.gather(x, dim=1, index=ids_keep.unsqueeze(-1).repeat(1, 1, d))
        mask = torch.ones([n, length], device=x.device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, dim=1, index=ids_restore)
        return x_masked, mask, ids_restore

    def forward(
        self, imgs: torch.Tensor, mask_ratio: float = MASK_RATIO, noise: torch.Tensor | None = None
    ):
        x = self.patch_embed(imgs) + self.pos_embed[:, 1:, :]
        x, mask, ids_restore = self.random_masking(x, mask_ratio, noise)
        cls = self.cls_token + self.pos_embed[:, :1, :]
        x = torch.cat((cls.expand(x.shape[0], -1, -1), x), dim=1)
        for blk in self.blocks:
            x = blk(x)
        x = self.decoder_embed(self.norm(x))
        mask_tokens = self.mask_token.repeat(x.shape[0], ids_restore.shape[1] + 1 - x.shape[1], 1)
        x_ = torch.cat([x[:, 1:, :], mask_tokens], dim=1)
        x_ = torch.gather(x_, dim=1, index=ids_restore.unsqueeze(-1).repeat(1, 1, x.shape[2]))
        x = torch.cat([x[:, :1, :], x_], dim=1) + self.decoder_pos_embed
        for blk in self.decoder_blocks:
            x = blk(x)
        pred = self.decoder_pred(self.decoder_norm(x))[:, 1:, :]
        target = self.patchify(imgs)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1.0e-6) ** 0.5
        loss = ((pred - target) ** 2).mean(dim=-1)
        return (loss * mask).sum() / mask.sum(), pred, mask


# ---------------------------------------------------------------------------- implementations
def build(
    impl: str, arch: MAEArch, device: torch.device, optimizer: str = "native"
) -> tuple[nn.Module, Step]:
    """The model of `impl` with maelab's initial weights (seed 0) and its training step.

    optimizer "native": each implementation's own default AdamW (maelab: `build_adamw`;
    HF: fused, the Trainer's default on torch >= 2.8; textbook: `torch.optim.AdamW` defaults,
    as the official `main_pretrain.py`). "fused" / "foreach" / "forloop": that for all three.
    """
    torch.manual_seed(0)
    ours = MaskedAutoencoder(arch)
    if impl in ("maelab", "maelab-compiled"):
        model: nn.Module = ours
    elif impl == "hf":
        from maelab.models.interop import to_hf_vitmae

        # a ViTMAEForPreTraining built from a config has all-zero, frozen position embeddings;
        # to_hf_vitmae writes maelab's sin-cos tables (and all weights) in: no effect on speed
        model = to_hf_vitmae(ours, mask_ratio=MASK_RATIO)
    elif impl == "timm-ref":
        model = TextbookMAE(arch)
        model.load_state_dict(ours.state_dict())
    else:
        raise ValueError(
            f"unknown implementation '{impl}' (valid: {', '.join(IMPLS + EXTRA_IMPLS)})"
        )
    del ours
    model = model.to(device).train()
    opt = make_optimizer(impl, model, device, optimizer)
    if impl == "maelab-compiled":
        model = torch.compile(model)

    if impl == "hf":

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return model(pixel_values=x).loss
    else:

        def loss_of(x: torch.Tensor) -> torch.Tensor:
            return model(x, MASK_RATIO)[0]

    def step(x: torch.Tensor) -> None:
        loss_of(x).backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return model, step


def make_optimizer(
    impl: str, model: nn.Module, device: torch.device, kind: str
) -> torch.optim.Optimizer:
    if kind == "native" and impl.startswith("maelab"):
        return build_adamw(model, LR, WEIGHT_DECAY, BETAS, device)
    if kind == "native":
        kind = "fused" if impl == "hf" else "default"
    flags = {"fused": {"fused": True}, "foreach": {"foreach": True}, "forloop": {"foreach": False}}
    return torch.optim.AdamW(
        param_groups(model, WEIGHT_DECAY), lr=LR, betas=BETAS, **flags.get(kind, {})
    )


def same_loss_check(arch: MAEArch, impls: list[str], device: torch.device) -> dict[str, float]:
    """Loss of each implementation on one batch with one fixed mask: they must agree."""
    torch.manual_seed(1)
    x = torch.randn(4, arch.in_chans, arch.img_size, arch.img_size, device=device)
    noise = torch.rand(4, arch.num_patches, device=device)
    losses = {}
    for impl in impls:
        model, _ = build(impl, arch, device)
        with torch.no_grad():
            if impl == "hf":
                losses[impl] = float(model(pixel_values=x, noise=noise).loss)
            else:
                losses[impl] = float(model(x, MASK_RATIO, noise=noise)[0])
    ref = losses[impls[0]]
    bad = {k: v for k, v in losses.items() if abs(v - ref) > 1e-4 * max(1.0, abs(ref))}
    if bad:
        raise RuntimeError(
            f"implementations disagree on the loss with shared weights and mask: {losses}"
        )
    return losses


# ---------------------------------------------------------------------------- timing
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
    arch = make_arch(cfg.preset)
    flops = train_flops(arch, cfg.batch)
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


# ---------------------------------------------------------------------------- memory
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
        import resource

        return {"impl": impl, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "method": "ru_maxrss (whole process)"}  # fmt: skip
    return {"impl": impl, "peak_rss_mb": (peak - base) / 1024,
            "method": "VmHWM - VmRSS before the model" + (" (peak reset after build)" if reset else "")}  # fmt: skip


def measure_memory(
    name: str, impls: list[str], args: argparse.Namespace, cfg: BenchConfig
) -> dict[str, dict]:
    out = {}
    for impl in impls:
        cmd = [sys.executable, __file__, "--child-memory", impl, "--configs", name, "--batch", str(cfg.batch),
               "--device", args.device, "--optimizer", args.optimizer]  # fmt: skip
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode:
            raise RuntimeError(f"memory child for {impl} failed:\n{proc.stderr[-2000:]}")
        out[impl] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


# ---------------------------------------------------------------------------- report
def machine() -> dict:
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
    try:
        import transformers

        info["transformers"] = transformers.__version__
    except ImportError:
        pass
    import timm

    info["timm"] = timm.__version__
    return info


def table(run: dict) -> str:
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
    args = parse_args(argv)
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


if __name__ == "__main__":
    main()
