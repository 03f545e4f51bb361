"""Image trees on disk: layouts, odd image modes, unreadable files, deterministic augmentation."""

from __future__ import annotations

import io
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from maelab.config import DataConfig
from maelab.data.base import DATASETS, StreamingSet
from maelab.data.folder import (
    IMAGENET_MEAN,
    FolderImages,
    build_folder,
    eval_view,
    sample_crop,
)
from maelab.data.image_tree import hold_out, load_rgb
from maelab.errors import DataError

SIZE = 16


def _rgb(seed: int, w: int = 40, h: int = 30) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _jpeg_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def write_class(folder: Path, n: int, seed: int, ext: str = "png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        _rgb(seed * 100 + i, 30 + 3 * i, 28 + i).save(folder / f"img{i:02d}.{ext}")


def write_odd_images(folder: Path) -> None:
    """Grey, RGBA, palette-with-transparency, 16-bit grey, a truncated JPEG and a text '.jpg'."""
    folder.mkdir(parents=True, exist_ok=True)
    _rgb(1).convert("L").save(folder / "grey.png")
    rgba = _rgb(2).convert("RGBA")
    rgba.putalpha(128)
    rgba.save(folder / "alpha.png")
    pal = _rgb(3).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    pal.info["transparency"] = 0
    pal.save(folder / "palette.png", transparency=0)
    deep = np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50
    Image.fromarray(deep).save(folder / "deep16.png")
    data = _jpeg_bytes(_rgb(4))
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (folder / "zz_text.jpg").write_text("not an image")
    (folder / "notes.txt").write_text("ignored: not an image extension")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """train/{cat,dog} and val/{cat,dog}; dog holds the odd and broken files."""
    write_class(tmp_path / "train" / "cat", 4, seed=1)
    write_class(tmp_path / "train" / "dog", 3, seed=2, ext="jpg")
    write_odd_images(tmp_path / "train" / "dog")
    write_class(tmp_path / "val" / "cat", 2, seed=3)
    write_class(tmp_path / "val" / "dog", 2, seed=4, ext="jpeg")
    return tmp_path


def cfg(root: Path, **kw) -> DataConfig:
    """The streaming path (these images are small enough to be held in memory otherwise)."""
    kw.setdefault("in_memory", False)
    return DataConfig(name="folder", root=str(root), image_size=SIZE, **kw)


def build_quiet(root: Path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_folder(cfg(root, **kw))


def test_layout_and_bad_file_scan(tree: Path) -> None:
    with pytest.warns(UserWarning) as rec:
        s = build_folder(cfg(tree))
    messages = [str(w.message) for w in rec]
    bad = tree / "train" / "dog" / "zz_text.jpg"
    assert messages == [
        f"skipped 1 unreadable images under {tree} (first: {bad}: cannot identify image file '{bad}')"
    ]
    assert isinstance(s.train, StreamingSet) and isinstance(s.test, StreamingSet)
    # 4 cats + 3 dogs + grey, alpha, palette, deep16, truncated (passes the cheap check)
    assert len(s.train) == 12 and len(s.test) == 4
    assert s.train.num_classes == 2 and s.train.channels == 3 and s.train.image_size == SIZE
    assert s.train.mean == IMAGENET_MEAN
    assert s.train.train_dataset.labels == [0] * 4 + [1] * 8


def test_items_are_uint8_chw_with_labels(tree: Path) -> None:
    s = build_quiet(tree)
    for ds in (s.train.train_dataset, s.train.eval_dataset, s.test.eval_dataset):
        x, y = ds[0]
        assert x.dtype == torch.uint8 and x.shape == (3, SIZE, SIZE) and isinstance(y, int)
    loader = torch.utils.data.DataLoader(s.test.eval_dataset, batch_size=4)
    x, y = next(iter(loader))
    assert x.shape == (4, 3, SIZE, SIZE) and y.tolist() == [0, 0, 1, 1]


def test_truncated_image_is_replaced_at_load_time(tree: Path) -> None:
    ds = build_quiet(tree).train.eval_dataset
    i = ds.paths.index(str(tree / "train" / "dog" / "truncated.jpg"))
    with pytest.warns(
        UserWarning, match=r"replaced unreadable image .*truncated.jpg \(image file is"
    ):
        x, y = ds[i]
    wrapped = ds[0] if i + 1 == len(ds) else ds[i + 1]
    assert torch.equal(x, wrapped[0]) and y == wrapped[1]  # the next file stands in
    assert ds.num_replaced == 1 and ds.bad_indices == {i}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ds[i]  # known bad: no second warning, no second decode attempt
    assert ds.num_replaced == 2


def test_error_mode_names_the_file_and_the_switch(tree: Path) -> None:
    with pytest.raises(DataError) as err:
        build_folder(cfg(tree, on_bad_image="error"))
    bad = tree / "train" / "dog" / "zz_text.jpg"
    assert str(err.value) == (
        f"cannot read image {bad} (cannot identify image file '{bad}'); "
        "fix or remove it, or pass data.on_bad_image=skip"
    )
    (bad).unlink()
    ds = build_folder(cfg(tree, on_bad_image="error")).train.train_dataset
    i = ds.paths.index(str(tree / "train" / "dog" / "truncated.jpg"))
    with pytest.raises(
        DataError, match=r"truncated.jpg \(image file is truncated.*on_bad_image=skip$"
    ):
        ds[i]


def test_large_trees_skip_the_scan_and_fall_back_at_load_time(tree: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = build_folder(cfg(tree), verify_limit=5)  # 13 files > 5: no scan, no warning
    ds = s.train.train_dataset
    assert len(ds) == 13
    with pytest.warns(UserWarning):
        items = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (3, SIZE, SIZE) for x, _ in items)
    assert ds.num_replaced == 2 and len(ds.bad_indices) == 2


def test_odd_modes_become_rgb(tree: Path) -> None:
    dog = tree / "train" / "dog"
    grey = np.asarray(load_rgb(str(dog / "grey.png")))
    assert grey.shape == (30, 40, 3) and (grey[..., 0] == grey[..., 2]).all()
    assert load_rgb(str(dog / "alpha.png")).mode == "RGB"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL warns if palette transparency is converted directly
        assert load_rgb(str(dog / "palette.png")).mode == "RGB"
    deep = np.asarray(load_rgb(str(dog / "deep16.png")))[..., 0].astype(int)
    expected = np.round(np.arange(1200).reshape(30, 40) * 50 * 255 / 65535)
    assert np.abs(deep - expected).max() <= 1  # scaled, not clipped to white


@pytest.mark.parametrize("seed", [0, 1, 7, 123])
@pytest.mark.parametrize("hw", [(30, 40), (224, 160), (500, 12)])  # the last forces the fallback
def test_sample_crop_matches_torchvision(seed: int, hw: tuple[int, int]) -> None:
    scale, ratio = (0.2, 1.0), (3 / 4, 4 / 3)
    torch.manual_seed(seed)
    ref = T.RandomResizedCrop.get_params(torch.zeros(3, *hw), list(scale), list(ratio))
    ours = sample_crop(*hw, scale, ratio, torch.Generator().manual_seed(seed))
    assert ours == tuple(ref)


def test_eval_view_matches_torchvision(tree: Path) -> None:
    img = load_rgb(str(tree / "val" / "cat" / "img01.png"))
    ref = T.Compose(
        [
            T.Resize(int(SIZE / 0.875), interpolation=T.InterpolationMode.BICUBIC),
            T.CenterCrop(SIZE),
            T.PILToTensor(),
        ]
    )(img)
    assert torch.equal(eval_view(img, SIZE), ref)


def test_augmentation_is_a_function_of_seed_epoch_index(tree: Path) -> None:
    s = build_quiet(tree)
    ds = s.train.train_dataset
    again = pickle.loads(pickle.dumps(ds))  # as a DataLoader worker or a resumed run sees it
    first = [ds[i][0] for i in range(4)]
    assert all(torch.equal(a, again[i][0]) for i, a in enumerate(first))
    ds.set_epoch(1)
    assert any(not torch.equal(a, ds[i][0]) for i, a in enumerate(first))
    ds.set_epoch(0)
    assert all(torch.equal(a, ds[i][0]) for i, a in enumerate(first))
    other = build_quiet(tree, seed=1).train.train_dataset
    assert any(not torch.equal(a, other[i][0]) for i, a in enumerate(first))


def test_crop_scale_and_flip_are_honoured(tree: Path) -> None:
    img = load_rgb(str(tree / "train" / "cat" / "img00.png"))
    full = FolderImages(["x"], [0], SIZE, augment=True, crop_scale=(1.0, 1.0), hflip=False)
    full._view(img, 0)  # no error with a degenerate scale range
    flips = FolderImages(["x"], [0], SIZE, augment=True, crop_scale=(1.0, 1.0), hflip=True)
    views = [flips._view(img, i) for i in range(16)]
    plain = full._view(img, 0)
    flipped = sum(torch.equal(v, plain.flip(-1)) for v in views)
    assert 0 < flipped < 16  # area 1.0 and ratio ~1 of a 40x30 image: mostly flip decides


def test_augment_false_gives_eval_views(tree: Path) -> None:
    s = build_quiet(tree, augment=False)
    assert torch.equal(s.train.train_dataset[0][0], s.train.eval_dataset[0][0])


def test_single_tree_is_split_per_class(tmp_path: Path) -> None:
    write_class(tmp_path / "a", 10, seed=1)
    write_class(tmp_path / "b", 20, seed=2)
    write_class(tmp_path / "c", 1, seed=3)
    s = build_folder(cfg(tmp_path))
    train, test = s.train.eval_dataset, s.test.eval_dataset
    assert sorted(test.labels) == [0, 1, 1]  # 10% of each class; a lone image stays in train
    assert len(train) == 28 and not set(train.paths) & set(test.paths)
    assert test.paths == build_folder(cfg(tmp_path)).test.eval_dataset.paths
    assert test.paths != build_folder(cfg(tmp_path, seed=3)).test.eval_dataset.paths


def test_train_only_tree_is_split_too(tmp_path: Path) -> None:
    write_class(tmp_path / "train" / "a", 10, seed=1)
    s = build_folder(cfg(tmp_path))
    assert len(s.train) == 9 and len(s.test) == 1


def test_hold_out_counts() -> None:
    kept, held = hold_out([0] * 5 + [1] * 30 + [2], 0.1, seed=0)
    assert len(held) == 1 + 3 and sorted(kept + held) == list(range(36))


def test_num_train_and_num_test_subset(tree: Path) -> None:
    s = build_quiet(tree, num_train=5, num_test=3)
    assert len(s.train) == 5 and len(s.test) == 3


def test_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(DataError) as err:
        build_folder(cfg(missing))
    assert str(err.value) == (
        f"folder dataset: {missing} is not a directory; set data.root=DIR (expected "
        "DIR/train/CLASS/IMAGE and DIR/val/CLASS/IMAGE, or DIR/CLASS/IMAGE)"
    )


def test_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"holds no class folders; expected DIR/train/CLASS"):
        build_folder(cfg(tmp_path))


def test_images_without_class_folders(tmp_path: Path) -> None:
    _rgb(0).save(tmp_path / "a.png")
    with pytest.raises(DataError, match=r"holds images but no class folders; move them into"):
        build_folder(cfg(tmp_path))


def test_class_folders_without_images(tmp_path: Path) -> None:
    (tmp_path / "train" / "a").mkdir(parents=True)
    (tmp_path / "train" / "a" / "readme.txt").write_text("x")
    with pytest.raises(DataError, match=r"^folder dataset: no images \(.jpg, .*\) under .*train"):
        build_folder(cfg(tmp_path))


def test_only_unreadable_images(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    for i in range(3):
        (tmp_path / "a" / f"{i}.jpg").write_text("text")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        with pytest.raises(DataError, match="no readable images left for a train split"):
            build_folder(cfg(tmp_path))


def test_val_class_missing_from_train(tree: Path) -> None:
    write_class(tree / "val" / "emu", 1, seed=9)
    with pytest.raises(DataError, match=r"val has class folders missing from .*train: emu"):
        build_quiet(tree)


def test_registered() -> None:
    assert DATASETS["folder"].build is build_folder


def test_streamed_grey_tree_is_one_channel_with_its_own_stats(tmp_path: Path) -> None:
    """Large grey images (some saved as RGB) stream as one channel, standardised with the mean
    and std of their training images, not ImageNet's."""
    rng = np.random.default_rng(5)
    pixels = {}
    for split, n in (("train", 3), ("val", 2)):
        d = tmp_path / split / "a"
        d.mkdir(parents=True)
        for i in range(n):
            arr = rng.integers(0, 120 if split == "train" else 256, (90, 100), dtype=np.uint8)
            img = Image.fromarray(arr)
            (img.convert("RGB") if i % 2 else img).save(d / f"{i}.png")
            pixels[split, i] = arr
    s = build_folder(DataConfig(name="folder", root=str(tmp_path)))  # 100 px > 64: streamed
    assert isinstance(s.train, StreamingSet) and s.train.channels == 1 and s.test.channels == 1
    views = torch.stack([eval_view(Image.fromarray(pixels["train", i]), 224) for i in range(3)])
    x = views.double() / 255
    assert s.train.mean == pytest.approx((x.mean().item(),)) and s.train.mean != IMAGENET_MEAN
    assert s.train.std == pytest.approx((x.std().item(),))
    assert s.test.mean == s.train.mean  # from the train split only
    for ds in (s.train.train_dataset, s.train.eval_dataset):
        img, _ = ds[1]
        assert img.shape == (1, 224, 224) and img.dtype == torch.uint8
    assert torch.equal(s.train.eval_dataset[1][0], views[1])


def test_streamed_colour_tree_keeps_imagenet_stats(tree: Path) -> None:
    s = build_quiet(tree)
    assert s.train.channels == 3 and s.train.mean == IMAGENET_MEAN
    assert s.train.eval_dataset[0][0].shape == (3, SIZE, SIZE)
