"""torchvision's small labelled sets (CIFAR-10/100, STL-10, MNIST, Fashion-MNIST) held in memory.

torchvision only downloads the files here; maelab reads the on-disk formats itself so that a
dataset copied from elsewhere (or re-packed) loads without torchvision's md5 checks, and so that
a truncated file is reported by name instead of as a reshape error.
"""

from __future__ import annotations

import functools
import gzip
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.datasets as tvd

from maelab.config import DataConfig
from maelab.data.base import DatasetEntry, ImageSet, Splits, channel_stats, register_dataset
from maelab.errors import DataError

Arrays = tuple[np.ndarray, np.ndarray]  # images (N, C, H, W) uint8, labels (N,) int64
FileGroup = tuple[str, ...]  # the files one `read` call turns into Arrays
RESIZE_CHUNK = 2048  # images resized at a time, to bound the float32 working memory


@dataclass(frozen=True)
class TorchvisionSource:
    """Where one torchvision dataset lives under `data.root` and how to read it."""

    name: str
    description: str
    download_class: type  # the torchvision dataset class that fetches the files
    folder: str  # relative to the root
    train_files: tuple[FileGroup, ...]
    test_files: tuple[FileGroup, ...]
    read: Callable[[Sequence[Path]], Arrays]
    num_classes: int
    num_train: int
    num_test: int
    augment: bool = (
        True  # crop + flip by default; off for the 28-px grey sets (a mirrored digit is not one)
    )


def _read_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def read_cifar(paths: Sequence[Path]) -> Arrays:
    """A CIFAR python pickle: a dict with `data` (n, 3072) uint8 and `labels` or `fine_labels`."""
    (path,) = paths
    entry = pickle.loads(_read_bytes(path), encoding="latin1")
    images = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)  # rows are CHW
    labels = np.asarray(entry["labels"] if "labels" in entry else entry["fine_labels"], np.int64)
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images, labels


def read_stl10(paths: Sequence[Path]) -> Arrays:
    """STL-10 binaries: `*_X.bin` column-major (n, 3, 96, 96) uint8, `*_y.bin` labels 1..10."""
    x_path, y_path = paths
    raw = np.frombuffer(_read_bytes(x_path), dtype=np.uint8)
    if raw.size % (3 * 96 * 96):
        raise ValueError(f"size {raw.size} is not a whole number of 3x96x96 images")
    images = np.ascontiguousarray(raw.reshape(-1, 3, 96, 96).transpose(0, 1, 3, 2))
    labels = np.frombuffer(_read_bytes(y_path), dtype=np.uint8).astype(np.int64) - 1
    if len(labels) != len(images):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    return images, labels


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (the MNIST format), optionally gzipped."""
    data = _read_bytes(path)
    if len(data) < 4 or data[0:2] != b"\x00\x00" or data[2] != 0x08:
        raise ValueError("not an IDX file of unsigned bytes")
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if body.size != int(np.prod(dims)):
        raise ValueError(f"header says {dims} but the file holds {body.size} values")
    return body.reshape(dims).copy()  # frombuffer views are read-only; tensors must own memory


def read_mnist(paths: Sequence[Path]) -> Arrays:
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"images {images.shape} and labels {labels.shape} do not match")
    return images[:, None], labels.astype(np.int64)  # (N, 1, 28, 28)


def resize_uint8(images: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, H, W) uint8 -> (N, C, size, size) uint8, bilinear (antialiased when shrinking)."""
    if images.shape[-2:] == (size, size):
        return images
    shrink = size < max(images.shape[-2:])
    out = torch.empty((*images.shape[:2], size, size), dtype=torch.uint8)
    for i in range(0, len(images), RESIZE_CHUNK):
        x = images[i : i + RESIZE_CHUNK].float()
        x = F.interpolate(
            x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink
        )
        out[i : i + RESIZE_CHUNK] = x.round_().clamp_(0, 255).to(torch.uint8)
    return out


def subset(
    images: np.ndarray, labels: np.ndarray, n: int | None, seed: int, what: str, key: str
) -> Arrays:
    """The first `n` images of a seeded permutation (kept in file order); all when `n` is None."""
    if n is None or n == len(labels):
        return images, labels
    if not 0 < n < len(labels):
        raise DataError(f"{what} has {len(labels)} images; {key}={n} must be in 1..{len(labels)}")
    keep = np.sort(np.random.default_rng(seed).permutation(len(labels))[:n])
    return images[keep], labels[keep]


def _locate(folder: Path, names: Sequence[str]) -> list[Path | None]:
    # a user may have copied the compressed originals (MNIST's .gz) without extracting them
    found: list[Path | None] = []
    for name in names:
        plain, packed = folder / name, folder / f"{name}.gz"
        found.append(plain if plain.is_file() else packed if packed.is_file() else None)
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _download(source: TorchvisionSource, root: Path, shown_root: str) -> None:
    try:
        source.download_class(str(root), download=True)
    except Exception as exc:  # network, disk or archive errors all end the same way for the user
        raise DataError(
            f"could not download {source.name} into {shown_root}: {_first_line(exc)}; "
            f"check the network or put the files under {shown_root}/{source.folder}"
        ) from None


