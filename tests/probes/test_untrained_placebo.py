"""Cao Q1, Q3 and Q5 read against the checkpoint's untrained network (the placebo): a contrast
the untrained network shows as well is no effect of training. Passing the untrained weights as
the "trained" checkpoint must give a row value of exactly 0 (placebo equal to raw); a network
that training changed must not."""

from __future__ import annotations

import pytest
import torch

from maelab import verdicts as vd
from maelab.config import SyntheticConfig
from maelab.data.synthetic import generate_synthetic
from maelab.models import MaskedAutoencoder
from maelab.probes.information_knockout import q5_experiment
from maelab.probes.position import q1_experiment, table_moved
from maelab.probes.questions import QuestionResult, question_row
from maelab.probes.stability import q3_experiment, with_ablation
from tests.probes.conftest import TINY
from tests.probes.test_position import _kernel_table


def untrained(**arch: object) -> MaskedAutoencoder:
    """A seeded initial network, as `random_encoder` builds the run's start."""
    return MaskedAutoencoder(**{**TINY, **arch}, init_seed=3).eval()


def decided(result: QuestionResult) -> vd.VerdictRecord:
    return vd.decide_table([question_row(result)], sampling=vd.OVER_IMAGES)[0]


def test_question_row_decides_on_raw_minus_placebo() -> None:
    res = QuestionResult("Q1", "c", "m", "c", 1.0, 0.0, [1.0, 1.2], "increase", 0.1,
                         placebo=[0.9, 1.1])  # fmt: skip
    assert res.decided == pytest.approx([0.1, 0.1])
    assert decided(res).effect == pytest.approx(0.1)
    with pytest.raises(ValueError, match="placebo"):
        QuestionResult("Q1", "c", "m", "c", 1.0, 0.0, [1.0, 1.2], "increase", 0.1, placebo=[0.9])


def test_q1_untrained_as_trained_is_exactly_zero(images) -> None:
    arch = dict(patch_size=2, embed_dim=64, pos_embed_init="random", learnable_pos_embed=True)
    start = untrained(**arch)
    same = q1_experiment(untrained(**arch), images, untrained=start, max_images=8)
    assert same.placebo == same.paired and decided(same).effect == 0.0
    assert same.details["pos_embed_moved"] == 0.0 and same.details["decoder_pos_embed_moved"] == 0.0
    rec = decided(same)  # raw and placebo kept beside the decided difference
    assert same.kind == "prediction" and rec.raw.effect == rec.placebo.effect
    assert rec.outcome != "agrees"
    # training that made the table a coordinate system: trained - untrained is the whole effect
    moved = untrained(**arch)
    with torch.no_grad():
        moved.pos_embed[0, 1:] = _kernel_table(8)
    res = q1_experiment(moved, images, untrained=start, max_images=8)
    assert decided(res).outcome == "agrees" and res.details["pos_embed_moved"] > 1.0
    assert decided(res).placebo.effect == pytest.approx(res.details["contrast_untrained"])
    assert res.details["decoder_pos_embed_moved"] == 0.0
    assert decided(res).effect == pytest.approx(res.treated - res.control_value
                                                - res.details["contrast_untrained"])  # fmt: skip


def test_q1_fixed_sincos_table_is_an_instrument_row_of_zero(images) -> None:
    res = q1_experiment(untrained(), images, untrained=untrained(), max_images=8)
    assert res.kind == "instrument" and res.placebo == res.paired
    assert res.details["pos_embed_moved"] == 0.0
    assert table_moved(torch.ones(2, 2), torch.zeros(2, 2)) > 1e6  # no division by zero


def test_q3_ablation_rows_are_trained_minus_untrained(images) -> None:
    start = untrained(depth=3)
    same = q3_experiment(untrained(depth=3), images, start, untrained=start, max_images=12)
    rows = same.rows
    assert [r.control for r in rows[1:]] == [f"the same weights with blocks {a}"
                                             for a in ("no_skip", "no_scale", "no_softmax")]  # fmt: skip
    for row in rows[1:]:
        assert row.predicted == "decrease" and row.placebo == row.paired
        assert max(abs(v) for v in row.decided) == 0.0
        # the raw contrast alone is the architecture's: without skips the untrained blocks
        # already erase perturbations, which is what the row must not credit to training
    no_skip = rows[1]
    assert no_skip.details["raw"] < -0.5 and no_skip.details["placebo"] == no_skip.details["raw"]
    records = vd.decide_table([question_row(r) for r in rows], sampling=vd.OVER_IMAGES)
    assert [r.effect for r in records[1:]] == [0.0, 0.0, 0.0]
    # other weights (a stand-in for training): the rows no longer cancel
    other = untrained(depth=3)
    with torch.no_grad():
        for blk in other.blocks:
            blk.attn.qkv.weight.mul_(3.0)
    res = q3_experiment(other, images, start, untrained=start, max_images=12)
    assert any(max(abs(v) for v in r.decided) > 1e-3 for r in res.rows[1:])


