"""Any ImageFolder tree (ImageNet, Imagenette, a user's photos): small images held in memory,
large ones streamed from disk.

Layout: `root/train/CLASS/*.jpg` plus `root/val/CLASS/*.jpg` (or `root/test/`); or one tree
`root/CLASS/*.jpg` (or only `root/train/`), split here with a seeded, per-class hold-out.

Small images (the commonest size among `SIZE_SAMPLE` sampled files at most `SMALL_SIDE` px a
side: digits, icons, patches; `data.in_memory` overrides) are decoded once into a uint8 tensor at
their native size (shorter side, centre crop) and trained on like any in-memory set: batched
tensor augmentation, no PIL or DataLoader workers per step. A tree whose images are all grey (also
when saved as RGB) becomes one channel, and the per-channel mean and std come from its training
images. Large images keep streaming through PIL at `DEFAULT_SIZE` (224) px with ImageNet
statistics, as in the official recipe.

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
import os
import warnings
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import InterpolationMode

from maelab.config import DataConfig
from maelab.data.base import (
    DatasetEntry,
    ImageSet,
    Splits,
    StreamingSet,
    channel_stats,
    register_dataset,
)
from maelab.errors import DataError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIZE = 224
EVAL_CROP_FRACTION = 0.875  # shorter side resized to size / 0.875, then centre-cropped (256 -> 224)
CROP_RATIO = (3.0 / 4.0, 4.0 / 3.0)  # aspect-ratio range of RandomResizedCrop
VERIFY_LIMIT = 50_000  # images; larger trees skip the build-time scan (see module docstring)
HELD_OUT_FRACTION = 0.1  # of each class, when the tree has no val/ or test/ folder
MAX_REPLACEMENTS = 64  # consecutive unreadable files before giving up on a sample
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT_HINT = "expected DIR/train/CLASS/IMAGE and DIR/val/CLASS/IMAGE, or DIR/CLASS/IMAGE"
BAD_IMAGE_HINT = "fix or remove it, or pass data.on_bad_image=skip"
SMALL_SIDE = 64  # px; trees of images no larger than this are held in memory at native size
SIZE_SAMPLE = 64  # files whose headers decide the native size (spread over the tree)
MEMORY_LIMIT = 2**30  # bytes of uint8 pixels, above which even small images are streamed
GREY_TOLERANCE = 2  # grey levels: RGB files of grey content (JPEG rounding) still count as grey


def load_rgb(path: str) -> Image.Image:
    """Decode an image fully and convert it to 8-bit RGB (grey, alpha, palette, 16-bit)."""
    with Image.open(path) as img:
        if img.mode == "I" or img.mode.startswith("I;16"):
            # 16-bit grey: convert("RGB") would clip everything above 255 to white
            arr = np.asarray(img, dtype=np.float64)
            peak = 65535.0 if arr.max() > 255 else 255.0
            return Image.fromarray((arr * (255.0 / peak)).round().astype(np.uint8)).convert("RGB")
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            return img.convert("RGBA").convert("RGB")  # via RGBA so PIL handles palette alpha
        return img.convert("RGB")


def check_image(path: str) -> str | None:
    """Why `path` is unreadable (PIL's cheap check, no full decode), or None when it looks fine."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as exc:  # PIL raises many types (OSError, SyntaxError, struct.error...)
        return _reason(exc)
    return None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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
    """Resize the shorter side to size / 0.875, centre-crop to size: uint8 (3, size, size)."""
    img = TF.resize(img, [int(size / EVAL_CROP_FRACTION)], InterpolationMode.BICUBIC)
    return TF.pil_to_tensor(TF.center_crop(img, [size, size]))


def _augment_seed(seed: int, epoch: int, index: int) -> int:
    # SeedSequence mixes the three numbers well; neighbouring indices get unrelated streams
    state = np.random.SeedSequence([seed % 2**64, epoch, index]).generate_state(2, np.uint32)
    return int(state[0]) << 32 | int(state[1])


class FolderImages(Dataset):
    """One split of an image tree: `(uint8 (3, S, S), label)`, augmented or centre-resized."""

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
    ) -> None:
        self.paths = list(paths)
        self.labels = list(labels)
        self.image_size = image_size
        self.augment = augment
        self.crop_scale = crop_scale
        self.hflip = hflip
        self.seed = seed
        self.on_bad_image = on_bad_image
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
                        f"cannot read image {self.paths[j]} ({_reason(exc)}); {BAD_IMAGE_HINT}"
                    ) from None
                self.bad_indices.add(j)
                warnings.warn(
                    f"replaced unreadable image {self.paths[j]} ({_reason(exc)}) by another",
                    stacklevel=2,
                )
                continue
            if step:
                self.num_replaced += 1
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


