"""Any ImageFolder tree (ImageNet, Imagenette, a user's photos): small images held in memory
(data/folder_memory.py), large ones streamed from disk (here).

Large images stream through PIL at `DEFAULT_SIZE` (224) px with ImageNet statistics, as in the
official recipe; a grey tree streams as one channel with its own statistics, read from a sample of
its training images. Tree layout and file checks: data/image_tree.py.

Unreadable files: trees of up to `VERIFY_LIMIT` images are checked when the dataset is built
(streaming: PIL's header / chunk check, a few ms per file, threaded; in memory: the decode itself)
and, with `data.on_bad_image=skip`, their bad files are dropped with one warning. Larger trees
(ImageNet: 1.28M files, minutes of I/O) skip that scan, so their bad files are found when first
loaded and each is replaced by the next readable one in file order (same class, in a sorted tree).
With `error` a bad file stops the run naming it.

Streaming augmentation is drawn from a generator seeded by (seed, epoch, index), so an epoch replays
exactly after a resume whatever the worker count; call `set_epoch` on the training dataset before
each epoch (with non-persistent DataLoader workers, which copy the dataset at each epoch).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from maelab.config import DataConfig
from maelab.data.base import DatasetEntry, Splits, StreamingSet, channel_stats, register_dataset
from maelab.data.folder_memory import (
    commonest_side,
    in_memory_splits,
    is_grey,
    memory_size,
    mixed_sizes_line,
    size_census,
)
from maelab.data.image_tree import (
    BAD_IMAGE_HINT,
    drop_unreadable,
    first_n,
    list_tree,
    load_rgb,
    unreadable_reason,
)
from maelab.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
EVAL_CROP_FRACTION = 0.875  # shorter side resized to size / 0.875, then centre-cropped (256 -> 224)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)  # aspect-ratio range of RandomResizedCrop
STATS_SAMPLE = 256  # files (spread over a streamed tree) its grey check and statistics read
VERIFY_LIMIT = 50_000  # images; larger trees skip the build-time scan (see module docstring)
MAX_REPLACEMENTS = 64  # consecutive unreadable files before giving up on a sample


def sample_crop(
    height: int,
    width: int,
    scale: Sequence[float],
    ratio: Sequence[float],
    generator: torch.Generator,
) -> tuple[int, int, int, int]:
    """RandomResizedCrop's (top, left, h, w), same draws as torchvision's but from `generator`."""
    area = height * width
    log_ratio = torch.log(torch.tensor(ratio))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect = torch.exp(
            torch.empty(1).uniform_(log_ratio[0].item(), log_ratio[1].item(), generator=generator)
        ).item()
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= width and 0 < h <= height:
            top = int(torch.randint(0, height - h + 1, size=(1,), generator=generator).item())
            left = int(torch.randint(0, width - w + 1, size=(1,), generator=generator).item())
            return top, left, h, w
    in_ratio = width / height  # no fit in 10 tries: the largest centred crop within the ratio range
    if in_ratio < min(ratio):
        w, h = width, int(round(width / min(ratio)))
    elif in_ratio > max(ratio):
        w, h = int(round(height * max(ratio))), height
    else:
        w, h = width, height
    return (height - h) // 2, (width - w) // 2, h, w


def eval_view(img: Image.Image, size: int) -> torch.Tensor:
    """Resize the shorter side to size / 0.875, centre-crop to size: uint8 (C, size, size)."""
    img = TF.resize(img, [int(size / EVAL_CROP_FRACTION)], InterpolationMode.BICUBIC)
    return TF.pil_to_tensor(TF.center_crop(img, [size, size]))


def _augment_seed(seed: int, epoch: int, index: int) -> int:
    # SeedSequence mixes the three numbers well; neighbouring indices get unrelated streams
    state = np.random.SeedSequence([seed % 2**64, epoch, index]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


class FolderImages(Dataset):
    """One split of an image tree: `(uint8 (C, S, S), label)`, augmented or centre-resized."""

    def __init__(
        self,
        paths: Sequence[str],
        labels: Sequence[int],
        image_size: int,
        augment: bool,
        crop_scale: tuple[float, float] = (0.2, 1.0),
        hflip: bool = True,
        seed: int = 0,
        on_bad_image: str = "skip",
        channels: int = 3,
    ) -> None:
        self.paths = list(paths)
        self.labels = list(labels)
        self.image_size = image_size
        self.augment = augment
        self.crop_scale = crop_scale
        self.hflip = hflip
        self.seed = seed
        self.on_bad_image = on_bad_image
        self.channels = channels  # 1: a grey tree, each image read as luminance
        self.epoch = 0
        # found unreadable at load time; per process, since DataLoader workers hold copies
        self.bad_indices: set[int] = set()
        self.num_replaced = 0

    def __len__(self) -> int:
        return len(self.paths)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        n = len(self.paths)
        for step in range(min(MAX_REPLACEMENTS, n)):
            j = (index + step) % n
            if j in self.bad_indices:
                continue
            try:
                img = load_rgb(self.paths[j])
            except Exception as exc:  # any decoder failure is a bad file, not a maelab bug
                if self.on_bad_image == "error":
                    raise DataError(
                        f"cannot read image {self.paths[j]} ({unreadable_reason(exc)}); {BAD_IMAGE_HINT}"
                    ) from None
                self.bad_indices.add(j)
                warnings.warn(
                    f"replaced unreadable image {self.paths[j]} ({unreadable_reason(exc)}) by another",
                    stacklevel=2,
                )
                continue
            if step:
                self.num_replaced += 1
            if self.channels == 1:
                img = img.convert("L")
            return self._view(img, index), self.labels[j]
        raise DataError(
            f"{MAX_REPLACEMENTS} unreadable images in a row from {self.paths[index]}; "
            "check the image folder"
        )

    def _view(self, img: Image.Image, index: int) -> torch.Tensor:
        if not self.augment:
            return eval_view(img, self.image_size)
        g = torch.Generator().manual_seed(_augment_seed(self.seed, self.epoch, index))
        top, left, h, w = sample_crop(img.height, img.width, self.crop_scale, CROP_RATIO, g)
        size = [self.image_size, self.image_size]
        x = TF.pil_to_tensor(TF.resized_crop(img, top, left, h, w, size, InterpolationMode.BICUBIC))
        if self.hflip and torch.rand(1, generator=g).item() < 0.5:
            x = x.flip(-1)
        return x


def build_folder(data_cfg: DataConfig, verify_limit: int = VERIFY_LIMIT) -> Splits:
    """Train/test splits of the image tree at `data.root`: in memory when small, else streaming."""
    root = Path(data_cfg.root).expanduser()
    classes, (train_paths, train_labels), (test_paths, test_labels) = list_tree(
        root, data_cfg.root, data_cfg.seed
    )
    files = []
    for paths, labels, n, seed in (
        (train_paths, train_labels, data_cfg.num_train, data_cfg.seed),
        (test_paths, test_labels, data_cfg.num_test, data_cfg.seed + 1),
    ):
        keep = first_n(n, len(paths), seed)
        files.append(([paths[i] for i in keep], [labels[i] for i in keep]))
    census = size_census(files[0][0] + files[1][0])
    native = commonest_side(census)
    size = memory_size(data_cfg, len(files[0][0]) + len(files[1][0]), native)
    if data_cfg.image_size is None and (mixed := mixed_sizes_line(census, size or DEFAULT_SIZE)):
        warnings.warn(mixed, stacklevel=2)  # the size chosen for the user: say so, once
    if size is not None:
        return in_memory_splits(files, len(classes), size, data_cfg, verify_limit)
    splits = []
    for name, (paths, labels) in zip(("train", "test"), files, strict=True):
        if len(paths) <= verify_limit:
            paths, labels = drop_unreadable(paths, labels, data_cfg.on_bad_image, data_cfg.root)
        if not paths:
            raise DataError(
                f"folder dataset: no readable images left for a {name} split under {data_cfg.root}; "
                "add images (or a val/ folder when the tree is split here)"
            )
        splits.append((paths, labels))
    # from the train split's images: the test split stays unseen
    look = streamed_look(splits[0][0], data_cfg.image_size or DEFAULT_SIZE)
    train, test = (_streaming(p, lab, len(classes), data_cfg, look) for p, lab in splits)
    return Splits(train=train, test=test)


def streamed_look(
    paths: Sequence[str], size: int
) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    """(channels, mean, std) of a streamed tree, from up to `STATS_SAMPLE` files spread over it
    (eval views at `size`): a grey tree streams as one channel with its own statistics, a colour
    tree as RGB with ImageNet's (the official recipe; the scan stops at the first colour file)."""
    step = max(1, len(paths) // STATS_SAMPLE)
    views = []
    for path in paths[::step][:STATS_SAMPLE]:
        try:
            view = eval_view(load_rgb(path), size)
        except Exception:  # unreadable files are reported when they are loaded
            continue
        if not is_grey(view[None]):
            return 3, IMAGENET_MEAN, IMAGENET_STD
        views.append(view[:1])
    if not views:
        return 3, IMAGENET_MEAN, IMAGENET_STD
    mean, std = channel_stats(torch.stack(views))
    return 1, mean, std


def _streaming(
    paths: list[str],
    labels: list[int],
    num_classes: int,
    data_cfg: DataConfig,
    look: tuple[int, tuple[float, ...], tuple[float, ...]],
) -> StreamingSet:
    size = data_cfg.image_size or DEFAULT_SIZE
    channels, mean, std = look

    def dataset(augment: bool) -> FolderImages:
        return FolderImages(
            paths,
            labels,
            size,
            augment,
            crop_scale=data_cfg.crop_scale,
            hflip=data_cfg.hflip,
            seed=data_cfg.seed,
            on_bad_image=data_cfg.on_bad_image,
            channels=channels,
        )

    return StreamingSet(
        train_dataset=dataset(augment=data_cfg.augment is not False),
        eval_dataset=dataset(augment=False),
        num_classes=num_classes,
        mean=mean,
        std=std,
        channels=channels,
        image_size=size,
    )


FOLDER = register_dataset(
    DatasetEntry(
        name="folder",
        description="any image tree at data.root (train/ + val/ of class folders); "
        "small images held in memory, large ones streamed",
        offline=True,
        build=build_folder,
    )
)
