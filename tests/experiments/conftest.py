"""A tiny sweep base config: a 32-wide model, 64 images, 2 steps per run (about a second)."""

import pytest
import yaml

TINY_BASE = {
    "data": {"name": "synthetic", "num_train": 64, "num_test": 32, "num_workers": 0},
    "model": {"preset": "micro", "embed_dim": 32, "depth": 1, "num_heads": 2,
              "decoder_embed_dim": 32, "decoder_depth": 1, "decoder_num_heads": 2},
    "mask": {"strategy": "block", "ratio": 0.75, "unit": 4},
    "train": {"epochs": 1, "batch_size": 32, "blr": 1e-3, "log_every": 1, "threads": 1},
}  # fmt: skip
TINY_EVAL = {
    "linear_probe": {"epochs": 2, "warmup_epochs": 0},
    "view_images": 32,
    "id_max_images": 32,
}


@pytest.fixture
def tiny_yaml(tmp_path):
    """Path of a YAML with the tiny base config and a sweep section (no grid)."""
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY_BASE, "sweep": {"eval": TINY_EVAL, "baselines": False}}))
    return path
