"""Pretraining on bad image trees: one warning or one error line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_helpers import TINY, cli, error_line

from maelab.data import folder

FOLDER = [
    *TINY,
    "data.name=folder",
    "data.image_size=16",
    "data.num_train=null",
    "data.num_test=null",
]


def _image(seed: int, mode: str = "RGB") -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8))
    return rgb if mode == "RGB" else rgb.convert(mode)


def make_tree(
    root: Path, bad: dict[str, bytes] | None = None, modes: tuple[str, ...] = ("RGB",)
) -> Path:
    """root/train/{a,b}/ with 8 images each (+ `bad` files in train/a), root/val/{a,b}/ with 2."""
    for split, n in (("train", 8), ("val", 2)):
        for c, name in enumerate("ab"):
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(n):
                _image(100 * c + i, modes[i % len(modes)]).save(d / f"{i:02d}.png")
    for name, data in (bad or {}).items():
        (root / "train" / "a" / name).write_bytes(data)
    return root


def _truncated_jpeg() -> bytes:
    import io

    buf = io.BytesIO()
    _image(7).save(buf, "JPEG")
    return buf.getvalue()[:200]


BAD = {"broken.png": b"this is not a png", "cut.jpg": _truncated_jpeg()}


def test_bad_images_are_skipped_with_a_count(tmp_path, capsys):
    root = make_tree(tmp_path / "tree", BAD)
    rc, out, err = cli(
        capsys, "pretrain", *FOLDER, f"data.root={root}", f"run_dir={tmp_path / 'run'}", "--quiet"
    )
    assert rc == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(
        f"maelab: warning: skipped 2 unreadable images under {root} (first: "
    )
    assert str(root / "train" / "a" / "broken.png") in lines[0]


def test_bad_image_stops_the_run_naming_the_file(tmp_path, capsys):
    root = make_tree(tmp_path / "tree", BAD)
    rc, _, err = cli(
        capsys, "pretrain", *FOLDER, f"data.root={root}", "data.on_bad_image=error", "--quiet"
    )
    assert rc == 1
    line = error_line(err)
    assert line.startswith(f"cannot read image {root / 'train' / 'a' / 'broken.png'} (")
    assert line.endswith("; fix or remove it, or pass data.on_bad_image=skip")


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_image_found_while_loading(tmp_path, capsys, monkeypatch, workers):
    """Large trees skip the up-front check; a bad file then surfaces in a DataLoader worker."""
    monkeypatch.setattr(folder.build_folder, "__defaults__", (0,))  # verify_limit=0: no scan
    root = make_tree(tmp_path / "tree", {"00.png": b"garbage"})  # replaces a good image
    run = [
        "pretrain",
        *FOLDER,
        f"data.root={root}",
        f"run_dir={tmp_path / 'run'}",
        f"data.num_workers={workers}",
    ]
    rc, _, err = cli(capsys, *run, "data.on_bad_image=error", "--quiet")
    assert rc == 1
    assert error_line(err).startswith(f"cannot read image {root / 'train' / 'a' / '00.png'} (")
    if workers == 0:  # a worker's warnings go to its own stderr, which capsys does not see
        rc, _, err = cli(capsys, *run, "--quiet")
        assert rc == 0
        assert (
            f"maelab: warning: replaced unreadable image {root / 'train' / 'a' / '00.png'}" in err
        )
        assert "Traceback" not in err


def test_grey_rgba_and_palette_images_are_converted(tmp_path, capsys):
    root = make_tree(tmp_path / "tree", modes=("L", "RGBA", "P", "LA", "RGB", "I;16"))
    rc, out, err = cli(
        capsys, "pretrain", *FOLDER, f"data.root={root}", f"run_dir={tmp_path / 'run'}", "--quiet"
    )
    assert rc == 0 and err == "", err
    assert (tmp_path / "run" / "checkpoints" / "last.pt").exists()


def test_missing_and_empty_dataset_folders(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    no_images = tmp_path / "no_images"
    (no_images / "train" / "cat").mkdir(parents=True)
    loose = tmp_path / "loose"
    loose.mkdir()
    _image(0).save(loose / "x.png")
    cases = {
        tmp_path
        / "missing": "is not a directory; set data.root=DIR (expected DIR/train/CLASS/IMAGE",
        empty: f"folder dataset: {empty} holds no class folders; expected DIR/train/CLASS/IMAGE",
        no_images: f"folder dataset: no images (.jpg, .jpeg, .png, .ppm, .bmp, .pgm, .tif, .tiff, .webp) under {no_images / 'train'}",
        loose: f"folder dataset: {loose} holds images but no class folders; move them into {loose}/CLASS/ folders",
    }
    for root, expected in cases.items():
        rc, _, err = cli(capsys, "pretrain", "--dry-run", *FOLDER, f"data.root={root}")
        assert rc == 1 and expected in error_line(err), err


def test_all_images_unreadable(tmp_path, capsys):
    root = tmp_path / "tree"
    for split in ("train", "val"):
        (root / split / "a").mkdir(parents=True)
        (root / split / "a" / "x.png").write_bytes(b"nope")
    rc, _, err = cli(capsys, "pretrain", "--dry-run", *FOLDER, f"data.root={root}")
    assert rc == 1
    assert "no readable images left for a train split" in error_line(err, warnings=True)


def test_missing_download_dataset(tmp_path, capsys):
    rc, _, err = cli(
        capsys, "pretrain", "--dry-run", *TINY, "data.name=cifar10", f"data.root={tmp_path}"
    )
    assert rc == 1
    assert error_line(err) == (
        f"cifar10 not found under {tmp_path} (no cifar-10-batches-py/data_batch_1); "
        "pass data.download=true or data.root=DIR"
    )
