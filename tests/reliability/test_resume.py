"""Exact resume: a run killed mid-epoch and resumed ends where an uninterrupted run ends."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from reliability_helpers import REPO, TINY, child_env, cli, error_line

import maelab.engine.pretrain as pretrain_module
from maelab.engine.metrics_log import read_metrics, truncate_after
from maelab.models.checkpoints import load_checkpoint

# 2 epochs x 6 iterations of 16 images, last.pt every 2 optimizer steps (mid-epoch at 2 and 4)
RUN = [
    *TINY, "data.num_train=96", "train.epochs=2", "train.save_every_steps=2",
]  # fmt: skip


def _losses(run_dir: Path) -> list[tuple[str, int, float]]:
    return [(r["kind"], r["step"], r["loss"]) for r in read_metrics(run_dir / "metrics.jsonl")]


def _assert_same_run(a: Path, b: Path) -> None:
    sa = load_checkpoint(a / "checkpoints" / "last.pt")
    sb = load_checkpoint(b / "checkpoints" / "last.pt")
    assert (sa["epoch"], sa["global_step"], sa["opt_steps"]) == (
        sb["epoch"],
        sb["global_step"],
        sb["opt_steps"],
    )
    for k, v in sa["model"].items():
        torch.testing.assert_close(sb["model"][k], v, rtol=0, atol=1e-6, msg=k)
    for k, v in sa["optimizer"]["state"].items():
        torch.testing.assert_close(
            sb["optimizer"]["state"][k]["exp_avg"], v["exp_avg"], rtol=0, atol=1e-6
        )
    assert _losses(a) == _losses(b)


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path, capsys, keep_threads):
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    assert cli(capsys, "pretrain", *RUN, f"run_dir={ref}", "--quiet")[0] == 0
    assert len([r for r in read_metrics(ref / "metrics.jsonl") if r["kind"] == "train"]) == 12

    args = [sys.executable, "-m", "maelab", "pretrain", *RUN, f"run_dir={cut}", "--quiet"]
    proc = subprocess.Popen(
        args, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    last = cut / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)  # no handler, no cleanup: like a pulled plug or the OOM killer
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(last)
    assert (state["epoch"], state["next_iter"]) == (0, 2), "the kill should land mid-epoch"

    resumed = subprocess.run(
        [*args, "--resume"], cwd=REPO, env=child_env(), capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "warning" not in resumed.stderr
    _assert_same_run(ref, cut)


def test_interrupted_after_a_mid_epoch_save_then_resumed_in_process(
    tmp_path, capsys, monkeypatch, keep_threads
):
    """The same check without a process: Ctrl-C during the epoch-end save, after the mid-epoch
    save at step 2 of 4; the log then holds steps 3-4 and the epoch record, which must go."""
    ref, cut = tmp_path / "ref", tmp_path / "cut"
    run = [
        *TINY,
        "data.num_train=64",
        "train.epochs=2",
        "train.save_every_steps=2",
        "train.threads=1",
    ]
    assert cli(capsys, "pretrain", *run, f"run_dir={ref}", "--quiet")[0] == 0

    real_save, calls = pretrain_module.atomic_save, []

    def save_then_interrupt(obj, path):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_save(obj, path)

    monkeypatch.setattr(pretrain_module, "atomic_save", save_then_interrupt)
    rc, _, err = cli(capsys, "pretrain", *run, f"run_dir={cut}", "--quiet")
    assert rc == 130 and err.strip() == "maelab: interrupted"
    monkeypatch.undo()
    state = load_checkpoint(cut / "checkpoints" / "last.pt")
    assert (state["epoch"], state["next_iter"], state["global_step"]) == (0, 2, 2)
    assert [r["step"] for r in read_metrics(cut / "metrics.jsonl")] == [1, 2, 3, 4, 4]
    rc, _, err = cli(capsys, "pretrain", *run, f"run_dir={cut}", "--quiet", "--resume")
    assert rc == 0 and err == ""
    _assert_same_run(ref, cut)


def test_torn_metrics_line_from_a_kill_is_dropped(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text(
        '{"kind": "train", "step": 1, "loss": 1.0}\n{"kind": "train", "step": 2, "loss": 0.9}\n{"kind": "tr'
    )
    assert [r["step"] for r in read_metrics(log)] == [1, 2]
    truncate_after(log, 1)
    assert log.read_text() == '{"kind": "train", "step": 1, "loss": 1.0}\n'
    assert not list(tmp_path.glob(".*.tmp"))


def test_resume_with_torn_metrics_and_stale_temp(tmp_path, capsys):
    run = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    assert cli(capsys, *run)[0] == 0
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"kind": "train", "st')  # killed while logging
    (tmp_path / "checkpoints" / ".last.pt.k1ll3d.tmp").write_bytes(b"killed while saving")
    rc, _, err = cli(capsys, *run, "--resume", "train.epochs=2")
    assert rc == 0, err
    assert [
        r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"
    ] == [1, 2, 3, 4]
    assert all(json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines())
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.pt"]


def test_resume_with_a_changed_config_warns_in_one_line(tmp_path, capsys):
    run = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    assert cli(capsys, *run)[0] == 0
    rc, _, err = cli(
        capsys, *run, "--resume", "train.epochs=2", "mask.ratio=0.5", "train.log_every=5"
    )
    assert rc == 0
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("maelab: warning: resuming "), err
    assert "mask.ratio: 0.75 -> 0.5; train.epochs: 1 -> 2;" in lines[0]
    assert "log_every" not in lines[0]  # operational fields are not reported


def test_resume_auto_without_checkpoint_starts_fresh_and_rerun_replaces_log(tmp_path, capsys):
    run = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    assert cli(capsys, *run, "--resume")[0] == 0  # nothing to resume: a fresh run
    assert cli(capsys, *run)[0] == 0  # a second fresh run in the same folder
    steps = [r["step"] for r in read_metrics(tmp_path / "metrics.jsonl") if r["kind"] == "train"]
    assert steps == [1, 2]  # not [1, 2, 1, 2]


def test_resume_path_taken_for_override_is_an_override(tmp_path, capsys):
    """`--resume train.epochs=2`: argparse reads the override as the optional path."""
    run = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    assert cli(capsys, *run)[0] == 0
    rc, _, err = cli(capsys, *run, "--resume", "train.epochs=2")
    assert rc == 0, err
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 2


def test_resume_of_an_unreadable_last_pt_is_one_line(tmp_path, capsys):
    run = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    (tmp_path / "checkpoints").mkdir(parents=True)
    (tmp_path / "checkpoints" / "last.pt").write_bytes(b"\x00" * 100)
    rc, _, err = cli(capsys, *run, "--resume")
    assert rc == 1 and "cannot be read" in error_line(err)


def _default_sigint() -> None:
    """The child starts with Ctrl-C's default action, as a foreground command in a terminal does
    (a shell's background job inherits SIGINT ignored, and Python then never raises on it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_mid_run_exits_130_and_keeps_a_good_checkpoint(tmp_path):
    # 120 steps: the signal sent once the first last.pt (step 2) exists lands mid-run even on a
    # fast machine (with RUN's 6 steps the run could finish first and exit 0)
    run = [*RUN, "train.epochs=40", f"run_dir={tmp_path}", "--quiet"]
    args = [sys.executable, "-m", "maelab", "pretrain", *run]
    proc = subprocess.Popen(
        args, cwd=REPO, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=_default_sigint,
    )  # fmt: skip
    last = tmp_path / "checkpoints" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err == "maelab: interrupted\n"
    assert load_checkpoint(last)["global_step"] >= 2
    assert sorted(p.name for p in last.parent.iterdir()) == ["last.pt"]
