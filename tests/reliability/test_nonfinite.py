"""NaN / inf guard: `stop` ends the run with one line, `skip` never applies a non-finite update."""

from __future__ import annotations

import math
import re

import pytest
import torch
from reliability_helpers import TINY, cli, error_line

import maelab.engine.step as step_module
from maelab.engine.metrics_log import read_metrics
from maelab.models.checkpoints import load_checkpoint
from maelab.objectives import OBJECTIVES

RUN = [*TINY, "data.num_train=64", "train.save_every_steps=1"]  # 4 iterations, last.pt after each


def _inject(monkeypatch, bad_steps: set[int] | None, kind: str = "loss") -> list[int]:
    """Make the objective non-finite at the given (1-based) steps; None: at every step.

    kind "loss": the loss is NaN; kind "grad": the loss is finite but its gradient is NaN.
    """
    real, calls = OBJECTIVES["mae"], []

    def objective(model, imgs, ratio, noise, cfg):
        out = real(model, imgs, ratio, noise, cfg)
        calls.append(len(calls) + 1)
        if bad_steps is None or calls[-1] in bad_steps:
            if kind == "loss":
                out.loss = out.loss * math.nan
            else:  # d sqrt(z)/dz is inf at 0 and 0 * inf = nan, so only the backward pass breaks
                out.loss = out.loss + 0.0 * torch.sqrt((model.cls_token * 0.0).sum())
        return out

    monkeypatch.setitem(OBJECTIVES, "mae", objective)
    return calls


def _finite(state: dict) -> bool:
    return all(torch.isfinite(v).all() for v in state["model"].values())


def test_stop_names_step_lr_and_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    _inject(monkeypatch, {3})
    rc, _, err = cli(capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet")
    assert rc == 1
    last = tmp_path / "checkpoints" / "last.pt"
    assert re.fullmatch(
        rf"loss is nan at step 3 \(epoch 0, iteration 2, lr [0-9.e+-]+\); last good checkpoint: "
        rf"{re.escape(str(last))}\. Lower train.blr, set train.clip_grad, or pass train.on_nonfinite=skip",
        error_line(err),
    ), err
    state = load_checkpoint(last)
    assert state["global_step"] == 2 and _finite(state)


def test_stop_on_a_huge_learning_rate(tmp_path, capsys):
    rc, _, err = cli(
        capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet",
        "train.lr=1e30", "train.warmup_epochs=0", "train.save_every_steps=0",
    )  # fmt: skip
    assert rc == 1
    line = error_line(err)
    assert re.match(r"(loss is (nan|inf)|weights became non-finite) .*step \d+", line), line
    assert "lr 1e+30" in line or "last good checkpoint: none yet" in line


def test_skip_never_applies_a_nan_update(tmp_path, capsys, monkeypatch):
    _inject(monkeypatch, {2, 3})
    rc, _, err = cli(
        capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet", "train.on_nonfinite=skip"
    )
    assert rc == 0, err
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert _finite(state) and state["opt_steps"] == 2 and state["global_step"] == 4
    records = read_metrics(tmp_path / "metrics.jsonl")
    assert [r["step"] for r in records if r["kind"] == "train"] == [1, 4]  # no NaN in the log
    epoch = [r for r in records if r["kind"] == "epoch"][0]
    assert epoch["skipped_steps"] == 2 and math.isfinite(epoch["loss"])


@pytest.mark.parametrize("mode", ["skip", "stop_with_clip"])
def test_nan_gradient_with_finite_loss(tmp_path, capsys, monkeypatch, mode):
    _inject(monkeypatch, {2}, kind="grad")
    extra = ["train.on_nonfinite=skip"] if mode == "skip" else ["train.clip_grad=1.0"]
    rc, _, err = cli(capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet", *extra)
    state = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert _finite(state)
    if mode == "skip":
        assert rc == 0 and state["opt_steps"] == 3
    else:
        assert rc == 1 and error_line(err).startswith(
            "gradient norm is nan at step 2 (epoch 0, iteration 1"
        )
        assert state["global_step"] == 1


def test_stop_never_saves_nan_weights(tmp_path, capsys, monkeypatch):
    """Without clipping, a NaN gradient is not looked at; the save after it refuses NaN weights."""
    _inject(monkeypatch, {2}, kind="grad")
    rc, _, err = cli(capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet")
    last = tmp_path / "checkpoints" / "last.pt"
    assert rc == 1
    assert error_line(err).startswith(
        f"weights became non-finite by step 2 (not saved); last good checkpoint: {last}."
    )
    state = load_checkpoint(last)
    assert state["global_step"] == 1 and _finite(state)


def test_skip_gives_up_after_too_many_in_a_row(tmp_path, capsys, monkeypatch):
    _inject(monkeypatch, None)
    monkeypatch.setattr(step_module, "MAX_SKIPS_IN_A_ROW", 3)
    rc, _, err = cli(
        capsys, "pretrain", *RUN, f"run_dir={tmp_path}", "--quiet", "train.on_nonfinite=skip"
    )
    assert rc == 1
    assert error_line(err).startswith(
        "3 updates in a row skipped for non-finite values, up to step 3"
    )
    assert not (tmp_path / "checkpoints" / "last.pt").exists()


def test_nonfinite_config_values_are_rejected(capsys):
    for value in ("nan", ".inf", "-.inf"):
        rc, _, err = cli(capsys, "pretrain", *TINY, f"train.blr={value}")
        assert rc == 2 and "Input should be a finite number" in error_line(err)
