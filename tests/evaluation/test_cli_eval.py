"""`maelab probe / finetune / reconstruct` end to end on tiny checkpoints made by the engine."""

import json

import pytest
import torch

from maelab.cli import main
from maelab.errors import CheckpointError
from maelab.models.checkpoints import load_checkpoint, load_pretrained


def test_load_pretrained_round_trip(synthetic_ckpt):
    model, cfg = load_pretrained(synthetic_ckpt)
    state = load_checkpoint(synthetic_ckpt)
    assert cfg.data.num_train == 256 and model.arch.embed_dim == 32
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k


def test_load_pretrained_rejects_foreign_files(tmp_path):
    torch.save({"model": {"w": torch.zeros(1)}}, tmp_path / "weights.pt")
    with pytest.raises(CheckpointError, match="neither a maelab pretraining checkpoint"):
        load_pretrained(tmp_path / "weights.pt")
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(CheckpointError):
        load_pretrained(tmp_path / "junk.pt")


def test_probe_end_to_end_and_cache(synthetic_ckpt, capsys):
    run = synthetic_ckpt.parent.parent
    args = ["probe", "--ckpt", str(synthetic_ckpt), "--quiet", "probe.linear_probe.epochs=5",
            "probe.knn_k=5"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    for row in ("mae", "random", "pixels", "linear top-1", "k-NN top-1"):
        assert row in out
    record = json.loads((run / "probe.json").read_text())
    assert [r["source"] for r in record["rows"]] == ["mae", "random", "pixels"]
    assert record["num_train"] == 256 and record["num_test"] == 64
    assert record["rows"][2]["dim"] == 3 * 16 * 16
    assert 0 <= record["rows"][0]["linear"]["top1"] <= 100
    assert (run / "probe.txt").read_text().startswith("features")
    cached = sorted(p.name for p in (run / "features").glob("*.pt"))
    assert len(cached) == 4  # train/test x mae/random
    mtimes = {p: p.stat().st_mtime_ns for p in (run / "features").glob("*.pt")}
    assert main([*args, "baselines=[random]"]) == 0
    assert {p: p.stat().st_mtime_ns for p in (run / "features").glob("*.pt")} == mtimes
    record = json.loads((run / "probe.json").read_text())
    assert [r["source"] for r in record["rows"]] == ["mae", "random"]


def test_probe_config_errors(synthetic_ckpt, capsys):
    assert main(["probe", "--ckpt", str(synthetic_ckpt), "probe.linear_probe.epoch=3"]) == 2
    assert "probe.linear_probe.epoch" in capsys.readouterr().err
    assert main(["probe", "--ckpt", str(synthetic_ckpt), "data.name=digits"]) == 2
    assert "channel" in capsys.readouterr().err
    assert main(["probe", "--ckpt", str(synthetic_ckpt.parent / "missing.pt")]) == 1
    assert main(["probe", "--ckpt", str(synthetic_ckpt), "probe.knn_k=0"]) == 2
    assert "probe.knn_k" in capsys.readouterr().err
    assert main(["finetune", "--ckpt", str(synthetic_ckpt), "finetune.layer_decay=1.5"]) == 2


@pytest.mark.parametrize("which", ["synthetic_ckpt", "digits_ckpt"])
def test_reconstruct_png_for_1_and_3_channels(which, request, tmp_path, capsys):
    ckpt = request.getfixturevalue(which)
    out = tmp_path / "grid.png"
    assert (
        main(
            ["reconstruct", "--ckpt", str(ckpt), "--num", "3", "--out", str(out), "mask.ratio=0.5"]
        )
        == 0
    )
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 1000
    assert str(out) in capsys.readouterr().out
    assert main(["reconstruct", "--ckpt", str(ckpt), "--num", "2"]) == 0
    assert (ckpt.parent.parent / "figures" / "reconstruction_random_0.75_seed0.png").exists()


def test_finetune_end_to_end(digits_ckpt, tmp_path, capsys):
    args = ["finetune", "--ckpt", str(digits_ckpt), "--quiet", f"run_dir={tmp_path}",
            "finetune.batch_size=64", "finetune.epochs=1"]  # fmt: skip
    assert main(args) == 0
    assert "test top-1" in capsys.readouterr().out
    rows = [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [0] and 0 <= rows[0]["test_top1"] <= 100
    summary = json.loads((tmp_path / "finetune.json").read_text())
    assert summary["top1"] == rows[0]["test_top1"]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["epoch"] == 1
    assert main([*args, "finetune.batch_size=63", "finetune.mixup=0.8"]) == 2  # mixup pairs images


def test_config_keys_of_another_version_are_dropped_with_a_warning(synthetic_ckpt, tmp_path):
    state = load_checkpoint(synthetic_ckpt)
    state["config"]["data"]["synthetic"]["retired_knob"] = 1.0
    state["config"]["retired_section"] = {"a": 1}
    torch.save(state, tmp_path / "old.pt")
    with pytest.warns(UserWarning, match="data.synthetic.retired_knob, retired_section"):
        _, cfg = load_pretrained(tmp_path / "old.pt")
    assert cfg.data.num_train == 256
