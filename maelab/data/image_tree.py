"""Files of an ImageFolder tree: its layout, class folders, seeded hold-out, and unreadable files.

Layout: `root/train/CLASS/*.jpg` plus `root/val/CLASS/*.jpg` (or `root/test/`); or one tree
`root/CLASS/*.jpg` (or only `root/train/`), split here with a seeded, per-class hold-out.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from maelab.errors import DataError

HELD_OUT_FRACTION = 0.1  # of each class, when the tree has no val/ or test/ folder
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
LAYOUT_HINT = "expected DIR/train/CLASS/IMAGE and DIR/val/CLASS/IMAGE, or DIR/CLASS/IMAGE"
BAD_IMAGE_HINT = "fix or remove it, or pass data.on_bad_image=skip"


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
        return unreadable_reason(exc)
    return None


def unreadable_reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


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


def first_n(n: int | None, total: int, seed: int) -> list[int]:
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
