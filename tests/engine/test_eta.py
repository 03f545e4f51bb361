"""The pretraining time estimate and the resume of a finished run."""

from __future__ import annotations

from maelab.cli import main
from maelab.engine.eta import EtaClock, eta_lines


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


def test_estimate_leaves_out_the_first_step_and_prints_once() -> None:
    clock = FakeClock()
    eta = EtaClock(steps=1000, device="cpu", measure=5, clock=clock)
    lines = _run(clock, eta, first=30.0, per_step=0.6, steps=50)
    # 30 s + 999 steps of 0.6 s = 629.4 s: 11 min, no warning
    assert lines == ["about 11 min for 1000 steps on cpu"]


def test_long_run_warns_in_one_line() -> None:
    clock = FakeClock()
    eta = EtaClock(steps=10_000, device="cpu", measure=3, clock=clock)
    lines = _run(clock, eta, first=1.0, per_step=0.5, steps=10)
    assert lines[0] == "about 84 min for 10000 steps on cpu"
    assert len(lines) == 2 and lines[1].startswith(
        "warning: this run will take over an hour on cpu"
    )
    assert "\n" not in lines[1]


def test_short_run_and_short_estimate() -> None:
    clock = FakeClock()
    assert _run(clock, EtaClock(steps=4, device="cpu", clock=clock), 1.0, 1.0, 4) == []
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
