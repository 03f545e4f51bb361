"""Report rows and lines: curves of conditions that share runs; the Cao section shows what its
probe folders hold and decides nothing."""

import json

from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.sections import cao
from maelab.report.sections.study import _curves
from maelab.run_records import write_probe_record


def test_two_names_for_the_same_runs_draw_one_curve():
    runs = {"1": [{"step": 8, "s_g_topk": 0.5}], "2": [{"step": 8, "s_g_topk": 0.7}]}
    other = {"1": [{"step": 8, "s_g_topk": 0.1}], "2": [{"step": 8, "s_g_topk": 0.3}]}
    lines = _curves({"patch": runs, "cell": other, "ratio=0.75": runs}, "s_g_topk")
    assert lines == {
        "patch = ratio=0.75 (mean of 2 seeds)": [(8, 0.6)],
        "cell (mean of 2 seeds)": [(8, 0.2)],
    }


def _run(root):
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("run_dir: x\n")
    return root


def test_cao_section_without_probes_shows_no_verdict(tmp_path):
    run = _run(tmp_path / "run")
    s = cao.cao_section(ReportContext.of(collect(run), tmp_path / "figs"))
    assert s.verdicts == [] and "No question was measured" in "".join(s.body)


def test_cao_section_shows_the_probe_figures_under_their_question(tmp_path):
    run = _run(tmp_path / "run")
    probes = run / "probes"
    write_probe_record(probes, "stability", "Cao Q3: blocks stay near a gain of 1", "ckpt.pt",
                       {"gain": [1.0]}, 0.1)  # fmt: skip
    (probes / "stability.png").write_bytes(b"\x89PNG\r\n")
    write_probe_record(probes, "position", "Cao Q1: coordinates", "ckpt.pt", {}, 0.1)  # no PNG
    s = cao.cao_section(ReportContext.of(collect(run), tmp_path / "figs"))
    body = "".join(s.body)
    assert "<h3>Cao Q3: blocks stay near a gain of 1</h3>" in body and "Cao Q1" not in body
    assert json.loads((probes / "stability.json").read_text())["source"] == "ckpt.pt"
