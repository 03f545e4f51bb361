"""Layer-wise lr decay groups by hand, and the fine-tuning loop on a hand-made dataset."""

import pytest
import torch

from maelab.evaluation.finetune import (
    FinetuneRunConfig,
    finetune,
    finetune_run_config,
    layer_id_for_vit,
    param_groups_lrd,
)
from maelab.models.checkpoints import load_checkpoint
from maelab.models.interop import to_timm_vit


def test_layer_ids():
    assert layer_id_for_vit("cls_token", 13) == 0
    assert layer_id_for_vit("pos_embed", 13) == 0
    assert layer_id_for_vit("patch_embed.proj.weight", 13) == 0
    assert layer_id_for_vit("blocks.0.attn.qkv.weight", 13) == 1
    assert layer_id_for_vit("blocks.11.mlp.fc2.bias", 13) == 12
    assert layer_id_for_vit("fc_norm.weight", 13) == 13
    assert layer_id_for_vit("head.weight", 13) == 13


def test_lrd_scales_and_decay_by_hand(tiny):
    vit = to_timm_vit(tiny, num_classes=4, global_pool="avg", fc_norm=True)
    groups = param_groups_lrd(vit, weight_decay=0.05, layer_decay=0.5)
    by_param = {}
    for g in groups:
        for name in g["param_names"]:
            by_param[name] = (g["lr_scale"], g["weight_decay"])
    # depth 2 -> num_layers 3: scale 0.5 ** (3 - layer_id)
    assert by_param["cls_token"] == (0.125, 0.0)  # token: no decay
    assert by_param["pos_embed"] == (0.125, 0.0)
    assert by_param["patch_embed.proj.weight"] == (0.125, 0.05)
    assert by_param["patch_embed.proj.bias"] == (0.125, 0.0)
    assert by_param["blocks.0.attn.qkv.weight"] == (0.25, 0.05)
    assert by_param["blocks.0.norm1.weight"] == (0.25, 0.0)
    assert by_param["blocks.1.mlp.fc1.weight"] == (0.5, 0.05)
    assert by_param["head.weight"] == (1.0, 0.05)
    assert by_param["head.bias"] == (1.0, 0.0)
    assert by_param["fc_norm.weight"] == (1.0, 0.0)
    n_params = sum(1 for p in vit.parameters() if p.requires_grad)
    assert sum(len(g["params"]) for g in groups) == n_params == len(by_param)
    # group names are unique per (layer, decay)
    assert len({g["name"] for g in groups}) == len(groups)


def test_official_pooling_drops_the_final_norm(tiny):
    vit = to_timm_vit(tiny, num_classes=4, global_pool="avg", fc_norm=True)
    assert isinstance(vit.norm, torch.nn.Identity) and isinstance(vit.fc_norm, torch.nn.LayerNorm)
    torch.testing.assert_close(vit.blocks[0].attn.qkv.weight, tiny.blocks[0].attn.qkv.weight)
    x = torch.randn(2, 3, 16, 16)
    assert vit(x).shape == (2, 4)


@pytest.mark.parametrize("global_pool", ["avg", "token"])
def test_adamw_uses_lr_scale(tiny, global_pool):
    vit = to_timm_vit(tiny, num_classes=4, global_pool=global_pool, fc_norm=global_pool == "avg")
    opt = torch.optim.AdamW(param_groups_lrd(vit, 0.05, 0.75), lr=1.0)
    for g in opt.param_groups:
        g["lr"] = 2.0 * g["lr_scale"]
    assert {round(g["lr"], 6) for g in opt.param_groups} == {
        round(2.0 * 0.75**k, 6) for k in range(4)
    }


def test_resume_is_exact(digits_ckpt, tmp_path):
    """2 epochs straight == 1 epoch, stop, resume for the 2nd (mixup, drop path, augmentation)."""
    stored = load_checkpoint(digits_ckpt)["config"]

    def cfg(run_dir, epochs):
        over = [f"run_dir={run_dir}", f"finetune.epochs={epochs}", "finetune.batch_size=64",
                "data.num_train=128", "data.num_test=32", "finetune.warmup_epochs=0",
                "finetune.mixup=0.8", "finetune.cutmix=1.0"]  # fmt: skip
        return finetune_run_config(stored, overrides=over)

    straight = finetune(digits_ckpt, cfg(tmp_path / "a", 2), quiet=True)
    # the schedule depends on the epoch count: interrupt a 2-epoch run after its 1st epoch
    _train_one_epoch_of(digits_ckpt, cfg(tmp_path / "b", 2))
    resumed = finetune(digits_ckpt, cfg(tmp_path / "b", 2), resume=True, quiet=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")["model"]
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["model"]
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    assert straight.top1 == resumed.top1
    assert [h["epoch"] for h in resumed.history] == [0, 1]


def _train_one_epoch_of(ckpt, run_cfg: FinetuneRunConfig) -> None:
    """Run `run_cfg` but interrupt it after its first epoch's checkpoint."""
    import maelab.evaluation.finetune as ft

    class Stop(Exception):
        pass

    real_save = ft.atomic_save

    def save_then_stop(obj, path):
        real_save(obj, path)
        raise Stop

    ft.atomic_save = save_then_stop
    try:
        finetune(ckpt, run_cfg, quiet=True)
    except Stop:
        pass
    finally:
        ft.atomic_save = real_save
