"""`maelab export --to hf` round trips: the folder loads with transformers' own `from_pretrained`
and computes what maelab computes on the same images and the same noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from timm.models.vision_transformer import VisionTransformer

from maelab.data import build_splits
from maelab.errors import CheckpointError
from maelab.export import export_checkpoint, read_source
from maelab.export.folder import CONFIG_FILE, PREPROCESSOR_FILE
from maelab.models.checkpoints import load_checkpoint, load_pretrained

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

TOL = 1e-5


def images_and_noise(model, n: int = 3, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = model.arch
    imgs = torch.randn(n, a.in_chans, a.img_size, a.img_size, generator=g)
    return imgs, torch.rand(n, a.num_patches, generator=g)


def raster(n: int, num_patches: int) -> torch.Tensor:
    """Noise whose argsort is the identity: HF keeps every patch in raster order at ratio 0."""
    return torch.arange(num_patches, dtype=torch.float32).expand(n, num_patches)


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a - b).abs().max().item()


@pytest.mark.parametrize("name", ["run_ckpt", "grey_ckpt", "official_full"])
def test_pretraining_folder_matches_maelab(name: str, request, tmp_path: Path) -> None:
    ckpt = request.getfixturevalue(name)
    done = export_checkpoint(ckpt, "hf", tmp_path / "hf")
    assert done.files == ["README.md", CONFIG_FILE, "model.safetensors", PREPROCESSOR_FILE]
    model, cfg = load_pretrained(ckpt)
    hf = transformers.ViTMAEForPreTraining.from_pretrained(done.out).eval()
    encoder = transformers.ViTMAEModel.from_pretrained(done.out, mask_ratio=0.0).eval()
    imgs, noise = images_and_noise(model)
    ratio = cfg.mask.ratio if name != "official_full" else 0.75
    assert hf.config.mask_ratio == ratio
    with torch.no_grad():
        loss, pred, mask = model(imgs, mask_ratio=ratio, noise=noise)
        out = hf(pixel_values=imgs, noise=noise)
        features = model.encode(imgs)
        hf_features = encoder(
            pixel_values=imgs, noise=raster(len(imgs), model.arch.num_patches)
        ).last_hidden_state
    errs = (abs(loss.item() - out.loss.item()), max_err(pred, out.logits),
            max_err(features, hf_features))  # fmt: skip
    print(f"\n[export hf] {name}: max abs diff loss {errs[0]:.2g}, predictions {errs[1]:.2g}, "
          f"features {errs[2]:.2g}")  # fmt: skip
    assert torch.equal(mask, out.mask)
    assert max(errs) <= TOL
    # the sin-cos tables are in the file, not HF's zero init
    table = hf.vit.embeddings.position_embeddings
    assert torch.equal(table, model.pos_embed) and table.abs().sum() > 0
    assert torch.equal(hf.decoder.decoder_pos_embed, model.decoder_pos_embed)


def test_encoder_only_official_file_gives_a_vitmae_model(official_encoder, tmp_path: Path) -> None:
    done = export_checkpoint(official_encoder, "hf", tmp_path / "hf")
    assert done.written.notes == [
        "encoder only: the checkpoint holds no decoder; it loads with ViTMAEModel"
    ]
    config = json.loads((done.out / CONFIG_FILE).read_text())
    assert config["architectures"] == ["ViTMAEModel"] and config["mask_ratio"] == 0.0
    model, _ = load_pretrained(official_encoder)
    encoder = transformers.ViTMAEModel.from_pretrained(done.out).eval()
    imgs, _ = images_and_noise(model)
    with torch.no_grad():
        hf = encoder(pixel_values=imgs, noise=raster(3, model.arch.num_patches))
        err = max_err(model.encode(imgs), hf.last_hidden_state)
    print(f"\n[export hf] official encoder only: max abs diff features {err:.2g}")
    assert err <= TOL
    assert "Encoder only: the checkpoint holds no decoder" in (done.out / "README.md").read_text()


def test_preprocessor_carries_the_runs_statistics(grey_ckpt, tmp_path: Path) -> None:
    """A grey run: one channel, the digits' own mean and std; a grey image comes out as the
    model takes it."""
    done = export_checkpoint(grey_ckpt, "hf", tmp_path / "hf")
    _, cfg = load_pretrained(grey_ckpt)
    train = build_splits(cfg.data).train
    processor = transformers.AutoImageProcessor.from_pretrained(done.out)
    assert processor.image_mean == pytest.approx(list(train.mean))
    assert processor.image_std == pytest.approx(list(train.std))
    assert processor.size == {"height": 16, "width": 16}
    pixels = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    x = processor(images=Image.fromarray(pixels, "L"), return_tensors="pt")["pixel_values"]
    assert x.shape == (1, 1, 16, 16)


def test_finetuned_run_exports_its_encoder(finetuned_token, tmp_path: Path) -> None:
    """A token-pooled fine-tuned run keeps the final norm: ViTMAEModel's features are timm's."""
    done = export_checkpoint(finetuned_token, "hf", tmp_path / "hf")
    assert "fine-tuned run has no decoder" in done.written.notes[0]
    state = load_checkpoint(finetuned_token)
    arch = read_source(finetuned_token).model.arch
    vit = VisionTransformer(
        img_size=arch.img_size, patch_size=arch.patch_size, in_chans=arch.in_chans,
        num_classes=state["num_classes"], embed_dim=arch.embed_dim, depth=arch.depth,
        num_heads=arch.num_heads, global_pool="token",
    ).eval()  # fmt: skip
    vit.load_state_dict(state["model"])
    encoder = transformers.ViTMAEModel.from_pretrained(done.out).eval()
    imgs = torch.randn(2, 1, 16, 16)
    with torch.no_grad():
        err = max_err(
            vit.forward_features(imgs),
            encoder(pixel_values=imgs, noise=raster(2, arch.num_patches)).last_hidden_state,
        )
    assert err <= TOL


def test_avg_pooled_finetuned_run_is_refused(finetuned_avg, tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="global_pool=avg.*--to timm"):
        export_checkpoint(finetuned_avg, "hf", tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
