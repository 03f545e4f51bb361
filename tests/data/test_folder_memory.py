"""Trees of small images: held in memory at native size, grey as one channel, own statistics."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from maelab.config import Config, DataConfig
from maelab.data import folder_memory
from maelab.data.base import ImageSet, StreamingSet
from maelab.data.export import write_image_folder
from maelab.data.folder import IMAGENET_MEAN, build_folder
from maelab.data.folder_memory import is_grey, native_size
from maelab.errors import DataError
from maelab.recipes import apply_recipe


def _pixels(n: int, size: int | tuple[int, int], channels: int, seed: int) -> np.ndarray:
    h, w = (size, size) if isinstance(size, int) else size
    shape = (n, h, w) if channels == 1 else (n, h, w, channels)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_tree(root: Path, size: int | tuple[int, int] = 12, channels: int = 1, n: int = 6) -> dict:
    """train/{a,b} with n images each and val/{a,b} with 2; returns the pixels written."""
    written = {}
    for split, count in (("train", n), ("val", 2)):
        for c, name in enumerate("ab"):
            d = root / split / name
            d.mkdir(parents=True)
            arr = _pixels(count, size, channels, seed=10 * c + len(split))
            for i, a in enumerate(arr):
                Image.fromarray(a).save(d / f"{i:02d}.png")
            written[split, name] = arr
    return written


def data(root: Path, **kw) -> DataConfig:
    return DataConfig(name="folder", root=str(root), **kw)


def test_small_grey_tree_is_held_in_memory_at_native_size(tmp_path: Path) -> None:
    px = write_tree(tmp_path, size=12)
    s = build_folder(data(tmp_path))
    assert isinstance(s.train, ImageSet) and isinstance(s.test, ImageSet)
    assert s.train.images.dtype == torch.uint8 and s.train.images.shape == (12, 1, 12, 12)
    assert s.test.images.shape == (4, 1, 12, 12) and s.train.image_size == 12
    # exact pixels, in sorted file order, with their class indices
    expected = np.concatenate([px["train", "a"], px["train", "b"]])
    assert np.array_equal(s.train.images[:, 0].numpy(), expected)
    assert s.train.labels.tolist() == [0] * 6 + [1] * 6 and s.train.num_classes == 2
    # the data's own statistics (train split only), not ImageNet's
    x = expected.astype(np.float64) / 255
    assert s.train.mean == pytest.approx((x.mean(),)) and s.train.std == pytest.approx(
        (x.std(ddof=1),)
    )
    assert s.test.mean == s.train.mean


def test_grey_content_saved_as_rgb_is_one_channel(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for split in ("train", "val"):
        d = root / split / "a"
        d.mkdir(parents=True)
        for i, a in enumerate(_pixels(3, 10, 1, seed=1 if split == "train" else 9)):
            Image.fromarray(a).convert("RGB").save(d / f"{i}.png")
    s = build_folder(data(root))
    assert s.train.channels == 1 and s.test.channels == 1


def test_colour_tree_keeps_three_channels_with_its_own_stats(tmp_path: Path) -> None:
    px = write_tree(tmp_path, size=10, channels=3)
    s = build_folder(data(tmp_path))
    assert isinstance(s.train, ImageSet) and s.train.channels == 3
    x = np.concatenate([px["train", "a"], px["train", "b"]]).astype(np.float64) / 255
    assert s.train.mean == pytest.approx(tuple(x.mean(axis=(0, 1, 2))))
    assert s.train.mean != IMAGENET_MEAN


def test_is_grey_tolerates_rounding_only() -> None:
    grey = torch.full((2, 3, 4, 4), 100, dtype=torch.uint8)
    assert is_grey(grey)
    grey[1, 2, 0, 0] = 102
    assert is_grey(grey)
    grey[1, 2, 0, 0] = 103
    assert not is_grey(grey)


def test_non_square_images_are_centre_cropped_not_squashed(tmp_path: Path) -> None:
    for split in ("train", "val"):
        d = tmp_path / split / "a"
        d.mkdir(parents=True)
        arr = np.zeros((10, 14), dtype=np.uint8)
        arr[:, 2:12] = 200  # a 10x10 bright centre in a 10x14 image
        Image.fromarray(arr).save(d / "0.png")
    s = build_folder(data(tmp_path))
    assert s.train.images.shape == (1, 1, 10, 10) and (s.train.images == 200).all()


def test_image_size_resizes_the_held_images(tmp_path: Path) -> None:
    write_tree(tmp_path, size=12)
    s = build_folder(data(tmp_path, image_size=8))
    assert isinstance(s.train, ImageSet) and s.train.images.shape[-2:] == (8, 8)


def test_native_size_is_the_commonest_shorter_side(tmp_path: Path) -> None:
    paths = []
    for i, (w, h) in enumerate([(28, 28), (28, 28), (30, 20), (28, 28)]):
        paths.append(str(tmp_path / f"{i}.png"))
        Image.new("L", (w, h)).save(paths[-1])
    (tmp_path / "bad.png").write_text("no image")
    assert native_size(paths + [str(tmp_path / "bad.png")]) == 28
    assert native_size([str(tmp_path / "bad.png")]) is None


def test_large_images_still_stream_at_224_with_imagenet_stats(tmp_path: Path) -> None:
    write_tree(tmp_path, size=80, channels=3, n=2)
    s = build_folder(data(tmp_path))
    assert isinstance(s.train, StreamingSet)
    assert s.train.image_size == 224 and s.train.channels == 3 and s.train.mean == IMAGENET_MEAN


def test_in_memory_switch(tmp_path: Path) -> None:
    write_tree(tmp_path, size=80, channels=3, n=2)
    s = build_folder(data(tmp_path, in_memory=True, image_size=16))
    assert isinstance(s.train, ImageSet) and s.train.images.shape == (4, 3, 16, 16)
    small = tmp_path / "small"
    write_tree(small, size=12)
    assert isinstance(build_folder(data(small, in_memory=False)).train, StreamingSet)


def test_memory_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, size=12)
    monkeypatch.setattr(folder_memory, "MEMORY_LIMIT", 100)
    assert isinstance(build_folder(data(tmp_path)).train, StreamingSet)
    with pytest.raises(
        DataError, match=r"exceed the 0 MiB held in memory; pass data.in_memory=false"
    ):
        build_folder(data(tmp_path, in_memory=True))


def _with_bad_files(root: Path) -> tuple[Path, Path]:
    write_tree(root, size=12)
    bad = root / "train" / "a" / "03.png"
    bad.write_bytes(b"not a png")
    cut = root / "train" / "b" / "cut.png"
    good = (root / "train" / "b" / "00.png").read_bytes()
    cut.write_bytes(good[: len(good) // 2])  # truncated: passes a header check, fails to decode
    return bad, cut


def test_unreadable_files_are_dropped_with_one_warning(tmp_path: Path) -> None:
    bad, _ = _with_bad_files(tmp_path)
    with pytest.warns(UserWarning) as rec:
        s = build_folder(data(tmp_path))
    assert [str(w.message) for w in rec] == [
        f"skipped 2 unreadable images under {tmp_path} (first: {bad}: "
        f"cannot identify image file '{bad}')"
    ]
    assert len(s.train) == 11 and s.train.labels.tolist() == [0] * 5 + [1] * 6


def test_unreadable_files_beyond_the_verify_limit_are_replaced(tmp_path: Path) -> None:
    bad, cut = _with_bad_files(tmp_path)
    with pytest.warns(UserWarning) as rec:
        s = build_folder(data(tmp_path), verify_limit=5)
    messages = [str(w.message) for w in rec]
    assert len(messages) == 2 and messages[0].startswith(f"replaced unreadable image {bad} (")
    assert str(cut) in messages[1]
    assert len(s.train) == 13  # the next readable file stands in, as when streaming
    i = 3  # train/a/03.png, sorted after 00..02
    assert torch.equal(s.train.images[i], s.train.images[i + 1])


def test_unreadable_file_in_error_mode_names_it(tmp_path: Path) -> None:
    bad, _ = _with_bad_files(tmp_path)
    with pytest.raises(DataError) as err:
        build_folder(data(tmp_path, on_bad_image="error"))
    assert str(err.value).startswith(f"cannot read image {bad} (cannot identify image file")
    assert str(err.value).endswith("fix or remove it, or pass data.on_bad_image=skip")


def test_export_round_trip(tmp_path: Path) -> None:
    imgs = torch.from_numpy(_pixels(6, 9, 1, seed=3)).unsqueeze(1)
    split = ImageSet(imgs, torch.tensor([0, 1, 2, 0, 1, 2]), 3, (0.5,), (0.2,))
    assert write_image_folder(split, tmp_path, "train", ["x", "y", "z"]) == 6
    write_image_folder(split, tmp_path, "val", ["x", "y", "z"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = build_folder(data(tmp_path))
    order = torch.tensor([0, 3, 1, 4, 2, 5])  # files are read class by class
    assert torch.equal(s.train.images, imgs[order]) and s.train.labels.tolist() == [
        0,
        0,
        1,
        1,
        2,
        2,
    ]
    with pytest.raises(ValueError, match="2 class names for 3 classes"):
        write_image_folder(split, tmp_path, "x", ["a", "b"])


def _mixed_tree(root: Path, photos: int = 1) -> Path:
    """One class folder (split here): one 28 px digit and `photos` 300x200 photos, the photos
    first in file order."""
    d = root / "a"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(photos):
        Image.fromarray(rng.integers(0, 256, (200, 300, 3), dtype=np.uint8)).save(d / f"0{i}.png")
    Image.fromarray(rng.integers(0, 256, (28, 28), dtype=np.uint8)).save(d / "1_digit.png")
    return root


def test_mixed_sizes_tie_trains_at_the_smaller_and_says_so(tmp_path: Path) -> None:
    """One 28 px digit and one 300x200 photo: held at 28 px (small-data recipe), not streamed at
    the paper's 224, with one line naming the sizes and the fix."""
    root = _mixed_tree(tmp_path / "t")
    with pytest.warns(UserWarning) as rec:
        s = build_folder(data(root))
    lines = [str(w.message) for w in rec]
    assert lines == [
        "images of mixed sizes (28 px: 1, 300x200: 1); training at 28 px; "
        "set data.image_size to change"
    ]
    assert isinstance(s.train, ImageSet) and s.train.image_size == 28 and s.test.image_size == 28
    _, line = apply_recipe(Config(data=data(root)), s)
    assert line.startswith("recipe small-data: 1 images of 28 px")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a size the user chose: no line
        assert build_folder(data(root, image_size=20)).train.image_size == 20


def test_mixed_sizes_follow_the_majority(tmp_path: Path) -> None:
    root = _mixed_tree(tmp_path / "t", photos=2)
    with pytest.warns(UserWarning, match=r"\(28 px: 1, 300x200: 2\); training at 224 px"):
        s = build_folder(data(root))
    assert isinstance(s.train, StreamingSet) and s.train.image_size == 224
    census = folder_memory.size_census([str(p) for p in sorted((root / "a").iterdir())])
    assert folder_memory.commonest_side(census) == 200


def test_commonest_side_breaks_ties_towards_the_smaller() -> None:
    census = Counter({(300, 200): 2, (64, 64): 2, (28, 28): 1})
    assert folder_memory.commonest_side(census) == 64
    assert folder_memory.commonest_side(Counter({(40, 30): 1, (30, 40): 1, (32, 30): 1})) == 30
    assert folder_memory.commonest_side(Counter()) is None