def list_classes(split_dir: Path) -> list[str]:
    return sorted(
        e.name for e in os.scandir(split_dir) if e.is_dir() and not e.name.startswith(".")
    )


def _is_image(name: str) -> bool:
    return not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS)


def list_images(split_dir: Path, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    """All image files under `split_dir/CLASS/` (any depth), sorted, with class indices."""
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        class_dir = split_dir / name
        if not class_dir.is_dir():
            continue  # a val/ tree may lack some of train/'s classes
        for dirpath, dirnames, filenames in os.walk(class_dir, followlinks=True):
            dirnames.sort()  # os.walk order is the file system's; sort for a fixed order
            for f in sorted(filenames):
                if _is_image(f):
                    paths.append(os.path.join(dirpath, f))
                    labels.append(label)
    return paths, labels


def find_layout(root: Path, shown: str) -> tuple[Path, Path | None]:
    """(train dir, held-out dir or None when the tree must be split)."""
    if not root.is_dir():
        raise DataError(
            f"folder dataset: {shown} is not a directory; set data.root=DIR ({LAYOUT_HINT})"
        )
    train = root / "train"
    if not train.is_dir():
        return root, None
    for name in ("val", "test"):
        if (root / name).is_dir():
            return train, root / name
    return train, None


def read_split(split_dir: Path, classes: Sequence[str]) -> tuple[list[str], list[int]]:
    paths, labels = list_images(split_dir, classes)
    if not paths:
        raise DataError(
            f"folder dataset: no images ({', '.join(IMAGE_EXTENSIONS)}) under {split_dir}; {LAYOUT_HINT}"
        )
    return paths, labels


def hold_out(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Seeded per-class split of indices: (kept, held out); classes of one image stay in train."""
    rng = np.random.default_rng(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(y, []).append(i)
    kept: list[int] = []
    held: list[int] = []
    for y in sorted(by_class):
        idx = by_class[y]
        n_held = max(1, round(fraction * len(idx))) if len(idx) > 1 else 0
        order = rng.permutation(len(idx))
        held += [idx[k] for k in order[:n_held]]
        kept += [idx[k] for k in order[n_held:]]
    return sorted(kept), sorted(held)


def _first_n(n: int | None, total: int, seed: int) -> list[int]:
    if n is None or n >= total:
        return list(range(total))
    return sorted(np.random.default_rng(seed).permutation(total)[:n].tolist())


def drop_unreadable(
    paths: list[str], labels: list[int], on_bad_image: str, where: str
) -> tuple[list[str], list[int]]:
    """Check every file with PIL (threaded); drop bad ones with one warning, or raise."""
    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        reasons = list(pool.map(check_image, paths))
    bad = [i for i, r in enumerate(reasons) if r is not None]
    if not bad:
        return paths, labels
    first = paths[bad[0]]
    if on_bad_image == "error":
        raise DataError(f"cannot read image {first} ({reasons[bad[0]]}); {BAD_IMAGE_HINT}")
    warnings.warn(
        f"skipped {len(bad)} unreadable images under {where} (first: {first}: {reasons[bad[0]]})",
        stacklevel=2,
    )
    dropped = set(bad)
    keep = [i for i in range(len(paths)) if i not in dropped]
    return [paths[i] for i in keep], [labels[i] for i in keep]


Files = tuple[list[str], list[int]]  # paths, class indices


def list_tree(root: Path, shown: str, seed: int) -> tuple[list[str], Files, Files]:
    """Class names, train files and held-out files of the tree at `root`."""
    train_dir, test_dir = find_layout(root, shown)
    classes = list_classes(train_dir)
    if not classes:
        loose = any(_is_image(e.name) for e in os.scandir(train_dir) if e.is_file())
        fix = f"move them into {train_dir}/CLASS/ folders" if loose else LAYOUT_HINT
        found = "images but no class folders" if loose else "no class folders"
        raise DataError(f"folder dataset: {train_dir} holds {found}; {fix}")
    paths, labels = read_split(train_dir, classes)
    if test_dir is None:
        kept, held = hold_out(labels, HELD_OUT_FRACTION, seed)
        train = [paths[i] for i in kept], [labels[i] for i in kept]
        return classes, train, ([paths[i] for i in held], [labels[i] for i in held])
    extra = sorted(set(list_classes(test_dir)) - set(classes))
    if extra:
        raise DataError(
            f"folder dataset: {test_dir} has class folders missing from {train_dir}: "
            f"{', '.join(extra[:5])}"
        )
    return classes, (paths, labels), read_split(test_dir, classes)


def native_size(paths: Sequence[str]) -> int | None:
    """Shorter side of the commonest image size among up to `SIZE_SAMPLE` files spread over
    `paths` (headers only, no decode); None when none of them opens."""
    step = max(1, len(paths) // SIZE_SAMPLE)
    sizes = []
    for path in paths[::step][:SIZE_SAMPLE]:
        try:
            with Image.open(path) as img:
                sizes.append(img.size)
        except Exception:  # unreadable files are reported when the split is loaded
            continue
    if not sizes:
        return None
    (w, h), _ = Counter(sizes).most_common(1)[0]
    return min(w, h)


def memory_size(data_cfg: DataConfig, paths: Sequence[str]) -> int | None:
    """The side at which a split is held in memory, or None to stream it (see module docstring)."""
    if data_cfg.in_memory is False:
        return None
    native = native_size(paths)
    size = data_cfg.image_size or native
    if size is None or native is None:
        return None  # nothing opens: the streaming path reports the files
    fits = len(paths) * 3 * size * size <= MEMORY_LIMIT
    if data_cfg.in_memory is None:
        return size if size <= SMALL_SIDE and native <= SMALL_SIDE and fits else None
    if not fits:
        raise DataError(
            f"folder dataset: {len(paths)} images of {size} px exceed the {MEMORY_LIMIT >> 20} MiB "
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
        return _reason(exc)


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
        keep = _first_n(n, len(paths), seed)
        files.append(([paths[i] for i in keep], [labels[i] for i in keep]))
    size = memory_size(data_cfg, files[0][0] + files[1][0])
    if size is not None:
        return _in_memory(files, len(classes), size, data_cfg, verify_limit)
    splits = []
    for name, (paths, labels) in zip(("train", "test"), files, strict=True):
        if len(paths) <= verify_limit:
            paths, labels = drop_unreadable(paths, labels, data_cfg.on_bad_image, data_cfg.root)
        if not paths:
            raise DataError(
                f"folder dataset: no readable images left for a {name} split under {data_cfg.root}; "
                "add images (or a val/ folder when the tree is split here)"
            )
        splits.append(_streaming(paths, labels, len(classes), data_cfg))
    return Splits(train=splits[0], test=splits[1])


def _in_memory(
    files: list[Files], num_classes: int, size: int, data_cfg: DataConfig, verify_limit: int
) -> Splits:
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


def _streaming(
    paths: list[str], labels: list[int], num_classes: int, data_cfg: DataConfig
) -> StreamingSet:
    size = data_cfg.image_size or DEFAULT_SIZE

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
        )

    return StreamingSet(
        train_dataset=dataset(augment=data_cfg.augment is not False),
        eval_dataset=dataset(augment=False),
        num_classes=num_classes,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        channels=3,
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
