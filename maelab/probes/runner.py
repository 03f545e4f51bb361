"""Run the registered theory probes on one checkpoint; JSON + PNG per probe.

Writes `OUT/<probe>.json` (the result dataclass as JSON) and `OUT/<probe>.png` for every probe
of kind "model" that fits the data (identifiability needs the synthetic latents). Probes over a
set of runs (the decoder ablation) are drawn by the report from sweep rows instead.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from maelab.config import override_data
from maelab.data.base import ImageSet
from maelab.evaluation.checkpoints import load_pretrained
from maelab.evaluation.splits import cached_splits
from maelab.probes import PROBES, get_probe, run_theory_probe
from maelab.probes.inputs import in_memory
from maelab.probes.results import to_jsonable
from maelab.run_folder import write_json_atomic

# Images per probe: enough for stable means, small enough for a CPU demo.
DEFAULT_OPTIONS: dict[str, dict[str, Any]] = {
    "identifiability": {"max_images": 512, "kernel": False},
    "position": {"max_images": 256},
    "low_rank": {"max_images": 256},
    "stability": {"max_images": 256},
    "interpolation": {"max_images": 128},
}


def applicable_probes(images: ImageSet | Any) -> list[str]:
    """Names of the per-model probes that can run on these images."""
    has_latents = isinstance(images, ImageSet) and bool(images.latents)
    return [
        name
        for name, p in PROBES.items()
        if p.kind == "model" and (has_latents or not p.needs_latents)
    ]


def probe_checkpoint(
    ckpt: str | Path,
    out_dir: str | Path,
    names: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    device: str = "cpu",
    data_overrides: list[str] | None = None,
) -> dict[str, Any]:
    """Run probes (default: all that apply) on a checkpoint's test split (its stored data with
    `data.key=value` overrides); returns name -> JSON."""
    model, cfg = load_pretrained(ckpt, map_location=device)
    splits = cached_splits(override_data(cfg.data, data_overrides or []))
    test = in_memory(splits.test)
    names = names or applicable_probes(test)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    for name in names:
        probe = get_probe(name)
        if probe.kind != "model":
            continue
        opts = dict(DEFAULT_OPTIONS.get(name, {}))
        opts.update((options or {}).get(name, {}))
        if name == "identifiability":
            opts.setdefault("fit_images", in_memory(splits.train))
        t0 = time.time()
        result = run_theory_probe(name, model, test, figure_path=out_dir / f"{name}.png", **opts)
        record = {
            "probe": name,
            "question": probe.question,
            "checkpoint": str(Path(ckpt)),
            "seconds": time.time() - t0,
            "result": to_jsonable(result),
        }
        if name == "identifiability":
            record["summary"] = to_jsonable(result.summary())
        write_json_atomic(out_dir / f"{name}.json", record)
        results[name] = record
    return results
