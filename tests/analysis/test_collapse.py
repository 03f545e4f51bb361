"""Collapse analysis: its numbers equal maelab.metrics on the same features."""

import math

import pytest
import torch

from maelab.analysis.collapse import collapse_stats, encoder_views, model_collapse, pool
from maelab.config import SyntheticConfig
from maelab.data.synthetic import generate_synthetic
from maelab.metrics import alignment, covariance_spectrum, effective_rank, rankme, uniformity
from maelab.models.mae import MaskedAutoencoder


def test_collapse_stats_match_the_metrics():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(200, 16, generator=g) @ torch.diag(torch.linspace(0.1, 3, 16))
    v1, v2 = (
        z + 0.1 * torch.randn(200, 16, generator=g),
        z + 0.1 * torch.randn(200, 16, generator=g),
    )
    s = collapse_stats(z, v1, v2, label="x")
    assert s.dim == 16 and s.num_images == 200
    assert s.effective_rank == pytest.approx(effective_rank(z))
    assert s.rankme == pytest.approx(rankme(z))
    assert s.alignment == pytest.approx(alignment(v1, v2))
    assert s.uniformity == pytest.approx(uniformity(v1))
    assert s.spectrum == pytest.approx(covariance_spectrum(z).tolist())
    assert s.rank_fraction == pytest.approx(s.effective_rank / 16)
    without = collapse_stats(z)
    assert math.isnan(without.alignment) and without.uniformity == pytest.approx(uniformity(z))
    assert type(s).from_dict(s.to_dict()) == s


def test_rank_one_features_collapse_to_rank_one():
    g = torch.Generator().manual_seed(1)
    s = collapse_stats(torch.randn(100, 1, generator=g) @ torch.randn(1, 8, generator=g))
    assert s.effective_rank == pytest.approx(1.0, abs=1e-6)
    assert sum(v > 1e-9 * s.spectrum[0] for v in s.spectrum) == 1


def test_model_views_are_the_encoder_features():
    torch.manual_seed(0)
    model = MaskedAutoencoder(img_size=16, patch_size=4, embed_dim=32, depth=1, num_heads=2,
                              decoder_embed_dim=32, decoder_depth=1, decoder_num_heads=2)  # fmt: skip
    images = generate_synthetic(40, SyntheticConfig(), seed=1)
    full, v1, v2 = encoder_views(model, images, num_images=30, mask_ratio=0.5)
    assert full.shape == v1.shape == v2.shape == (30, 32)
    from maelab.probes.inputs import normalised

    with torch.no_grad():
        ref = pool(model.encode(normalised(images)[:30]), "cls")
    torch.testing.assert_close(full, ref, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(v1, v2)  # independent masks
    s = model_collapse(model, images, num_images=30, mask_ratio=0.5)
    assert s.alignment == pytest.approx(alignment(v1, v2), rel=1e-5)


@pytest.fixture(scope="module")
def two_ckpts(tmp_path_factory):
    from maelab.config import load_config
    from maelab.engine.pretrain import pretrain

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
    import json

    from maelab.cli import main
    from maelab.data import build_splits
    from maelab.evaluation.checkpoints import load_pretrained

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
    full, v1, v2 = encoder_views(model, build_splits(cfg.data).test, num_images=40,
                                 mask_ratio=cfg.mask.ratio, strategy=cfg.mask.strategy)  # fmt: skip
    r = records[0]
    assert r["num_images"] == 40 and r["dim"] == 32
    assert r["effective_rank"] == pytest.approx(effective_rank(full), rel=1e-6)
    assert r["rankme"] == pytest.approx(rankme(full), rel=1e-6)
    assert r["alignment"] == pytest.approx(alignment(v1, v2), rel=1e-6)
    assert r["uniformity"] == pytest.approx(uniformity(v1), rel=1e-6)
    assert "MAE" in capsys.readouterr().out


def test_analyze_probes_cli_writes_json_and_png(two_ckpts, tmp_path):
    from maelab.cli import main

    out = tmp_path / "probes"
    assert main(["analyze", "probes", "--ckpt", str(two_ckpts[0]), "--out", str(out),
                 "--probe", "stability", "--probe", "position"]) == 0  # fmt: skip
    for name in ("stability", "position"):
        assert (out / f"{name}.json").is_file() and (out / f"{name}.png").is_file()
    assert main(["analyze", "probes", "--ckpt", str(two_ckpts[0]), "--probe", "nope"]) == 2
