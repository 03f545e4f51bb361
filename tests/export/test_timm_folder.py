"""`maelab export --to timm` round trips: the folder loads with `timm.create_model` (by name with
a `pretrained_cfg_overlay`, and as `local-dir:`), computes maelab's features and fine-tunes with
timm's own classifier head."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch

from maelab.export import export_checkpoint, read_source
from maelab.export.folder import CONFIG_FILE, WEIGHTS_FILE, Written
from maelab.models.checkpoints import load_checkpoint, load_pretrained
from maelab.models.interop import to_timm_vit

pytest.importorskip("safetensors")

TOL = 1e-5


def load_by_name(written: Written) -> torch.nn.Module:
    """Run the printed (and carded) line: the architecture's name, the file as a
    `pretrained_cfg_overlay`, the shapes as keyword arguments."""
    space: dict = {}
    exec("\n".join(written.code[:2]), space)  # "import timm", "model = timm.create_model(...)"
    assert written.code[1].startswith('model = timm.create_model("vit_')
    return space["model"].eval()


@pytest.mark.parametrize("name", ["run_ckpt", "grey_ckpt", "official_encoder"])
def test_features_match_maelab(name: str, request, tmp_path: Path) -> None:
    ckpt = request.getfixturevalue(name)
    done = export_checkpoint(ckpt, "timm", tmp_path / "timm")
    assert done.files == ["README.md", CONFIG_FILE, WEIGHTS_FILE]
    model, _ = load_pretrained(ckpt)
    a = model.arch
    imgs = torch.randn(
        3, a.in_chans, a.img_size, a.img_size, generator=torch.Generator().manual_seed(0)
    )
    by_name = load_by_name(done.written)
    local = timm.create_model(f"local-dir:{done.out}", pretrained=True, num_classes=0).eval()
    with torch.no_grad():
        ours = model.encode(imgs)
        errs = [(ours - v.forward_features(imgs)).abs().max().item() for v in (by_name, local)]
        pooled = (ours[:, 0] - local(imgs)).abs().max().item()  # cls token after the norm
    print(f"\n[export timm] {name}: max abs diff features {max(errs):.2g}, pooled {pooled:.2g}")
    assert max(errs) <= TOL and pooled <= TOL
    data = timm.data.resolve_data_config({}, model=local)
    pre = read_source(ckpt).preprocess
    assert data["input_size"] == (a.in_chans, a.img_size, a.img_size)
    assert data["mean"] == pytest.approx(pre.mean) and data["std"] == pytest.approx(pre.std)


def test_export_finetunes_with_timms_head(run_ckpt, tmp_path: Path) -> None:
    """A fresh timm classifier on the exported encoder: one SGD step lowers the loss of its
    batch and reaches every encoder layer."""
    done = export_checkpoint(run_ckpt, "timm", tmp_path / "timm")
    vit = timm.create_model(f"local-dir:{done.out}", pretrained=True, num_classes=5).train()
    assert vit.head.out_features == 5
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 16, 16, generator=g), torch.randint(0, 5, (8,), generator=g)
    before = {k: v.clone() for k, v in vit.state_dict().items()}
    opt = torch.optim.SGD(vit.parameters(), lr=0.5)
    loss = torch.nn.functional.cross_entropy(vit(x), y)
    loss.backward()
    opt.step()
    with torch.no_grad():
        after = torch.nn.functional.cross_entropy(vit(x), y)
    assert after < loss
    moved = [k for k, v in vit.state_dict().items() if not torch.equal(v, before[k])]
    assert (
        "head.weight" in moved
        and "patch_embed.proj.weight" in moved
        and "blocks.0.attn.qkv.weight" in moved
    )


def test_finetuned_run_keeps_its_classifier(finetuned_avg, tmp_path: Path) -> None:
    """An avg-pooled fine-tuned run: timm's logits are those of the run's own classifier."""
    done = export_checkpoint(finetuned_avg, "timm", tmp_path / "timm")
    state = load_checkpoint(finetuned_avg)
    n = state["num_classes"]
    source = read_source(finetuned_avg)
    vit = to_timm_vit(source.model, n, "avg", fc_norm=True).eval()
    vit.load_state_dict(state["model"])
    exported = load_by_name(done.written)
    backbone = timm.create_model(f"local-dir:{done.out}", pretrained=True, num_classes=0).eval()
    imgs = torch.randn(4, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        err = (vit(imgs) - exported(imgs)).abs().max().item()
        pooled = vit.forward_head(vit.forward_features(imgs), pre_logits=True) - backbone(imgs)
    assert err <= TOL and pooled.abs().max().item() <= TOL
    assert (
        f"| classifier | {n} classes, avg pooling, 1 epoch |"
        in (done.out / "README.md").read_text()
    )
