"""torchvision sets: tiny files in the real on-disk formats, read by maelab and by torchvision."""

from __future__ import annotations

import dataclasses
import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.datasets as tvd
from PIL import Image

from maelab.config import DataConfig
from maelab.data.base import DATASETS
from maelab.data.torchvision_sets import (
    SOURCES,
    build_torchvision_set,
    read_idx,
    resize_uint8,
)
from maelab.errors import DataError

SOURCE = {s.name: s for s in SOURCES}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def write_cifar10(root: Path, per_batch: int = 2, n_test: int = 3) -> tuple[np.ndarray, ...]:
    """Five training pickles, one test pickle and the meta file, as in cifar-10-python.tar.gz."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = _rng()
    x_train = rng.integers(0, 256, (5 * per_batch, 3072), dtype=np.uint8)
    y_train = rng.integers(0, 10, 5 * per_batch)
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        batch = {"batch_label": f"training batch {b + 1} of 5", "data": x_train[sl]}
        batch |= {
            "labels": y_train[sl].tolist(),
            "filenames": [f"img{i}.png" for i in range(per_batch)],
        }
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    x_test = rng.integers(0, 256, (n_test, 3072), dtype=np.uint8)
    y_test = rng.integers(0, 10, n_test)
    test = {"batch_label": "testing batch 1 of 1", "data": x_test, "labels": y_test.tolist()}
    (folder / "test_batch").write_bytes(pickle.dumps(test, protocol=2))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return x_train, y_train, x_test, y_test


def write_cifar100(root: Path, n_train: int = 6, n_test: int = 4) -> tuple[np.ndarray, ...]:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = _rng(1)
    out = []
    for name, n in (("train", n_train), ("test", n_test)):
        x = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        y = rng.integers(0, 100, n)
        entry = {"data": x, "fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()}
        (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
        out += [x, y]
    meta = {"fine_label_names": [f"f{i}" for i in range(100)], "coarse_label_names": []}
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    return tuple(out)


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: magic 0x0000 08 ndim, big-endian dims, then the data."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_mnist(root: Path, cls_name: str, gz: bool = False) -> tuple[np.ndarray, ...]:
    folder = root / cls_name / "raw"
    folder.mkdir(parents=True)
    rng = _rng(2)
    out = []
    for prefix, n in (("train", 7), ("t10k", 5)):
        x = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        y = rng.integers(0, 10, n).astype(np.uint8)
        for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
            data = idx_bytes(arr)
            name = f"{prefix}-{kind}-ubyte"
            if gz:
                (folder / f"{name}.gz").write_bytes(gzip.compress(data))
            else:
                (folder / name).write_bytes(data)
        out += [x, y]
    return tuple(out)


def write_stl10(root: Path) -> tuple[np.ndarray, ...]:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = _rng(3)
    out = []
    for split, n in (("train", 3), ("test", 2)):
        x = rng.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8)
        y = rng.integers(0, 10, n)
        # the binaries store each channel column-major, labels 1-based
        (folder / f"{split}_X.bin").write_bytes(x.transpose(0, 1, 3, 2).tobytes())
        (folder / f"{split}_y.bin").write_bytes((y + 1).astype(np.uint8).tobytes())
        out += [x, y]
    return tuple(out)


def cfg(root: Path, name: str, **kw) -> DataConfig:
    return DataConfig(name=name, root=str(root), **kw)


def build(root: Path, name: str, **kw):
    return build_torchvision_set(SOURCE[name], cfg(root, name, **kw))


def test_cifar10_reads_the_pickles(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = write_cifar10(tmp_path)
    s = build(tmp_path, "cifar10")
    assert s.train.images.shape == (10, 3, 32, 32) and s.train.images.dtype == torch.uint8
    assert np.array_equal(s.train.images.numpy(), x_train.reshape(-1, 3, 32, 32))
    assert np.array_equal(s.train.labels.numpy(), y_train)
    assert np.array_equal(s.test.images.numpy(), x_test.reshape(-1, 3, 32, 32))
    assert np.array_equal(s.test.labels.numpy(), y_test)
    assert s.train.num_classes == 10


def test_cifar_matches_torchvision_reader(tmp_path: Path, monkeypatch) -> None:
    write_cifar10(tmp_path)
    write_cifar100(tmp_path)
    # torchvision checks the md5 of the real release; these tiny files cannot pass it
    monkeypatch.setattr(tvd.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(tvd.cifar, "check_integrity", lambda path, md5=None: True)
    for name, cls in (("cifar10", tvd.CIFAR10), ("cifar100", tvd.CIFAR100)):
        s = build(tmp_path, name)
        for split, train in ((s.train, True), (s.test, False)):
            ref = cls(str(tmp_path), train=train)
            assert np.array_equal(split.images.numpy(), ref.data.transpose(0, 3, 1, 2))
            assert split.labels.tolist() == list(ref.targets)


def test_cifar100_fine_labels(tmp_path: Path) -> None:
    x_train, y_train, _, y_test = write_cifar100(tmp_path)
    s = build(tmp_path, "cifar100")
    assert s.train.num_classes == 100
    assert np.array_equal(s.train.labels.numpy(), y_train)
    assert np.array_equal(s.test.labels.numpy(), y_test)


def test_mnist_matches_torchvision_reader(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = write_mnist(tmp_path, "MNIST")
    s = build(tmp_path, "mnist")
    assert s.train.images.shape == (7, 1, 28, 28) and s.test.images.shape == (5, 1, 28, 28)
    for split, train in ((s.train, True), (s.test, False)):
        ref = tvd.MNIST(str(tmp_path), train=train)  # reads raw idx files without md5 checks
        assert torch.equal(split.images[:, 0], ref.data)
        assert torch.equal(split.labels, ref.targets)


def test_fashion_mnist_reads_gzipped_idx(tmp_path: Path) -> None:
    x_train, y_train, _, _ = write_mnist(tmp_path, "FashionMNIST", gz=True)
    s = build(tmp_path, "fashion_mnist")
    assert np.array_equal(s.train.images[:, 0].numpy(), x_train)
    assert np.array_equal(s.train.labels.numpy(), y_train)
    assert s.train.channels == 1 and len(s.train.mean) == 1


def test_stl10_matches_torchvision_reader(tmp_path: Path, monkeypatch) -> None:
    x_train, y_train, x_test, y_test = write_stl10(tmp_path)
    s = build(tmp_path, "stl10")
    assert np.array_equal(s.train.images.numpy(), x_train)
    assert np.array_equal(s.test.labels.numpy(), y_test)
    monkeypatch.setattr(tvd.STL10, "_check_integrity", lambda self: True)
    ref = tvd.STL10(str(tmp_path), split="train")
    assert np.array_equal(s.train.images.numpy(), ref.data)
    assert np.array_equal(s.train.labels.numpy(), ref.labels)


def test_mean_std_from_train(tmp_path: Path) -> None:
    x_train, *_ = write_cifar10(tmp_path)
    s = build(tmp_path, "cifar10")
    x = x_train.reshape(-1, 3, 32, 32).astype(np.float64) / 255
    assert np.allclose(s.train.mean, x.mean(axis=(0, 2, 3)), atol=1e-6)
    assert np.allclose(
        s.train.std, x.transpose(1, 0, 2, 3).reshape(3, -1).std(1, ddof=1), atol=1e-5
    )
    assert s.test.mean == s.train.mean


def test_subset_is_seeded_and_keeps_pairs(tmp_path: Path) -> None:
    x_train, y_train, *_ = write_cifar10(tmp_path)
    a = build(tmp_path, "cifar10", num_train=4, num_test=2)
    b = build(tmp_path, "cifar10", num_train=4, num_test=2)
    c = build(tmp_path, "cifar10", num_train=4, num_test=2, seed=5)
    assert len(a.train) == 4 and len(a.test) == 2
    assert torch.equal(a.train.images, b.train.images)
    assert not torch.equal(a.train.images, c.train.images)
    rows = {r.tobytes(): y for r, y in zip(x_train, y_train, strict=True)}
    for img, y in zip(a.train.images.numpy().reshape(4, -1), a.train.labels.tolist(), strict=True):
        assert rows[img.tobytes()] == y  # each kept image still carries its own label


def test_resize_matches_pil_bilinear(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    s = build(tmp_path, "cifar10", image_size=20)
    assert s.train.images.shape == (10, 3, 20, 20) and s.test.image_size == 20
    raw = build(tmp_path, "cifar10").train.images.numpy()
    ref = np.stack(
        [
            np.asarray(Image.fromarray(x.transpose(1, 2, 0)).resize((20, 20), Image.BILINEAR))
            for x in raw
        ]
    ).transpose(0, 3, 1, 2)
    assert np.abs(s.train.images.numpy().astype(int) - ref).max() <= 1


def test_resize_identity_and_upsampling() -> None:
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8)
    assert resize_uint8(x, 8) is x
    assert resize_uint8(x, 24).shape == (3, 1, 24, 24)


def test_missing_files_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError) as err:
        build(tmp_path, "cifar10")
    assert str(err.value) == (
        f"cifar10 not found under {tmp_path} (no cifar-10-batches-py/data_batch_1); "
        "pass data.download=true or data.root=DIR"
    )
    with pytest.raises(DataError, match=r"^mnist not found under .*\(no MNIST/raw/train-images"):
        build(tmp_path, "mnist")


def test_failed_download_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def offline(self) -> None:
        raise RuntimeError("<urlopen error [Errno -3] no network>\nmore detail")

    monkeypatch.setattr(tvd.CIFAR10, "download", offline)
    with pytest.raises(DataError) as err:
        build(tmp_path, "cifar10", download=True)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"could not download cifar10 into {tmp_path}: <urlopen error")


def test_download_is_used_only_when_files_are_missing(tmp_path: Path) -> None:
    calls = []

    class FakeDownload:
        def __init__(self, root: str, download: bool) -> None:
            calls.append(root)
            write_cifar10(Path(root))

    source = dataclasses.replace(SOURCE["cifar10"], download_class=FakeDownload)
    s = build_torchvision_set(source, cfg(tmp_path, "cifar10", download=True))
    assert len(s.train) == 10 and calls == [str(tmp_path)]
    build_torchvision_set(source, cfg(tmp_path, "cifar10", download=True))
    assert len(calls) == 1  # files present: no second download


def test_corrupt_files_are_named(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    bad = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    bad.write_bytes(bad.read_bytes()[:100])
    with pytest.raises(DataError) as err:
        build(tmp_path, "cifar10")
    assert str(err.value).startswith(f"cifar10: cannot read {bad} (")
    assert str(err.value).endswith("); delete the files and pass data.download=true")


def test_truncated_idx_is_reported(tmp_path: Path) -> None:
    write_mnist(tmp_path, "MNIST")
    path = tmp_path / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match="header says"):
        build(tmp_path, "mnist")
    with pytest.raises(ValueError, match="not an IDX file"):
        path.write_bytes(b"hello")
        read_idx(path)


def test_labels_out_of_range_are_rejected(tmp_path: Path) -> None:
    write_stl10(tmp_path)
    (tmp_path / "stl10_binary" / "test_y.bin").write_bytes(bytes([11, 0]))  # 1-based: 11 and 0
    with pytest.raises(DataError, match="labels in .*test_y.bin fall outside 0..9"):
        build(tmp_path, "stl10")


def test_asking_for_more_images_than_exist(tmp_path: Path) -> None:
    write_cifar10(tmp_path)
    with pytest.raises(DataError, match=r"^cifar10 train has 10 images; data.num_train=11"):
        build(tmp_path, "cifar10", num_train=11)


def test_registered_and_need_a_download() -> None:
    for name in ("cifar10", "cifar100", "stl10", "mnist", "fashion_mnist"):
        assert not DATASETS[name].offline
    assert DATASETS["cifar10"].num_train == 50000
    assert DATASETS["cifar10"].augment and not DATASETS["mnist"].augment
