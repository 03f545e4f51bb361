"""`maelab demo`: plan -> sweep -> decide -> write, then the report.

The studies are declarations (`maelab.experiments.studies`: `world`, with the mask-ratio sweep
under `--full`, and `real_images`); their conditions are the sweep's runs. The YAML files hold
budgets only: `maelab/configs/study_world.yaml` (the world and model) under
`maelab/configs/demo.yaml` (training and evaluation budgets, seeds, and the `demo:` section:
the overrides of `--quick` and `--full`, conditions run on fewer seeds, the real-image YAML).
`--full` also sweeps `demo.real` (`demo_real.yaml`, digits) into OUT/real; its rows follow the
world's in `verdicts.json` as a table of their own (its own Holm family).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from maelab import verdicts as vd
from maelab.config import Strict, build_config, deep_merge, parse_overrides, read_yaml
from maelab.errors import ConfigError
from maelab.experiments.calibration import run_calibration
from maelab.experiments.calibration_verdicts import write_calibration_verdicts
from maelab.experiments.decide import Decision, as_json, decide
from maelab.experiments.declaration import Study
from maelab.experiments.measurements import AT_BASE, Measurements, read_measurements
from maelab.experiments.pilots import (
    PILOT_DIR,
    PILOT_FACTOR,
    PILOT_SEED,
    budget_key,
    pilot_entry,
    read_pilots,
    write_pilot,
)
from maelab.experiments.plan import GRID_SEEDS, SweepPlan, load_sweep
from maelab.experiments.studies.kong_code import WORLD_FULL
from maelab.experiments.studies.real_images import REAL_IMAGES
from maelab.experiments.studies.world import WORLD
from maelab.experiments.study_readout import latent_dimension
from maelab.experiments.sweep import SweepResult, run_sweep
from maelab.metric_names import EFFECTIVE_RANK
from maelab.report import Report, build_report
from maelab.run_folder import CALIBRATION_DIR, REPORT_FILE, STUDY_FILE, write_json_atomic

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
WORLD_CONFIG = CONFIG_DIR / "study_world.yaml"
DEMO_CONFIG = CONFIG_DIR / "demo.yaml"
REAL_DIR = "real"  # the real-image part's sweep folder inside the study folder
SHARED_SWEEP_KEYS = ("sweep.seeds=", "sweep.workers=", "sweep.threads=")  # reach both parts


class DemoSettings(Strict):
    """The `demo:` section of a demo YAML: budgets, no logic."""

    quick: list[str] = []  # key=value overrides applied by --quick (a few steps, for tests)
    full: list[str] = []  # key=value overrides applied by --full (more seeds and steps)
    first_seeds: dict[
        str, int | None
    ] = {}  # condition -> run on the first N seeds only (None: all)
    real: str | None = None  # a demo YAML --full runs as well, into OUT/real (real images)
    # `maelab calibrate` first, into OUT/calibration (quick: a small grid; skip: none)
    calibration: Literal["full", "quick", "skip"] = "full"


@dataclass
class Part:
    """One sweep of the demo: the study it decides and the runs of its conditions."""

    study: Study
    plan: SweepPlan

    @property
    def seeds(self) -> list[int]:
        return sorted({p.seed for p in self.plan.points})


@dataclass
class DemoPlan:
    world: Part
    real: Part | None = None  # `--full`'s real-image part
    settings: DemoSettings = field(default_factory=DemoSettings)


@dataclass
class DemoDecision:
    """The decided tables (the world's, then the real part's) and what they were decided from."""

    decision: Decision
    world: Measurements
    real: Measurements | None = None


@dataclass
class DemoResult:
    dir: Path
    report: Report
    decision: Decision
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    calibration: vd.Verdicts | None = None  # None: the demo's budget turned it off


# ---------------------------------------------------------------- calibrate
def calibrate_demo(plan: DemoPlan, say: Callable[[str], None]) -> vd.Verdicts | None:
    """Known answers first (`maelab calibrate` into OUT/calibration); a folder that holds its
    verdicts already is kept, as finished runs are."""
    mode = plan.settings.calibration
    if mode == "skip":
        return None
    out = plan.world.plan.dir / CALIBRATION_DIR
    if (out / vd.VERDICTS_FILE).is_file():
        return vd.read_verdicts(out)
    say(f"demo: calibration on Gaussian worlds with exact answers in {out}")
    result = run_calibration(out, quick=mode == "quick", workers=plan.world.plan.settings.workers)
    return write_calibration_verdicts(result)[1]


# ---------------------------------------------------------------- plan
def demo_tree(
    files: list[str], overrides: list[str], quick: bool = False, full: bool = False
) -> dict[str, Any]:
    """The YAML files merged (read once), with the `demo.full` / `demo.quick` overrides of
    `--full` / `--quick` applied, then the user's own overrides (which win)."""
    tree: dict[str, Any] = {}
    for f in files:
        tree = deep_merge(tree, read_yaml(f))
    user = parse_overrides(overrides)
    presets = build_config(deep_merge(tree, user).get("demo") or {}, DemoSettings)
    chosen = [*(presets.full if full else []), *(presets.quick if quick else [])]
    return deep_merge(deep_merge(tree, parse_overrides(chosen)), user)


