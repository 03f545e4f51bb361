"""The section registry and the page of a small sweep folder."""

import json

import yaml

from maelab.report import SECTION_IDS, build_report
from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.sections import SECTIONS, SUMMARY_AFTER, build_sections


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


def test_page_order_puts_the_summary_after_the_overview(tmp_path):
    _fake_sweep(tmp_path)
    sections, body = build_sections(ReportContext.of(collect(tmp_path), tmp_path / "figs"))
    assert [s.id for s in sections] == SECTION_IDS
    assert (
        len(body) == len(SECTIONS) - 1 and SUMMARY_AFTER == sections[0].id
    )  # no study: no verdicts.json
    summary = sections[1]
    assert summary.verdicts == []  # it lists the others' verdicts in its table only
    assert sum(len(s.verdicts) for s in body) == summary.body[1].count("<tr>") - 1


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
    assert sum(rep.counts().values()) == len(rep.verdicts) > 0
