"""The pretraining time estimate and the resume of a finished run."""

from __future__ import annotations

from maelab.cli import main
from maelab.engine.eta import ETA_STEPS, FIRST_STEP_NOTE, EtaClock, eta_lines


class FakeClock:
    """Seconds that advance only when told: the first step slow, later ones regular."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _run(clock: FakeClock, eta: EtaClock, first: float, per_step: float, steps: int) -> list[str]:
    out: list[str] = []
    for i in range(steps):
        clock.now += first if i == 0 else per_step
        out += eta.tick()
    return out


def test_first_step_estimate_then_the_refined_one() -> None:
    clock = FakeClock()
    eta = EtaClock(steps=1000, device="cpu", measure=5, clock=clock)
    first = _run(clock, eta, first=30.0, per_step=0.6, steps=1)
    # right after step 1, however slow: 30 s x 1000 steps = 500 min
    assert first == [f"about 500 min for 1000 steps on cpu{FIRST_STEP_NOTE}"]
    later = _run(clock, eta, first=0.6, per_step=0.6, steps=49)
    # refined without the first step: 30 s + 999 steps of 0.6 s = 629.4 s: 11 min, no warning
    assert later == ["about 11 min for 1000 steps on cpu"]


def test_a_slow_first_step_is_not_waited_for() -> None:
    """The estimate comes after step 1 even when that step takes minutes (a 224 px step on a
    CPU), not after the 1 + ETA_STEPS steps that the refined estimate needs."""
    clock = FakeClock()
    eta = EtaClock(steps=300, device="cpu", clock=clock)
    clock.now += 150.0
    assert eta.tick() == [f"about 750 min for 300 steps on cpu{FIRST_STEP_NOTE}"]
    assert _run(clock, eta, first=150.0, per_step=150.0, steps=ETA_STEPS - 1) == []


def test_refined_estimate_is_not_repeated_when_it_reads_the_same() -> None:
    clock = FakeClock()
    eta = EtaClock(steps=100, device="cpu", measure=3, clock=clock)
    lines = _run(clock, eta, first=0.2, per_step=0.2, steps=10)
    assert lines == [f"under 1 min for 100 steps on cpu{FIRST_STEP_NOTE}"]


def test_long_run_warns_in_one_line() -> None:
    clock = FakeClock()
    eta = EtaClock(steps=10_000, device="cpu", measure=3, clock=clock)
    lines = _run(clock, eta, first=1.0, per_step=0.5, steps=10)
    assert lines[0] == f"about 167 min for 10000 steps on cpu{FIRST_STEP_NOTE}"
    assert lines[1] == "about 84 min for 10000 steps on cpu"
    assert len(lines) == 3 and lines[2].startswith(
        "warning: this run will take over an hour on cpu"
    )
    assert "\n" not in lines[2]


def test_short_run_and_short_estimate() -> None:
    clock = FakeClock()
    assert _run(clock, EtaClock(steps=1, device="cpu", clock=clock), 1.0, 1.0, 1) == []
    # too short to refine: the first-step estimate is the only one, with the warning
    lines = _run(clock, EtaClock(steps=4, device="cpu", clock=clock), 1200.0, 1.0, 4)
    assert lines[0] == "about 80 min for 4 steps on cpu" and lines[1].startswith("warning: ")
    assert eta_lines(20.0, 50, "cpu") == ["under 1 min for 50 steps on cpu"]


def test_pretrain_prints_the_estimate_and_resume_of_a_finished_run(tmp_path, capsys) -> None:
    args = ["-c", "quickstart", "data.num_train=128", "data.num_test=8", "train.batch_size=16",
            "train.epochs=1", "data.num_workers=0", f"run_dir={tmp_path}"]  # fmt: skip
    assert main(["pretrain", *args]) == 0
    out = capsys.readouterr().out
    assert " min for 8 steps on cpu (" in out and "loss " in out
    assert main(["pretrain", *args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "run already complete at step 8 (epoch 1); nothing to do" in out
    assert "nan" not in out and "loss " not in out