def grids_of(conditions: Mapping[str, Mapping[str, Any]], first_seeds: Mapping[str, int | None]
             ) -> list[dict[str, Any]]:  # fmt: skip
    """One sweep grid per condition: its axis values (fewer seeds where the budget says)."""
    unknown = set(first_seeds) - set(conditions)
    if unknown:
        raise ConfigError(f"demo.first_seeds names no condition of the study: {sorted(unknown)}")
    return [
        {**{k: [v] for k, v in values.items() if v is not AT_BASE},
         **({GRID_SEEDS: first_seeds[name]} if first_seeds.get(name) is not None else {})}
        for name, values in conditions.items()
    ]  # fmt: skip


def plan_part(study: Study, tree: dict[str, Any], out: str | Path | None) -> Part:
    """The sweep of a study's conditions under a demo YAML's budgets."""
    settings = build_config(tree.get("demo") or {}, DemoSettings)
    if (tree.get("sweep") or {}).get("grids") or (tree.get("sweep") or {}).get("grid"):
        raise ConfigError("a demo YAML holds budgets: its runs are the study's conditions, "
                          "not a sweep.grids section")  # fmt: skip
    grids = grids_of(study.conditions, settings.first_seeds)
    plan = load_sweep([], [], out=None if out is None else str(out), base=tree, grids=grids)
    return Part(study, plan)


def plan_demo(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    out: str | None = None,
    full: bool = False,
) -> DemoPlan:
    """The demo's sweeps: the world's (with `full`, the mask-ratio sweep too) and, with `full`,
    the real-image part."""
    overrides = list(overrides or [])
    tree = demo_tree([str(WORLD_CONFIG), str(config or DEMO_CONFIG)], overrides, quick, full)
    world = plan_part(WORLD_FULL if full else WORLD, tree, out)
    settings = build_config(tree.get("demo") or {}, DemoSettings)
    real = plan_real(settings, world.plan.dir, overrides, quick) if full else None
    return DemoPlan(world, real, settings)


def plan_real(
    settings: DemoSettings, study_dir: Path, overrides: list[str] | None = None, quick: bool = False
) -> Part | None:
    """The real-image part (`demo.real`: a shipped config name or a YAML path), swept into
    STUDY/real; None when the demo names none. Of the user's overrides only `sweep.seeds`,
    `sweep.workers` and `sweep.threads` reach it (the rest describe the world). Its conditions
    and claims carry its data's name."""
    if not settings.real:
        return None
    path = Path(settings.real)
    file = path if path.suffix in (".yaml", ".yml") else CONFIG_DIR / f"{path}.yaml"
    if not file.is_file():
        raise ConfigError(
            f"demo.real '{settings.real}' is neither a YAML file nor a shipped config name"
        )
    shared = [o for o in overrides or [] if o.startswith(SHARED_SWEEP_KEYS)]
    part = plan_part(REAL_IMAGES, demo_tree([str(file)], shared, quick), study_dir / REAL_DIR)
    part.study = REAL_IMAGES.labelled(data_name(part.plan))
    return part


def data_name(plan: SweepPlan) -> str:
    return str(build_config(plan.base).data.name)


# ---------------------------------------------------------------- sweep
def sweep_demo(plan: DemoPlan, say: Callable[[str], None], quiet: bool = False
               ) -> dict[str, float]:  # fmt: skip
    """Train and evaluate every run (resumable); the seconds of each part."""
    stages = {}
    for name, part in (("sweep", plan.world), ("real", plan.real)):
        if part is None:
            continue
        t0 = time.time()
        say(f"demo: {len(part.plan.points)} runs of the {part.study.name} in {part.plan.dir} "
            f"({part.plan.settings.workers} at a time)")  # fmt: skip
        _check_runs(run_sweep(part.plan, quiet=quiet))
        stages[name] = time.time() - t0
    return stages


def _check_runs(result: SweepResult) -> None:
    if result.failed:
        first = next(iter(result.failed.items()))
        raise ConfigError(f"{len(result.failed)} demo run(s) failed, e.g. {first[0]}: {first[1]}")


# ---------------------------------------------------------------- decide
def decide_demo(plan: DemoPlan) -> DemoDecision:
    """Each part's study decided from its runs; the real part's table follows the world's."""
    world = read_measurements(plan.world.plan.dir, plan.world.study.conditions)
    pilots = read_pilots(budget_key(plan.world.plan.base), plan.world.plan.dir)
    decision = decide(plan.world.study, world, pilots)
    real = None
    if plan.real is not None:
        real = read_measurements(plan.real.plan.dir, plan.real.study.conditions)
        real_pilots = read_pilots(budget_key(plan.real.plan.base), plan.world.plan.dir)
        decision = decision.extend(decide(plan.real.study, real, real_pilots))
    return DemoDecision(decision, world, real)


