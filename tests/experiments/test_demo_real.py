"""`maelab demo --full`'s real-image part (digits): its runs sit in OUT/real, its rows follow the
world's in verdicts.json as their own Holm family, and each row is computed from its runs."""

import json
import math

import pytest

from maelab import stats
from maelab.errors import ConfigError
from maelab.experiments.demo import REAL_DIR, demo_settings, plan_real, run_demo
from maelab.experiments.study_rows import real_image_specs
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
    assert collapse.per_seed[0] == pytest.approx(
        math.log(m["effective_rank"] / m["random.effective_rank"])
    )


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


def test_real_part_needs_the_mae_condition(tmp_path):
    bad = tmp_path / "real.yaml"
    bad.write_text(
        "data: {name: digits}\nsweep: {grids: [{mask.ratio: [0.5]}]}\n"
        "demo: {conditions: {ratio=0.5: {mask.ratio: 0.5}}}\n"
    )
    settings = demo_settings([], [f"demo.real={bad}"])
    with pytest.raises(ConfigError, match="needs 'ratio=0.75'"):
        plan_real(settings, tmp_path)


def test_real_part_unknown_config_is_one_line(tmp_path):
    settings = demo_settings([], ["demo.real=no_such_config"])
    with pytest.raises(ConfigError, match="neither a YAML file nor a shipped config"):
        plan_real(settings, tmp_path)


def test_real_specs_without_three_ratios_have_no_peak_row():
    claims = [s.claim for s in real_image_specs("digits", ["digits ratio=0.75"])]
    assert not any("peaks" in c for c in claims)
    assert len(real_image_specs("digits", ["a", "b", "c"])) == len(claims) + 1
