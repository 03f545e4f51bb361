"""Run the registered theory probes (maelab.probes) on one checkpoint; JSON + PNG per probe.

Writes `OUT/<probe>.json` (the result dataclass as JSON) and `OUT/<probe>.png` for every probe
of kind "model" that fits the data (identifiability needs the synthetic latents). Probes over a
set of runs (the decoder ablation) are drawn by the report from sweep rows instead.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from maelab.data.base import ImageSet

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
    from maelab.probes import PROBES

    has_latents = isinstance(images, ImageSet) and bool(images.latents)
    return [
        name
        for name, p in PROBES.items()
        if p.kind == "model" and (has_latents or not p.needs_latents)
    ]


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, dicts with int keys and tensors -> plain JSON values."""
    if is_dataclass(obj) and not isinstance(obj, type):
        obj = asdict(obj)
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else obj
    return obj


def probe_checkpoint(
    ckpt: str | Path,
    out_dir: str | Path,
    names: list[str] | None = None,
    options: dict[str, dict[str, Any]] | None = None,
    device: str = "cpu",
) -> dict[str, Any]:
    """Run probes (default: all that apply) on a checkpoint's test split; returns name -> JSON."""
    from maelab.evaluation.checkpoints import load_pretrained
    from maelab.experiments.evaluate import cached_splits
    from maelab.probes import get_probe, run_probe

    model, cfg = load_pretrained(ckpt, map_location=device)
    splits = cached_splits(cfg.data)
    test = splits.test
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
            opts.setdefault("fit_images", splits.train)
        t0 = time.time()
        result = run_probe(name, model, test, figure_path=out_dir / f"{name}.png", **opts)
        record = {
            "probe": name,
            "question": probe.question,
            "checkpoint": str(Path(ckpt)),
            "seconds": time.time() - t0,
            "result": to_jsonable(result),
        }
        if name == "identifiability":
            record["summary"] = to_jsonable(result.summary())
        (out_dir / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
        results[name] = record
    return results


def read_probe_results(folder: str | Path) -> dict[str, dict[str, Any]]:
    """`<probe>.json` records of a folder written by `probe_checkpoint` (name -> record)."""
    out = {}
    for path in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and "probe" in record:
            record["figure"] = str(path.with_suffix(".png"))
            out[record["probe"]] = record
    return out
