"""The study's learning curve: every numbered checkpoint, then the final one at its step."""

from __future__ import annotations

from maelab.config import load_config
from maelab.evaluation.splits import cached_splits
from maelab.experiments.study_readout import learning_curve
from tests.evaluation.conftest import pretrain_tiny


def test_curve_ends_at_the_final_step_without_repeating_a_numbered_checkpoint(tmp_path) -> None:
    run = tmp_path / "run"
    pretrain_tiny(run, "train.epochs=3", "train.save_every=2")  # epoch_0002.pt, then last.pt
    cfg = load_config([str(run / "config.yaml")])
    splits = cached_splits(cfg.data)
    curve = learning_curve(run, splits, steps_per_epoch=4, images=32, k=4)
    assert [row["step"] for row in curve] == [8, 12]  # 256 images / batch 64 = 4 steps an epoch
    assert all({"z_g", "s_g", "s_g_topk", "effective_rank"} <= set(row) for row in curve)
    again = tmp_path / "again"
    pretrain_tiny(again, "train.epochs=2", "train.save_every=2")  # the final one is numbered
    assert [row["step"] for row in learning_curve(again, splits, 4, images=32)] == [8]
