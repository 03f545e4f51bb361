"""`torchrun --nproc_per_node=2 -m maelab pretrain` (gloo on CPU) trains exactly like one process.

The loader gives each rank its slice of one global permutation, and the crops, flips and masks
are drawn for the whole global batch and sliced, so 2 processes x 8 images see the same images,
views and masks as 1 process x 16; DDP's gradient average equals the one-process mean because
every rank removes the same number of patches.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from maelab.config import load_config
from maelab.data.base import ImageSet
from maelab.data.loader import Batching, train_batches
from maelab.engine.distributed import DistInfo
from maelab.engine.pretrain import pretrain, step_mask
from maelab.masking import MaskGeometry
from maelab.models.checkpoints import load_checkpoint

REPO = Path(__file__).resolve().parents[2]

LR = 1e-4
# 96 images / global batch 16 = 6 iterations per epoch, 3 optimizer steps (accumulation 2) per
# epoch; augmentation on so that the crops and flips are checked too.
OVERRIDES = [
    "model.preset=micro", "data.num_train=96", "data.num_test=16", "data.augment=true",
    "data.num_workers=0", "train.batch_size=16", "train.accum_iter=2", "train.epochs=2",
    f"train.lr={LR}", "train.warmup_epochs=0.5", "train.save_every=1", "train.log_every=1",
]  # fmt: skip


def test_rank_slices_make_the_global_batch() -> None:
    """Images, crops, flips and masks of 2 ranks, stacked, are those of 1 process."""
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 16, 16), dtype=torch.uint8, generator=g)
    split = ImageSet(images, torch.zeros(40, dtype=torch.long), 1, (0.5,) * 3, (0.25,) * 3)
    one = list(
        train_batches(
            split, Batching(16, seed=3), epoch=1, image_size=16, device=torch.device("cpu")
        )
    )
    ranks = [
        list(train_batches(split, Batching(8, seed=3, rank=r, world=2), 1, 16, torch.device("cpu")))
        for r in (0, 1)
    ]
    assert len(one) == len(ranks[0]) == 2
    for step, (x, _) in enumerate(one):
        torch.testing.assert_close(torch.cat([ranks[0][step][0], ranks[1][step][0]]), x)

    cfg = load_config([], ["mask.strategy=block", "mask.unit=8", "mask.ratio_range=[0.5,0.9]"])
    geom = MaskGeometry(grid=4, patch_size=4)
    ratio, noise = step_mask(cfg, geom, 2, 5, 16, DistInfo())
    halves = [step_mask(cfg, geom, 2, 5, 8, DistInfo(rank=r, world=2)) for r in (0, 1)]
    assert halves[0][0] == halves[1][0] == ratio  # one ratio for the whole global batch
    torch.testing.assert_close(torch.cat([halves[0][1], halves[1][1]]), noise, rtol=0, atol=0)


def torchrun(run_dir: Path, *extra: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "maelab", "pretrain", "--quiet", f"run_dir={run_dir}", *OVERRIDES, *extra,
    ]  # fmt: skip
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def train_losses(path: Path) -> list[float]:
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return [r["loss"] for r in records if r["kind"] == "train"]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ddp") / "run"
    torchrun(run_dir)
    return run_dir


def assert_same_weights(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float
) -> None:
    for k in b:
        x, y = a[k], b[k]
        if k.endswith("attn.qkv.bias"):
            # the key bias has an exactly-zero gradient (softmax ignores a shift shared by all
            # keys): AdamW turns its round-off into steps of up to lr with a random sign
            x, y = x.view(3, -1), y.view(3, -1)
            assert (x[1] - y[1]).abs().max() <= LR * 6, k
            x, y = x[[0, 2]], y[[0, 2]]
        torch.testing.assert_close(x, y, rtol=0, atol=atol, msg=k)


@pytest.mark.slow
def test_two_processes_equal_one(ddp_run: Path, tmp_path: Path) -> None:
    cfg = load_config([], [f"run_dir={tmp_path}", *OVERRIDES])
    one = pretrain(cfg, quiet=True).model.state_dict()
    two = weights(ddp_run / "checkpoints" / "last.pt")
    half = weights(ddp_run / "checkpoints" / "epoch_0001.pt")
    moved = max((two[k] - v).abs().max().item() for k, v in half.items())
    assert moved > 1e-4  # the last 3 AdamW steps alone move the weights well beyond the tolerance
    assert_same_weights(two, one, atol=1e-5)
    state = load_checkpoint(ddp_run / "checkpoints" / "last.pt")
    assert state["global_step"] == 12 and state["opt_steps"] == 6
    # the logged loss is the global batch's, as in one process
    logged = [train_losses(d / "metrics.jsonl") for d in (ddp_run, tmp_path)]
    torch.testing.assert_close(torch.tensor(logged[0]), torch.tensor(logged[1]), rtol=1e-5, atol=0)


@pytest.mark.slow
def test_resume_replays_the_run(ddp_run: Path, tmp_path: Path) -> None:
    # restart the 2-process run from its epoch-1 checkpoint in a fresh folder
    half = ddp_run / "checkpoints" / "epoch_0001.pt"
    torchrun(tmp_path / "two", f"--resume={half}")
    straight = weights(ddp_run / "checkpoints" / "last.pt")
    resumed = weights(tmp_path / "two" / "checkpoints" / "last.pt")
    for k in straight:
        torch.testing.assert_close(resumed[k], straight[k], rtol=0, atol=1e-6, msg=k)


@pytest.mark.slow
def test_one_process_takes_over(ddp_run: Path, tmp_path: Path) -> None:
    """Training does not depend on the number of processes: resume a 2-process run on one."""
    half = ddp_run / "checkpoints" / "epoch_0001.pt"
    straight = weights(ddp_run / "checkpoints" / "last.pt")
    cfg = load_config([], [f"run_dir={tmp_path / 'one'}", *OVERRIDES])
    one = pretrain(cfg, resume=str(half), quiet=True).model.state_dict()
    assert_same_weights(one, straight, atol=1e-5)


@pytest.mark.slow
def test_only_rank_zero_writes(ddp_run: Path) -> None:
    records = [json.loads(line) for line in (ddp_run / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in records if r["kind"] == "train"]
    assert steps == list(range(1, 13))  # one record per step, not one per process
    assert sorted(p.name for p in (ddp_run / "checkpoints").iterdir()) == [
        "epoch_0001.pt", "epoch_0002.pt", "last.pt"
    ]  # fmt: skip
