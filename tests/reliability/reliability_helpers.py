"""Helpers for the reliability tests: run the CLI in-process or as a real process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from maelab.cli import main

REPO = Path(__file__).resolve().parents[2]

# a run of a few CPU seconds: 16x16 synthetic images, the micro preset, 2 iterations per epoch
TINY = [
    "-c", "quickstart", "data.num_train=32", "data.num_test=8", "train.batch_size=16",
    "train.epochs=1", "train.log_every=1", "data.num_workers=0", "train.threads=1",
]  # fmt: skip


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """`maelab ARGV` in this process: (exit code, stdout, stderr)."""
    try:
        rc = main(list(argv))
    except SystemExit as exc:  # argparse errors and --help
        rc = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return rc, out, err


def cli_process(*argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`python -m maelab ARGV` as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "maelab", *argv],
        cwd=REPO, capture_output=True, text=True, timeout=timeout, env=child_env(),
    )  # fmt: skip


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("WORLD_SIZE", None)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def error_line(err: str, warnings: bool = False) -> str:
    """The single `maelab: error:` line of stderr; fails on tracebacks or extra lines
    (`warnings`: `maelab: warning:` lines are allowed besides)."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if warnings:
        lines = [line for line in lines if not line.startswith("maelab: warning: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("maelab: error: "), err
    return lines[0].removeprefix("maelab: error: ")
