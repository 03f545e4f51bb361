"""`maelab analyze probes / collapse` on a run trained on a small grey ImageFolder, with data
overrides; streamed splits are read into memory for the probes (they index images)."""

import json

import numpy as np
import torch
from PIL import Image

from maelab.cli import main
from maelab.data.base import StreamingSet
from maelab.probes.inputs import in_memory
from tests.evaluation.conftest import pretrain_tiny


def grey_folder(root, per_class: int = 12) -> None:
    """root/{train,val}/{a,b}/*.png: 16 px grey squares, bright or dark by class."""
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for c, level in (("a", 60), ("b", 190)):
            d = root / split / c
            d.mkdir(parents=True)
            for i in range(per_class):
                px = np.clip(level + rng.normal(0, 20, (16, 16)), 0, 255).astype(np.uint8)
                Image.fromarray(px, mode="L").save(d / f"{i}.png")


def test_analyze_on_a_streamed_grey_folder_run(tmp_path, capsys):
    grey_folder(tmp_path / "imgs")
    data = [f"data.root={tmp_path / 'imgs'}", "data.num_workers=0", "data.image_size=16"]
    ckpt = pretrain_tiny(tmp_path / "run", "data.name=folder", *data, "data.num_train=null",
                         "data.num_test=null", "train.batch_size=8")  # fmt: skip
    out = tmp_path / "probes"
    args = ["analyze", "probes", "--ckpt", str(ckpt), "--out", str(out), "--probe", "position"]
    assert main([*args, *data]) == 0
    record = json.loads((out / "position.json").read_text())
    assert record["probe"] == "position"
    assert main([*args, "train.epochs=3"]) == 2  # only data.* keys apply here
    assert "only data.*" in capsys.readouterr().err
    coll = ["analyze", "collapse", "--ckpt", str(ckpt), "--out", str(tmp_path / "c"), "--images",
            "16", *data]  # fmt: skip
    assert main(coll) == 0


def test_in_memory_reads_a_streamed_split():
    pairs = [(torch.full((1, 8, 8), i, dtype=torch.uint8), i % 2) for i in range(10)]
    split = StreamingSet(pairs, pairs, num_classes=2, mean=(0.5,), std=(0.2,), channels=1,
                         image_size=8)  # fmt: skip
    images = in_memory(split, limit=6)
    assert images.images.shape == (6, 1, 8, 8) and images.images.dtype == torch.uint8
    assert images.labels.tolist() == [0, 1, 0, 1, 0, 1] and images.images[5, 0, 0, 0] == 5
    assert in_memory(images) is images
