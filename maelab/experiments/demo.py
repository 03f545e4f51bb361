"""The demo study: the runs of the decisive conditions, their verdicts and the report.

`maelab/configs/study_world.yaml` (the world and model) and `maelab/configs/demo.yaml` (read on
top of it) set everything: the base config, the `sweep:` section (mask units patch / cell /
region / straddled region and U-MAE, over seeds) and a `demo:` section (the named conditions
the verdict rows compare, the overrides of `--quick` and `--full`). After the sweep the demo
decides the rows (`maelab.experiments.study_rows`), writes `verdicts.json` and `study.json`
into the sweep folder, then the HTML report. `--full` also sweeps `demo.real`
(`maelab/configs/demo_real.yaml`: the rows that need no latents, on digits) into OUT/real; its
rows follow the world's in `verdicts.json` as a table of their own (its own Holm family).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, field_validator

from maelab import verdicts as vd
from maelab.config import Strict, build_config, load_config
from maelab.errors import ConfigError
from maelab.experiments.plan import SweepPlan, get_dotted, load_sweep
from maelab.experiments.study_readout import latent_dimension
from maelab.experiments.study_rows import (
    NOT_IN_DEMO,
    REAL_MAE,
    StudyRuns,
    StudyTable,
    build_table,
    conditions_of,
    real_image_specs,
    study_specs,
)
from maelab.experiments.sweep import SweepResult, run_sweep
from maelab.probes.runner import probe_checkpoint
from maelab.report import Report, build_report
from maelab.run_folder import STUDY_FILE, RunFolder, read_json, write_json_atomic

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
WORLD_CONFIG = CONFIG_DIR / "study_world.yaml"
DEMO_CONFIG = CONFIG_DIR / "demo.yaml"


class DemoSettings(Strict):
    """The `demo:` section of the demo YAML."""

    probe_point: dict[str, Any] = {}  # axis values of the run the per-model probes read
    probes: list[str] = []  # per-model theory probes of one run (maelab.probes)
    conditions: dict[str, dict[str, Any]] = {}  # name -> axis values (the verdict rows' names)
    quick: list[str] = []  # key=value overrides applied by --quick (a few steps, for tests)
    full: list[str] = []  # key=value overrides applied by --full (more seeds and steps)
    full_grids: list[dict[str, list[Any]]] = []  # grids --full adds (the mask-ratio sweep)
    report: str = "report.html"  # file name inside the sweep folder
    real: str | None = None  # a demo YAML --full runs as well, into OUT/real (real images)


class DemoFile(Strict):
    """The demo YAML as merged from files and overrides: its `demo:` section, validated, and
    the sweep's keys (validated by `load_sweep`)."""

    model_config = ConfigDict(extra="allow")

    demo: DemoSettings = DemoSettings()

    @field_validator("demo", mode="before")
    @classmethod
    def _empty_section(cls, v: Any) -> Any:
        return {} if v is None else v  # `demo:` with nothing under it


REAL_DIR = "real"  # the real-image part's sweep folder inside the study folder
SHARED_SWEEP_KEYS = ("sweep.seeds=", "sweep.workers=", "sweep.threads=")  # reach both parts


@dataclass
class RealPart:
    """The real-image part of `--full`: its sweep plan, its conditions and its data's name (the
    prefix of its conditions and claims in verdicts.json)."""

    plan: SweepPlan
    settings: DemoSettings

    @property
    def label(self) -> str:
        return str(build_config(self.plan.base).data.name)


@dataclass
class DemoResult:
    dir: Path
    report: Report
    sweep: SweepResult
    table: StudyTable
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
    full: bool = False,
) -> tuple[SweepPlan, DemoSettings]:
    """The demo's sweep plan and settings (`quick` / `full` first apply the `demo.quick` /
    `demo.full` overrides; `full` also adds `demo.full_grids`)."""
    files = [str(WORLD_CONFIG), str(config or DEMO_CONFIG)]
    overrides = list(overrides or [])
    settings = demo_settings(files, overrides)
    preset = [*(settings.full if full else []), *(settings.quick if quick else [])]
    overrides = [*preset, *overrides]  # the user's own overrides still win
    settings = demo_settings(files, overrides)
    plan = load_sweep(files, overrides, out=out)
    if full and settings.full_grids:
        grids = [*plan.settings.grids, *settings.full_grids]
        plan = load_sweep(files, [*overrides, f"sweep.grids={_flow(grids)}"], out=out)
        settings.conditions.update(ratio_conditions(settings.full_grids))
    return plan, settings


