"""`maelab export` on the command line: what it prints, the model card, and one-line errors."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

import maelab
from maelab.cli import main
from maelab.errors import CheckpointError
from maelab.export import export_checkpoint, source
from maelab.export.folder import CARD_FILE
from maelab.models.checkpoints import load_checkpoint
from maelab.models.mae import MaskedAutoencoder
from maelab.run_folder import RunFolder, write_json_atomic
from maelab.verdicts import git_commit

pytest.importorskip("safetensors")


def error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.mark.parametrize("target", ["hf", "timm"])
def test_cli_writes_the_folder_and_prints_how_to_load_it(run_ckpt, tmp_path, capsys, target):
    pytest.importorskip("transformers")
    out = tmp_path / target
    assert main(["export", "--ckpt", str(run_ckpt), "--to", target, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} (" in printed and "load it with:" in printed
    loader = "ViTMAEForPreTraining.from_pretrained" if target == "hf" else "timm.create_model"
    assert f'{loader}("' in printed
    assert (out / CARD_FILE).is_file() and not list(tmp_path.glob(".*.tmp"))


def test_model_card_tells_the_runs_story(run_ckpt, tmp_path) -> None:
    run = RunFolder.of_checkpoint(run_ckpt)
    rows = [{"source": "mae", "dim": 64, "linear": {"top1": 61.25}, "knn": {"top1": 55.5}},
            {"source": "pixels", "dim": 768, "linear": {"top1": 40.0}, "knn": {"top1": 38.0}}]  # fmt: skip
    write_json_atomic(run.probe_result, {"probe": {"pool": "mean"}, "num_train": 128,
                                         "num_test": 32, "rows": rows})  # fmt: skip
    try:
        card = (export_checkpoint(run_ckpt, "timm", tmp_path / "t").out / CARD_FILE).read_text()
    finally:
        run.probe_result.unlink()
    state = load_checkpoint(run_ckpt)
    last_epoch = [line for line in run.metrics.read_text().splitlines() if '"epoch"' in line][-1]
    loss = float(last_epoch.split('"loss": ')[1].split(",")[0].rstrip("}"))
    assert card.startswith("---\nlibrary_name: timm\n")
    assert (
        "| data | 16 px, 3 channel(s); mean / std from the 128 training images of data.name=synthetic |"
        in card
    )
    assert "| recipe | small-data (train.recipe=auto): 1 epoch, batch 64, blr " in card
    assert f"| steps | {state['global_step']} (1 epoch) |" in card
    assert f"| final loss | {loss:.4f} (mean of the last epoch) |" in card
    assert "## Frozen-feature probe (mean features, 128 train / 32 test images)" in card
    assert "| mae | 64 | 61.2 | 55.5 |" in card and "| pixels | 768 | 40.0 | 38.0 |" in card
    commit = git_commit(Path(maelab.__file__).resolve().parent)[:12]
    assert f"with maelab {maelab.__version__} (commit {commit})" in card


def test_existing_folder_and_file_are_one_line_errors(run_ckpt, tmp_path, capsys) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    args = ["export", "--ckpt", str(run_ckpt), "--to", "timm", "--out"]
    assert main([*args, str(full)]) == 2
    assert error_line(capsys) == (
        f"maelab: error: --out {full} exists and is not empty; give a new or empty folder "
        "(or delete it)"
    )
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    assert main([*args, str(full / "keep.txt")]) == 2
    assert "is a file; give a new or empty folder" in error_line(capsys)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*args, str(empty)]) == 0  # an empty folder is fine


def test_unsupported_and_missing_checkpoints_are_one_line_errors(run_ckpt, tmp_path, capsys):
    state = load_checkpoint(run_ckpt)
    state["arch"] = {**state["arch"], "ablation": "no_skip"}
    state["config"]["model"]["ablation"] = "no_skip"
    ablated = tmp_path / "ablated.pt"
    torch.save(state, ablated)
    out = tmp_path / "out"
    assert main(["export", "--ckpt", str(ablated), "--to", "hf", "--out", str(out)]) == 1
    line = error_line(capsys)
    assert "model.ablation=no_skip" in line and "only the plain ViT MAE can be exported" in line
    assert not out.exists()
    assert (
        main(["export", "--ckpt", str(tmp_path / "nope.pt"), "--to", "hf", "--out", str(out)]) == 1
    )
    assert "not found" in error_line(capsys)


def test_moved_data_is_named_with_the_fix(run_ckpt, tmp_path, capsys) -> None:
    folder_run = load_checkpoint(run_ckpt)
    folder_run["config"]["data"] = {**folder_run["config"]["data"], "name": "folder",
                                    "root": str(tmp_path / "gone")}  # fmt: skip
    ckpt = tmp_path / "moved.pt"
    torch.save(folder_run, ckpt)
    assert main(["export", "--ckpt", str(ckpt), "--to", "timm", "--out", str(tmp_path / "o")]) == 1
    line = error_line(capsys)
    assert "its data cannot be read" in line and "data.root=DIR" in line


def test_without_transformers_the_fix_is_named(run_ckpt, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # import transformers fails
    out = tmp_path / "hf"
    assert main(["export", "--ckpt", str(run_ckpt), "--to", "hf", "--out", str(out)]) == 1
    assert "pip install 'maelab[hf]'" in error_line(capsys)
    assert not out.exists()


def test_a_model_other_than_the_plain_mae_is_refused(run_ckpt, tmp_path, monkeypatch) -> None:
    """Any other model class (a variant maelab adds later) is refused in one line."""

    class Variant(MaskedAutoencoder):
        pass

    real = source.load_pretrained

    def load_variant(path, **kwargs):
        model, cfg = real(path, **kwargs)
        model.__class__ = Variant
        return model, cfg

    monkeypatch.setattr(source, "load_pretrained", load_variant)
    with pytest.raises(CheckpointError, match="holds a Variant, not the plain ViT MAE"):
        export_checkpoint(run_ckpt, "timm", tmp_path / "out")
    assert not (tmp_path / "out").exists()
