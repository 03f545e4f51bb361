"""Deciding a declared study (maelab.experiments.decide) from fake per-seed metrics, no
training: a two-condition declaration written here, and the world study's rows (derived
directions from shared latents, gates, outcomes from maelab.stats)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from maelab import stats
from maelab import verdicts as vd
from maelab.config import load_config
from maelab.experiments.decide import Decision, decide, direction_from_shares, format_decision
from maelab.experiments.declaration import (
    INCREASE,
    ON_TOP1,
    R2,
    TOP1,
    TOP1_GATE,
    Diff,
    Gate,
    RowSpec,
    Study,
)
from maelab.experiments.measurements import Measurements
from maelab.experiments.studies.world import WORLD
from maelab.experiments.study_readout import shared_fractions
from maelab.masking import MaskGeometry, draw_mask
from maelab.metric_names import LINEAR_TOP1, of_random

WORLD_YAML = Path(__file__).resolve().parents[2] / "maelab" / "configs" / "study_world.yaml"
SHARES = {  # shared.<level> per condition, as the study world's masks give them at 0.75
    "patch": {"global": 1.0, "region_noise": 1.0, "cell_noise": 0.7},
    "cell": {"global": 1.0, "region_noise": 1.0, "cell_noise": 0.0},
    "region": {"global": 1.0, "region_noise": 0.0, "cell_noise": 0.0},
    "straddled": {"global": 1.0, "region_noise": 1.0, "cell_noise": 0.0},
    "umae": {"global": 1.0, "region_noise": 1.0, "cell_noise": 0.7},
}


RANDOM = {"z_g": 0.45, "s_g": 0.85, "e_r": 0.6, "e_c": 0.85}  # untrained: the same in every unit
POSITIVE = ("sel.full.encoder.e_r", "sel.masked.encoder.e_r", "selp.full.encoder.e_r",
            "sel.full.encoder.e_c", "selp.full.encoder.e_c", "sel.full.encoder.z_g")  # fmt: skip
PILOTS = {cond: {"loss": 0.1, "readout": 0.9} for cond in SHARES}


def fake_runs(e_r: dict[str, float], learned: bool = True, seeds: int = 3) -> Measurements:
    """Per-seed metrics of every condition: the trained encoder's readouts, the untrained
    network's (the same in every condition: masks do not enter a full view), positive controls
    of -0.03 (detected), a final loss at its pilot's."""
    rng = np.random.default_rng(0)
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for cond, shares in SHARES.items():
        for s in range(seeds):
            gain = 0.05 if learned else -0.02  # unlearned: below the random encoder
            m = {f"shared.{k}": v for k, v in shares.items()}
            for readout, base in (("z_g", 0.5), ("s_g", 0.9), ("e_r", e_r[cond]), ("e_c", 0.9)):
                for pre in ("sel", "selp"):
                    jitter = float(rng.normal(0, 0.002))
                    untrained = RANDOM[readout] if readout in ("e_r", "e_c") else base - gain
                    m[f"{pre}.full.random.{readout}"] = untrained + jitter
                    m[f"{pre}.full.encoder.{readout}"] = base + jitter + float(rng.normal(0, 0.002))
                    m[f"{pre}.full.pixels.{readout}"] = base - 0.1
            m["selp.full.pca.s_g"] = 0.8
            m["sel.masked.encoder.e_r"] = e_r[cond]
            m["sel.masked.random.e_r"] = RANDOM["e_r"] + float(rng.normal(0, 0.002))
            m["sel.full.encoder.control"] = float(rng.normal(0, 0.003))
            m.update({f"pc.{k}": -0.03 + float(rng.normal(0, 0.002)) for k in POSITIVE})
            m.update(linear_top1=40.0 + s, effective_rank=20.0, alignment_norm=0.3,
                     uniformity=-2.0, final_loss=0.1)  # fmt: skip
            m.update({"random.linear_top1": 30.0 + s, "random.effective_rank": 30.0,
                      "random.alignment_norm": 0.1, "ref.latent_rank": 40.0,
                      "random100.effective_rank": 30.0 + float(rng.normal(0, 0.3)),
                      "random100.alignment_norm": 0.1 + float(rng.normal(0, 0.003))})  # fmt: skip
            runs.setdefault(cond, {})[s] = m
    return Measurements(runs, {"linear_top1": 35.0})


E_R = {"patch": 0.80, "cell": 0.80, "region": 0.70, "straddled": 0.79, "umae": 0.80}


def row(table, start: str):
    return next(v for v in table.verdicts if v.claim.startswith(start))