def plan_real(
    settings: DemoSettings,
    study_dir: Path,
    overrides: list[str] | None = None,
    quick: bool = False,
) -> RealPart | None:
    """The real-image part `--full` adds (`demo.real`: a shipped config name or a YAML path),
    swept into STUDY/real; None when the demo names none. Of the user's overrides only
    `sweep.seeds`, `sweep.workers` and `sweep.threads` reach it (the rest describe the world)."""
    if not settings.real:
        return None
    path = Path(settings.real)
    files = [str(path if path.suffix in (".yaml", ".yml") else CONFIG_DIR / f"{path}.yaml")]
    if not Path(files[0]).is_file():
        raise ConfigError(
            f"demo.real '{settings.real}' is neither a YAML file nor a shipped config name"
        )
    shared = [o for o in overrides or [] if o.startswith(SHARED_SWEEP_KEYS)]
    real = demo_settings(files, shared)
    chosen = [*(real.quick if quick else []), *shared]
    plan = load_sweep(files, chosen, out=str(study_dir / REAL_DIR))
    part = RealPart(plan, demo_settings(files, chosen))
    if REAL_MAE not in part.settings.conditions:
        raise ConfigError(
            f"{files[0]}: demo.conditions needs '{REAL_MAE}' (the MAE the other rows compare with)"
        )
    return part


def _flow(value: Any) -> str:
    """A YAML flow string of a list of grids, for a `key=value` override."""
    return json.dumps(value)


def ratio_conditions(grids: list[dict[str, list[Any]]]) -> dict[str, dict[str, Any]]:
    """`ratio=R` conditions (patch unit, MAE) for the mask ratios of the `--full` grids."""
    ratios = sorted({0.75, *(r for g in grids for r in g.get("mask.ratio", []))})
    return {
        f"ratio={r}": {"mask.ratio": r, "mask.unit": 4, "mask.strategy": "block",
                       "objective.name": "mae"}
        for r in ratios
    }  # fmt: skip


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
    full: bool = False,
) -> DemoResult:
    """Sweep (resumable), probes of one run, the verdicts, then the HTML report."""
    t0 = time.time()
    plan, settings = plan_demo(config, overrides, quick, out, full)
    run_dir = probe_run_dir(plan, settings.probe_point)
    say = (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))
    say(f"demo: {len(plan.points)} runs in {plan.dir} ({plan.settings.workers} at a time)")
    result = run_sweep(plan, quiet=quiet)
    stages = {"sweep": time.time() - t0}
    _check_runs(result)
    real = plan_real(settings, plan.dir, overrides, quick) if full else None
    if real is not None:
        say(f"demo: {len(real.plan.points)} runs on {real.label} in {real.plan.dir}")
        t_real = time.time()
        _check_runs(run_sweep(real.plan, quiet=quiet))
        stages["real"] = time.time() - t_real

    t1 = time.time()
    if settings.probes:
        say(f"demo: theory probes ({', '.join(settings.probes)}) on {run_dir.name}")
        probe_checkpoint(
            RunFolder(run_dir).last_checkpoint, RunFolder(plan.dir).probes, settings.probes
        )
    stages["probes"] = time.time() - t1

    t2 = time.time()
    table = decide_study(plan, settings, real)
    stages["verdicts"] = time.time() - t2
    say("demo: writing the report")
    report = build_report(plan.dir, plan.dir / settings.report, title="maelab demo")
    stages["report"] = time.time() - t2 - stages["verdicts"]
    return DemoResult(plan.dir, report, result, table, time.time() - t0, stages)


def _check_runs(result: SweepResult) -> None:
    if result.failed:
        first = next(iter(result.failed.items()))
        raise ConfigError(f"{len(result.failed)} demo run(s) failed, e.g. {first[0]}: {first[1]}")


def study_runs(plan: SweepPlan, conditions: dict[str, dict[str, Any]]) -> StudyRuns:
    """The metrics of every finished run, by condition and seed, and the pixel baseline's."""
    runs: dict[str, dict[int, dict[str, float]]] = {}
    for name, members in _members(plan, conditions).items():
        for index, seed in members:
            metrics = read_json(RunFolder(plan.dir / plan.points[index].name).results)
            if metrics:
                runs.setdefault(name, {})[seed] = metrics.get("metrics", {})
    return StudyRuns(runs, pixel_baseline(plan))


