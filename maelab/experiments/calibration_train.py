"""Training for the calibration: maelab's own `pretrain` on Gaussian worlds, one job per run.

A job is a small picklable description (the world, the mask, the model's width, the budget);
`run_jobs` trains them in this process or in a pool of worker processes and returns what the
rows read: the linear MAE's end-to-end map, or the ViT's held-out loss and learning curve.
Every run draws fresh images: the training split holds exactly steps x batch of them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from maelab.config import Config, GaussianConfig, MaskConfig, build_config
from maelab.data.gaussian import gaussian_world
from maelab.engine.pretrain import pretrain
from maelab.masking import MaskGeometry, mask_noise_for
from maelab.models.linear import LinearMAE
from maelab.run_folder import RunFolder


@dataclass(frozen=True)
class LinearJob:
    """One linear MAE run: ``code_dim`` None is full rank; ``loss_on`` "all" a plain AE."""

    name: str
    world: GaussianConfig
    mask: MaskConfig
    patch_size: int
    code_dim: int | None
    steps: int
    batch: int
    lr: float
    loss_on: str = "masked"
    seed: int = 0


@dataclass(frozen=True)
class VitJob:
    """One ViT MAE run (norm-pix off) and its held-out loss on ``heldout`` fresh images."""

    name: str
    world: GaussianConfig
    mask: MaskConfig
    patch_size: int
    steps: int
    batch: int
    lr: float
    preset: str = "micro"
    heldout: int = 4096
    seed: int = 0


@dataclass(frozen=True)
class VitOutcome:
    heldout: float  # mean per-image loss on fresh images and masks
    stderr: float
    curve: tuple[tuple[int, float], ...]  # (step, training loss on that step's fresh batch)
    steps: int
    seconds: float


def _train_tree(steps: int, batch: int, lr: float, seed: int) -> dict[str, Any]:
    return {
        "epochs": 1, "batch_size": batch, "lr": lr, "warmup_epochs": 0.05, "weight_decay": 0.0,
        "amp": "off", "device": "cpu", "log_every": max(1, steps // 25), "seed": seed,
        "threads": 1,
    }  # fmt: skip


def _data_tree(world: GaussianConfig, images: int) -> dict[str, Any]:
    return {
        "name": "gaussian", "gaussian": world.model_dump(), "num_train": images, "num_test": 16,
        "num_workers": 0,
    }  # fmt: skip


def linear_config(job: LinearJob, root: Path) -> Config:
    """The pretraining config of a linear job (every field a recipe would fill is set)."""
    tree = {
        "run_dir": str(root / job.name),
        "data": _data_tree(job.world, job.steps * job.batch),
        "model": {"kind": "linear", "patch_size": job.patch_size, "code_dim": job.code_dim,
                  "norm_pix_loss": False},
        "mask": job.mask.model_dump(),
        "loss": {"on": job.loss_on},
        "train": _train_tree(job.steps, job.batch, job.lr, job.seed),
    }  # fmt: skip
    return build_config(tree)


def vit_config(job: VitJob, root: Path) -> Config:
    tree = {
        "run_dir": str(root / job.name),
        "data": _data_tree(job.world, job.steps * job.batch),
        "model": {"preset": job.preset, "patch_size": job.patch_size, "norm_pix_loss": False},
        "mask": job.mask.model_dump(),
        "train": _train_tree(job.steps, job.batch, job.lr, job.seed),
    }
    return build_config(tree)


def train_linear(job: LinearJob, root: Path) -> np.ndarray:
    """Pretrain the linear MAE; its end-to-end map W (D, D) in float64."""
    result = pretrain(linear_config(job, root), quiet=True)
    assert isinstance(result.model, LinearMAE)
    return result.model.end_to_end().double().numpy()


def train_vit(job: VitJob, root: Path) -> VitOutcome:
    """Pretrain the ViT MAE; its held-out loss and the learning curve of its run."""
    t0 = time.time()
    cfg = vit_config(job, root)
    result = pretrain(cfg, quiet=True)
    mean, stderr = heldout_loss(result.model, job.world, job.mask, job.heldout, job.seed + 1)
    return VitOutcome(mean, stderr, learning_curve(cfg.run_dir), result.steps, time.time() - t0)


def learning_curve(run_dir: str | Path) -> tuple[tuple[int, float], ...]:
    """(step, loss) of a run's logged training steps: each a batch of fresh images, so each
    an unbiased (noisy) estimate of the held-out loss at that step."""
    lines = RunFolder(run_dir).metrics.read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return tuple((int(r["step"]), float(r["loss"])) for r in records if r.get("kind") == "train")


@torch.no_grad()
def heldout_loss(
    model: nn.Module, world: GaussianConfig, mask: MaskConfig, n: int, seed: int,
    batch: int = 512,
) -> tuple[float, float]:  # fmt: skip
    """Mean and standard error over ``n`` fresh images (and masks) of each image's loss:
    its per-patch squared error averaged over its removed patches, as maelab's loss."""
    images, _ = gaussian_world(world).sample(n, seed)
    grid = world.image_size // model.patch_size  # type: ignore[operator]
    gen = torch.Generator().manual_seed(seed)
    noise = mask_noise_for(mask, n, MaskGeometry(grid, model.patch_size), gen)  # type: ignore[arg-type]
    was_training = model.training
    model.eval()
    per_image = []
    for i in range(0, n, batch):
        x = images[i : i + batch]
        _, pred, removed = model(x, mask.ratio, noise[i : i + batch])
        err = (pred - model.target(x)).pow(2).mean(-1)  # type: ignore[operator]
        per_image.append((err * removed).sum(1) / removed.sum(1).clamp_min(1.0))
    model.train(was_training)
    losses = torch.cat(per_image).double()
    return float(losses.mean()), float(losses.std() / np.sqrt(n))


Job = LinearJob | VitJob


def run_job(job: Job, root: Path) -> tuple[np.ndarray | VitOutcome, float]:
    """Train one job (a worker's entry point: one BLAS thread, like torch); its result and
    seconds."""
    t0 = time.time()
    with threadpool_limits(1):
        out = train_vit(job, root) if isinstance(job, VitJob) else train_linear(job, root)
    return out, time.time() - t0


@dataclass(frozen=True)
class Trained:
    results: dict[str, np.ndarray | VitOutcome]  # job name -> W (D, D) or the ViT's outcome
    seconds: dict[str, float]  # job name -> training seconds (in its worker)
    waited: Any  # what ``while_waiting`` returned


def run_jobs(
    jobs: Sequence[Job], root: Path, workers: int = 1,
    while_waiting: Callable[[], Any] | None = None,
) -> Trained:  # fmt: skip
    """Train every job (in ``workers`` processes when > 1), longest first; ``while_waiting``
    runs in this process meanwhile (the exact answers)."""
    order = sorted(jobs, key=_cost, reverse=True)
    if workers <= 1:
        done = {job.name: run_job(job, root) for job in order}
        waited = while_waiting() if while_waiting else None
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
            futures = {job.name: pool.submit(run_job, job, root) for job in order}
            waited = while_waiting() if while_waiting else None
            done = {name: f.result() for name, f in futures.items()}
    return Trained({k: v[0] for k, v in done.items()}, {k: v[1] for k, v in done.items()}, waited)


def _cost(job: Job) -> float:
    """A rough relative cost, to start the long jobs first."""
    if isinstance(job, VitJob):
        return 50.0 * job.steps * job.batch
    width = job.code_dim or job.world.image_size**2
    return job.steps * job.batch * (1.0 + width / 64.0)
