"""The probes read the checkpoint's mask: a run trained at ratio 0.5 is probed at 0.5, not at a
default, by the per-model probes and by Cao's question experiments alike."""

import json

import pytest

from maelab.config import MASK_RATIO
from maelab.masking import num_keep
from maelab.probes.interpolation import knockout_base_ratio
from maelab.probes.runner import load_target, probe_checkpoint
from maelab.run_records import question_file
from tests.evaluation.conftest import pretrain_tiny

RATIO = 0.5
assert RATIO != MASK_RATIO  # the test must tell the checkpoint's ratio from the default


@pytest.fixture(scope="module")
def half_ckpt(tmp_path_factory):
    return pretrain_tiny(tmp_path_factory.mktemp("half"), f"mask.ratio={RATIO}")


def test_cao_probes_use_the_checkpoints_ratio(half_ckpt, tmp_path) -> None:
    target = load_target(half_ckpt, max_images=16)
    assert target.mask.ratio == RATIO
    names = ["low_rank", "stability", "interpolation", "Q5"]
    run = probe_checkpoint(half_ckpt, tmp_path, names, max_images=16)
    assert not run.skipped
    assert run.records["low_rank"]["result"]["mask_ratio"] == RATIO
    inter = run.records["interpolation"]["result"]
    assert inter["attention"]["mask_ratio"] == RATIO
    grid = target.model.arch.grid_size**2
    # the knock-out's base keeps 4 patches more than training did, at the checkpoint's ratio
    assert inter["knockout"]["mask_ratio"] == pytest.approx(knockout_base_ratio(grid, RATIO, 4))
    q5 = json.loads(question_file(tmp_path, "Q5").read_text())["result"]
    assert q5["details"]["visible"] == num_keep(grid, RATIO) + 4  # 8 + 4 of 16, not 4 + 4


def test_an_option_still_overrides_the_checkpoints_ratio(half_ckpt, tmp_path) -> None:
    opts = {"low_rank": {"mask_ratio": 0.25}}
    run = probe_checkpoint(half_ckpt, tmp_path, ["low_rank"], opts, max_images=8)
    assert run.records["low_rank"]["result"]["mask_ratio"] == 0.25
