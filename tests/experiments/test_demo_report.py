"""`maelab demo --quick` end to end: verdicts.json follows the schema, each row's outcome is the
statistics' outcome of its per-seed numbers, and the report shows the study's tables."""

import json
import re

import pytest

from maelab import stats
from maelab.cli import main
from maelab.verdicts import read_verdicts, validate

SEEDS = "sweep.seeds=[0,1]"


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "--quick", "--quiet", "--out", str(out), SEEDS]) == 0
    return out


@pytest.mark.slow
def test_demo_quick_writes_valid_verdicts(demo_dir):
    obj = json.loads((demo_dir / "verdicts.json").read_text())
    validate(obj)  # raises on any field off the schema
    record = read_verdicts(demo_dir / "verdicts.json")
    claims = {v.claim for v in record.verdicts}
    assert any("region's own noise" in c for c in claims)
    assert any("U-MAE improves the linear probe" in c for c in claims)
    assert {v.kind for v in record.verdicts} == {"prediction", "instrument"}
    conditions = {r.condition.split(" · ")[0] for r in record.regime}
    assert conditions == {"patch", "cell", "region", "straddled", "umae"}
    assert all(v.n_seeds == 2 for v in record.verdicts)


@pytest.mark.slow
def test_each_outcome_is_the_statistics_outcome(demo_dir):
    for v in read_verdicts(demo_dir / "verdicts.json").verdicts:
        eff = stats.paired_effect(v.per_seed, v.level)
        assert eff.mean == pytest.approx(v.effect)
        if v.outcome == stats.REGIME_NOT_REACHED:
            continue
        assert v.outcome == stats.outcome(eff.lo, eff.hi, v.predicted, v.margin), v.claim


@pytest.mark.slow
def test_derived_predictions_come_from_the_masks(demo_dir):
    study = json.loads((demo_dir / "study.json").read_text())
    derived = study["derived"]
    region_rows = [w for c, w in derived.items() if c.startswith("region-sized units keep less")]
    # region-sized units at 0.75 never leave a region partly masked; patch units nearly always
    assert region_rows and all(
        re.match(r"region_noise shared in 0% \(region\) vs (9\d|100)% \(patch\): decrease", w)
        for w in region_rows
    )
    straddled = next(w for c, w in derived.items() if c.startswith("straddled"))
    assert straddled.endswith("increase")
    assert {u["paper"] for u in study["undecided"]} == {"Cao"}


@pytest.mark.slow
def test_demo_report_shows_the_study(demo_dir):
    page = (demo_dir / "report.html").read_text()
    for sid in ("summary", "overview", "study", "training", "reconstructions"):
        assert f'<section id="{sid}">' in page, sid
    assert "Prediction vs measurement</h3>" not in page  # the page shows rows; it decides none
    assert "Instrument checks" in page and "CI of encoder - random" in page
    assert "derived prediction" in page and "Not decided" in page
    assert "learning curve: R^2(s_g) (linear, top-k" in page and "learning curve: R^2(z_g)" in page
    assert "learning curve: effective rank (pooled features)" in page and "latent dimension" in page


@pytest.mark.slow
def test_rerun_skips_finished_runs(demo_dir, capsys):
    assert main(["demo", "--quick", "--out", str(demo_dir), SEEDS]) == 0
    out = capsys.readouterr().out
    assert "regime (condition" in out and "verdicts:" in out


@pytest.mark.slow
def test_report_command_prints_the_study_counts(demo_dir, capsys):
    assert main(["report", str(demo_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    study = [ln for ln in lines if ln.startswith(f"{demo_dir / 'verdicts.json'}: ")]
    rows = read_verdicts(demo_dir / "verdicts.json").verdicts
    predictions = sum(1 for v in rows if v.kind == "prediction")
    assert len(study) == 1 and predictions > 0
    assert sum(int(n) for n in re.findall(r"(\d+) ", study[0].split(": ", 1)[1])) == predictions
