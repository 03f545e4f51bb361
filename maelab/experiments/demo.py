"""The demo study: a sweep on the embedded synthetic data, the theory probes and the report.

Everything is set by `maelab/configs/demo.yaml`: the base config, its `sweep:` section (mask
ratio x mask unit, U-MAE and a shallower decoder, over seeds) and a `demo:` section (which run
the per-model probes look at, and the overrides of `--quick`).
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, field_validator

from maelab.config import Strict, load_config
from maelab.errors import ConfigError
from maelab.experiments.plan import SweepPlan, load_sweep
from maelab.experiments.sweep import SweepResult, run_sweep
from maelab.probes.runner import probe_checkpoint
from maelab.report import Report, build_report
from maelab.run_folder import RunFolder

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "demo.yaml"


class DemoSettings(Strict):
    """The `demo:` section of the demo YAML."""

    probe_point: dict[str, Any] = {}  # axis values of the run the per-model probes read
    probes: list[str] = ["position", "low_rank", "stability", "interpolation"]
    quick: list[str] = []  # key=value overrides applied by --quick (a few steps, for tests)
    report: str = "report.html"  # file name inside the sweep folder


class DemoFile(Strict):
    """The demo YAML as merged from files and overrides: its `demo:` section, validated, and
    the sweep's keys (validated by `load_sweep`)."""

    model_config = ConfigDict(extra="allow")

    demo: DemoSettings = DemoSettings()

    @field_validator("demo", mode="before")
    @classmethod
    def _empty_section(cls, v: Any) -> Any:
        return {} if v is None else v  # `demo:` with nothing under it


@dataclass
class DemoResult:
    dir: Path
    report: Report
    sweep: SweepResult
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)


def demo_settings(files: list[str], overrides: list[str]) -> DemoSettings:
    """The `demo:` section of the merged YAML files and `key=value` overrides."""
    return load_config(files, overrides, DemoFile).demo


def plan_demo(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    out: str | None = None,
) -> tuple[SweepPlan, DemoSettings]:
    """The demo's sweep plan and settings (`quick` first applies the `demo.quick` overrides)."""
    files = [str(config or DEMO_CONFIG)]
    overrides = list(overrides or [])
    settings = demo_settings(files, overrides)
    if quick:
        overrides = [*settings.quick, *overrides]  # the user's own overrides still win
    return load_sweep(files, overrides, out=out), settings


def probe_run_dir(plan: SweepPlan, point: dict[str, Any]) -> Path:
    """The run whose axis values (and `seed`) match `point`; the first run when none is given."""
    for p in plan.points:
        if all(
            p.values.get(k) == v for k, v in point.items() if k != "seed"
        ) and p.seed == point.get("seed", p.seed):
            return plan.dir / p.name
    if not plan.points:
        raise ConfigError("the demo sweep has no runs")
    if point:
        raise ConfigError(f"demo.probe_point {point} matches no run of the sweep")
    return plan.dir / plan.points[0].name


def run_demo(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    out: str | None = None,
    quiet: bool = False,
) -> DemoResult:
    """Sweep (resumable), probes of one run, then the HTML report."""
    t0 = time.time()
    plan, settings = plan_demo(config, overrides, quick, out)
    run_dir = probe_run_dir(plan, settings.probe_point)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say(f"demo: {len(plan.points)} runs in {plan.dir} ({plan.settings.workers} at a time)")
    result = run_sweep(plan, quiet=quiet)
    stages = {"sweep": time.time() - t0}
    if result.failed:
        first = next(iter(result.failed.items()))
        raise ConfigError(f"{len(result.failed)} demo run(s) failed, e.g. {first[0]}: {first[1]}")

    t1 = time.time()
    if settings.probes:
        say(f"demo: theory probes ({', '.join(settings.probes)}) on {run_dir.name}")
        probe_checkpoint(
            RunFolder(run_dir).last_checkpoint, RunFolder(plan.dir).probes, settings.probes
        )
    stages["probes"] = time.time() - t1

    t2 = time.time()
    say("demo: writing the report")
    report = build_report(plan.dir, plan.dir / settings.report, title="maelab demo")
    stages["report"] = time.time() - t2
    return DemoResult(plan.dir, report, result, time.time() - t0, stages)
