"""U-MAE under DDP: 2 gloo processes give the gradients of one process holding the whole batch.

The uniformity term needs every pair of the global batch: features are all-gathered with their
gradients, the gather's backward sums the gradients over ranks, and DDP averages them. Run as a
script (`torchrun ... test_umae_ddp.py OUT`), this file is the worker.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maelab.config import Config
from maelab.engine.pretrain import TrainStep
from maelab.models import MaskedAutoencoder, make_arch

REPO = Path(__file__).resolve().parents[2]
BATCH = 8  # global
LAMBDA = 0.5  # large, so that the uniformity term's share of the gradient is clearly visible


def setup() -> tuple[TrainStep, torch.Tensor, torch.Tensor]:
    """The same model, images and mask noise in every process."""
    torch.manual_seed(0)
    model = MaskedAutoencoder(make_arch("micro"))
    cfg = Config.model_validate({"objective": {"name": "umae", "umae_lambda": LAMBDA}})
    imgs = torch.randn(BATCH, 3, 16, 16)
    noise = torch.rand(BATCH, model.arch.num_patches)
    return TrainStep(model, cfg), imgs, noise


def grads(
    step: torch.nn.Module, imgs: torch.Tensor, noise: torch.Tensor
) -> dict[str, torch.Tensor]:
    step(imgs, 0.75, noise).loss.backward()
    model = step.module.model if hasattr(step, "module") else step.model
    return {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


def worker(out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    step, imgs, noise = setup()
    rows = slice(rank * BATCH // world, (rank + 1) * BATCH // world)
    g = grads(torch.nn.parallel.DistributedDataParallel(step), imgs[rows], noise[rows])
    if rank == 0:
        torch.save(g, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_umae_gradients_two_processes_equal_one(tmp_path: Path) -> None:
    out = tmp_path / "grads.pt"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           __file__, str(out)]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = torch.load(out)

    step, imgs, noise = setup()
    one = grads(step, imgs, noise)
    assert one.keys() == two.keys()
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=1e-4, atol=1e-6, msg=k)

    # the check is sharp: without the gather, each half's uniformity sees only its own pairs
    halves = [
        grads(setup()[0], imgs[r], noise[r])
        for r in (slice(0, BATCH // 2), slice(BATCH // 2, BATCH))
    ]
    local = {k: (halves[0][k] + halves[1][k]) / 2 for k in one}
    worst = max(((local[k] - one[k]).abs().max() / one[k].abs().max()).item() for k in one)
    assert worst > 1e-2


if __name__ == "__main__":
    worker(sys.argv[1])
