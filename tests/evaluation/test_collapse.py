"""Collapse analysis of encoders: its numbers equal maelab.metrics on the same views."""

import json

import pytest
import torch

from maelab.cli import main
from maelab.config import MaskConfig, SyntheticConfig, load_config
from maelab.data import build_splits
from maelab.data.synthetic import generate_synthetic
from maelab.engine.pretrain import pretrain
from maelab.evaluation.collapse import encoder_views, model_collapse
from maelab.metrics import alignment, effective_rank, rankme, uniformity
from maelab.models.checkpoints import load_pretrained
from maelab.models.mae import MaskedAutoencoder
from maelab.models.pooling import pool_tokens
from maelab.probes.inputs import normalised


def test_model_views_are_the_encoder_features():
    torch.manual_seed(0)
    model = MaskedAutoencoder(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
                              decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)  # fmt: skip
    images = generate_synthetic(40, SyntheticConfig(), seed=1)
    mask = MaskConfig(ratio=0.5)
    full, v1, v2 = encoder_views(model, images, mask, num_images=30)
    assert full.shape == v1.shape == v2.shape == (30, 32)
    with torch.no_grad():
        ref = pool_tokens(model.encode(normalised(images)[:30]), "mean")  # the default pool
    torch.testing.assert_close(full, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(v1, v2)  # independent masks
    s = model_collapse(model, images, mask, num_images=30)
    assert s.alignment == pytest.approx(alignment(v1, v2), rel=1e-5)


@pytest.fixture(scope="module")
def two_ckpts(tmp_path_factory):
    paths = []
    for name in ("mae", "umae"):
        run = tmp_path_factory.mktemp(name)
        cfg = load_config(
            [],
            [f"run_dir={run}", "data.num_train=64", "data.num_test=48", "data.num_workers=0",
             "model.preset=micro", "model.embed_dim=32", "model.depth=1", "model.num_heads=2",
             "model.decoder_embed_dim=32", "model.decoder_num_heads=2", "train.epochs=1",
             "train.batch_size=32", "train.threads=1", f"objective.name={name}"],
        )  # fmt: skip
        pretrain(cfg, quiet=True)
        paths.append(run / "checkpoints" / "last.pt")
    return paths


def test_analyze_collapse_cli_matches_metrics_on_the_same_views(two_ckpts, tmp_path, capsys):
    out = tmp_path / "an"
    args = [
        "analyze",
        "collapse",
        "--out",
        str(out),
        "--images",
        "40",
        "--label",
        "MAE",
        "--label",
        "U-MAE",
    ]
    for p in two_ckpts:
        args += ["--ckpt", str(p)]
    assert main(args) == 0
    records = json.loads((out / "collapse.json").read_text())
    assert [r["label"] for r in records] == ["MAE", "U-MAE"]
    assert (out / "collapse.png").stat().st_size > 1000
    model, cfg = load_pretrained(two_ckpts[0])
    full, v1, v2 = encoder_views(model, build_splits(cfg.data).test, cfg.mask, num_images=40)
    r = records[0]
    assert r["num_images"] == 40 and r["dim"] == 32
    assert r["effective_rank"] == pytest.approx(effective_rank(full), rel=1e-6)
    assert r["rankme"] == pytest.approx(rankme(full), rel=1e-6)
    assert r["alignment"] == pytest.approx(alignment(v1, v2), rel=1e-6)
    assert r["uniformity"] == pytest.approx(uniformity(v1), rel=1e-6)
    assert "MAE" in capsys.readouterr().out


def test_analyze_probes_cli_writes_json_and_png(two_ckpts, tmp_path):
    out = tmp_path / "probes"
    assert main(["analyze", "probes", "--ckpt", str(two_ckpts[0]), "--out", str(out),
                 "--probe", "stability", "--probe", "position"]) == 0  # fmt: skip
    for name in ("stability", "position"):
        assert (out / f"{name}.json").is_file() and (out / f"{name}.png").is_file()
    assert main(["analyze", "probes", "--ckpt", str(two_ckpts[0]), "--probe", "nope"]) == 2
