"""Checkpoints: atomic writes, what they hold, and one clear line for every bad file."""

from __future__ import annotations

import argparse
import errno
import os
import pickle
import re
from pathlib import Path

import pytest
import torch
from reliability_helpers import TINY, cli, error_line

import maelab
from maelab.cli import config_path
from maelab.config import load_config
from maelab.engine.checkpoint import (
    atomic_save,
    prune_numbered,
    remove_stale_temps,
)
from maelab.errors import CheckpointError
from maelab.models import MaskedAutoencoder, make_arch
from maelab.models.checkpoints import load_checkpoint
from maelab.models.interop import load_official_state_dict, load_timm_vit_weights, to_timm_vit


def _failing_save(exc: BaseException):
    """A torch.save that writes part of the file, then fails like a full disk or a Ctrl-C."""

    def save(obj, f, *args, **kwargs):
        f.write(b"PK\x03\x04 half a checkpoint")
        raise exc

    return save


def _files(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished tiny run (1 epoch of 2 iterations): run_dir/checkpoints/last.pt."""
    run_dir = tmp_path_factory.mktemp("run")
    assert maelab.cli.main(["pretrain", *TINY, f"run_dir={run_dir}", "--quiet"]) == 0
    return run_dir


# ---------------------------------------------------------------- atomic writes
@pytest.mark.parametrize(
    "exc, raised",
    [
        (OSError(errno.ENOSPC, "No space left on device"), CheckpointError),
        (
            RuntimeError("PytorchStreamWriter failed writing file data/3: file write failed"),
            CheckpointError,
        ),
        (KeyboardInterrupt(), KeyboardInterrupt),
    ],
    ids=["disk_full", "torch_write_error", "ctrl_c"],
)
def test_failed_save_keeps_previous_file_and_leaves_no_temp(tmp_path, monkeypatch, exc, raised):
    path = tmp_path / "last.pt"
    atomic_save({"step": 1, "w": torch.arange(4.0)}, path)
    monkeypatch.setattr(torch, "save", _failing_save(exc))
    with pytest.raises(raised) as info:
        atomic_save({"step": 2, "w": torch.zeros(4)}, path)
    monkeypatch.undo()
    assert _files(tmp_path) == ["last.pt"]  # no temp file left behind
    old = load_checkpoint(path)
    assert old["step"] == 1 and torch.equal(old["w"], torch.arange(4.0))
    if raised is CheckpointError:
        msg = str(info.value)
        assert "\n" not in msg and str(path) in msg and "previous file is unchanged" in msg


def test_checkpoint_file_follows_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_save({"x": 1}, tmp_path / "a.pt")
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644  # not mkstemp's private 0600


def test_stale_temp_files_are_removed(tmp_path):
    (tmp_path / ".last.pt.abc123.tmp").write_bytes(b"killed mid-save")
    (tmp_path / "last.pt").write_bytes(b"keep")
    (tmp_path / "notes.txt").write_text("keep")
    assert [p.name for p in remove_stale_temps(tmp_path)] == [".last.pt.abc123.tmp"]
    assert _files(tmp_path) == ["last.pt", "notes.txt"]


def test_prune_keeps_the_newest_numbered_and_ignores_other_files(tmp_path):
    for e in (1, 2, 10, 3):
        (tmp_path / f"epoch_{e:04d}.pt").write_bytes(b"x")
    (tmp_path / "epoch_best.pt").write_bytes(b"x")
    (tmp_path / "last.pt").write_bytes(b"x")
    prune_numbered(tmp_path, keep_last=2)
    assert _files(tmp_path) == ["epoch_0003.pt", "epoch_0010.pt", "epoch_best.pt", "last.pt"]


def test_save_failure_through_the_cli(tmp_path, monkeypatch, capsys):
    """A full disk while saving: exit 1, one line; the previous last.pt is intact, no temp file."""
    args = ["pretrain", *TINY, f"run_dir={tmp_path}", "--quiet"]
    assert cli(capsys, *args)[0] == 0
    last = tmp_path / "checkpoints" / "last.pt"
    before = last.read_bytes()
    monkeypatch.setattr(
        torch, "save", _failing_save(OSError(errno.ENOSPC, "No space left on device"))
    )
    rc, _, err = cli(capsys, *args, "train.epochs=2", "--resume")
    assert rc == 1
    line = error_line(err, warnings=True)  # train.epochs 1 -> 2 is reported as a change
    assert "No space left on device" in line and "previous file is unchanged" in line
    assert last.read_bytes() == before
    assert _files(last.parent) == ["last.pt"]
    monkeypatch.setattr(torch, "save", _failing_save(KeyboardInterrupt()))
    rc, _, err = cli(capsys, *args, "train.epochs=2", "--resume")
    assert rc == 130 and err.strip().splitlines()[-1] == "maelab: interrupted"
    assert last.read_bytes() == before and _files(last.parent) == ["last.pt"]


# ---------------------------------------------------------------- contents
def test_checkpoint_holds_everything_a_resume_needs(tmp_path, capsys):
    rc, _, _ = cli(
        capsys, "pretrain", *TINY, f"run_dir={tmp_path}", "--quiet",
        "train.epochs=3", "train.save_every=1", "train.keep_last=2",
    )  # fmt: skip
    assert rc == 0
    ckpt = tmp_path / "checkpoints"
    assert _files(ckpt) == ["epoch_0002.pt", "epoch_0003.pt", "last.pt"]
    state = load_checkpoint(ckpt / "last.pt")
    assert {"model", "arch", "optimizer", "scaler", "config", "epoch", "next_iter", "global_step",
            "opt_steps", "schedule", "progress", "rng", "versions"} <= set(state)  # fmt: skip
    overrides = [
        *TINY[2:],
        f"run_dir={tmp_path}",
        "train.epochs=3",
        "train.save_every=1",
        "train.keep_last=2",
    ]
    cfg = load_config([config_path("quickstart")], overrides)
    assert state["config"] == cfg.model_dump(mode="json")  # the resolved config, all fields
    assert (state["epoch"], state["next_iter"], state["global_step"], state["opt_steps"]) == (
        3,
        0,
        6,
        6,
    )
    assert state["schedule"]["iters_per_epoch"] == 2 and state["schedule"]["epochs"] == 3
    assert state["optimizer"]["state"] and state["optimizer"]["param_groups"][0]["lr"] >= 0
    assert state["scaler"] is None  # no fp16 on a CPU
    assert set(state["rng"]) == {"torch", "cuda", "numpy", "python"}
    assert state["versions"] == {"maelab": maelab.__version__, "torch": str(torch.__version__)}


# ---------------------------------------------------------------- bad files via --resume
def _bad_files(run: Path, d: Path) -> dict[str, Path]:
    good = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    raw = (run / "checkpoints" / "last.pt").read_bytes()
    files = {
        "truncated": raw[: len(raw) // 2],
        "empty": b"",
        "text": b"epoch: 3\nthis is not a checkpoint\n",
        "list_pickle": pickle.dumps([1, 2, 3]),
    }
    out = {}
    for name, data in files.items():
        (d / f"{name}.pt").write_bytes(data)
        out[name] = d / f"{name}.pt"
    torch.save([torch.zeros(2)], d / "tensor_list.pt")
    out["tensor_list"] = d / "tensor_list.pt"
    no_opt = {k: v for k, v in good.items() if k != "optimizer"}
    torch.save(no_opt, d / "no_optimizer.pt")
    out["no_optimizer"] = d / "no_optimizer.pt"
    no_key = dict(
        good, model={k: v for k, v in good["model"].items() if k != "blocks.0.attn.qkv.weight"}
    )
    torch.save(no_key, d / "missing_tensor.pt")
    out["missing_tensor"] = d / "missing_tensor.pt"
    official = {
        "model": good["model"],
        "epoch": 799,
        "args": argparse.Namespace(model="mae_vit_base_patch16"),
    }
    torch.save(official, d / "official.pth")
    out["official"] = d / "official.pth"
    other = MaskedAutoencoder(make_arch("micro", embed_dim=64, in_chans=3))
    torch.save(dict(good, model=other.state_dict(), arch=other.arch_dict()), d / "other_size.pt")
    out["other_size"] = d / "other_size.pt"
    out["missing"] = d / "nope.pt"
    out["folder"] = d
    return out


EXPECTED = {
    "truncated": r"cannot be read \(RuntimeError: PytorchStreamReader failed reading zip archive.*truncated",
    "empty": r"is an empty file",
    "text": r"cannot be read \(.*\); it is truncated, damaged or not a torch checkpoint",
    "list_pickle": r"cannot be read \(it holds Python objects that weights-only loading refuses\)",
    "tensor_list": r"holds a list, not a dict of states",
    "no_optimizer": r"is not a maelab pretraining checkpoint \(no optimizer\)",
    "missing_tensor": r"does not match the model \(missing 1: blocks.0.attn.qkv.weight\)",
    "official": r"not a maelab pretraining checkpoint \(no arch, optimizer, .*interop",
    "other_size": r"is for another model \(embed_dim: checkpoint 64 vs config 128\)",
    "missing": r"not found; give the path of a .pt file",
    "folder": r"is a folder; give a .pt file",
}


@pytest.mark.parametrize("kind", list(EXPECTED))
def test_bad_checkpoint_through_resume_is_one_line(run, tmp_path, capsys, kind):
    path = _bad_files(run, tmp_path)[kind]
    rc, _, err = cli(
        capsys, "pretrain", *TINY, f"run_dir={tmp_path / 'r'}", "--quiet", "--resume", str(path)
    )
    assert rc == 1
    assert re.search(EXPECTED[kind], error_line(err)), err
    assert not (tmp_path / "r").exists()  # nothing written before the checkpoint is accepted


# torch warns about the pickle protocol of a foreign file (interop does not silence it)
@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
@pytest.mark.parametrize(
    "kind", ["truncated", "empty", "text", "list_pickle", "tensor_list", "missing"]
)
def test_bad_files_through_the_interop_loaders(run, tmp_path, kind):
    path = _bad_files(run, tmp_path)[kind]
    model = MaskedAutoencoder(make_arch("micro"))
    for load in (load_official_state_dict, load_timm_vit_weights):
        with pytest.raises(CheckpointError) as info:
            load(model, path)
        assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_interop_loaders_report_what_matches(run, tmp_path):
    """A maelab checkpoint, one of another size and one missing a tensor, through the loaders."""
    files = _bad_files(run, tmp_path)
    model = MaskedAutoencoder(make_arch("micro"))
    report = load_official_state_dict(model, run / "checkpoints" / "last.pt")
    assert report.ok and len(report.matched) == len(model.state_dict())
    report = load_official_state_dict(model, files["official"])
    assert report.ok
    report = load_official_state_dict(model, files["missing_tensor"])
    assert report.missing == ["blocks.0.attn.qkv.weight"] and "missing 1" in report.summary()
    report = load_official_state_dict(model, files["other_size"])
    assert report.shape_mismatched and "shape mismatch" in report.summary()
    with pytest.raises(CheckpointError, match="does not match the model"):
        load_official_state_dict(model, files["other_size"], strict=True)
    vit = to_timm_vit(model, num_classes=10)
    report = load_timm_vit_weights(MaskedAutoencoder(make_arch("micro")), vit)
    assert not report.missing and set(report.unexpected) == {"head.weight", "head.bias"}
