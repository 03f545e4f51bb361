"""The ViT MAE with a k-wide code (model.code_dim): the decoder reads the visible pixels only
through the code; the code reaches evaluation through `encoder_tokens`; runs train and load back."""

from __future__ import annotations

import pytest
import torch

from maelab.cli import main
from maelab.config import load_config
from maelab.engine.pretrain import pretrain
from maelab.errors import ConfigError
from maelab.evaluation.features import encoder_code
from maelab.masking import mask_from_noise
from maelab.models import MAEArch, MaskedAutoencoder
from maelab.models.checkpoints import load_pretrained
from maelab.models.interop import to_hf_vitmae
from maelab.models.presets import arch_from_config

TINY = dict(
    img_size=16, patch_size=4, embed_dim=32, depth=2, num_heads=2,
    decoder_embed_dim=16, decoder_depth=1, decoder_num_heads=2,
)  # fmt: skip
K = 5


def coded(seed: int = 0, k: int | None = K, **overrides: object) -> MaskedAutoencoder:
    return MaskedAutoencoder(MAEArch(**{**TINY, "code_dim": k, **overrides}), init_seed=seed)


def test_shapes() -> None:
    model = coded().eval()
    imgs = torch.randn(3, 3, 16, 16)
    mask = mask_from_noise(torch.rand(3, 16), 0.75)
    loss, pred, removed = model(imgs, mask=mask)
    assert loss.ndim == 0 and pred.shape == (3, 16, 48) and removed.shape == (3, 16)
    assert model.code(imgs, mask=mask).shape == (3, K)
    assert model.code(imgs).shape == (3, K)
    assert model.decoder_embed.in_features == K and model.code_head.out_features == K


def test_the_code_is_the_projected_mean_visible_token() -> None:
    model = coded().eval()
    imgs = torch.randn(2, 3, 16, 16)
    mask = mask_from_noise(torch.rand(2, 16), 0.5)
    latent, _, _ = model.forward_encoder(imgs, mask.ratio, mask=mask)  # (2, 1 + 8, D)
    by_hand = latent[:, 1:].mean(dim=1) @ model.code_head.weight.T + model.code_head.bias
    torch.testing.assert_close(model.code(imgs, mask=mask), by_hand)
    with torch.no_grad():
        assert torch.equal(encoder_code(model, imgs, mask), model.code(imgs, mask=mask))
        assert torch.equal(encoder_code(model, imgs), model.code(imgs))


def test_tokens_with_the_same_code_give_the_same_prediction() -> None:
    """Two latents that differ in every token, the cls token and the mask order, but whose
    visible tokens have the same mean (hence the same code), decode identically."""
    model = coded().double().eval()
    n, k, d = 2, 4, 32
    a = torch.randn(n, 1 + k, d, dtype=torch.float64)
    shift = torch.randn(n, k, d, dtype=torch.float64)
    b = torch.cat([torch.randn(n, 1, d, dtype=torch.float64),
                   a[:, 1:] + shift - shift.mean(dim=1, keepdim=True)], dim=1)  # fmt: skip
    ids_a = torch.stack([torch.randperm(16) for _ in range(n)])
    ids_b = torch.stack([torch.randperm(16) for _ in range(n)])
    assert not torch.allclose(a, b)
    with torch.no_grad():
        torch.testing.assert_close(model.code_from_tokens(a), model.code_from_tokens(b))
        torch.testing.assert_close(model.forward_decoder(a, ids_a), model.forward_decoder(b, ids_b))


def test_a_removed_patch_changes_nothing_a_visible_one_changes_the_prediction() -> None:
    model = coded().eval()
    imgs = torch.randn(1, 3, 16, 16)
    mask = mask_from_noise(torch.rand(1, 16), 0.75)
    removed = int(mask.ids_removed[0, 0])
    visible = int(mask.ids_keep[0, 0])

    def with_patch_noise(patch: int) -> torch.Tensor:
        out = imgs.clone()
        r, c = divmod(patch, 4)
        out[:, :, 4 * r : 4 * r + 4, 4 * c : 4 * c + 4] += 3.0
        return out

    with torch.no_grad():
        pred = model(imgs, mask=mask)[1]
        assert torch.equal(model(with_patch_noise(removed), mask=mask)[1], pred)
        assert not torch.allclose(model(with_patch_noise(visible), mask=mask)[1], pred)


def test_a_seed_gives_the_same_encoder_with_or_without_a_code() -> None:
    plain, with_code = coded(seed=3, k=None).state_dict(), coded(seed=3).state_dict()
    assert set(with_code) - set(plain) == {"code_head.weight", "code_head.bias"}
    differ = {k for k in plain if not torch.equal(plain[k], with_code[k])}
    assert differ and all(k.startswith("decoder_") for k in differ)  # its first layer is k wide
    assert torch.equal(coded(seed=3).code_head.weight, with_code["code_head.weight"])


def test_a_training_step_reaches_the_code_head_and_the_encoder() -> None:
    model = coded().train()
    loss, _, _ = model(torch.randn(4, 3, 16, 16), mask_ratio=0.75)
    loss.backward()
    for name in ("code_head.weight", "decoder_embed.weight", "blocks.0.attn.qkv.weight"):
        grad = dict(model.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_code_dim_wider_than_the_encoder_is_refused() -> None:
    with pytest.raises(ValueError, match=r"code_dim=33 must be in \[1, embed_dim=32\]"):
        MAEArch(**TINY, code_dim=33).validate()


def test_config_reaches_the_arch_and_umae_is_refused() -> None:
    cfg = load_config(overrides=["model.preset=micro", "model.code_dim=8"])
    assert arch_from_config(cfg.model, 16, 3).code_dim == 8
    with pytest.raises(ConfigError, match="model.code_dim with objective.name=umae") as exc:
        load_config(overrides=["model.code_dim=8", "objective.name=umae"])
    assert "\n" not in str(exc.value)


def test_hugging_face_pretraining_refuses_a_code() -> None:
    with pytest.raises(ValueError, match="not a 5-wide code"):
        to_hf_vitmae(coded())


@pytest.fixture(scope="module")
def code_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("code") / "run"
    cfg = load_config(overrides=["model.preset=micro",
        f"run_dir={run}", "data.num_train=64", "data.num_test=8", "data.num_workers=0",
        "model.code_dim=4", "train.epochs=1", "train.batch_size=32", "train.device=cpu",
        "train.threads=1",
    ])  # fmt: skip
    return run / "checkpoints" / "last.pt", pretrain(cfg, quiet=True)


def test_a_code_run_trains_and_loads_back(code_run) -> None:
    ckpt, result = code_run
    assert result.steps == 2 and result.model.arch.code_dim == 4
    model, cfg = load_pretrained(ckpt)
    assert model.arch == result.model.arch and cfg.model.code_dim == 4
    for key, value in result.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value.cpu()), key
    imgs = torch.randn(2, 3, 16, 16)
    mask = mask_from_noise(torch.rand(2, 16), 0.75)
    trained = result.model.cpu().eval()
    assert torch.equal(encoder_code(model, imgs, mask), encoder_code(trained, imgs, mask))


def test_a_code_run_exports_its_encoder_to_hugging_face(code_run, tmp_path, capsys) -> None:
    pytest.importorskip("transformers")
    args = ["export", "--ckpt", str(code_run[0]), "--to", "hf", "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert "k-wide code" in capsys.readouterr().out
