"""The section registry and the page of a small sweep folder."""

import json

import yaml

from maelab import verdicts as vd
from maelab.report import SECTION_IDS, build_report
from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.sections import SECTIONS, SUMMARY_ID, build_sections


def _fake_sweep(root):
    points = []
    for ratio, obj, lin in [(0.5, "mae", 60.0), (0.9, "mae", 50.0), (0.5, "umae", 62.0)]:
        name = f"r{ratio}_{obj}"
        run = root / name
        run.mkdir(parents=True)
        cfg = {"run_dir": str(run), "mask": {"ratio": ratio}, "objective": {"name": obj}}
        (run / "config.yaml").write_text(yaml.safe_dump(cfg))
        metrics = {"linear_top1": lin, "effective_rank": lin / 10}
        (run / "results.json").write_text(json.dumps({"metrics": metrics, "spectrum": [2.0, 1.0]}))
        points.append(
            {"name": name, "values": {"mask.ratio": ratio, "objective.name": obj}, "seed": 0}
        )
    manifest = {"keys": ["mask.ratio", "objective.name"], "points": points}
    (root / "sweep.json").write_text(json.dumps(manifest))


def test_without_verdicts_the_page_shows_measurements_only(tmp_path):
    _fake_sweep(tmp_path)
    sections, body = build_sections(ReportContext.of(collect(tmp_path), tmp_path / "figs"))
    assert [s.id for s in sections] == SECTION_IDS  # no verdicts.json: no summary, no study
    # nor a calibration
    assert len(body) == len(SECTIONS) - 2 and not any(s.verdicts for s in sections)


def test_a_verdicts_file_opens_the_page_with_the_summary(tmp_path):
    _fake_sweep(tmp_path)
    rows = vd.decide_table([vd.Row("Zhang", "U-MAE helps", "increase", 1.0, [2.0, 3.0, 2.5]),
                            vd.Row("all", "a check", "none", 0.05, [0.0, 0.01], "instrument")])  # fmt: skip
    vd.write_verdicts(tmp_path, vd.Verdicts("c0ffee", "h", verdicts=tuple(rows)))
    sections, body = build_sections(ReportContext.of(collect(tmp_path), tmp_path / "figs"))
    ids = [s.id for s in sections]
    assert ids[:3] == [SUMMARY_ID, "overview", "study"] and SUMMARY_ID not in [s.id for s in body]
    summary = "".join(sections[0].body)
    assert sections[0].title == "What we know"
    assert "U-MAE helps" in summary and "a check" not in summary  # predictions only
    page = build_report(tmp_path).path.read_text()
    assert "Predictions vs measurements" not in page
    assert page.index('<section id="summary">') < page.index('<section id="overview">')


def test_build_report_writes_every_section(tmp_path):
    _fake_sweep(tmp_path)
    rep = build_report(tmp_path, title="small sweep")
    page = rep.path.read_text()
    assert rep.path == tmp_path / "report.html"
    assert page.startswith("<!doctype html>") and "<h1>small sweep: " in page
    for sid in SECTION_IDS:
        assert f'<section id="{sid}">' in page
    # the probe table: one row per setting, U-MAE's linear probe as stored
    assert "<td>ratio=0.5, objective=umae</td><td>1</td><td>62.0</td>" in page
    assert rep.verdicts == [] and "outcome" not in page  # no verdict column anywhere


def test_the_study_tables_show_raw_placebo_control_and_convergence(tmp_path):
    _fake_sweep(tmp_path)
    row = vd.Row("Kong", "less e_r", "none", 0.02, [0.001, -0.001, 0.0], placebo=[0.0] * 3,
                 positive_control=vd.PositiveControl("e_r redrawn", [-0.05, -0.06, -0.04]))  # fmt: skip
    conv = vd.Convergence(1.1, 1.0, 0.5, 0.5, 0.05, 0.02)
    regime = (vd.RegimeRecord("patch · R^2(s_g)", 0.6, 0.7, 0.5, (0.01, 0.2), 0.65, conv),)
    rows = vd.decide_table([row, vd.Row("Kong", "more e_c", "increase", 0.02, [0.5, -0.5, 0.1])])
    vd.write_verdicts(tmp_path, vd.Verdicts("c0ffee", "h", regime=regime, verdicts=tuple(rows)))
    page = build_report(tmp_path).path.read_text()
    study = page[page.index('<section id="study">') :]
    assert "<th>raw [CI]</th><th>placebo [CI], its outcome</th>" in study
    assert "<span title='e_r redrawn'>-0.0500 [" in study and "] detected</span>" in study
    assert "inconclusive (the untrained network gives the same outcome)" not in study
    assert '<span class="agrees">agrees</span>' in study  # the placebo's outcome, and the row's
    assert "<td>0.650</td>" in study and "<td>1.1 / 1 (+10.0%)</td><td>no</td>" in study
