"""`model.init`: pretraining starts from an official MAE file or another maelab run."""

import argparse

import pytest
import torch

from maelab.engine.build import load_init
from maelab.errors import ConfigError
from maelab.models.interop import encoder_state_dict
from maelab.models.mae import MAEArch, MaskedAutoencoder
from tests.evaluation.conftest import TINY, pretrain_tiny

ARCH = MAEArch(in_chans=3, **TINY)


def test_encoder_only_file_loads_encoder_and_keeps_decoder(tmp_path):
    torch.manual_seed(1)
    source = MaskedAutoencoder(ARCH)
    path = tmp_path / "mae_pretrain_vit_tiny.pth"
    torch.save({"model": encoder_state_dict(source), "args": argparse.Namespace()}, path)
    torch.manual_seed(2)
    model = MaskedAutoencoder(ARCH)
    decoder_before = model.decoder_embed.weight.clone()
    line = load_init(model, str(path))
    assert "missing" in line and "decoder starts fresh" in line and "unexpected 0" in line
    for k, v in encoder_state_dict(source).items():
        assert torch.equal(model.state_dict()[k], v), k
    assert torch.equal(model.decoder_embed.weight, decoder_before)
    wider = MaskedAutoencoder(MAEArch(in_chans=3, **{**TINY, "embed_dim": 64}))
    with pytest.raises(ConfigError, match="another architecture"):
        load_init(wider, str(path))
    with pytest.raises(ConfigError, match="model.init"):
        load_init(model, str(tmp_path / "missing.pth"))


def test_pretrain_continues_from_another_run(tmp_path, capsys):
    first = pretrain_tiny(tmp_path / "a")
    capsys.readouterr()
    # 1 step at lr 0 leaves the loaded weights as they were (AdamW weight decay off too)
    second = pretrain_tiny(
        tmp_path / "b", f"model.init={first}", "train.lr=1e-12", "train.weight_decay=0"
    )
    a = torch.load(first, weights_only=False)["model"]
    b = torch.load(second, weights_only=False)["model"]
    for k in ("blocks.0.attn.qkv.weight", "decoder_pred.weight", "cls_token"):
        assert torch.allclose(a[k], b[k], atol=1e-6), k
    with pytest.raises(ConfigError, match="another architecture"):
        pretrain_tiny(tmp_path / "c", f"model.init={first}", "model.embed_dim=64")
