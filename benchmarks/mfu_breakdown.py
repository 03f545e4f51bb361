"""Where a maelab training step spends its time, and what that means for MFU.

torch.profiler's self CPU time of each operator over a few steps, grouped into matmuls,
attention (SDPA: QK^T, softmax, AV in one kernel), layer norm, GELU, bias/residual elementwise,
copies, masking, optimizer; then the step's MFU next to the efficiency of the matmuls alone
(linear-layer FLOPs / (matmul share x step CPU time) / fp32 peak), which bounds what fusing or
removing the rest could reach. Step time and peak are process CPU time (robust on a shared
machine; use --threads 1).

    python benchmarks/mfu_breakdown.py                    # tiny, batch 128
    python benchmarks/mfu_breakdown.py --preset vit_base_patch16 --batch 8 --steps 1
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

from maelab.bench import Timer, block_flops, build, matmul_peak, train_flops
from maelab.masking import num_keep
from maelab.models import MAEArch, make_arch

CATEGORIES = {
    "matmul": ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::mkldnn_convolution",
               "aten::convolution_backward", "aten::_mkldnn_linear"),
    "attention (sdpa)": ("aten::_scaled_dot_product_flash_attention_for_cpu",
                         "aten::_scaled_dot_product_flash_attention_for_cpu_backward"),
    "layer norm": ("aten::native_layer_norm", "aten::native_layer_norm_backward"),
    "gelu": ("aten::gelu", "aten::gelu_backward"),
    "copies (addmm bias init, qkv grad clone, cat)": ("aten::copy_", "aten::cat", "aten::clone",
                                                       "aten::fill_", "aten::zero_", "aten::empty"),
    "bias grads, residuals, loss (elementwise, sums)": ("aten::sum", "aten::add", "aten::add_",
                                                        "aten::mul", "aten::sub", "aten::div",
                                                        "aten::pow", "aten::mean", "aten::var"),
    "masking (argsort, gather, scatter)": ("aten::sort", "aten::argsort", "aten::gather",
                                           "aten::scatter_add_", "aten::scatter", "aten::rand"),
    "optimizer (fused AdamW)": ("aten::_fused_adamw_",),
}  # fmt: skip


def linear_flops(arch: MAEArch, batch: int) -> int:
    """train_flops without the attention products (QK^T, AV), i.e. the weight matmuls only."""
    n = arch.num_patches
    visible = num_keep(n, 0.75) + 1
    attn = arch.depth * 4 * visible**2 * arch.embed_dim
    attn += arch.decoder_depth * 4 * (n + 1) ** 2 * arch.decoder_embed_dim
    return train_flops(arch, batch) - 3 * batch * attn


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="tiny")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    arch = make_arch(args.preset)
    _, step = build("maelab", arch, torch.device("cpu"))
    x = torch.randn(args.batch, arch.in_chans, arch.img_size, arch.img_size)
    step(x)
    step(x)
    cpu = torch.device("cpu")
    peak_before = matmul_peak(cpu).cpu
    with Timer(cpu) as t:
        for _ in range(args.steps):
            step(x)
    step_s = t.elapsed.cpu / args.steps
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(args.steps):
            step(x)
    peak = max(peak_before, matmul_peak(cpu).cpu)
    self_us: dict[str, float] = defaultdict(float)
    for e in prof.key_averages():
        self_us[e.key] += e.self_cpu_time_total
    total = sum(self_us.values())
    shares = {}
    for cat, names in CATEGORIES.items():
        shares[cat] = sum(self_us.pop(n, 0.0) for n in names) / total
    shares["other"] = sum(self_us.values()) / total
    flops = train_flops(arch, args.batch)
    # the profiler times operators by the wall clock, which on a shared machine also counts
    # preemption: take its shares, and the step's CPU time for the absolute figure
    matmul_s = shares["matmul"] * step_s
    result = {
        "preset": args.preset,
        "batch": args.batch,
        "threads": torch.get_num_threads(),
        "step_s": step_s,
        "peak_gflops": peak / 1e9,
        "mfu": flops / step_s / peak,
        "matmul_kernel_efficiency": linear_flops(arch, args.batch) / matmul_s / peak,
        "shares_of_profiled_time": shares,
        "encoder_block_gflop_per_image": block_flops(num_keep(arch.num_patches, 0.75) + 1, arch.embed_dim, arch.mlp_ratio) / 1e9,
    }  # fmt: skip
    print(f"{args.preset}, batch {args.batch}, {result['threads']} threads: step {step_s:.3f} CPU s, "
          f"fp32 peak {peak / 1e9:.0f} GFLOP/s, MFU {result['mfu']:.1%}; the matmul kernels alone run "
          f"at {result['matmul_kernel_efficiency']:.1%} of peak")  # fmt: skip
    for cat, share in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"  {share:6.1%}  {cat}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