# ---------------------------------------------------------------- write
def write_demo(plan: DemoPlan, decided: DemoDecision) -> Path:
    """`verdicts.json` and `study.json` (derived predictions, undecided rows, learning curves,
    references) into the study folder; returns the verdicts file."""
    world, real = plan.world, plan.real
    base = build_config(world.plan.base)
    hashed = {
        "base": base.model_dump(mode="json"),
        "sweep": world.plan.settings.model_dump(mode="json"),
    }
    if real is not None:
        hashed["real"] = build_config(real.plan.base).model_dump(mode="json")
    record = vd.Verdicts(
        commit=vd.git_commit(Path(__file__).resolve().parent),
        config_hash=vd.config_hash(hashed),
        regime=tuple(decided.decision.regime),
        verdicts=tuple(decided.decision.verdicts),
    )
    path = vd.write_verdicts(world.plan.dir / vd.VERDICTS_FILE, record)
    synthetic = base.data.name == "synthetic"
    write_json_atomic(world.plan.dir / STUDY_FILE, {
        "conditions": named_values(world.study.conditions),
        "seeds": world.seeds,
        "real": None if real is None else {
            "data": data_name(real.plan), "dir": REAL_DIR, "conditions": REAL_IMAGES.conditions,
            "seeds": real.seeds, "pixels": decided.real.pixels if decided.real else {},
        },
        **as_json(decided.decision),
        "curves": decided.world.curves,
        "references": {  # beside the effective-rank curve
            "pixels_effective_rank": decided.world.pixels.get(EFFECTIVE_RANK),
            "latent_dimension": latent_dimension(base) if synthetic else None,
        },
    })  # fmt: skip
    return path


def run_pilot(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    out: str | None = None,
    quiet: bool = False,
    full: bool = False,
) -> tuple[Path, dict[str, Any]]:
    """The pilots of a demo budget: every condition of the world's study trained
    `PILOT_FACTOR` times longer on the tuning seed, into OUT/pilot; their final loss and gate
    readout are written to OUT/pilot/pilots.json under the budget they judge."""
    say = _say(quiet)
    judged = plan_demo(config, overrides, quick, out, full)
    longer = [*(overrides or []), f"train.epochs={PILOT_FACTOR * _epochs(judged.world)}",
              f"sweep.seeds=[{PILOT_SEED}]"]  # fmt: skip
    pilot = plan_demo(config, longer, quick, str(judged.world.plan.dir / PILOT_DIR), full)
    if judged.real is not None:  # the real part's own budget, 3x longer, on the tuning seed
        pilot.real = plan_real(judged.settings, pilot.world.plan.dir,
                               [*(overrides or []), f"sweep.seeds=[{PILOT_SEED}]",
                                f"train.epochs={PILOT_FACTOR * _epochs(judged.real)}"], quick)  # fmt: skip
    sweep_demo(pilot, say, quiet)
    path = None
    entries: dict[str, Any] = {}
    for judged_part, part in ((judged.world, pilot.world), (judged.real, pilot.real)):
        if judged_part is None or part is None:
            continue
        m = read_measurements(part.plan.dir, part.study.conditions)
        entry = pilot_entry(part.study, m)
        path = write_pilot(judged.world.plan.dir, budget_key(judged_part.plan.base), entry)
        entries.update({f"{part.study.name}: {c}": v for c, v in entry["conditions"].items()})
    return path, {"conditions": entries, "steps": "3x", "seed": PILOT_SEED}


def _epochs(part: Part) -> int:
    return build_config(part.plan.base).train.epochs


def _say(quiet: bool) -> Callable[[str], None]:
    """The demo's progress lines, on stderr (nothing when quiet)."""
    return (lambda msg: None) if quiet else (lambda msg: print(msg, file=sys.stderr, flush=True))


def named_values(conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Conditions as study.json keeps them: the fields they name (not those held at base)."""
    return {n: {k: v for k, v in c.items() if v is not AT_BASE} for n, c in conditions.items()}


def run_demo(
    config: str | Path | None = None,
    overrides: list[str] | None = None,
    quick: bool = False,
    out: str | None = None,
    quiet: bool = False,
    full: bool = False,
) -> DemoResult:
    """Plan, sweep (resumable), decide, write the verdicts, then the HTML report."""
    t0 = time.time()
    say = _say(quiet)
    plan = plan_demo(config, overrides, quick, out, full)
    calibration = calibrate_demo(plan, say)
    stages = {"calibration": time.time() - t0}
    stages.update(sweep_demo(plan, say, quiet))
    t1 = time.time()
    decided = decide_demo(plan)
    write_demo(plan, decided)
    stages["verdicts"] = time.time() - t1
    say("demo: writing the report")
    report = build_report(plan.world.plan.dir, plan.world.plan.dir / REPORT_FILE,
                          title="maelab demo")  # fmt: skip
    stages["report"] = time.time() - t1 - stages["verdicts"]
    return DemoResult(plan.world.plan.dir, report, decided.decision, time.time() - t0, stages,
                      calibration)  # fmt: skip