def test_directions_follow_the_shared_latents() -> None:
    assert direction_from_shares(0.0, 1.0) == "decrease"
    assert direction_from_shares(1.0, 0.0) == "increase"
    assert direction_from_shares(1.0, 0.98) == "none"
    table = decide(WORLD, fake_runs(E_R), PILOTS)
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    assert r.predicted == "decrease" and r.outcome == stats.AGREES
    assert row(table, "straddled").predicted == "increase"
    assert row(table, "R^2(z_g) matched").predicted == "none"
    assert "0% (region) vs 100% (patch)" in table.derived[r.claim]


def test_flipped_shares_flip_the_prediction_and_the_outcome() -> None:
    runs = fake_runs(E_R)
    for m in runs.runs["region"].values():
        m["shared.region_noise"] = 1.0
    for m in runs.runs["patch"].values():
        m["shared.region_noise"] = 0.0
    r = row(decide(WORLD, runs, PILOTS), "region-sized units keep less")
    assert r.predicted == "increase" and r.outcome == stats.DISAGREES


def test_outcomes_are_the_statistics_outcomes() -> None:
    table = decide(WORLD, fake_runs(E_R), PILOTS)
    assert table.verdicts
    for v in table.verdicts:
        eff = stats.paired_effect(v.per_seed, v.level)
        if v.reason is None:  # no validity rule changed it
            assert v.outcome == stats.outcome(eff.lo, eff.hi, v.predicted, v.margin), v.claim
    umae = row(table, "U-MAE improves")  # 0 points: inside +-1, but top-1 has no positive control
    assert umae.outcome == stats.INCONCLUSIVE and umae.reason == vd.UNSEEN
    assert row(table, "MAE collapses").outcome == stats.AGREES  # rank 20 vs 30
    assert "regime (condition" in format_decision(table)


def test_rows_of_unlearned_encoders_read_regime_not_reached() -> None:
    table = decide(WORLD, fake_runs(E_R, learned=False), PILOTS)
    assert not any(r.reached for r in table.regime if "R^2(s_g)" in r.condition)
    kong = [v for v in table.verdicts if v.paper == "Kong"]
    assert kong and all(v.outcome == stats.REGIME_NOT_REACHED for v in kong)
    assert row(table, "the control latent").outcome == stats.AGREES  # no gate: an instrument


def test_missing_conditions_are_listed_undecided() -> None:
    runs = fake_runs(E_R)
    del runs.runs["umae"]
    table = decide(WORLD, runs, PILOTS)
    assert {u.claim for u in table.undecided} >= {
        s.claim for s in WORLD.rows if s.treated == "umae"
    }


@pytest.mark.parametrize(
    ("unit", "strategy", "region_noise", "cell_noise"),
    [(4, "block", (0.9, 1.0), (0.5, 0.9)), (8, "block", (0.6, 0.85), (0.0, 0.0)),
     (16, "block", (0.0, 0.0), (0.0, 0.0)), (16, "block_shifted", (1.0, 1.0), (0.0, 0.0))],
)  # fmt: skip
def test_shared_fractions_of_the_study_world(unit, strategy, region_noise, cell_noise) -> None:
    cfg = load_config([str(WORLD_YAML)], [f"mask.unit={unit}", f"mask.strategy={strategy}"])
    geom = MaskGeometry(8, 4)
    mask = draw_mask(cfg.mask, 512, geom, torch.Generator().manual_seed(0))
    shares = shared_fractions(cfg, 4, mask)
    assert shares["global"] == 1.0
    assert region_noise[0] <= shares["region_noise"] <= region_noise[1]
    assert cell_noise[0] <= shares["cell_noise"] <= cell_noise[1]


def test_kong_rows_gate_on_the_shared_latent_not_on_the_latent_predicted_to_go() -> None:
    """Region units are predicted to lose e_r: their encoder may read e_r below the random
    encoder and the row is still decided, as long as every condition learned s_g."""
    runs = fake_runs(E_R)
    for m in runs.runs["region"].values():
        m["sel.full.random.e_r"] = m["sel.full.encoder.e_r"] + 0.05
    table = decide(WORLD, runs, PILOTS)
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    assert r.outcome == stats.AGREES
    for m in runs.runs["region"].values():
        m["selp.full.random.s_g"] = m["selp.full.encoder.s_g"] + 0.05
    table = decide(WORLD, runs, PILOTS)
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    assert r.outcome == stats.REGIME_NOT_REACHED


