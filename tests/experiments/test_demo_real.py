"""`maelab demo --full`'s real-image part (digits): its runs sit in OUT/real, its rows follow the
world's in verdicts.json as their own Holm family, and each row is computed from its runs."""

import json
import math

import pytest

from maelab import stats
from maelab.errors import ConfigError
from maelab.experiments.demo import REAL_DIR, DemoSettings, plan_demo, plan_real, run_demo
from maelab.experiments.studies.real_images import REAL_IMAGES
from maelab.run_folder import RunFolder, read_json
from maelab.verdicts import read_verdicts, validate

SEEDS = "sweep.seeds=[0,1]"


@pytest.fixture(scope="module")
def full_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_full")
    run_demo(quick=True, full=True, out=str(out), quiet=True, overrides=[SEEDS])
    return out


def _real_runs(out):
    """(ratio, objective, seed) -> the run's metrics, read from OUT/real."""
    runs = {}
    for p in json.loads((out / REAL_DIR / "sweep.json").read_text())["points"]:
        cfg = RunFolder(out / REAL_DIR / p["name"])
        metrics = read_json(cfg.results)["metrics"]
        values = p["values"]
        runs[(values["mask.ratio"], values["objective.name"], p["seed"])] = metrics
    return runs


@pytest.mark.slow
def test_real_part_runs_on_digits_and_writes_its_rows(full_dir):
    obj = json.loads((full_dir / "verdicts.json").read_text())
    validate(obj)
    record = read_verdicts(full_dir / "verdicts.json")
    real = [v for v in record.verdicts if v.claim.startswith("digits: ")]
    claims = {v.claim.split(" (")[0] for v in real}
    assert claims == {
        "digits: MAE aligns mask-induced positive pairs",
        "digits: MAE collapses dimensions",
        "digits: U-MAE improves the linear probe over MAE",
        "digits: U-MAE raises effective rank",
        "digits: the linear probe peaks at an intermediate mask ratio",
    }
    conditions = {r.condition.split(" · ")[0] for r in record.regime}
    assert {
        "digits ratio=0.5",
        "digits ratio=0.75",
        "digits ratio=0.9",
        "digits umae",
    } <= conditions
    # the real conditions are gated on the linear probe only (no latents on real images)
    assert all(
        r.condition.endswith("linear top-1")
        for r in record.regime
        if r.condition.startswith("digits")
    )
    study = json.loads((full_dir / "study.json").read_text())
    assert study["real"]["data"] == "digits" and study["real"]["seeds"] == [0, 1]
    assert "linear_top1" in study["real"]["pixels"]


@pytest.mark.slow
def test_real_rows_are_the_runs_numbers(full_dir):
    runs = _real_runs(full_dir)
    record = read_verdicts(full_dir / "verdicts.json")
    by_claim = {v.claim: v for v in record.verdicts}
    umae = next(v for c, v in by_claim.items() if c.startswith("digits: U-MAE improves"))
    want = [
        runs[(0.75, "umae", s)]["linear_top1"] - runs[(0.75, "mae", s)]["linear_top1"]
        for s in (0, 1)
    ]
    assert list(umae.per_seed) == pytest.approx(want)
    peak = next(
        v for c, v in by_claim.items() if "peaks at an intermediate" in c and c.startswith("digits")
    )
    want = [
        runs[(0.75, "mae", s)]["linear_top1"]
        - max(runs[(0.5, "mae", s)]["linear_top1"], runs[(0.9, "mae", s)]["linear_top1"])
        for s in (0, 1)
    ]
    assert list(peak.per_seed) == pytest.approx(want)
    collapse = next(v for c, v in by_claim.items() if c.startswith("digits: MAE collapses"))
    m = runs[(0.75, "mae", 0)]
    assert collapse.raw.per_seed[0] == pytest.approx(
        math.log(m["effective_rank"] / m["random.effective_rank"])
    )
    # decided on raw - placebo: the placebo is seed s's untrained network against seed s+100's
    placebo = math.log(m["random.effective_rank"] / m["random100.effective_rank"])
    assert collapse.placebo.per_seed[0] == pytest.approx(placebo)
    assert collapse.per_seed[0] == pytest.approx(collapse.raw.per_seed[0] - placebo)


@pytest.mark.slow
def test_real_rows_form_their_own_holm_family(full_dir):
    """Deciding the real rows alone gives the levels stored: the world's rows do not widen them."""
    record = read_verdicts(full_dir / "verdicts.json")
    real = [v for v in record.verdicts if v.claim.startswith("digits: ")]
    family = [v for v in real if v.kind == "prediction" and v.outcome != stats.REGIME_NOT_REACHED]
    if family:
        p = [stats.paired_effect(v.per_seed, 0.95).p_value for v in family]
        levels = stats.holm_levels(p)
        assert [v.level for v in family] == pytest.approx(list(levels))


def test_real_part_unknown_config_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="neither a YAML file nor a shipped config"):
        plan_real(DemoSettings(real="no_such_config"), tmp_path)


def test_full_plans_the_declared_conditions_of_both_parts(tmp_path):
    """--full: the world's runs are its study's conditions (U-MAE on every seed) and the real
    part's are the real-image study's, named after its data; nothing is trained here."""
    plan = plan_demo(quick=True, full=True, out=str(tmp_path), overrides=[SEEDS])
    world = {(p.values["mask.unit"], p.values["mask.ratio"], p.values["objective.name"])
             for p in plan.world.plan.points}  # fmt: skip
    assert (4, 0.75, "umae") in world and (4, 0.1, "mae") in world and (16, 0.75, "mae") in world
    # 13 conditions (4 units and U-MAE, 4 ratios, Kong's 3 code conditions, the plain
    # autoencoder), ratio=0.75 is the patch runs: 12 distinct, 2 seeds each
    assert len(plan.world.plan.points) == 2 * 12
    assert plan.real is not None and plan.real.plan.dir == tmp_path / REAL_DIR
    assert list(plan.real.study.conditions) == [f"digits {c}" for c in REAL_IMAGES.conditions]
    assert len(plan.real.plan.points) == 2 * 4
    quick = plan_demo(quick=True, out=str(tmp_path / "core"), overrides=["sweep.seeds=[0,1,2,3]"])
    umae = [p for p in quick.world.plan.points if p.values["objective.name"] == "umae"]
    assert [p.seed for p in umae] == [0, 1, 2] and quick.real is None  # demo.first_seeds


def test_a_demo_yaml_holds_budgets_not_grids(tmp_path):
    bad = tmp_path / "demo.yaml"
    bad.write_text("sweep:\n  grids: [{mask.unit: [4]}]\n")
    with pytest.raises(ConfigError, match="holds budgets"):
        plan_demo(bad, out=str(tmp_path / "out"))
