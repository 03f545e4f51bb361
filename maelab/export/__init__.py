"""`maelab export`: a checkpoint as a folder that Hugging Face transformers or timm loads.

source.py       any checkpoint maelab reads -> weights, input statistics, run facts
hf_folder.py    a `save_pretrained` folder (ViTMAEForPreTraining, or ViTMAEModel alone)
timm_folder.py  a timm state dict + hub config.json
card.py         the model card (README.md)
folder.py       the folder's file names; written whole or not at all
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import maelab
from maelab.errors import ConfigError
from maelab.export.card import Target, model_card, run_story
from maelab.export.folder import CARD_FILE, Written, check_out, staged
from maelab.export.hf_folder import write_hf
from maelab.export.source import ExportSource, read_source
from maelab.export.timm_folder import write_timm
from maelab.verdicts import git_commit

Writer = Callable[[ExportSource, Path, Path], Written]
WRITERS: dict[str, Writer] = {"hf": write_hf, "timm": write_timm}


@dataclass(frozen=True)
class Exported:
    """A written export folder: where, what it holds, how to load it, how long it took."""

    out: Path
    files: list[str]
    written: Written
    seconds: float


def export_checkpoint(
    ckpt: str | Path, target: Target, out: str | Path, data_overrides: list[str] | None = None
) -> Exported:
    """Write the checkpoint `ckpt` for `target` ("hf" or "timm") into the new or empty folder
    `out`, with a model card; `data_overrides` point at the run's data when it has moved."""
    t0 = time.perf_counter()
    if target not in WRITERS:
        raise ConfigError(f"--to {target}: expected one of {', '.join(WRITERS)}")
    out = check_out(out)
    source = read_source(ckpt, data_overrides)
    with staged(out) as into:
        written = WRITERS[target](source, into, out)
        commit = git_commit(Path(maelab.__file__).resolve().parent)
        card = model_card(source, target, run_story(source), written, maelab.__version__, commit)
        (into / CARD_FILE).write_text(card)
    files = sorted(p.name for p in out.iterdir())
    return Exported(out, files, written, time.perf_counter() - t0)


__all__ = ["WRITERS", "Exported", "export_checkpoint", "read_source"]
