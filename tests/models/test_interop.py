"""Checkpoint interop: official MAE layout, timm ViT, Hugging Face ViTMAE names."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pytest
import torch
from timm.models.vision_transformer import VisionTransformer

from maelab.errors import CheckpointError
from maelab.models import MaskedAutoencoder
from maelab.models.checkpoints import read_state_dict
from maelab.models.interop import (
    LoadReport,
    encoder_state_dict,
    hf_vitmae_state_dict,
    load_hf_vitmae_weights,
    load_official_state_dict,
    load_timm_vit_weights,
    to_hf_vitmae,
    to_timm_vit,
)

SMALL = dict(
    img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4,
    decoder_embed_dim=32, decoder_depth=2, decoder_num_heads=4,
)  # fmt: skip
DECODER_PREFIXES = ("mask_token", "decoder_")


def perturbed(seed: int = 0, **overrides: object) -> MaskedAutoencoder:
    """Non-trivial values everywhere so that a tensor loaded into the wrong place shows."""
    torch.manual_seed(seed)
    model = MaskedAutoencoder(**{**SMALL, **overrides}).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def fresh(**overrides: object) -> MaskedAutoencoder:
    torch.manual_seed(123)
    return MaskedAutoencoder(**{**SMALL, **overrides}).eval()


def assert_same_weights(
    a: torch.nn.Module, b: torch.nn.Module, keys: list[str] | None = None
) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    for k in keys if keys is not None else sa:
        assert torch.equal(sa[k], sb[k]), k


# ---------------------------------------------------------------- official layout
@pytest.mark.parametrize("wrapped", [True, False], ids=["model_key", "bare"])
def test_official_checkpoint_file_round_trips(tmp_path: Path, wrapped: bool) -> None:
    src = perturbed()
    path = tmp_path / "checkpoint.pth"
    sd = src.state_dict()
    torch.save({"model": sd} if wrapped else sd, path)
    dst = fresh()
    report = load_official_state_dict(dst, path)
    assert report.ok and len(report.matched) == len(sd)
    assert report.summary() == f"loaded {len(sd)}/{len(sd)} tensors"
    assert_same_weights(src, dst)
    imgs, noise = torch.randn(2, 3, 32, 32), torch.rand(2, 64)
    with torch.no_grad():
        for u, v in zip(src(imgs, 0.75, noise), dst(imgs, 0.75, noise), strict=True):
            assert torch.equal(u, v)


def test_official_training_checkpoint_with_args_and_optimizer(tmp_path: Path) -> None:
    """main_pretrain.py saves model, optimizer, epoch, scaler and its argparse namespace."""
    src = perturbed()
    opt = torch.optim.AdamW(src.parameters())
    path = tmp_path / "checkpoint-799.pth"
    args = argparse.Namespace(model="mae_vit_base_patch16", mask_ratio=0.75, norm_pix_loss=True)
    torch.save(
        {
            "model": src.state_dict(),
            "optimizer": opt.state_dict(),
            "epoch": 799,
            "scaler": {},
            "args": args,
        },
        path,
    )
    dst = fresh()
    assert load_official_state_dict(dst, path, strict=True).ok
    assert_same_weights(src, dst)


def test_encoder_only_checkpoint_reports_decoder_missing(tmp_path: Path) -> None:
    """The layout of `mae_pretrain_vit_base.pth`: encoder tensors only."""
    src = perturbed()
    path = tmp_path / "mae_pretrain_vit_small.pth"
    torch.save({"model": encoder_state_dict(src)}, path)
    dst = fresh()
    decoder_before = {
        k: v.clone() for k, v in dst.state_dict().items() if k.startswith(DECODER_PREFIXES)
    }
    report = load_official_state_dict(dst, path)
    assert not report.ok and report.encoder_only
    assert set(report.missing) == set(decoder_before)
    assert not report.unexpected and not report.shape_mismatched
    assert "encoder-only" in report.summary()
    assert_same_weights(src, dst, list(encoder_state_dict(src)))
    for k, v in decoder_before.items():
        assert torch.equal(dst.state_dict()[k], v), k
    with pytest.raises(CheckpointError, match="missing"):
        load_official_state_dict(fresh(), path, strict=True)


def test_ddp_prefix_is_stripped() -> None:
    src = perturbed()
    sd = {f"module.{k}": v for k, v in src.state_dict().items()}
    dst = fresh()
    assert load_official_state_dict(dst, sd).ok
    assert_same_weights(src, dst)


def test_other_model_size_reports_shape_mismatches() -> None:
    big = perturbed(embed_dim=128, depth=3, num_heads=4)
    dst = fresh()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    report = load_official_state_dict(dst, big.state_dict())
    mismatched = {k for k, _, _ in report.shape_mismatched}
    assert "pos_embed" in mismatched and "blocks.0.attn.qkv.weight" in mismatched
    assert ("blocks.0.attn.qkv.weight", (384, 128), (192, 64)) in report.shape_mismatched
    assert all(k.startswith("blocks.2.") for k in report.unexpected) and report.unexpected
    summary = report.summary()
    assert "shape mismatch" in summary and "(1, 65, 128)" in summary and "\n" not in summary
    # mismatched tensors are left alone, matching ones (decoder widths agree) are loaded
    for k in mismatched:
        assert torch.equal(dst.state_dict()[k], before[k]), k
    assert report.matched and all(
        torch.equal(dst.state_dict()[k], big.state_dict()[k]) for k in report.matched
    )
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_official_state_dict(fresh(), big.state_dict(), strict=True)


def test_other_image_size_mismatches_only_the_tables() -> None:
    report = load_official_state_dict(fresh(), perturbed(img_size=64).state_dict())
    assert [k for k, _, _ in report.shape_mismatched] == ["pos_embed", "decoder_pos_embed"]
    assert not report.missing and not report.unexpected


def test_strict_failure_leaves_model_untouched() -> None:
    dst = fresh()
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    with pytest.raises(CheckpointError):
        load_official_state_dict(dst, perturbed(img_size=64).state_dict(), strict=True)
    after = dst.state_dict()
    for k, v in before.items():
        assert torch.equal(after[k], v), k


def test_truncated_file_raises_one_line(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pth"
    torch.save({"model": perturbed().state_dict()}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError) as info:
        load_official_state_dict(fresh(), path)
    assert "cannot be read" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"not a checkpoint at all\n", "cannot be read"),
        (b"", "empty file"),
    ],
)
def test_foreign_files_raise(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "weights.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        load_official_state_dict(fresh(), path)


def test_pickled_code_is_refused(tmp_path: Path) -> None:
    """weights_only=True: a file that would run arbitrary code on load is not read."""
    path = tmp_path / "evil.pth"
    torch.save({"model": perturbed().state_dict(), "hook": Path("/tmp")}, path)
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_official_state_dict(fresh(), path)


def test_missing_file_and_non_state_dicts(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        load_official_state_dict(fresh(), tmp_path / "nope.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="not a dict of states"):
        load_official_state_dict(fresh(), tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="no tensors"):
        load_official_state_dict(fresh(), {"epoch": 3, "lr": 0.1})
    unrelated = {"conv1.weight": torch.zeros(8, 3, 7, 7), "fc.bias": torch.zeros(10)}
    with pytest.raises(CheckpointError, match="no tensor name .* matches"):
        load_official_state_dict(fresh(), unrelated)


def test_read_state_dict_unwraps(tmp_path: Path) -> None:
    sd = {"a": torch.ones(2)}
    assert read_state_dict({"model": sd, "epoch": 3}).keys() == {"a"}
    assert read_state_dict({"state_dict": sd}).keys() == {"a"}
    torch.save(sd, tmp_path / "x.pt")
    assert torch.equal(read_state_dict(str(tmp_path / "x.pt"))["a"], torch.ones(2))


def test_report_summary_truncates_long_lists() -> None:
    report = LoadReport(matched=["a"], missing=[f"blocks.{i}.x" for i in range(10)])
    assert (
        report.summary()
        == "loaded 1/11 tensors; missing 10: blocks.0.x, blocks.1.x, blocks.2.x, ..."
    )
    assert str(report) == report.summary()


# ---------------------------------------------------------------- timm
def test_encoder_state_dict_has_exactly_timm_keys() -> None:
    model = perturbed()
    vit = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=64, depth=2, num_heads=4, num_classes=0, qkv_bias=True
    )
    assert set(encoder_state_dict(model)) == set(vit.state_dict())
    vit.load_state_dict(encoder_state_dict(model), strict=True)


@pytest.mark.parametrize("in_chans", [1, 3])
def test_to_timm_vit_features_equal_encode(in_chans: int) -> None:
    model = perturbed(in_chans=in_chans)
    vit = to_timm_vit(model).eval()
    assert vit.pos_embed.requires_grad
    assert all(m.eps == 1e-6 for m in vit.modules() if isinstance(m, torch.nn.LayerNorm))
    vit.load_state_dict(encoder_state_dict(model), strict=True)
    imgs = torch.randn(2, in_chans, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(
            vit.forward_features(imgs), model.encode(imgs), atol=1e-5, rtol=0
        )
        assert vit(imgs).shape == (2, 64)  # num_classes=0: the cls feature
        torch.testing.assert_close(vit(imgs), model.encode(imgs)[:, 0], atol=1e-5, rtol=0)


def test_to_timm_vit_classifier_keeps_encoder_and_adds_fresh_head() -> None:
    model = perturbed()
    vit = to_timm_vit(model, num_classes=10, global_pool="avg", drop_path_rate=0.1).eval()
    imgs = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert vit(imgs).shape == (2, 10)
        torch.testing.assert_close(
            vit.forward_features(imgs), model.encode(imgs), atol=1e-5, rtol=0
        )
    # the official fine-tuning layout: pooled features normalised by a new fc_norm
    official = to_timm_vit(model, num_classes=10, global_pool="avg", fc_norm=True)
    assert isinstance(official.norm, torch.nn.Identity) and hasattr(official.fc_norm, "weight")


def test_to_timm_vit_refuses_options_that_change_parameters() -> None:
    with pytest.raises(ValueError, match="reg_token"):
        to_timm_vit(perturbed(), reg_tokens=4)


def test_load_timm_vit_weights_round_trip(tmp_path: Path) -> None:
    src = perturbed()
    vit = to_timm_vit(src, num_classes=10)
    dst = fresh()
    decoder_before = {
        k: v.clone() for k, v in dst.state_dict().items() if k.startswith(DECODER_PREFIXES)
    }
    report = load_timm_vit_weights(dst, vit)
    assert sorted(report.unexpected) == ["head.bias", "head.weight"]
    assert not report.missing and not report.shape_mismatched
    assert set(report.matched) == set(encoder_state_dict(src))
    assert_same_weights(src, dst, report.matched)
    for k, v in decoder_before.items():  # decoder untouched
        assert torch.equal(dst.state_dict()[k], v)
    # from a file, and a headless ViT is a clean load
    torch.save(to_timm_vit(src).state_dict(), tmp_path / "vit.pth")
    assert load_timm_vit_weights(fresh(), tmp_path / "vit.pth", strict=True).ok


def test_load_timm_vit_weights_other_size() -> None:
    vit = VisionTransformer(
        img_size=32, patch_size=4, embed_dim=96, depth=2, num_heads=4, num_classes=0
    )
    with pytest.raises(CheckpointError, match="nothing loaded .* shape mismatch"):
        load_timm_vit_weights(fresh(), vit)


# ---------------------------------------------------------------- Hugging Face names
def test_hf_state_dict_round_trip_both_namings() -> None:
    pytest.importorskip("transformers")
    src = perturbed()
    for legacy in (False, True):
        sd = hf_vitmae_state_dict(src, legacy=legacy)
        assert any(".encoder.layer." in k for k in sd) is legacy
        dst = fresh()
        report = load_hf_vitmae_weights(dst, sd, strict=True)
        assert report.ok
        assert_same_weights(src, dst)
    dst = fresh()
    assert load_hf_vitmae_weights(dst, to_hf_vitmae(src)).ok
    assert_same_weights(src, dst)


def test_hf_qkv_split_is_q_then_k_then_v() -> None:
    src = perturbed()
    sd = hf_vitmae_state_dict(src)
    qkv = src.blocks[1].attn.qkv.weight
    assert torch.equal(sd["vit.layers.1.attention.q_proj.weight"], qkv[:64])
    assert torch.equal(sd["vit.layers.1.attention.k_proj.weight"], qkv[64:128])
    assert torch.equal(sd["vit.layers.1.attention.v_proj.weight"], qkv[128:])
    assert len(sd) == len(src.state_dict()) + 2 * (2 + 2) * 2  # each qkv pair becomes 3 pairs


def test_hf_bridge_without_transformers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)  # import now raises ImportError
    with pytest.raises(ImportError, match="pip install"):
        to_hf_vitmae(perturbed())
