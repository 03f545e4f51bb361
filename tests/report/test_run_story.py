"""`maelab report RUN`: the page shows everything the run folder holds, as its files say, and
leaves out what it does not hold."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from maelab import verdicts as vd
from maelab.cli import main
from maelab.evaluation.collapse import spectra_figure
from maelab.metrics import CollapseStats
from maelab.report import build_report
from maelab.run_folder import (
    COLLAPSE_FIGURE,
    COLLAPSE_FILE,
    RunFolder,
    write_json_atomic,
)


def bare_run(root: Path) -> RunFolder:
    run = RunFolder(root)
    root.mkdir(parents=True)
    cfg = {"run_dir": str(root), "data": {"name": "folder", "root": "/data/digits"}}
    run.config.write_text(yaml.safe_dump(cfg))
    return run


def png(path: Path) -> Path:
    return spectra_figure({"x": [3.0, 2.0, 1.0]}, path)


def full_run(root: Path) -> RunFolder:
    """A run after pretrain, probe, finetune, analyze collapse and analyze probes."""
    run = bare_run(root)
    lines = [{"kind": "train", "step": s, "epoch": 0, "loss": 1.0 / s} for s in (1, 2, 3)]
    lines.append({"kind": "epoch", "step": 3, "epoch": 0, "loss": 0.6125})
    run.metrics.write_text("".join(json.dumps(r) + "\n" for r in lines))
    png(run.reconstruction_figure)
    rows = [{"source": "mae", "dim": 128, "linear": {"top1": 91.5}, "knn": {"top1": 87.0}}]
    write_json_atomic(run.probe_result, {"probe": {"pool": "mean"}, "rows": rows})
    history = [{"epoch": 0, "loss": 1.25, "test_top1": 80.5, "test_top5": None}]
    write_json_atomic(
        RunFolder(run.finetune_run).finetune_result,
        {"top1": 80.5, "top5": None, "best_top1": 80.5, "epochs": 1, "seconds": 9.0,
         "history": history},
    )  # fmt: skip
    stats = CollapseStats("run_a", 128, 512, 17.25, 19.5, 0.42, -1.75, [4.0, 2.0, 1.0, 0.5])
    write_json_atomic(run.analysis / COLLAPSE_FILE, [stats.to_dict()])
    png(run.analysis / COLLAPSE_FIGURE)
    write_json_atomic(run.probes / "position.json",
                      {"probe": "position", "question": "Q1: positions as coordinates",
                       "seconds": 2.5, "result": {"r2": 0.9}})  # fmt: skip
    png(run.probes / "position.png")
    result = {
        "manipulation": "trained table",
        "control": "shuffled positions",
        "treated": 0.33,
        "control_value": 0.02,
    }
    write_json_atomic(run.probes / "question_Q1.json",
                      {"question": "Q1", "seconds": 3.0, "result": result})  # fmt: skip
    # an interval above zero written as "inconclusive": the page must show what the file says
    row = vd.VerdictRecord("Cao", "Q1: tokens carry their positions", "prediction",
                           "inconclusive", 0.31, (0.12, 0.5), 1, (0.31,), 0.05, control=0.02,
                           predicted="increase", margin=0.05, level=0.95)  # fmt: skip
    vd.write_verdicts(run.probes, vd.Verdicts("0123456789abcdef", "cfg", "bootstrap", (), (row,)))
    return run


def section(page: str, sid: str) -> str:
    start = page.index(f'<section id="{sid}">')
    return page[start : page.index("</section>", start)]


def test_the_page_shows_everything_the_run_holds(tmp_path: Path) -> None:
    run = full_run(tmp_path / "run")
    report = build_report(run.root)
    page = report.path.read_text()
    assert report.sections == [
        "Overview", "Training curves", "Reconstructions", "Fine-tuning", "Dimensional collapse",
        "Theory probes", "Verdicts",
    ]  # fmt: skip
    overview = section(page, "overview")
    assert f"Run folder <code>{run.root}</code>: 3 steps, last epoch's loss 0.613." in overview
    assert "<td>mae</td><td>128</td><td>91.5</td><td>87.0</td>" in overview
    assert "<td>data root</td><td>/data/digits</td>" in overview
    assert "test top-1 <b>80.5%</b> after 1 epochs" in section(page, "finetune")
    assert "<td>0</td><td>1.250</td><td>80.5</td><td>–</td>" in section(page, "finetune")
    collapse = section(page, "collapse")
    assert "<td>run_a</td><td>128</td><td>512</td><td>17.2</td><td>19.5</td>" in collapse
    assert collapse.count("<img") == 1
    probes = section(page, "theory-probes")
    assert "<h3>position</h3>" in probes and probes.count("<img") == 1
    assert (
        "<td>Q1</td><td>trained table</td><td>shuffled positions</td><td>0.330</td>"
        "<td>0.020</td><td>3.000</td>"
    ) in probes
    rows = section(page, "verdict-rows")
    assert "<code>probes/verdicts.json</code>" in rows
    assert (
        "<td>Cao</td><td>Q1: tokens carry their positions</td><td>prediction</td>"
        "<td>+0.02</td><td>+0.31 [+0.12, +0.5] at 95%</td><td>1</td><td>increase</td>"
        '<td>0.050</td><td><span class="inconclusive">inconclusive</span></td>'
    ) in rows
    assert "commit 0123456789ab" in rows
    # nothing decided by the page: no summary section, the rows shown are the file's, no "None"
    assert '<section id="verdicts">' not in page
    assert [v.claim for v in report.verdicts] == ["Q1: tokens carry their positions"]
    assert "None" not in page


def test_a_bare_run_leaves_out_what_it_does_not_hold(tmp_path: Path) -> None:
    run = bare_run(tmp_path / "run")
    report = build_report(run.root)
    assert report.sections == ["Overview"]
    page = report.path.read_text()
    assert "None" not in page and "No reconstruction figures" not in page


def test_cli_lists_the_sections_of_a_run(tmp_path: Path, capsys) -> None:
    run = full_run(tmp_path / "run")
    assert main(["report", str(run.root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "run report: Overview, Training curves, Reconstructions, Fine-tuning, Dimensional "
        "collapse, Theory probes, Verdicts",
        f"{run.probes / 'verdicts.json'}: 0 agrees, 0 disagrees, 1 inconclusive, 0 regime not "
        "reached (predictions)",
        f"report: {run.report}",
    ]
