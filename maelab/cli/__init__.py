"""The `maelab` command line (entry point `maelab.cli:main`)."""

from maelab.cli.app import build_parser, main, one_line, parse_args
from maelab.cli.common import config_path

__all__ = ["build_parser", "config_path", "main", "one_line", "parse_args"]
