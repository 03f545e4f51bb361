"""The calibration section: calibration.json's rows and figures, shown in a `maelab calibrate`
folder and in a demo folder's calibration/, absent elsewhere."""

import json
import struct
import zlib

from maelab.report import build_report
from maelab.report.collect import collect
from maelab.report.context import ReportContext
from maelab.report.sections import build_sections
from maelab.report.sections.calibration import CALIBRATION_ID, CAPTIONS
from maelab.run_folder import CALIBRATION_DIR, CALIBRATION_FILE
from tests.report.test_sections import _fake_sweep

FIGURES = {"reach": "calibration_reach.png", "bound": "calibration_bound.png",
           "kong_map": "kong_map.png"}  # fmt: skip


def _png() -> bytes:
    """A 1x1 grey PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    head = struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + chunk(b"IDAT", zlib.compress(b"\x00\x80")) + chunk(b"IEND", b"")  # fmt: skip


def _check(cond, treated, expected, tol):
    return {"condition": cond, "quantity": "reach (px)", "treated": treated, "expected": expected,
            "tolerance": tol, "note": "", "passed": abs(treated - expected) <= tol}  # fmt: skip


def _calibration(folder, recorded_in=None):
    """calibration.json with two rows (one passes) and the three figures in folder/figures;
    `recorded_in` records them elsewhere (a folder that was moved)."""
    figs = folder / "figures"
    figs.mkdir(parents=True)
    for name in FIGURES.values():
        (figs / name).write_bytes(_png())
    rows = [
        {"name": "bisulco-reach-k", "claim": "trained reach follows the optimum's",
         "tolerance_rule": "25% of the spread", "spread": 0.4, "notes": ["a note"],
         "checks": [_check("patch 2, ratio 0.5", 5.01, 5.0, 0.1),
                    _check("patch 4, ratio 0.9", 7.22, 5.3, 0.1)]},
        {"name": "vit-reaches-bound", "claim": "the ViT approaches the bound", "notes": [],
         "tolerance_rule": "50% of the way", "spread": 0.39,
         "checks": [_check("400 steps", 0.65, 0.61, 0.19)]},
    ]  # fmt: skip
    for r in rows:
        r["passed"] = all(c["passed"] for c in r["checks"])
    where = recorded_in or figs
    record = {"passed": False, "seconds": 12.0, "rows": rows, "vit_curve": [], "kong_map": [],
              "figures": {k: str(where / name) for k, name in FIGURES.items()}}  # fmt: skip
    (folder / CALIBRATION_FILE).write_text(json.dumps(record))


def _section(page: str) -> str:
    start = page.index(f'<section id="{CALIBRATION_ID}">')
    return page[start : page.index("</section>", start)]


def test_a_calibrate_folder_shows_its_rows_and_figures(tmp_path):
    _calibration(tmp_path)
    rep = build_report(tmp_path)
    assert rep.kind == "calibration" and rep.sections == ["Calibration: known answers"]
    shown = _section(rep.path.read_text())
    assert "1 of 2 rows pass" in shown
    # one row a check: row, condition, quantity, measured, expected, tolerance, pass
    assert ("<td><code>bisulco-reach-k</code></td><td>patch 4, ratio 0.9</td><td>reach (px)</td>"
            "<td>7.22</td><td>5.3</td><td>0.1</td><td><span class=\"disagrees\">fail</span>") in shown  # fmt: skip
    assert shown.count("<td><code>") == 2 + 3  # two rows, three checks
    assert shown.count("<img ") == 3
    for caption in CAPTIONS.values():
        assert caption.split(" (")[0].replace("'", "&#x27;") in shown
    assert rep.verdicts == []  # shown, not counted: no verdicts file is listed


def test_a_demo_folder_shows_its_calibration_after_the_overview(tmp_path):
    _fake_sweep(tmp_path)
    # the figures recorded where the calibration ran, found beside calibration.json
    _calibration(tmp_path / CALIBRATION_DIR, recorded_in=tmp_path / "elsewhere" / "figures")
    sections, body = build_sections(ReportContext.of(collect(tmp_path), tmp_path / "figs"))
    ids = [s.id for s in sections]
    assert ids[:2] == ["overview", CALIBRATION_ID]  # no prediction rows: no summary
    calib = sections[1]
    assert not calib.verdicts and "".join(calib.body).count("<img ") == 3


def test_without_a_calibration_there_is_no_section(tmp_path):
    _fake_sweep(tmp_path)
    page = build_report(tmp_path).path.read_text()
    assert f'id="{CALIBRATION_ID}"' not in page and "known answers" not in page


def test_report_command_counts_a_calibrate_folders_rows(tmp_path, capsys):
    from maelab import verdicts as vd
    from maelab.cli import main
    from tests.experiments.test_calibration_verdicts import _result

    _calibration(tmp_path)
    from maelab.experiments.calibration_verdicts import calibration_verdicts

    vd.write_verdicts(tmp_path, calibration_verdicts(_result(tmp_path, 0.72)))
    assert main(["report", str(tmp_path)]) == 0
    assert "1 of 2 calibration rows as expected" in capsys.readouterr().out
