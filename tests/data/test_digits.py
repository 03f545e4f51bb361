"""scikit-learn digits: split, upsampling and statistics, checked against sklearn and PIL."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_digits

from maelab.config import DataConfig
from maelab.data.base import DATASETS
from maelab.data.digits import build_digits, upsample_digits
from maelab.errors import DataError


@pytest.fixture(scope="module")
def splits():
    return build_digits(DataConfig(name="digits"))


def test_default_split_shapes_and_types(splits) -> None:
    train, test = splits.train, splits.test
    assert train.images.shape == (1437, 1, 16, 16) and test.images.shape == (360, 1, 16, 16)
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.num_classes == test.num_classes == 10
    assert train.channels == 1 and train.image_size == 16


def test_split_is_stratified(splits) -> None:
    counts = torch.bincount(splits.test.labels, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 20% of 174..183 per class


def test_native_size_split_is_a_partition_of_sklearn_digits() -> None:
    s = build_digits(DataConfig(name="digits", image_size=8))
    ours = torch.cat([s.train.images, s.test.images]).reshape(1797, 64).numpy()
    ours_labels = torch.cat([s.train.labels, s.test.labels]).numpy()
    ref = load_digits()
    expected = np.round(ref.images.reshape(1797, 64) * 255 / 16).astype(np.uint8)
    key = lambda x, y: sorted(map(tuple, np.column_stack([x, y])))  # noqa: E731
    assert key(ours, ours_labels) == key(expected, ref.target)


def test_mean_std_come_from_train_only(splits) -> None:
    x = splits.train.images.numpy().astype(np.float64) / 255
    assert splits.train.mean[0] == pytest.approx(x.mean(), abs=1e-6)
    assert splits.train.std[0] == pytest.approx(x.std(ddof=1), abs=1e-5)
    assert splits.test.mean == splits.train.mean and splits.test.std == splits.train.std


def test_upsampling_matches_pil_bilinear() -> None:
    images = load_digits().images[:40]
    ours = upsample_digits(images, 16)[:, 0].numpy().astype(np.float64)
    ref = np.stack(
        [
            np.asarray(
                Image.fromarray((im * 255 / 16).astype(np.float32), mode="F").resize(
                    (16, 16), Image.BILINEAR
                )
            )
            for im in images
        ]
    )
    assert np.abs(ours - ref).max() <= 0.5 + 1e-6  # rounding to uint8 only


def test_seed_decides_the_split() -> None:
    a = build_digits(DataConfig(name="digits", seed=0))
    b = build_digits(DataConfig(name="digits", seed=0))
    c = build_digits(DataConfig(name="digits", seed=1))
    assert torch.equal(a.train.images, b.train.images) and torch.equal(a.test.labels, b.test.labels)
    assert not torch.equal(a.train.images, c.train.images)


def test_custom_sizes() -> None:
    s = build_digits(DataConfig(name="digits", num_train=500, num_test=100, image_size=32))
    assert s.train.images.shape == (500, 1, 32, 32) and s.test.images.shape == (100, 1, 32, 32)


def test_too_many_images_is_a_data_error() -> None:
    with pytest.raises(DataError, match=r"^digits has 1797 images; data.num_train=1700"):
        build_digits(DataConfig(name="digits", num_train=1700, num_test=200))
    with pytest.raises(DataError, match="cannot split 100/5 by class"):
        build_digits(DataConfig(name="digits", num_train=100, num_test=5))


def test_registered_as_offline() -> None:
    entry = DATASETS["digits"]
    assert entry.offline and entry.build is build_digits and not entry.augment
    assert (entry.num_train, entry.num_test) == (1437, 360)
