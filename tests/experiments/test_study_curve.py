"""The study's learning curve: every numbered checkpoint, then the final one at its step."""

from __future__ import annotations

import pytest

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


def test_final_row_from_the_study_readouts_equals_the_recomputed_one(tmp_path) -> None:
    """evaluate_run takes the curve's final row from study_metrics instead of encoding the same
    images again: both ways give the same numbers."""
    from maelab.experiments.study_readout import curve_row, principal_k, study_metrics
    from maelab.models.checkpoints import load_pretrained

    run = tmp_path / "run"
    pretrain_tiny(run, "train.epochs=2", "train.save_every=1")  # epoch_0001, epoch_0002 (final)
    model, cfg = load_pretrained(run / "checkpoints" / "last.pt")
    splits = cached_splits(cfg.data)
    metrics = study_metrics(model, cfg, splits, images=32)
    k = principal_k(cfg)
    recomputed = learning_curve(run, splits, 4, images=32, seed=cfg.train.seed, k=k)
    reused = learning_curve(run, splits, 4, 32, cfg.train.seed, k, final=curve_row(metrics))
    assert [r["step"] for r in reused] == [r["step"] for r in recomputed] == [4, 8]
    assert reused[0] == recomputed[0]  # the numbered checkpoint is read as before
    for key, value in recomputed[-1].items():
        assert reused[-1][key] == pytest.approx(value, rel=1e-6, abs=1e-9), key


def test_curve_starts_at_step_0_with_the_untrained_network(tmp_path) -> None:
    """evaluate_run puts the run's initial network (the same seed's random encoder) at step 0,
    read as every checkpoint is read."""
    from maelab.evaluation.baselines import random_encoder
    from maelab.evaluation.features import token_features
    from maelab.evaluation.results import EvalConfig
    from maelab.experiments.run_results import evaluate_run
    from maelab.metrics import effective_rank
    from maelab.models.checkpoints import load_pretrained
    from maelab.probes.inputs import take
    from maelab.probes.selectivity import selectivity

    run = tmp_path / "run"
    pretrain_tiny(run, "train.epochs=2", "train.save_every=1")
    eval_cfg = EvalConfig(study=True, study_images=32, view_images=32, max_train=64,
                          identifiability=False)  # fmt: skip
    curve = evaluate_run(run, eval_cfg).curve
    assert [r["step"] for r in curve] == [0, 4, 8]
    model, cfg = load_pretrained(run / "checkpoints" / "last.pt")
    splits = cached_splits(cfg.data)
    fit, held = take(splits.train, 32), take(splits.test, 32)
    net = random_encoder(model.arch, cfg.train.seed)
    vf, vh = token_features(net, fit), token_features(net, held)
    res = selectivity(vf, fit, vh, held, seed=cfg.train.seed, readouts=("z_g", "s_g", "e_r"))
    for r in ("z_g", "s_g", "e_r"):
        assert curve[0][r] == pytest.approx(res.linear[r], rel=1e-6, abs=1e-9), r
    assert curve[0]["effective_rank"] == pytest.approx(effective_rank(vh.x), rel=1e-6)
    assert curve[0]["s_g"] != pytest.approx(curve[-1]["s_g"], abs=1e-9)  # not the trained one
