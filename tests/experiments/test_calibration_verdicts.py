"""Calibration rows as verdicts.json rows (schema 2): decided by the one decider, by hand-made
checks; `maelab calibrate` exits 1 when a row misses its expected outcome."""

from __future__ import annotations

from pathlib import Path

import pytest

from maelab import verdicts as vd
from maelab.cli import main
from maelab.experiments import calibration
from maelab.experiments.calibration import CalibrationResult
from maelab.experiments.calibration_rows import CalibrationCheck, CalibrationRow
from maelab.experiments.calibration_train import VitOutcome
from maelab.experiments.calibration_verdicts import calibration_verdicts, misses


def _result(out: Path, measured: float) -> CalibrationResult:
    checks = (
        CalibrationCheck("patch 2, ratio 0.5", "exact loss", 0.603, 0.600, 0.006),
        CalibrationCheck("patch 2, ratio 0.75", "exact loss", measured, 0.700, 0.007),
    )
    row = CalibrationRow("trainer-finds-optimum", "the trainer finds the optimum", "1%", 0.1,
                         checks)  # fmt: skip
    vit = VitOutcome(0.7, 0.01, ((0, 1.0), (10, 0.8)), 10, 1.0)
    return CalibrationResult((row,), 1.0, out, {}, (), vit)


def test_rows_are_deviations_from_the_exact_answer_within_the_tolerance(tmp_path: Path) -> None:
    record = calibration_verdicts(_result(tmp_path, 0.702))
    first, second = record.verdicts
    assert first.kind == vd.CALIBRATION and first.expected == "agrees"
    assert first.effect == pytest.approx(0.003) and first.exact == 0.600
    assert first.ci == (first.effect, first.effect) and first.margin == 0.006
    assert [v.outcome for v in record.verdicts] == ["agrees", "agrees"] and not misses(record)
    missed = calibration_verdicts(_result(tmp_path, 0.72))  # 0.02 off, tolerance 0.007
    assert [v.outcome for v in missed.verdicts] == ["agrees", "disagrees"]
    assert [v.claim for v in misses(missed)] == [
        "the trainer finds the optimum: patch 2, ratio 0.75, exact loss"
    ]


def test_calibration_rows_round_trip_through_schema_2(tmp_path: Path) -> None:
    record = calibration_verdicts(_result(tmp_path, 0.72))
    path = vd.write_verdicts(tmp_path, record)
    back = vd.read_verdicts(path)
    assert back.verdicts == record.verdicts and back.ci_method == vd.EXACT.ci_method
    obj = record.to_json()
    assert obj["schema"] == 2 and obj["verdicts"][1]["expected"] == "agrees"
    obj["verdicts"][1]["expected"] = "maybe"
    with pytest.raises(vd.VerdictsError, match=r"verdicts\[1\]\.expected"):
        vd.validate(obj)


def test_schema_1_files_still_read(tmp_path: Path) -> None:
    obj = vd.Verdicts("abc", "0" * 16).to_json()
    obj["schema"] = 1
    vd.validate(obj)


@pytest.mark.parametrize("measured,code", [(0.702, 0), (0.72, 1)])
def test_calibrate_exits_1_when_a_row_misses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    measured: float, code: int,
) -> None:  # fmt: skip
    def fake(out: str, quick: bool = False, workers: int = 2) -> CalibrationResult:
        Path(out).mkdir(parents=True, exist_ok=True)
        return _result(Path(out), measured)

    monkeypatch.setattr(calibration, "run_calibration", fake)
    assert main(["calibrate", "--out", str(tmp_path / "cal")]) == code
    text = capsys.readouterr().out
    assert ("MISS" in text) == bool(code)
    assert vd.read_verdicts(tmp_path / "cal").verdicts[1].outcome == (
        "disagrees" if code else "agrees"
    )


def test_the_demo_calibrates_first_into_its_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maelab.experiments import demo

    calls: list[tuple[str, bool]] = []

    def fake(out: Path, quick: bool = False, workers: int = 2) -> CalibrationResult:
        calls.append((str(out), quick))
        Path(out).mkdir(parents=True, exist_ok=True)
        return _result(Path(out), 0.702)

    monkeypatch.setattr(demo, "run_calibration", fake)
    plan = demo.plan_demo(quick=True, out=str(tmp_path / "d"), overrides=["demo.calibration=quick"])
    first = demo.calibrate_demo(plan, lambda msg: None)
    assert calls == [(str(tmp_path / "d" / "calibration"), True)]
    assert first is not None and not misses(first)
    again = demo.calibrate_demo(plan, lambda msg: None)  # kept, as finished runs are
    assert len(calls) == 1 and again == vd.read_verdicts(tmp_path / "d" / "calibration")
    off = demo.plan_demo(quick=True, out=str(tmp_path / "e"))  # --quick turns it off
    assert off.settings.calibration == "skip" and demo.calibrate_demo(off, print) is None