def pixel_baseline(plan: SweepPlan) -> dict[str, float]:
    """The raw-pixel baseline's metrics of a sweep ({} before its baselines ran)."""
    base = read_json(RunFolder(RunFolder(plan.dir).baselines).results).get("baselines", {})
    return dict(base.get("pixels", {}))


def _members(
    plan: SweepPlan, conditions: dict[str, dict[str, Any]]
) -> dict[str, list[tuple[int, int]]]:
    resolved = build_config(plan.base).model_dump(mode="json")
    points = [(p.values, p.seed) for p in plan.points]
    return conditions_of(points, conditions, lambda key: get_dotted(resolved, key))


def curves(plan: SweepPlan, conditions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Condition -> seed -> the learning curve stored in the run's results.json."""
    out: dict[str, Any] = {}
    for name, members in _members(plan, conditions).items():
        for index, seed in members:
            stored = read_json(RunFolder(plan.dir / plan.points[index].name).results)
            if stored.get("curve"):
                out.setdefault(name, {})[str(seed)] = stored["curve"]
    return out


def _ratio_names(conditions: dict[str, Any]) -> list[str]:
    """The `ratio=R` conditions, by ascending R."""
    return sorted((c for c in conditions if c.startswith("ratio=")), key=lambda c: float(c[6:]))


def decide_real(real: RealPart) -> StudyTable:
    """The real-image rows (their own Holm family); conditions and claims carry the data's name."""
    conditions = real.settings.conditions
    runs = study_runs(real.plan, conditions)
    label = real.label
    runs.runs = {f"{label} {name}": by_seed for name, by_seed in runs.runs.items()}
    specs = real_image_specs(label, [f"{label} {c}" for c in _ratio_names(conditions)])
    return build_table(runs, specs, [f"{label} {c}" for c in conditions])


def decide_study(
    plan: SweepPlan, settings: DemoSettings, real: RealPart | None = None
) -> StudyTable:
    """Decide the rows, write `verdicts.json` and `study.json` into the sweep folder (with
    `real`, the real-image rows follow the world's)."""
    conditions = settings.conditions
    runs = study_runs(plan, conditions)
    table = build_table(runs, study_specs(_ratio_names(conditions)), list(conditions))
    table.undecided.extend(NOT_IN_DEMO)
    table.curves = curves(plan, conditions)
    if real is not None:
        real_table = decide_real(real)
        table.regime.extend(real_table.regime)
        table.verdicts.extend(real_table.verdicts)
        table.derived.update(real_table.derived)
        table.undecided.extend(real_table.undecided)
    base = build_config(plan.base)
    record = vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=vd.config_hash(
            {
                "base": base.model_dump(mode="json"),
                "sweep": plan.settings.model_dump(mode="json"),
                **(
                    {"real": build_config(real.plan.base).model_dump(mode="json")}
                    if real is not None
                    else {}
                ),
            }
        ),
        regime=tuple(table.regime),
        verdicts=tuple(table.verdicts),
    )
    vd.write_verdicts(plan.dir / vd.VERDICTS_FILE, record)
    write_json_atomic(
        plan.dir / STUDY_FILE,
        {
            "conditions": conditions,
            "seeds": sorted({p.seed for p in plan.points}),
            "real": _real_summary(real),
            "derived": table.derived,
            "undecided": [vars(u) for u in table.undecided],
            "curves": table.curves,
            "references": {  # beside the effective-rank curve
                "pixels_effective_rank": runs.pixels.get("effective_rank"),
                "latent_dimension": latent_dimension(base)
                if base.data.name == "synthetic"
                else None,
            },
        },
    )
    return table


def _real_summary(real: RealPart | None) -> dict[str, Any] | None:
    """What study.json says of the real-image part (None without one)."""
    if real is None:
        return None
    return {
        "data": real.label,
        "dir": REAL_DIR,
        "conditions": real.settings.conditions,
        "seeds": sorted({p.seed for p in real.plan.points}),
        "pixels": pixel_baseline(real.plan),  # not every run's results again
    }
