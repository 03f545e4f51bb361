"""A linear-MAE run's checkpoint loads back as a LinearMAE; commands that need the ViT MAE
refuse it in one line."""

import pytest
import torch

from maelab.cli import main
from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.errors import CheckpointError
from maelab.models.checkpoints import arch_from_state, load_checkpoint, load_pretrained
from maelab.models.linear import LinearArch, LinearMAE


@pytest.fixture(scope="module")
def linear_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("linear") / "run"
    cfg = load_config(overrides=[
        f"run_dir={run}", "data.name=gaussian", "data.num_train=256", "data.num_test=16",
        "data.gaussian.image_size=8", "data.num_workers=0", "model.kind=linear",
        "model.patch_size=2", "model.code_dim=4", "mask.ratio=0.5", "train.epochs=1",
        "train.batch_size=64", "train.lr=0.01", "train.device=cpu",
    ])  # fmt: skip
    result = pretrain(cfg, quiet=True)
    return run / "checkpoints" / "last.pt", result.model


def test_a_linear_run_loads_back_with_its_weights(linear_run):
    ckpt, trained = linear_run
    model, cfg = load_pretrained(ckpt, linear_ok=True)
    assert isinstance(model, LinearMAE) and model.arch == trained.arch
    assert cfg.model.kind == "linear" and not model.training
    for key, value in trained.state_dict().items():
        assert torch.equal(model.state_dict()[key], value.cpu()), key
    assert torch.equal(model.end_to_end(), trained.end_to_end().cpu())


def test_the_stored_kind_picks_the_arch(linear_run):
    state = load_checkpoint(linear_run[0])
    assert isinstance(arch_from_state(state, linear_run[0]), LinearArch)
    state["arch"]["kind"] = "quadratic"
    with pytest.raises(CheckpointError, match="kind 'quadratic' this maelab does not know"):
        arch_from_state(state, linear_run[0])


def test_a_caller_that_needs_the_vit_refuses_it_in_one_line(linear_run):
    with pytest.raises(CheckpointError, match=r"linear MAE \(model.kind=linear\)") as exc:
        load_pretrained(linear_run[0])
    assert "\n" not in str(exc.value)


def test_export_refuses_it_in_one_line(linear_run, tmp_path, capsys):
    args = ["export", "--ckpt", str(linear_run[0]), "--to", "hf", "--out", str(tmp_path / "o")]
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "holds a LinearMAE, not the plain ViT MAE" in err
