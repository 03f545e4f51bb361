"""The calibration on known answers, as `calibration.json` records it: each row's checks (measured
beside the exact answer, its tolerance and whether it passed) and the calibration's figures.

A demo folder holds it in STUDY/calibration/, a `maelab calibrate` folder at its root. The rows
were judged by the calibration (maelab.experiments.calibration_rows); this section only shows
them, and lists no verdicts file (the summary counts `verdicts.json` rows, not these).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, img, table
from maelab.run_folder import RunFolder, read_json

CALIBRATION_ID = "calibration"
# figure key in calibration.json -> what the figure shows, in page order
CAPTIONS = {
    "reach": "Reach of the trained linear MAE (circles) against the exact optimum's (lines) over "
    "the mask ratio, one colour per patch size, at full rank and at k; grey: the plain "
    "autoencoder (ratio 0).",
    "bound": "The micro ViT MAE's masked loss over training and its held-out loss, against the "
    "Bayes bound (no predictor goes below it), the best linear MAE and predicting zero.",
    "kong_map": "The exact optimum's Kong contrast (e_r share under patch units minus under "
    "region units) over pixel noise, the region and cell noise scales and the code width k: "
    "where Kong's order holds and where it reverses.",
}


def calibration_file(root: Path) -> Path | None:
    """FOLDER/calibration/calibration.json (a demo) or FOLDER/calibration.json; None if neither."""
    folder = RunFolder(root)
    for path in (RunFolder(folder.calibration).calibration_result, folder.calibration_result):
        if path.is_file():
            return path
    return None


def figure_path(recorded: str, folder: Path) -> Path | None:
    """A figure as recorded, else by its name beside calibration.json (a moved folder)."""
    name = Path(recorded).name
    for path in (Path(recorded), folder / Path(recorded).parent.name / name, folder / name):
        if path.is_file():
            return path
    return None


def _num(x: Any) -> str:
    return "–" if not isinstance(x, (int, float)) else f"{x:.4g}"


def _passed(ok: Any) -> str:
    return '<span class="agrees">pass</span>' if ok else '<span class="disagrees">fail</span>'


def _rows(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [f"<code>{esc(r.get('name', ''))}</code>", esc(r.get("claim", "")),
         esc(r.get("tolerance_rule", "")), "<br>".join(esc(n) for n in r.get("notes", [])),
         f"{sum(bool(c.get('passed')) for c in r.get('checks', []))} / {len(r.get('checks', []))}",
         _passed(r.get("passed"))]
        for r in rows
    ]  # fmt: skip


def _checks(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [f"<code>{esc(r.get('name', ''))}</code>", esc(c.get("condition", "")),
         esc(c.get("quantity", "")), _num(c.get("treated")), _num(c.get("expected")),
         _num(c.get("tolerance")), _passed(c.get("passed"))]
        for r in rows
        for c in r.get("checks", [])
    ]  # fmt: skip


def calibration_section(ctx: ReportContext) -> Section | None:
    path = calibration_file(ctx.collected.root)
    if path is None:
        return None
    record = read_json(path)
    rows: list[dict[str, Any]] = record.get("rows", [])
    s = Section(CALIBRATION_ID, "Calibration: known answers")
    seconds = record.get("seconds")
    took = f" in {seconds:.0f} s" if isinstance(seconds, (int, float)) else ""
    s.body.append(
        "<p>Before it measures anything unknown, maelab's pipeline is run on Gaussian worlds whose "
        'optimum is exact (docs/theory.md, "Calibration: known answers"). Each check sets a '
        "measurement on a trained model beside its exact answer; it passes when "
        "|measured - expected| &le; tolerance, as the calibration judged it and "
        f"<code>{esc(path)}</code> records it{took}. "
        f"{sum(bool(r.get('passed')) for r in rows)} of {len(rows)} rows pass.</p>"
    )
    s.body.append(
        table(
            ["row", "claim", "how the tolerance was fixed", "notes", "checks passed", "pass"],
            _rows(rows),
            "verdicts",
        )  # fmt: skip
    )
    s.body.append("<h3>Checks</h3>")
    s.body.append(
        table(
            ["row", "condition", "quantity", "measured", "exact / expected", "tolerance", "pass"],
            _checks(rows),
        )  # fmt: skip
    )
    recorded: dict[str, str] = record.get("figures", {})
    for key in sorted(recorded, key=lambda k: list(CAPTIONS).index(k) if k in CAPTIONS else 99):
        png = figure_path(recorded[key], path.parent)
        if png is not None:
            s.body.append(img(png, CAPTIONS.get(key, f"calibration figure: {key}")))
    return s
