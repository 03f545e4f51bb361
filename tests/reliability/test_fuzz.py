"""Random configs and command lines: every outcome is a success or one clean error line.

Keys come from the Config schema (plus sections, typos and noise), values of random types.
`pretrain --dry-run` checks config, data and model and runs one batch, so a passing config is
exercised end to end without training.
"""

from __future__ import annotations

import io
import pickle
from contextlib import redirect_stderr, redirect_stdout

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel
from reliability_helpers import TINY

from maelab.cli import main
from maelab.config import Config

# keys whose fuzzing would leave the test's bounds: network downloads, scanning a random folder,
# compiling (minutes), or using every core
NOT_FUZZED = {"data.download", "data.root", "train.compile", "train.threads"}


def leaf_keys(model: type[BaseModel] = Config, prefix: str = "") -> list[str]:
    keys = []
    for name, field in model.model_fields.items():
        ann = field.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            keys += leaf_keys(ann, f"{prefix}{name}.")
        else:
            keys.append(f"{prefix}{name}")
    return keys


LEAVES = [k for k in leaf_keys() if k not in NOT_FUZZED]
SECTIONS = sorted({k.rsplit(".", 1)[0] for k in LEAVES if "." in k})
WORDS = [
    "nan", ".inf", "-.inf", "true", "false", "null", "~", "abc", "", "[1, 2]", "[0.2, 0.9]",
    "[0.9, 0.1]", "{a: 1}", "1e-3", "1.0e9", "0x10", "'3'", "[", "]", "{", "a: b: c", "!!binary x",
    "cpu", "auto", "cuda", "cuda:3", "meta", "tpu", "block", "grid", "random", "umae", "mae",
    "mean", "cls", "micro", "tiny", "small", "skip", "stop", "error", "bf16", "fp16", "off",
    "digits", "synthetic", "folder", "cifar10", "mnist", "ü", "a=b",
]  # fmt: skip

