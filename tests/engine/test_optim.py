import torch

from maelab.engine.optim import build_adamw, param_groups
from maelab.models import MaskedAutoencoder, make_arch


def test_no_decay_on_biases_and_norms():
    model = MaskedAutoencoder(make_arch("micro"))
    no_decay, decay = param_groups(model, 0.05)
    names = {id(p): n for n, p in model.named_parameters()}
    nd = {names[id(p)] for p in no_decay["params"]}
    d = {names[id(p)] for p in decay["params"]}
    assert "blocks.0.norm1.weight" in nd and "blocks.0.attn.qkv.bias" in nd
    assert "blocks.0.attn.qkv.weight" in d and "patch_embed.proj.weight" in d
    assert "pos_embed" not in nd | d  # frozen sin-cos table is not optimised
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0


def test_adamw_betas():
    model = MaskedAutoencoder(make_arch("micro"))
    opt = build_adamw(model, 1e-3, 0.05, (0.9, 0.95), torch.device("cpu"))
    assert opt.param_groups[0]["betas"] == (0.9, 0.95)
