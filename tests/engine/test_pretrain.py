"""The engine learns, accumulates gradients correctly and writes what it promises."""

import json

import pytest
import torch

from maelab.cli import main
from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.evaluation.reconstruct import write_reconstruction_figure
from maelab.models.checkpoints import load_checkpoint
from maelab.run_folder import RunFolder


def _cfg(tmp_path, *extra):
    return load_config(
        ["maelab/configs/quickstart.yaml"],
        [
            f"run_dir={tmp_path}",
            "data.num_train=512",
            "data.num_test=64",
            "train.batch_size=64",
            "train.epochs=1",
            "train.log_every=1",
            *extra,
        ],
    )


def test_run_folder_contents(tmp_path):
    cfg = _cfg(tmp_path)
    res = pretrain(cfg, quiet=True)
    assert (tmp_path / "config.yaml").exists()
    assert (tmp_path / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "figures").exists()  # the caller draws figures
    write_reconstruction_figure(res.model, res.splits.test, cfg.mask, RunFolder(res.run_dir))
    assert (tmp_path / "figures" / "reconstruction.png").stat().st_size > 1000
    assert list((tmp_path / "tensorboard").iterdir())
    lines = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if r["kind"] == "train"] == list(range(1, 9))
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert state["epoch"] == 1 and state["global_step"] == 8 == res.steps
    assert state["versions"]["torch"] == torch.__version__


def test_deterministic_on_cpu(tmp_path):
    a = pretrain(_cfg(tmp_path / "a"), quiet=True).model.state_dict()
    b = pretrain(_cfg(tmp_path / "b"), quiet=True).model.state_dict()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_short_epoch_still_updates_with_accumulation(tmp_path):
    # 512 images / 64 = 8 iterations per epoch, accum_iter 16 > 8: one update per epoch anyway
    cfg = _cfg(tmp_path, "train.accum_iter=16", "train.warmup_epochs=0", "train.lr=1e-3")
    res = pretrain(cfg, quiet=True)
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["opt_steps"] == 1
    init = pretrain(
        _cfg(tmp_path / "b", "train.epochs=1", "train.lr=0.0", "train.warmup_epochs=0"), quiet=True
    )
    diff = sum(
        (p - q).abs().sum()
        for p, q in zip(res.model.parameters(), init.model.parameters(), strict=True)
    )
    assert diff > 0


def test_accumulation_matches_big_batch(tmp_path):
    """2 x 32 accumulated equals one batch of 64 when the images and masks are the same."""
    from maelab.masking import MaskGeometry, mask_noise
    from maelab.models import MaskedAutoencoder, make_arch

    torch.manual_seed(0)
    m1 = MaskedAutoencoder(make_arch("micro"))
    m2 = MaskedAutoencoder(make_arch("micro"))
    m2.load_state_dict(m1.state_dict())
    x = torch.randn(64, 3, 16, 16)
    noise = mask_noise(
        "random", 64, MaskGeometry(4, 4), 0.75, generator=torch.Generator().manual_seed(1)
    )
    m1(x, 0.75, noise)[0].backward()
    for sl in (slice(0, 32), slice(32, 64)):
        (m2(x[sl], 0.75, noise[sl])[0] / 2).backward()
    for (name, p), q in zip(m1.named_parameters(), m2.parameters(), strict=True):
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_tiny_model_learns_on_synthetic(tmp_path):
    """A few hundred steps take the norm-pix loss clearly below its starting value."""
    cfg = load_config(
        ["maelab/configs/quickstart.yaml"],
        [
            f"run_dir={tmp_path}",
            "data.num_train=2048",
            "data.num_test=64",
            "train.batch_size=64",
            "train.epochs=8",
            "train.log_every=1",
        ],
    )
    res = pretrain(cfg, quiet=True)
    losses = [
        json.loads(x)["loss"]
        for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(x)["kind"] == "train"
    ]
    assert len(losses) == 256
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    # measured: ~2.3 -> ~0.8 (norm-pix targets have unit variance, so ~1.0 is "predict the mean")
    assert last < 0.5 * first, (first, last)
    assert res.final_loss < 0.9


def test_cli_pretrain_draws_the_reconstruction(tmp_path):
    args = ["-c", "quickstart", "data.num_train=32", "data.num_test=8", "train.batch_size=16",
            "train.epochs=1", "data.num_workers=0", f"run_dir={tmp_path}"]  # fmt: skip
    assert main(["pretrain", *args, "--quiet"]) == 0
    assert (tmp_path / "figures" / "reconstruction.png").stat().st_size > 1000
    assert main(["pretrain", *args, "run_dir=" + str(tmp_path / "dry"), "--dry-run"]) == 0
    assert not (tmp_path / "dry").exists()