def test_with_ablation_keeps_the_weights(images) -> None:
    net = untrained(depth=2)
    cut = with_ablation(net, "no_skip")
    assert cut.arch.ablation == "no_skip" and net.arch.ablation == "none"
    for (k, a), (_, b) in zip(net.state_dict().items(), cut.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


SHARED = SyntheticConfig(version=2, image_size=16, cell_size=4, region_cells=2, tied=True)
NO_REGIONS = SHARED.model_copy(update={"region_cells": 1})


def test_q5_is_world_minus_no_regions_and_trained_minus_untrained() -> None:
    def pair(cfg: SyntheticConfig) -> tuple:
        return generate_synthetic(48, cfg, seed=5), generate_synthetic(96, cfg, seed=6)

    test, fit = pair(SHARED)
    control = pair(NO_REGIONS)
    opts = dict(max_images=24, num_masks=2, targets_per_mask=2)
    start = untrained()
    same = q5_experiment(untrained(), test, fit, untrained=start, no_regions=control, **opts)
    assert same.placebo == same.paired and decided(same).effect == 0.0
    d = same.details
    assert d["world_effect"] == d["world_effect_untrained"]
    assert {"no_regions_effect", "no_regions_model_base_error"} <= d.keys()
    # the row is the world's excess minus the control world's, image by image
    other = MaskedAutoencoder(**TINY, init_seed=4).eval()
    res = q5_experiment(other, test, fit, untrained=start, no_regions=control, **opts)
    alone = q5_experiment(other, test, fit, untrained=start, **opts)
    ctrl = q5_experiment(other, *control, untrained=start, **opts)
    assert res.paired == pytest.approx(
        [a - b for a, b in zip(alone.paired, ctrl.paired, strict=True)]
    )
    assert res.placebo == pytest.approx(
        [a - b for a, b in zip(alone.placebo, ctrl.placebo, strict=True)]
    )
    assert res.decided != pytest.approx([0.0] * len(res.decided))


def test_the_runner_gives_the_untrained_start_and_the_control_world(tmp_path) -> None:
    """`analyze probes` on a tiny synthetic run: Q1, Q3 (four rows) and Q5 each read the run's
    untrained start, Q5 also the world without regions, built from the run's own generator."""
    from maelab.probes.runner import load_target, no_regions_images, probe_checkpoint
    from tests.evaluation.conftest import pretrain_tiny

    ckpt = pretrain_tiny(tmp_path / "run")
    target = load_target(ckpt, max_images=8)
    test, fit = no_regions_images(target, 8)
    assert len(test) == len(fit) == 8 and test.mean == target.images.mean
    run = probe_checkpoint(ckpt, tmp_path / "out", ["Q1", "Q3", "Q5"], max_images=16)
    claims = [v.claim for v in vd.read_verdicts(run.verdicts).verdicts]
    assert len(claims) == 6 and sum(c.startswith("Q3: ") for c in claims) == 4
    q5 = run.questions["Q5"]
    assert q5.placebo is not None and "no_regions_effect_untrained" in q5.details
    assert "pos_embed_moved" in run.questions["Q1"].details


def test_the_runner_reads_q2_on_a_ladder_of_ranks(tmp_path) -> None:
    """A low-rank run: Q2 gets the family at ranks 1..16 (its own rank among them) and decides on
    the knees; Q5 is skipped with its reason (no control world for this data)."""
    from maelab.probes.runner import probe_checkpoint
    from tests.evaluation.conftest import pretrain_tiny

    ckpt = pretrain_tiny(tmp_path / "run", "data.name=lowrank", "data.lowrank.rank=2",
                         "model.norm_pix_loss=false")  # fmt: skip
    run = probe_checkpoint(ckpt, tmp_path / "out", ["Q2", "Q5"], max_images=8)
    assert any(
        "Q5: skipped, needs data.name=synthetic (its control world" in s for s in run.skipped
    )
    q2 = run.questions["Q2"]
    assert {f"optimum_error_k{k}" for k in (1, 2, 4, 8, 16)} <= q2.details.keys()
    assert q2.details["optimum_knee"] == 4 and q2.details["rank"] == 2 and len(q2.paired) == 8
    (row,) = vd.read_verdicts(run.verdicts).verdicts
    assert row.claim.startswith("Q2: ") and row.margin == 0.5