def load_files(source: TorchvisionSource, data_cfg: DataConfig) -> tuple[Arrays, Arrays]:
    """Read the train and test arrays, downloading first when allowed and needed."""
    root = Path(data_cfg.root).expanduser()
    folder = root / source.folder
    names = [name for group in (*source.train_files, *source.test_files) for name in group]
    paths = _locate(folder, names)
    if None in paths and data_cfg.download:
        _download(source, root, data_cfg.root)
        paths = _locate(folder, names)
    if None in paths:
        missing = names[paths.index(None)]
        hint = "" if data_cfg.download else "pass data.download=true or "
        raise DataError(
            f"{source.name} not found under {data_cfg.root} (no {source.folder}/{missing}); "
            f"{hint}data.root=DIR"
        )
    found: dict[str, Path] = dict(zip(names, paths, strict=True))  # type: ignore[arg-type]
    train = _read_groups(source, [[found[n] for n in g] for g in source.train_files])
    test = _read_groups(source, [[found[n] for n in g] for g in source.test_files])
    return train, test


def _read_groups(source: TorchvisionSource, groups: list[list[Path]]) -> Arrays:
    images, labels = [], []
    for paths in groups:
        try:
            x, y = source.read(paths)
        except Exception as exc:  # any parse failure means a damaged or foreign file
            files = ", ".join(str(p) for p in paths)
            raise DataError(
                f"{source.name}: cannot read {files} ({_first_line(exc)}); "
                "delete the files and pass data.download=true"
            ) from None
        if y.size and (y.min() < 0 or y.max() >= source.num_classes):
            raise DataError(
                f"{source.name}: labels in {paths[-1]} fall outside 0..{source.num_classes - 1}"
            )
        images.append(x)
        labels.append(y)
    if len(groups) == 1:  # skip the copy np.concatenate would make
        return images[0], labels[0]
    return np.concatenate(images), np.concatenate(labels)


def build_torchvision_set(source: TorchvisionSource, data_cfg: DataConfig) -> Splits:
    """Train and test ImageSets; `num_train`/`num_test` subset, `image_size` resizes."""
    (x_train, y_train), (x_test, y_test) = load_files(source, data_cfg)
    name, seed = source.name, data_cfg.seed
    x_train, y_train = subset(
        x_train, y_train, data_cfg.num_train, seed, f"{name} train", "data.num_train"
    )
    x_test, y_test = subset(
        x_test, y_test, data_cfg.num_test, seed + 1, f"{name} test", "data.num_test"
    )
    train = torch.from_numpy(np.ascontiguousarray(x_train))
    test = torch.from_numpy(np.ascontiguousarray(x_test))
    if data_cfg.image_size is not None:
        train = resize_uint8(train, data_cfg.image_size)
        test = resize_uint8(test, data_cfg.image_size)
    mean, std = channel_stats(train)
    k = source.num_classes
    return Splits(
        train=ImageSet(train, torch.from_numpy(y_train), k, mean, std),
        test=ImageSet(test, torch.from_numpy(y_test), k, mean, std),
    )


def _mnist_like(name: str, cls: type, description: str) -> TorchvisionSource:
    return TorchvisionSource(
        name=name,
        description=description,
        download_class=cls,
        folder=f"{cls.__name__}/raw",
        train_files=(("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),),
        test_files=(("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),),
        read=read_mnist,
        num_classes=10,
        num_train=60000,
        num_test=10000,
        augment=False,
    )


SOURCES: tuple[TorchvisionSource, ...] = (
    TorchvisionSource(
        name="cifar10",
        description="CIFAR-10 (32x32 RGB, 10 classes, 50k/10k); needs a download",
        download_class=tvd.CIFAR10,
        folder="cifar-10-batches-py",
        train_files=tuple((f"data_batch_{i}",) for i in range(1, 6)),
        test_files=(("test_batch",),),
        read=read_cifar,
        num_classes=10,
        num_train=50000,
        num_test=10000,
    ),
    TorchvisionSource(
        name="cifar100",
        description="CIFAR-100 (32x32 RGB, 100 fine classes, 50k/10k); needs a download",
        download_class=tvd.CIFAR100,
        folder="cifar-100-python",
        train_files=(("train",),),
        test_files=(("test",),),
        read=read_cifar,
        num_classes=100,
        num_train=50000,
        num_test=10000,
    ),
    TorchvisionSource(
        name="stl10",
        description="STL-10 labelled splits (96x96 RGB, 10 classes, 5k/8k); needs a download",
        download_class=tvd.STL10,
        folder="stl10_binary",
        train_files=(("train_X.bin", "train_y.bin"),),
        test_files=(("test_X.bin", "test_y.bin"),),
        read=read_stl10,
        num_classes=10,
        num_train=5000,
        num_test=8000,
    ),
    _mnist_like("mnist", tvd.MNIST, "MNIST (28x28 grey, 10 digits, 60k/10k); needs a download"),
    _mnist_like(
        "fashion_mnist",
        tvd.FashionMNIST,
        "Fashion-MNIST (28x28 grey, 10 clothing classes, 60k/10k); needs a download",
    ),
)

for _source in SOURCES:
    register_dataset(
        DatasetEntry(
            name=_source.name,
            description=_source.description,
            offline=False,
            build=functools.partial(build_torchvision_set, _source),
            num_train=_source.num_train,
            num_test=_source.num_test,
            augment=_source.augment,
        )
    )
