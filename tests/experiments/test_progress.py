"""The sweep's progress display."""

from maelab.experiments.progress import SweepProgress
from maelab.run_folder import METRICS_FILE


def test_progress_reads_the_last_logged_step(tmp_path, capsys):
    run = tmp_path / "r"
    run.mkdir()
    (run / METRICS_FILE).write_text('{"kind": "train", "step": 3}\n{"kind": "train", "step": 7}\n')
    with SweepProgress([("r", 10), ("s", 20)], already_done=1) as progress:
        progress.start("r", run)
        progress.start("s", tmp_path / "missing")
        with progress._lock:
            progress._refresh_overall()
        assert progress.active["r"][0].n == 7 and progress.active["s"][0].n == 0
        assert progress.overall is not None and progress.overall.n == 7
        assert {b.pos for b, _ in progress.active.values()} in ({1, 2}, {-1, -2})
        progress.finish("r", ok=True)
        assert progress.done_steps == 10 + 60 and progress._label() == "sweep: run 3 of 3"
        progress.log("r: done")
    assert "r: done" in capsys.readouterr().err