values = st.one_of(
    st.integers(-3, 40).map(str),
    st.floats(-2.0, 2.0, allow_nan=False).map(lambda x: repr(round(x, 3))),
    st.sampled_from(WORDS),
    st.text(max_size=6),
)
keys = st.one_of(
    *[st.sampled_from(LEAVES)] * 6,
    st.sampled_from(LEAVES).map(lambda k: k[:-1]),  # a typo
    st.sampled_from(SECTIONS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz._", max_size=14),
)


def _flat_defaults(tree: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat_defaults(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


DEFAULTS = _flat_defaults(Config().model_dump(mode="json"))
PLAUSIBLE = {  # values of the right type near the valid range, to get past the type checks
    bool: ["true", "false"],
    int: ["1", "2", "3", "4", "6", "8", "16", "32"],
    float: ["0.0", "0.1", "0.5", "0.75", "0.9", "1.0", "3.0"],
    list: ["[0.2, 1.0]", "[0.5, 0.5]", "[0.0, 0.9]", "[0.9, 0.95]"],
    str: ["random", "block", "grid", "umae", "mean", "tiny", "micro", "bf16", "skip", "cpu"],
    type(None): ["null", "4", "8", "0.5", "[0.3, 0.8]", "micro"],
}


@st.composite
def override(draw: st.DrawFn) -> str:
    key = draw(keys)
    plausible = PLAUSIBLE.get(type(DEFAULTS.get(key)), [])
    typed = plausible and draw(st.integers(0, 3)) > 0
    value = draw(st.sampled_from(plausible)) if typed else draw(values)
    return f"{key}={value}"


flags = st.sampled_from(
    ["--quiet", "--resume", "--resume=RUN/garbage.pt", "--resume=RUN/nope.pt", "-c", "quickstart",
     "-c", "nope", "-c", "RUN/fuzz.yaml", "--bogus", "positional", "-h"]
)  # fmt: skip


@st.composite
def command_lines(draw: st.DrawFn) -> tuple[list[str], str]:
    # short lists often pass validation and reach data, model and the first batch
    args = draw(st.lists(override(), max_size=draw(st.sampled_from([1, 2, 2, 6]))))
    if draw(st.integers(0, 3)) == 0:  # now and then options too, anywhere among the overrides
        for flag in draw(st.lists(flags, min_size=1, max_size=2)):
            args.insert(draw(st.integers(0, len(args))), flag)
    yaml_text = draw(st.one_of(st.just("train:\n  epochs: 2\n"), st.text(max_size=40)))
    command = draw(st.sampled_from(["pretrain"] * 18 + ["datasets", "nonsense"]))
    if command == "pretrain":
        return ["pretrain", "--dry-run", *TINY, *args], yaml_text
    return [command, *args], yaml_text


@settings(
    max_examples=100,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(case=command_lines())
def test_random_command_lines_fail_cleanly(tmp_path_factory: pytest.TempPathFactory, case) -> None:
    argv, yaml_text = case
    run = tmp_path_factory.mktemp("fuzz")
    (run / "garbage.pt").write_bytes(b"\x80\x04garbage")
    (run / "fuzz.yaml").write_text(yaml_text)
    (run / "empty").mkdir()
    argv = [a.replace("RUN/", f"{run}/") for a in argv]
    if argv[0] == "pretrain":  # an empty data.root keeps `data.name=folder` from scanning a disk
        argv[1:1] = [f"run_dir={run / 'out'}", f"data.root={run / 'empty'}"]

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:  # argparse: bad arguments (2) or --help (0)
            assert exc.code in (0, 2), (argv, err.getvalue())
            return
    text = err.getvalue()
    event(f"{argv[0]} exit {rc}")  # --hypothesis-show-statistics shows how often each ends how
    assert "Traceback" not in text, (argv, text)
    assert rc in (0, 1, 2), (argv, rc, text)
    errors = [line for line in text.splitlines() if line.startswith("maelab: error: ")]
    others = [
        line for line in text.splitlines() if line.strip() and not line.startswith("maelab: ")
    ]
    assert not others, (argv, text)
    assert len(errors) == (0 if rc == 0 else 1), (argv, text)
    assert not (run / "out").exists(), argv  # a dry run writes nothing
    if rc == 0 and argv[0] == "pretrain":
        assert "dry run OK" in out.getvalue()


def test_schema_keys_are_all_reachable() -> None:
    """The fuzzer draws from every config field but the few excluded on purpose."""
    assert set(leaf_keys()) - set(LEAVES) == NOT_FUZZED
    assert {"train.epochs", "mask.unit", "data.synthetic.cell_size", "model.num_heads"} <= set(
        LEAVES
    )


CKPT_COMMANDS = ["probe", "finetune", "reconstruct", "analyze collapse", "analyze probes"]


@settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    command=st.sampled_from([*CKPT_COMMANDS, "report", "sweep"]),
    bad=st.sampled_from(["garbage.pt", "text.pt", "list.pt", "weights.pt", "nope.pt", "."]),
    args=st.lists(override(), max_size=4),
)
def test_other_commands_with_bad_checkpoints_fail_cleanly(
    tmp_path_factory, command, bad, args
) -> None:
    """Every subcommand that reads a checkpoint or a run, given a file that is not one."""
    d = tmp_path_factory.mktemp("fuzz_ckpt")
    (d / "garbage.pt").write_bytes(b"\x80\x04garbage")
    (d / "text.pt").write_text("epoch: 3\n")
    (d / "list.pt").write_bytes(pickle.dumps([1, 2]))
    torch.save({"model": {"w": torch.zeros(2)}}, d / "weights.pt")  # no config, no arch
    path = str(d / bad)
    if command in CKPT_COMMANDS:
        argv = [*command.split(), "--ckpt", path, *args]
    elif command == "report":
        argv = ["report", path, *args]
    else:  # sweep: only list the plan
        argv = [
            "sweep",
            "--dry-run",
            "-c",
            "quickstart",
            f"run_dir={d / 'sweep'}",
            "--grid",
            "mask.ratio=0.5,0.9",
            *args,
        ]
    err = io.StringIO()
    with redirect_stdout(io.StringIO()), redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            assert exc.code in (0, 2), (argv, err.getvalue())
            return
    text = err.getvalue()
    lines = [line for line in text.splitlines() if line.strip()]
    assert "Traceback" not in text and rc in (0, 1, 2), (argv, rc, text)
    assert all(line.startswith("maelab: ") for line in lines), (argv, text)
    assert sum(line.startswith("maelab: error: ") for line in lines) == (rc != 0), (argv, text)
