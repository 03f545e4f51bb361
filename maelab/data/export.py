"""Write an in-memory image set as an ImageFolder tree (`root/SPLIT/CLASS/00000.png`).

The inverse of the folder loader for small sets: it makes trees to test and tune the folder
path on real images that need no download (e.g. `digits` at 28 px).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from maelab.data.base import ImageSet


def write_image_folder(
    split: ImageSet, root: str | Path, split_name: str, class_names: Sequence[str] | None = None
) -> int:
    """PNG files `root/split_name/CLASS/NNNNN.png` (grey for one channel); returns the count."""
    names = (
        list(class_names) if class_names is not None else [str(c) for c in range(split.num_classes)]
    )
    if len(names) != split.num_classes:
        raise ValueError(f"{len(names)} class names for {split.num_classes} classes")
    base = Path(root) / split_name
    for name in names:
        (base / name).mkdir(parents=True, exist_ok=True)
    pixels = split.images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C) uint8
    for i, (img, label) in enumerate(zip(pixels, split.labels.tolist(), strict=True)):
        arr = img[..., 0] if img.shape[-1] == 1 else img
        Image.fromarray(np.ascontiguousarray(arr)).save(base / names[label] / f"{i:05d}.png")
    return len(pixels)