# ---------------------------------------------------------------- a declaration of its own
TWO = Study(
    "two conditions",
    conditions={"wide": {"model.embed_dim": 256}, "narrow": {"model.embed_dim": 64}},
    rows=(
        RowSpec("Any", "a wider encoder reads the probe better", "wide", "narrow",
                Diff(LINEAR_TOP1), TOP1, predicted=INCREASE, gates=(ON_TOP1,),
                show_control=LINEAR_TOP1),
        RowSpec("Any", "the narrow encoder's R^2 is none", "narrow", None, Diff("r2"), R2,
                predicted="none", kind=vd.INSTRUMENT),
    ),
    gates={ON_TOP1: TOP1_GATE, "r2": Gate("R^2", "r2", "random.r2", "pixels.r2")},
    pilot_gate=ON_TOP1,
)  # fmt: skip
TWO_PILOTS = {"wide": {"loss": 0.1, "readout": 0.0}, "narrow": {"loss": 0.1, "readout": 0.0}}


def two_conditions(wide: list[float], narrow: list[float]) -> Measurements:
    """Per-seed top-1 of each condition (its untrained network at 60 - seed in both) and an R^2
    near 0."""
    runs = {
        name: {s: {LINEAR_TOP1: v, of_random(LINEAR_TOP1): 60.0 - s, "r2": 0.001 * (s - 1),
                   "final_loss": 0.1}
               for s, v in enumerate(values)}
        for name, values in (("wide", wide), ("narrow", narrow))
    }  # fmt: skip
    return Measurements(runs, {LINEAR_TOP1: 50.0})


def test_a_declared_study_with_two_conditions_is_decided_without_the_demo() -> None:
    decision = decide(TWO, two_conditions([80.0, 82.0, 81.0], [70.0, 71.5, 70.5]), TWO_PILOTS)
    wider, r2 = decision.verdicts
    assert wider.per_seed == (10.0, 10.5, 10.5) and wider.effect == pytest.approx(31 / 3)
    assert wider.control == pytest.approx(212 / 3)  # the narrow encoder's mean top-1
    eff = stats.paired_effect(wider.per_seed, wider.level)
    assert wider.ci == (pytest.approx(eff.lo), pytest.approx(eff.hi))
    assert wider.outcome == stats.AGREES and wider.margin == TOP1.value == 1.0
    assert wider.p_holm is not None  # the one prediction row: a Holm family of one
    assert r2.kind == vd.INSTRUMENT and r2.p_holm is None and r2.outcome == stats.AGREES
    conditions = [r.condition for r in decision.regime]
    assert conditions == ["wide · linear top-1", "narrow · linear top-1"]  # no r2 random twin
    assert all(r.reached and r.pixels == 50.0 for r in decision.regime)
    assert decision.undecided == []


def test_a_declared_study_gates_and_lists_what_it_cannot_decide() -> None:
    m = two_conditions([80.0, 82.0, 81.0], [70.0, 71.5, 70.5])
    for metrics in m.runs["narrow"].values():
        metrics[of_random(LINEAR_TOP1)] = metrics[LINEAR_TOP1] + 5.0  # below its random encoder
    wider = decide(TWO, m, TWO_PILOTS).verdicts[0]
    assert wider.outcome == stats.REGIME_NOT_REACHED and wider.level == 0.95
    del m.runs["wide"]
    decision = decide(TWO, m, TWO_PILOTS)
    assert [u.reason for u in decision.undecided] == ["no runs of wide"]
    assert [v.claim for v in decision.verdicts] == ["the narrow encoder's R^2 is none"]


def test_format_decision_heads_each_kind_of_row_once() -> None:
    rows = [
        vd.Row("p", "a", INCREASE, 0.1, [1.0, 1.1, 0.9]),
        vd.Row("p", "b", "none", 0.1, [0.0, 0.01, -0.01], kind=vd.INSTRUMENT),
    ]
    text = format_decision(Decision([], vd.decide_table(rows)))
    assert text.count("instrument checks") == 1 and "calibration rows" not in text


