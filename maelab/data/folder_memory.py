"""Small-image trees held in memory: decoded once at native size into a uint8 tensor.

Small images (the commonest size among `SIZE_SAMPLE` sampled files at most `SMALL_SIDE` px a
side, a tie going to the smaller: digits, icons, patches; `data.in_memory` overrides) are decoded once at their native size
(shorter side, centre crop) and trained on like any in-memory set: batched tensor augmentation, no
PIL or DataLoader workers per step. A tree whose images are all grey (also when saved as RGB)
becomes one channel, and the per-channel mean and std come from its training images. Unreadable
files: dropped with one warning when the tree is small enough to be checked at build time, else
each replaced by the next readable file (the streaming rules).
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torchvision.transforms import InterpolationMode

from maelab.config import DataConfig
from maelab.data.base import ImageSet, Splits, channel_stats
from maelab.data.image_tree import BAD_IMAGE_HINT, Files, load_rgb, unreadable_reason
from maelab.errors import DataError

SMALL_SIDE = 64  # px; trees of images no larger than this are held in memory at native size
SIZE_SAMPLE = 64  # files whose headers decide the native size (spread over the tree)
MEMORY_LIMIT = 2**30  # bytes of uint8 pixels, above which even small images are streamed
GREY_TOLERANCE = 2  # grey levels: RGB files of grey content (JPEG rounding) still count as grey


def size_census(paths: Sequence[str]) -> Counter[tuple[int, int]]:
    """How many of up to `SIZE_SAMPLE` files spread over `paths` have each (width, height)
    (headers only, no decode; unreadable files are left out)."""
    step = max(1, len(paths) // SIZE_SAMPLE)
    sizes: Counter[tuple[int, int]] = Counter()
    for path in paths[::step][:SIZE_SAMPLE]:
        try:
            with Image.open(path) as img:
                sizes[img.size] += 1
        except Exception:  # unreadable files are reported when the split is loaded
            continue
    return sizes


def commonest_side(census: Counter[tuple[int, int]]) -> int | None:
    """Shorter side of the size most files have; a tie goes to the smaller size (a 28 px digit
    and one 300x200 photo train at 28 px, not at the photo's 224)."""
    if not census:
        return None
    top = max(census.values())
    w, h = min((s for s, n in census.items() if n == top), key=lambda s: (min(s), s[0] * s[1]))
    return min(w, h)


def native_size(paths: Sequence[str]) -> int | None:
    """`commonest_side` of the sampled files of `paths`; None when none of them opens."""
    return commonest_side(size_census(paths))


def mixed_sizes_line(census: Counter[tuple[int, int]], size: int) -> str | None:
    """One line when the sampled files differ in size: the sizes, their counts and the side
    trained at; None when they all have one size."""
    if len(census) < 2:
        return None
    shown = ", ".join(
        f"{w} px: {n}" if w == h else f"{w}x{h}: {n}"
        for (w, h), n in sorted(census.items(), key=lambda item: (min(item[0]), item[0]))
    )
    return f"images of mixed sizes ({shown}); training at {size} px; set data.image_size to change"


def memory_size(data_cfg: DataConfig, num_images: int, native: int | None) -> int | None:
    """The side at which a tree of `num_images` files of shorter side `native` (None: none
    opens) is held in memory, or None to stream it (see module docstring)."""
    if data_cfg.in_memory is False:
        return None
    size = data_cfg.image_size or native
    if size is None or native is None:
        return None  # nothing opens: the streaming path reports the files
    fits = num_images * 3 * size * size <= MEMORY_LIMIT
    if data_cfg.in_memory is None:
        return size if size <= SMALL_SIDE and native <= SMALL_SIDE and fits else None
    if not fits:
        raise DataError(
            f"folder dataset: {num_images} images of {size} px exceed the {MEMORY_LIMIT >> 20} MiB "
            "held in memory; pass data.in_memory=false or a smaller data.image_size"
        )
    return size


def small_view(img: Image.Image, size: int) -> torch.Tensor:
    """Shorter side to `size` (bicubic, skipped at native size), centre crop: uint8 (3, S, S).

    No 0.875 crop margin as in `eval_view`: at 28 px it would cut into the digit.
    """
    if min(img.size) != size:
        img = TF.resize(img, [size], InterpolationMode.BICUBIC)
    if img.size != (size, size):
        img = TF.center_crop(img, [size, size])
    return TF.pil_to_tensor(img)


def _decode(path: str, size: int) -> torch.Tensor | str:
    try:
        return small_view(load_rgb(path), size)
    except Exception as exc:  # any decoder failure is a bad file, not a maelab bug
        return unreadable_reason(exc)


def decode_split(
    paths: list[str], labels: list[int], size: int, on_bad_image: str, where: str, drop: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """All images of a split decoded once: uint8 (N, 3, S, S) and int64 labels (N,).

    Unreadable files follow the streaming rules: dropped with one warning when the tree is small
    enough to be checked at build time (`drop`), else each replaced by the next readable file.
    """
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        views = list(pool.map(_decode, paths, [size] * len(paths)))
    bad = [i for i, v in enumerate(views) if isinstance(v, str)]
    if bad and on_bad_image == "error":
        raise DataError(f"cannot read image {paths[bad[0]]} ({views[bad[0]]}); {BAD_IMAGE_HINT}")
    keep = [i for i, v in enumerate(views) if not isinstance(v, str)]
    if not keep:
        raise DataError(f"folder dataset: no readable images left for a split under {where}")
    if bad and drop:
        warnings.warn(
            f"skipped {len(bad)} unreadable images under {where} "
            f"(first: {paths[bad[0]]}: {views[bad[0]]})",
            stacklevel=2,
        )
    elif bad:
        readable, source = set(keep), {}
        for i in bad:
            n = len(paths)
            source[i] = next(k % n for k in range(i + 1, i + 1 + n) if k % n in readable)
            warnings.warn(
                f"replaced unreadable image {paths[i]} ({views[i]}) by another", stacklevel=2
            )
        keep = [source.get(i, i) for i in range(len(paths))]
    images = torch.stack([views[i] for i in keep])  # type: ignore[misc]
    return images, torch.tensor([labels[i] for i in keep], dtype=torch.int64)


def is_grey(images: torch.Tensor, tolerance: int = GREY_TOLERANCE) -> bool:
    """True when every pixel of uint8 (N, 3, H, W) images has R, G and B within `tolerance`."""
    for chunk in images.split(4096):
        c = chunk.to(torch.int16)
        if (c[:, :2] - c[:, 1:]).abs().max() > tolerance:  # R vs G and G vs B at once
            return False
    return True


def in_memory_splits(
    files: list[Files], num_classes: int, size: int, data_cfg: DataConfig, verify_limit: int
) -> Splits:
    """Both splits decoded into memory at `size` px (one channel when the tree is grey)."""
    (x_train, y_train), (x_test, y_test) = (
        decode_split(
            paths, labels, size, data_cfg.on_bad_image, data_cfg.root, len(paths) <= verify_limit
        )
        for paths, labels in files
    )
    if is_grey(x_train):  # grey trees (often saved as RGB) train as one channel
        x_train, x_test = x_train[:, :1].contiguous(), x_test[:, :1].contiguous()
    mean, std = channel_stats(x_train)  # from train only: the test split stays unseen
    return Splits(
        train=ImageSet(x_train, y_train, num_classes, mean, std),
        test=ImageSet(x_test, y_test, num_classes, mean, std),
    )
