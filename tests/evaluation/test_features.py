"""Frozen features: order, no masking, and the on-disk cache."""

import torch

from maelab.evaluation.baselines import random_encoder
from maelab.evaluation.features import (
    cache_key,
    cached_features,
    encoder_features,
    pixel_features,
)
from maelab.models.mae import MaskedAutoencoder


def test_features_are_unmasked_encoder_tokens_in_order(tiny, make_images):
    data = make_images(10)
    feats = encoder_features(tiny, data, "mean", batch_size=3)
    assert feats.x.shape == (10, 32) and torch.equal(feats.labels, data.labels)
    x = (data.images.float() / 255 - 0.5) / 0.25
    with torch.no_grad():
        ref = tiny.encode(x)[:, 1:].mean(1)
    torch.testing.assert_close(feats.x, ref, atol=1e-5, rtol=1e-5)
    assert tiny.training  # the caller's mode is restored
    head = encoder_features(tiny, data, "mean", batch_size=3, max_images=7)
    torch.testing.assert_close(head.x, feats.x[:7])
    assert torch.equal(head.labels, data.labels[:7])


def test_pixel_features_are_normalised_images(make_images):
    data = make_images(5, channels=1)
    feats = pixel_features(data, 16)
    torch.testing.assert_close(feats.x, ((data.images.float() / 255 - 0.5) / 0.25).flatten(1))


def test_cache_hit_does_not_recompute(tmp_path, tiny, monkeypatch, make_images):
    data = make_images(8)
    calls = []
    encode = tiny.encode
    monkeypatch.setattr(tiny, "encode", lambda x, **kw: calls.append(len(x)) or encode(x, **kw))
    key = {"checkpoint": {"size": 1, "mtime_ns": 2}, "pool": "cls"}

    def compute():
        return encoder_features(tiny, data, "cls", batch_size=4)

    first = cached_features(tmp_path, "train_mae_cls", key, compute)
    assert calls == [4, 4]
    second = cached_features(tmp_path, "train_mae_cls", key, compute)
    assert calls == [4, 4]  # read from disk
    torch.testing.assert_close(first.x, second.x)
    cached_features(
        tmp_path, "train_mae_cls", {**key, "checkpoint": {"size": 1, "mtime_ns": 3}}, compute
    )
    assert len(calls) == 4  # a touched checkpoint invalidates the cache
    assert len(list(tmp_path.glob("train_mae_cls_*.pt"))) == 2


def test_damaged_cache_is_recomputed(tmp_path, tiny, make_images):
    data = make_images(4)
    key = {"a": 1}
    (tmp_path / f"x_{cache_key(key)}.pt").write_bytes(b"not a torch file")
    feats = cached_features(tmp_path, "x", key, lambda: encoder_features(tiny, data))
    assert feats.x.shape == (4, 32)


def test_random_encoder_is_the_seeded_initialisation(tiny_arch):
    arch = tiny_arch()
    state = torch.get_rng_state()
    a = random_encoder(arch, seed=3)
    assert torch.equal(state, torch.get_rng_state())  # global RNG untouched
    torch.manual_seed(99)  # pretraining's global seed must not matter to the init
    b = MaskedAutoencoder(arch, init_seed=3)  # what build_model_for makes for train.seed=3
    for (k, v), w in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(v, w), k
    c = random_encoder(arch, seed=4)  # one random encoder per seed: seeds differ
    assert not torch.equal(a.patch_embed.proj.weight, c.patch_embed.proj.weight)
