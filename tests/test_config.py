import pytest

from maelab.config import Config, load_config, parse_overrides
from maelab.errors import ConfigError


def test_defaults_validate():
    cfg = Config()
    assert cfg.mask.ratio == 0.75 and cfg.train.betas == (0.9, 0.95)


def test_overrides_parse_yaml_values():
    tree = parse_overrides(
        ["train.epochs=5", "mask.ratio=0.9", "data.hflip=false", "mask.unit=null"]
    )
    assert tree == {
        "train": {"epochs": 5},
        "mask": {"ratio": 0.9, "unit": None},
        "data": {"hflip": False},
    }


def test_files_then_overrides(tmp_path):
    f = tmp_path / "a.yaml"
    f.write_text("train:\n  epochs: 3\n  batch_size: 64\n")
    cfg = load_config([str(f)], ["train.epochs=7"])
    assert cfg.train.epochs == 7 and cfg.train.batch_size == 64


def test_unknown_key_suggests_close_match():
    with pytest.raises(
        ConfigError, match=r"unknown config key 'train.epoch'.*did you mean 'epochs'"
    ):
        load_config(overrides=["train.epoch=3"])


def test_wrong_type_names_field():
    with pytest.raises(ConfigError, match=r"train.batch_size"):
        load_config(overrides=["train.batch_size=abc"])


def test_ratio_range_checked():
    with pytest.raises(ConfigError, match=r"mask.ratio=1.0 must be in \[0, 1\)"):
        load_config(overrides=["mask.ratio=1.0"])
