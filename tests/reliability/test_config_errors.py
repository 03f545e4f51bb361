"""Bad configurations end with exit code 2 and one line naming the field and the fix."""

from __future__ import annotations

import pytest
from reliability_helpers import TINY, cli, cli_process, error_line

CASES = {
    # unknown keys, with the closest valid name
    "unknown_top": (["trian.epochs=3"], "unknown config key 'trian' (did you mean 'train'?)"),
    "unknown_nested": (
        ["train.epoch=3"],
        "unknown config key 'train.epoch' (did you mean 'epochs'?)",
    ),
    "unknown_deep": (
        ["data.synthetic.imge_size=8"],
        "unknown config key 'data.synthetic.imge_size' (did you mean 'image_size'?)",
    ),
    "value_as_section": (
        ["train.epochs.x=1"],
        "config key 'train.epochs.x': 'epochs' is a value, not a section",
    ),
    "no_equals": (
        ["train.epochs"],
        "override 'train.epochs' must look like key=value (e.g. train.epochs=5)",
    ),
    # wrong types
    "type_int": (
        ["train.batch_size=abc"],
        "bad config value for 'train.batch_size': Input should be a valid integer",
    ),
    "type_fraction": (["train.epochs=3.5"], "got a number with a fractional part (got 3.5)"),
    "type_float": (
        ["mask.ratio=high"],
        "bad config value for 'mask.ratio': Input should be a valid number",
    ),
    "type_bool": (
        ["data.hflip=maybe"],
        "bad config value for 'data.hflip': Input should be a valid boolean",
    ),
    "type_section": (
        ["train=5"],
        "bad config value for 'train': Input should be a valid dictionary",
    ),
    "type_choice": (
        ["train.amp=fp32"],
        "bad config value for 'train.amp': Input should be 'auto', 'off', 'bf16' or 'fp16'",
    ),
    # ranges
    "ratio_one": (["mask.ratio=1.0"], "bad config: mask.ratio=1.0 must be in [0, 1)"),
    "ratio_negative": (["mask.ratio=-0.1"], "bad config: mask.ratio=-0.1 must be in [0, 1)"),
    "ratio_range": (
        ["mask.ratio_range=[0.9, 0.5]"],
        "mask.ratio_range=(0.9, 0.5) must satisfy 0 <= lo <= hi < 1",
    ),
    "zero_log_every": (
        ["train.log_every=0"],
        "bad config value for 'train.log_every': Input should be greater than or equal to 1 (got 0)",
    ),
    "negative_width": (
        ["model.embed_dim=-8"],
        "bad config value for 'model.embed_dim': Input should be greater than or equal to 1",
    ),
    "negative_seed": (
        ["train.seed=-1"],
        "bad config value for 'train.seed': Input should be greater than or equal to 0",
    ),
    "betas": (
        ["train.betas=[0.9, 1.5]"],
        "bad config: train.betas=(0.9, 1.5) must both be in [0, 1)",
    ),
    "crop_scale": (
        ["data.crop_scale=[0.8, 0.2]"],
        "bad config: data.crop_scale=(0.8, 0.2) must satisfy 0 < lo <= hi <= 1",
    ),
    # geometry
    "patch_divides_image": (
        ["model.patch_size=5"],
        "bad model config: image size 16 is not divisible by patch size 5; choose model.patch_size dividing data.image_size",
    ),
    "mask_unit_multiple": (
        ["mask.strategy=block", "mask.unit=6"],
        "mask.unit=6 is not a multiple of the patch size 4; use a multiple of 4",
    ),
    "mask_unit_divides": (
        ["mask.strategy=block", "mask.unit=12"],
        "mask.unit=12 does not divide the image size 16; pick a divisor",
    ),
    "heads_divide_width": (
        ["model.num_heads=3"],
        "bad model config: embed_dim/num_heads: 3 heads do not divide width 128; pick a divisor",
    ),
    "decoder_heads": (
        ["model.decoder_num_heads=5"],
        "decoder_embed_dim/decoder_num_heads: 5 heads do not divide width 64",
    ),
    "channels": (
        ["model.in_chans=1"],
        "model.in_chans=1 but data 'synthetic' has 3 channels; leave model.in_chans unset",
    ),
    # names
    "dataset": (["data.name=cifar"], "unknown dataset data.name='cifar' (did you mean 'cifar10'?)"),
    "strategy": (
        ["mask.strategy=blocks"],
        "unknown mask.strategy 'blocks' (valid: random, block, block_shifted, grid)",
    ),
    "objective": (["objective.name=umea"], "unknown objective.name 'umea' (valid: mae, umae)"),
    "preset": (["model.preset=huge"], "bad model config: unknown model preset 'huge'"),
    # devices
    "device_name": (
        ["train.device=tpu"],
        "train.device='tpu' is not supported; use auto, cpu, cuda or cuda:N",
    ),
    "fp16_on_cpu": (
        ["train.device=cpu", "train.amp=fp16"],
        "train.amp=fp16 needs CUDA; use train.amp=bf16 or off on a CPU",
    ),
}