# ---------------------------------------------------------------- placebo, controls, convergence
def test_every_prediction_row_is_decided_against_its_untrained_network() -> None:
    runs = fake_runs(E_R)
    table = decide(WORLD, runs, PILOTS)
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    seeds = runs.seeds("region", "patch")
    raw = [runs.runs["region"][s]["sel.full.encoder.e_r"] - runs.runs["patch"][s]["sel.full.encoder.e_r"]
           for s in seeds]  # fmt: skip
    untrained = [runs.runs["region"][s]["sel.full.random.e_r"]
                 - runs.runs["patch"][s]["sel.full.random.e_r"] for s in seeds]  # fmt: skip
    assert r.raw.per_seed == pytest.approx(raw) and r.placebo.per_seed == pytest.approx(untrained)
    assert r.per_seed == pytest.approx([a - b for a, b in zip(raw, untrained, strict=True)])
    assert r.positive_control.detected and r.positive_control.effect == pytest.approx(
        -0.03, abs=0.01
    )
    collapse = row(table, "MAE collapses dimensions (log effective rank, trained / untrained)")
    # already trained - untrained: its placebo is seed s's untrained network against seed s+100's
    expected = [np.log(runs.runs["patch"][s]["random.effective_rank"]
                       / runs.runs["patch"][s]["random100.effective_rank"]) for s in seeds]  # fmt: skip
    assert collapse.placebo.per_seed == pytest.approx(expected)
    for v in table.verdicts:
        assert (v.placebo is None) == (v.kind != vd.PREDICTION), v.claim


def test_the_trained_weights_through_the_placebo_path_give_raw_exactly() -> None:
    """Untrained readouts equal to the trained ones: the placebo is the raw contrast, so every
    decided effect is 0."""
    runs = fake_runs(E_R)
    for cond in runs.runs.values():
        for m in cond.values():
            for k in [k for k in m if ".encoder." in k and not k.startswith("pc.")]:
                m[k.replace(".encoder.", ".random.")] = m[k]
    table = decide(WORLD, runs, PILOTS)
    for v in table.verdicts:
        if v.placebo is not None and v.paper == "Kong":
            assert v.placebo.per_seed == v.raw.per_seed and v.effect == 0.0, v.claim


def test_a_condition_short_of_its_pilot_is_still_learning() -> None:
    runs = fake_runs(E_R)
    for m in runs.runs["region"].values():
        m["final_loss"] = 0.2  # twice the pilot's
    table = decide(WORLD, runs, PILOTS)
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    assert r.outcome == stats.REGIME_NOT_REACHED and r.reason == vd.STILL_LEARNING
    assert r.shown_outcome == "regime not reached (still learning)"
    region = next(x for x in table.regime if x.condition == "region · R^2(s_g), top-k")
    assert region.converged is False and region.convergence.gap == pytest.approx(1.0)
    other = row(
        table,
        "a patch-sized unit keeps the cell's own noise better than a cell-sized one (R^2(e_c))",
    )
    assert other.reason != vd.STILL_LEARNING  # patch and cell converged
    # no pilot: convergence is not known and no row counts
    r = row(decide(WORLD, fake_runs(E_R)), "region-sized units keep less")
    assert r.outcome == stats.REGIME_NOT_REACHED and r.reason == vd.NO_PILOT


def test_the_gate_must_beat_the_pixels_pca() -> None:
    runs = fake_runs(E_R)
    for m in runs.runs["patch"].values():
        m["selp.full.pca.s_g"] = 0.95  # above every patch encoder (0.9)
    table = decide(WORLD, runs, PILOTS)
    patch = next(x for x in table.regime if x.condition == "patch · R^2(s_g), top-k")
    assert (
        patch.pca == pytest.approx(0.95) and not patch.reached and patch.ci[0] > 0
    )  # beats its random net
    r = row(table, "region-sized units keep less of a region's own noise (R^2(e_r), full")
    assert r.outcome == stats.REGIME_NOT_REACHED


def test_combined_studies_never_share_runs() -> None:
    """--full: a world condition that does not name `model.code_dim` takes the base value of it,
    so the code runs (same unit, ratio and objective) are not read as the world's patch runs."""
    from maelab.experiments.measurements import members
    from maelab.experiments.studies.kong_code import WORLD_FULL

    base = {"model": {"code_dim": None}, "loss": {"on": "masked"},
            "data": {"synthetic": {"region_noise_std": 0.3, "cell_noise_std": 0.3}}}  # fmt: skip
    axes = {"mask.unit": 4, "mask.strategy": "block", "objective.name": "mae", "mask.ratio": 0.75,
            "loss.on": "masked", "data.synthetic.cell_noise_std": 0.3}  # fmt: skip
    world = {**axes, "model.code_dim": None, "data.synthetic.region_noise_std": 0.3}
    code = {**axes, "model.code_dim": 8, "data.synthetic.region_noise_std": 0.6,
            "data.synthetic.cell_noise_std": 0.6}  # fmt: skip
    found = members([(world, 1), (code, 1)], WORLD_FULL.conditions, base)
    assert found["patch"] == [(0, 1)] and found["code patch"] == [(1, 1)]
