"""The throughput run: configs, the table, and `maelab bench` end to end."""

from __future__ import annotations

import argparse
import json
import sys

import pytest

from maelab.bench.harness import BenchConfig
from maelab.bench.throughput import config_for, parse_args, table
from maelab.cli import main


def test_config_for_applies_overrides() -> None:
    args = parse_args(["--batch", "4", "--warmup", "0"])
    assert config_for("tiny", args) == BenchConfig("tiny", batch=4, steps=3, repeats=5, warmup=0)
    with pytest.raises(SystemExit, match="unknown config 'huge'"):
        config_for("huge", argparse.Namespace())


def _result(impl: str, images_per_s: float, peak_mb: float | None) -> dict:
    return {"impl": impl, "step_s": 8 / images_per_s, "images_per_s": images_per_s, "mfu": 0.4,
            "step_cpu_s": 16 / images_per_s, "images_per_cpu_s": images_per_s / 2, "mfu_cpu": 0.2,
            "peak_rss_mb": peak_mb}  # fmt: skip


def test_table_ratios() -> None:
    run = {
        "config": "tiny", "batch": 8, "repeats": 1, "gflop_per_step": 3.6,
        "peak_gflops_median": 80.0, "peak_cpu_gflops_median": 81.0,
        "arch": {"img_size": 32, "patch_size": 4, "embed_dim": 192, "depth": 6,
                 "decoder_embed_dim": 128, "decoder_depth": 2},
        "results": [_result("maelab", 30.0, 100.0), _result("hf", 20.0, 200.0),
                    _result("timm-ref", 40.0, None)],
    }  # fmt: skip
    text = table(run)
    assert (
        "maelab/hf: 1.50x images/s wall, 1.50x CPU clock (target >= 1.3x); 0.50x peak memory"
        in text
    )
    assert "maelab/timm-ref: 0.75x images/s wall, 0.75x CPU clock (target >= 1.0x)\n" in text + "\n"
    assert "maelab-compiled" not in text


@pytest.mark.slow
def test_maelab_bench_command(tmp_path) -> None:
    out = tmp_path / "bench.json"
    # one implementation: one memory child (each child imports torch and transformers afresh)
    argv = ["bench", "--impls", "maelab", "--batch", "2", "--steps", "1", "--repeats", "1",
            "--warmup", "0", "--threads", "1", "--memory", "--json", str(out)]  # fmt: skip
    assert main(argv) == 0
    run = json.loads(out.read_text())["runs"][0]
    assert run["config"] == "tiny" and run["batch"] == 2
    (result,) = run["results"]
    assert result["impl"] == "maelab" and result["images_per_s"] > 0
    assert result["peak_rss_mb"] > 0  # from the memory child
    if sys.platform == "linux":
        assert run["memory_method"].startswith("VmHWM")