@pytest.mark.parametrize("overrides, expected", list(CASES.values()), ids=list(CASES))
def test_config_error_is_one_line_and_exit_2(tmp_path, capsys, overrides, expected):
    rc, out, err = cli(
        capsys, "pretrain", "--dry-run", *TINY, f"run_dir={tmp_path / 'run'}", *overrides
    )
    assert rc == 2, (out, err)
    assert expected in error_line(err)
    assert not (tmp_path / "run").exists()


def test_batch_smaller_than_the_number_of_processes(tmp_path, capsys, monkeypatch):
    # WORLD_SIZE is what torchrun sets; the check runs before any process group is joined
    monkeypatch.setenv("WORLD_SIZE", "4")
    rc, _, err = cli(
        capsys, "pretrain", "--dry-run", *TINY, f"run_dir={tmp_path}", "train.batch_size=2"
    )
    assert rc == 2
    assert error_line(err) == (
        "train.batch_size=2 must be a multiple of the 4 processes (at least one image each); "
        "use train.batch_size=4"
    )


def test_config_file_errors(tmp_path, capsys):
    typo = tmp_path / "typo.yaml"
    typo.write_text("train:\n  epoch: 3\n")
    broken = tmp_path / "broken.yaml"
    broken.write_text("train: [1, 2\n")
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    cases = {
        str(typo): "unknown config key 'train.epoch' (did you mean 'epochs'?)",
        str(broken): f"config file '{broken}' is not valid YAML",
        str(listed): f"config file '{listed}' must hold a mapping of keys, not list",
        str(tmp_path / "nope.yaml"): f"config file '{tmp_path / 'nope.yaml'}' not found",
        "quickstrat": "config 'quickstrat' is neither a file nor a shipped config (",
    }
    for path, expected in cases.items():
        rc, _, err = cli(capsys, "pretrain", "--dry-run", "-c", path)
        assert rc == 2 and expected in error_line(err), err


def test_run_dir_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("")
    rc, _, err = cli(capsys, "pretrain", "--dry-run", *TINY, f"run_dir={f}")
    assert (
        rc == 2
        and error_line(err) == f"run_dir: {f} is a file, not a folder; choose another run_dir"
    )


def test_dry_run_writes_nothing(tmp_path, capsys):
    rc, out, err = cli(capsys, "pretrain", "--dry-run", *TINY, f"run_dir={tmp_path / 'run'}")
    assert rc == 0 and err == ""
    assert out.startswith("dry run OK: 0.91M-parameter model, first-batch loss ")
    assert not (tmp_path / "run").exists()


def test_overrides_may_follow_options(tmp_path, capsys):
    rc, out, _ = cli(
        capsys,
        "pretrain",
        "-c",
        "quickstart",
        "--dry-run",
        "data.num_train=32",
        "--quiet",
        "train.batch_size=16",
    )
    assert rc == 0 and "dry run OK" in out


def test_argparse_errors_exit_2_without_traceback(capsys):
    for argv in (["pretrain", "--bogus"], ["nonsense"], [], ["datasets", "a=1"]):
        rc, _, err = cli(capsys, *argv)
        assert (
            rc == 2
            and "Traceback" not in err
            and err.strip().splitlines()[-1].startswith("maelab: error:")
        )


@pytest.mark.slow  # a fresh interpreter imports torch: ~10 s on a busy CPU
def test_config_error_in_a_real_process(tmp_path):
    """The same through `python -m maelab`: exit 2, exactly one line on stderr."""
    proc = cli_process("pretrain", *TINY, f"run_dir={tmp_path}", "train.epoch=3")
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr == "maelab: error: unknown config key 'train.epoch' (did you mean 'epochs'?)\n"
    )


def test_run_dir_that_cannot_be_created(tmp_path, capsys):
    f = tmp_path / "taken"
    f.write_text("")
    rc, _, err = cli(capsys, "pretrain", *TINY, f"run_dir={f / 'sub'}", "--quiet")
    assert rc == 2
    assert (
        error_line(err)
        == f"run_dir={f / 'sub'} cannot be written (Not a directory); choose a writable folder"
    )
