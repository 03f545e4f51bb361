"""The export folder: its file names, and writing it whole or not at all.

    DIR/config.json               the library's model config (HF `ViTMAEConfig`; timm's hub config
                                  with `architecture`, `model_args` and `pretrained_cfg`)
    DIR/model.safetensors         the weights
    DIR/preprocessor_config.json  HF only: image size, mean and std for `AutoImageProcessor`
    DIR/README.md                 the model card

Everything is written into a temporary folder beside DIR and renamed to DIR at the end, so an
interrupted export leaves no half-written folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from maelab.errors import ConfigError

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
PREPROCESSOR_FILE = "preprocessor_config.json"
CARD_FILE = "README.md"


@dataclass(frozen=True)
class Written:
    """What a writer tells the user: Python that loads the folder, and notes (one line each)."""

    code: list[str]  # imports first, then one statement a line
    notes: list[str] = field(default_factory=list)


def check_out(out: str | Path) -> Path:
    """`out` as a Path when it is free (missing or an empty folder); else one ConfigError line."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; give a new or empty folder")
    if out.is_dir() and any(out.iterdir()):
        raise ConfigError(
            f"--out {out} exists and is not empty; give a new or empty folder (or delete it)"
        )
    return out


@contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A temporary folder beside `out`, renamed to `out` when the block ends without error and
    removed when it raises."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes a private 0700 folder
    try:
        yield tmp
        for f in tmp.iterdir():  # some writers make private 0600 files
            os.chmod(f, 0o666 & ~umask)
        if out.is_dir():
            out.rmdir()  # empty (check_out); a rename cannot replace it on every platform
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
