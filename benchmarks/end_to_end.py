"""End-to-end images/s of `maelab pretrain`, data path included.

Runs the real command in a subprocess on
  * synthetic: the embedded dataset at 32 px, in memory as uint8 (no augmentation, its default);
  * synthetic+aug: the same with the batched uint8 -> float crop + flip (`data.augment=true`);
  * folder:    an ImageFolder tree of JPEG files this script writes (64 px images, decoded,
               cropped and resized to 32 px by DataLoader workers, `data.name=folder`);
and, for reference, the model step alone (same model, batch and threads, random images).

Differential timing: each variant runs once with 1 epoch and once with E epochs; images/s =
(E - 1) epochs of images / the difference in time, so start-up, dataset building, the first
epoch's warmup and the final figure cancel, and the per-epoch checkpoint stays in as in any run.
Both the wall clock and the CPU time of the command (its DataLoader workers included) are
reported: on a shared machine the CPU figure is the stable one. Interleaved, medians of repeats.

    python benchmarks/end_to_end.py
    python benchmarks/end_to_end.py --threads 1 --workers 1 --repeats 3 --json e2e.json
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from maelab.bench import Timer, build
from maelab.models import make_arch

REPO = Path(__file__).resolve().parents[1]

# the allocator lever: keep freed memory in the heap instead of returning it to the kernel
MALLOC_ENV = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": str(2**31 - 1)}


def write_jpeg_tree(root: Path, n: int, size: int = 64, classes: int = 10, seed: int = 0) -> Path:
    """`root/train/class_k/*.jpg` plus a small `root/val/`: smooth random colour images."""
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("val", max(classes, n // 20))):
        for i in range(count):
            d = root / split / f"class_{i % classes}"
            d.mkdir(parents=True, exist_ok=True)
            low = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
            img = Image.fromarray(low).resize((size, size), Image.BICUBIC)
            img.save(d / f"{i:06d}.jpg", quality=90)
    return root


def pretrain_cmd(
    run_dir: Path, dataset: str, args: argparse.Namespace, root: Path | None, epochs: int
) -> list[str]:
    common = [
        f"run_dir={run_dir}", "model.preset=tiny", f"train.batch_size={args.batch}",
        f"train.epochs={epochs}", "train.log_every=100000", "train.warmup_epochs=1",
        f"data.num_train={args.num_train}", "data.num_test=64", f"data.num_workers={args.workers}",
    ]  # fmt: skip
    if args.threads:
        common.append(f"train.threads={args.threads}")
    if dataset == "synthetic":
        data = ["data.name=synthetic", "data.synthetic.image_size=32"]
    elif dataset == "synthetic+aug":
        data = ["data.name=synthetic", "data.synthetic.image_size=32", "data.augment=true"]
    else:
        data = ["data.name=folder", f"data.root={root}", "data.image_size=32"]
    return [sys.executable, "-m", "maelab", "pretrain", "--quiet", *common, *data]


def run_pretrain(cmd: list[str], env_extra: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s of the command and its workers) of one `maelab pretrain` run."""
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK")}
    env.update(env_extra)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return wall, cpu


def steady_rate(
    dataset: str, args: argparse.Namespace, root: Path | None, tmp: Path, env: dict[str, str]
) -> dict[str, float]:
    """images/s of epochs 2..E by both clocks: (E-epoch run) - (1-epoch run)."""
    runs = {}
    for epochs in (1, args.epochs):
        run_dir = tmp / f"run-{dataset}-{epochs}-{time.monotonic_ns()}"
        runs[epochs] = run_pretrain(pretrain_cmd(run_dir, dataset, args, root, epochs), env)
        steps = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
        per_epoch = [r["step"] for r in steps if r["kind"] == "epoch"][0]
    images = (args.epochs - 1) * per_epoch * args.batch
    return {
        "wall": images / (runs[args.epochs][0] - runs[1][0]),
        "cpu": images / (runs[args.epochs][1] - runs[1][1]),
    }


def model_only(batch: int, steps: int = 3) -> dict[str, float]:
    """images/s of maelab's step alone on random images (same model, batch and threads)."""
    arch = make_arch("tiny")
    _, step = build("maelab", arch, torch.device("cpu"))
    x = torch.randn(batch, 3, arch.img_size, arch.img_size)
    step(x)
    with Timer(torch.device("cpu")) as t:
        for _ in range(steps):
            step(x)
    return {"wall": batch * steps / t.elapsed.wall, "cpu": batch * steps / t.elapsed.cpu}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--datasets", default="synthetic,synthetic+aug,folder")
    p.add_argument("--num-train", type=int, default=2048)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--workers", type=int, default=2, help="DataLoader workers (folder)")
    p.add_argument("--threads", type=int, default=None, help="train.threads (default: torch's)")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--malloc", choices=["off", "on", "both"], default="off",
                   help=f"run `maelab pretrain` with {MALLOC_ENV} (on), without (off), or both")  # fmt: skip
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    datasets = [d for d in args.datasets.split(",") if d]
    envs = {
        "off": [("", {})],
        "on": [("+malloc", MALLOC_ENV)],
        "both": [("", {}), ("+malloc", MALLOC_ENV)],
    }
    variants = [(d + tag, d, env) for d in datasets for tag, env in envs[args.malloc]]
    print(f"end to end: tiny model, batch {args.batch}, {args.num_train} training images, runs of 1 and "
          f"{args.epochs} epochs (epochs 2..{args.epochs} timed), workers {args.workers}, threads "
          f"{args.threads or torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results: dict[str, list[dict[str, float]]] = {name: [] for name, _, _ in variants}
    results["model step alone"] = []
    with tempfile.TemporaryDirectory(prefix="maelab-e2e-") as tmp:
        tmp_path = Path(tmp)
        root = write_jpeg_tree(tmp_path / "jpegs", args.num_train) if "folder" in datasets else None
        for r in range(args.repeats):
            order = variants if r % 2 == 0 else variants[::-1]
            for name, dataset, env in order:
                results[name].append(steady_rate(dataset, args, root, tmp_path, env))
                rate = results[name][-1]
                print(f"  repeat {r + 1}: {name:<22} {rate['wall']:7.1f} img/s wall, "
                      f"{rate['cpu']:7.1f} by CPU time", flush=True)  # fmt: skip
            results["model step alone"].append(model_only(args.batch))
            rate = results["model step alone"][-1]
            print(f"  repeat {r + 1}: {'model step alone':<22} {rate['wall']:7.1f} img/s wall, "
                  f"{rate['cpu']:7.1f} by CPU time", flush=True)  # fmt: skip
    med = {
        k: {c: statistics.median(x[c] for x in v) for c in ("wall", "cpu")}
        for k, v in results.items()
    }
    ref = med["model step alone"]
    print(f"  {'variant':<24}{'img/s wall':>11}{'img/s CPU':>11}  CPU vs model step alone")
    for k, v in med.items():
        print(f"  {k:<24}{v['wall']:11.1f}{v['cpu']:11.1f}  {v['cpu'] / ref['cpu']:6.2f}x")
    out = {"args": vars(args), "median_images_per_s": med, "all": results}
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
