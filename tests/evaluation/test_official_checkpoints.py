"""Official MAE checkpoints (released key layout, reduced size) through load_pretrained and the
commands that take `--ckpt`."""

import argparse

import pytest
import torch

from maelab.cli import main
from maelab.errors import CheckpointError
from maelab.models.checkpoints import load_pretrained, stored_config_tree
from maelab.models.interop import encoder_state_dict
from maelab.models.mae import MAEArch, MaskedAutoencoder

# the released layout at reduced size: 32 px, patch 4, 2 blocks, 64 wide (1 head of 64)
SMALL = MAEArch(img_size=32, patch_size=4, in_chans=3, embed_dim=64, depth=2, num_heads=1,
                decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=1)  # fmt: skip


def official_file(path, with_decoder: bool):
    """Save weights as the official scripts do: {"model": sd, "args": Namespace}."""
    torch.manual_seed(0)
    model = MaskedAutoencoder(SMALL)
    sd = model.state_dict() if with_decoder else encoder_state_dict(model)
    torch.save({"model": sd, "args": argparse.Namespace(model="mae_vit_small")}, path)
    return path, sd


def test_encoder_only_file_loads_with_inferred_arch(tmp_path, capsys):
    path, sd = official_file(tmp_path / "mae_pretrain_vit_small.pth", with_decoder=False)
    model, cfg = load_pretrained(path)
    a = model.arch
    assert (a.img_size, a.patch_size, a.embed_dim, a.depth, a.num_heads) == (32, 4, 64, 2, 1)
    assert a.mlp_ratio == 4.0 and cfg.data.image_size == 32 and cfg.model.embed_dim == 64
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k], v), k
    assert "encoder only" in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="no decoder"):
        load_pretrained(path, need_decoder=True)
    assert stored_config_tree(path)["model"]["depth"] == 2


def test_file_with_decoder_loads_it(tmp_path):
    path, sd = official_file(tmp_path / "mae_visualize_vit_small.pth", with_decoder=True)
    model, _ = load_pretrained(path, need_decoder=True)
    assert (model.arch.decoder_embed_dim, model.arch.decoder_depth) == (32, 1)
    assert not model.arch.norm_pix_loss  # released visualisation weights use raw pixels
    for k, v in sd.items():
        assert torch.equal(model.state_dict()[k], v), k


def test_commands_take_official_files(tmp_path, capsys):
    enc, _ = official_file(tmp_path / "mae_pretrain_vit_small.pth", with_decoder=False)
    common = [
        "data.synthetic.image_size=32",
        "data.num_train=64",
        "data.num_test=32",
        "data.num_workers=0",
    ]
    assert main(["probe", "--ckpt", str(enc), "--quiet", "probe.linear_probe.epochs=2", "probe.knn_k=5",
                 *common]) == 0  # fmt: skip
    assert "mae" in capsys.readouterr().out
    assert main(["reconstruct", "--ckpt", str(enc), "--num", "2", *common]) == 1
    assert "no decoder" in capsys.readouterr().err
    vis, _ = official_file(tmp_path / "mae_visualize_vit_small.pth", with_decoder=True)
    out = tmp_path / "rec.png"
    assert main(["reconstruct", "--ckpt", str(vis), "--num", "2", "--out", str(out),
                 *common]) == 0  # fmt: skip
    assert out.is_file()


def test_finetune_and_collapse_take_an_encoder_only_file(tmp_path, capsys):
    enc, _ = official_file(tmp_path / "mae_pretrain_vit_small.pth", with_decoder=False)
    common = ["data.synthetic.image_size=32", "data.num_train=64", "data.num_test=32",
              "data.num_workers=0"]  # fmt: skip
    run = tmp_path / "ft"
    assert main(["finetune", "--ckpt", str(enc), "--quiet", f"run_dir={run}",
                 "finetune.batch_size=32", "finetune.epochs=1", *common]) == 0  # fmt: skip
    assert "test top-1" in capsys.readouterr().out
    assert main(["analyze", "collapse", "--ckpt", str(enc), *common]) == 0
