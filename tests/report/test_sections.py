"""The section registry and the page of a small sweep folder."""

import json

import yaml

from maelab import verdicts as vd
from maelab.report import SECTION_IDS, build_report
from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.sections import SECTIONS, SUMMARY_AFTER, SUMMARY_ID, build_sections


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


def test_a_verdicts_file_brings_the_summary_after_the_overview(tmp_path):
    _fake_sweep(tmp_path)
    rows = vd.decide_table([vd.Row("Zhang", "U-MAE helps", "increase", 1.0, [2.0, 3.0, 2.5]),
                            vd.Row("all", "a check", "none", 0.05, [0.0, 0.01], "instrument")])  # fmt: skip
    vd.write_verdicts(tmp_path, vd.Verdicts("c0ffee", "h", verdicts=tuple(rows)))
    sections, _ = build_sections(ReportContext.of(collect(tmp_path), tmp_path / "figs"))
    ids = [s.id for s in sections]
    assert ids[:3] == [SUMMARY_AFTER, SUMMARY_ID, "study"]
    summary = "".join(sections[1].body)
    assert "href='#study'" in summary and summary.count("<tr>") == 2  # header + one file
    assert "<td>1</td><td>0</td><td>0</td><td>0</td><td>1</td>" in summary  # agrees, .., checks


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
