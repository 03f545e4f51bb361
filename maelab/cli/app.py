"""The `maelab` command: argument parsing only; each subcommand calls the library."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable

from maelab.cli import (
    analyze,
    bench,
    calibrate,
    datasets,
    demo,
    export,
    finetune,
    pretrain,
    probe,
    reconstruct,
    report,
    sweep,
)
from maelab.errors import ConfigError, MaelabError

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    pretrain.add,
    datasets.add,
    probe.add,
    finetune.add,
    reconstruct.add,
    sweep.add,
    report.add,
    demo.add,
    analyze.add,
    calibrate.add,
    bench.add,
    export.add,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="maelab", description="Masked autoencoders and measured tests of their theory."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(sub)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """Like `parse_args`, but `key=value` overrides may also follow the options."""
    args, extra = parser.parse_known_args(argv)
    overrides = [a for a in extra if "=" in a and not a.startswith("-")]
    if extra and (len(overrides) < len(extra) or not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if overrides:
        args.overrides = [*args.overrides, *overrides]
    return args


def one_line(exc: BaseException) -> str:
    """The message of an error as one line.

    An error raised in a DataLoader worker comes back as "Caught X in DataLoader worker process
    N. Original Traceback ...": its last line holds the original message.
    """
    text = str(exc).strip()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    if "Original Traceback" in text:
        last = lines[-1]
        name = type(exc).__name__
        return last.split(f"{name}: ", 1)[1] if f"{name}: " in last else last
    return lines[0] if len(lines) == 1 else " ".join(lines)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
    print(f"maelab: warning: {one_line(Warning(str(message)))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parse_args(parser, argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning  # one line per warning, no source excerpt
        try:
            return args.handler(args)
        except ConfigError as exc:
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 2
        except MaelabError as exc:
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except OSError as exc:  # disk full, permissions: the environment, not maelab
            print(f"maelab: error: {one_line(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print("maelab: interrupted", file=sys.stderr)
            return 130


if __name__ == "__main__":
    sys.exit(main())
