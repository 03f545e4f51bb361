"""Sweeps: a grid over any config fields, one run folder per point, resumable.

A sweep folder holds `sweep.json` (the points and their field values), `baselines/` (random-init
encoder and raw pixels) and one run folder per point, named from its field values, e.g.
`mask.ratio=0.75__mask.unit=8__seed=0`. A run is finished when its `done.json` exists (written
after pretraining and the evaluations); re-running a sweep skips finished runs and resumes the
others from their last checkpoint.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import yaml

from maelab.config import (
    Config,
    Strict,
    build_config,
    deep_merge,
    dump_config,
    parse_overrides,
    parse_value,
    read_yaml,
    set_dotted,
)
from maelab.errors import ConfigError
from maelab.experiments.evaluate import EvalConfig, write_json

DONE_FILE = "done.json"
MANIFEST_FILE = "sweep.json"
BASELINE_DIR = "baselines"


class SweepConfig(Strict):
    """The `sweep:` section of a sweep YAML (everything else in the file is the base config)."""

    grid: dict[str, list[Any]] = {}  # field -> values; the runs are the product of the axes
    grids: list[dict[str, list[Any]]] = []  # several grids; their union of points is run
    seeds: list[int] | None = None  # train.seed of each point; None: the base config's seed
    dir: str | None = None  # the sweep folder; None: the base config's run_dir
    workers: int = 1  # runs trained at the same time (processes); 1: in this process
    threads: int | None = None  # torch threads per run; None: all cores / workers
    baselines: bool = True  # score a random-init encoder and raw pixels once per sweep
    probes: list[str] = []  # theory probes (maelab.probes) to run on every run
    eval: EvalConfig = EvalConfig()


@dataclass(frozen=True)
class SweepPoint:
    """One run of a sweep: its folder name and the field values that differ from the base."""

    name: str
    values: dict[str, Any]  # dotted field -> value (the grid axes of this point)
    seed: int

    def overrides(self, sweep_dir: Path) -> dict[str, Any]:
        tree: dict[str, Any] = {}
        for key, value in self.values.items():
            set_dotted(tree, key, value)
        set_dotted(tree, "train.seed", self.seed)
        tree["run_dir"] = str(sweep_dir / self.name)
        return tree


@dataclass
class SweepPlan:
    """A resolved sweep: its folder, base config tree, settings and points."""

    dir: Path
    base: dict[str, Any]
    settings: SweepConfig
    points: list[SweepPoint]
    keys: list[str] = field(default_factory=list)  # the grid axes, in order

    def config(self, point: SweepPoint) -> Config:
        return build_config(deep_merge(self.base, point.overrides(self.dir)))


# ---------------------------------------------------------------- grid (pure)
def format_value(value: Any) -> str:
    """A value as it appears in a run folder name (`0.75`, `true`, `none`, `a-b`)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "-".join(format_value(v) for v in value)
    return str(value).replace("/", "_").replace(os.sep, "_").replace(" ", "_")


def run_name(values: dict[str, Any], seed: int) -> str:
    """`key=value__key=value__seed=N` in the order of `values`."""
    parts = [f"{k}={format_value(v)}" for k, v in values.items()]
    return "__".join([*parts, f"seed={seed}"])


def parse_grid_arg(text: str) -> tuple[str, list[Any]]:
    """`mask.ratio=0.1,0.5` or `data.crop_scale=[[0.2,1],[0.5,1]]` -> (key, values)."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key or not raw:
        raise ConfigError(
            f"--grid '{text}' must look like key=v1,v2,... (e.g. mask.ratio=0.5,0.75)"
        )
    if raw.startswith("["):
        values = parse_value(raw)
        if not isinstance(values, list):
            raise ConfigError(f"--grid '{text}': the bracketed value must be a YAML list")
    else:
        values = [parse_value(v.strip()) for v in raw.split(",") if v.strip()]
    if not values:
        raise ConfigError(f"--grid '{text}' has no values")
    return key, values


def parse_seeds(text: str) -> list[int]:
    """`0,1,2` -> [0, 1, 2]."""
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ConfigError(
            f"--seeds '{text}' must be comma-separated integers, e.g. 0,1,2"
        ) from None
    if not seeds or any(s < 0 for s in seeds):
        raise ConfigError(f"--seeds '{text}' must list one or more non-negative integers")
    return seeds


def expand_grids(
    grids: list[dict[str, list[Any]]], seeds: list[int]
) -> tuple[list[SweepPoint], list[str]]:
    """The union of the grids' products, times the seeds; duplicates kept once, in order.

    Every point names every axis of every grid; a grid that lacks an axis leaves it at the base
    value (recorded as None here, filled from the base config by `expand_sweep`).
    """
    keys: list[str] = []
    for grid in grids:
        for key, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"sweep grid axis '{key}' must be a non-empty list of values")
            if key not in keys:
                keys.append(key)
    points: list[SweepPoint] = []
    seen: set[str] = set()
    for grid in grids or [{}]:
        axes = list(grid)
        for combo in itertools.product(*(grid[k] for k in axes)):
            chosen = dict(zip(axes, combo, strict=True))
            for seed in seeds:
                values = {k: chosen.get(k, _UNSET) for k in keys}
                point = SweepPoint("", values, seed)
                key = json.dumps([values, seed], sort_keys=True, default=str)
                if key not in seen:
                    seen.add(key)
                    points.append(point)
    return points, keys


_UNSET = "__base__"


def get_dotted(tree: dict[str, Any], dotted: str) -> Any:
    """`tree["a"]["b"]` for "a.b"; None when a part is missing."""
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def expand_sweep(base: dict[str, Any], settings: SweepConfig, sweep_dir: str | Path) -> SweepPlan:
    """Points of a sweep with names, each config validated up front (a bad value fails early)."""
    grids = list(settings.grids)
    if settings.grid:
        grids = [deep_merge(g, settings.grid) for g in grids] if grids else [dict(settings.grid)]
    base_cfg = build_config(base)
    seeds = settings.seeds if settings.seeds is not None else [base_cfg.train.seed]
    raw, keys = expand_grids(grids, seeds)
    resolved = base_cfg.model_dump(mode="json")
    sweep_dir = Path(sweep_dir)
    points, names = [], set()
    for p in raw:
        # axes a grid leaves out take the base value, so that names stay comparable
        values = {k: (get_dotted(resolved, k) if v == _UNSET else v) for k, v in p.values.items()}
        point = SweepPoint(run_name(values, p.seed), values, p.seed)
        if point.name in names:
            continue
        names.add(point.name)
        try:
            build_config(deep_merge(base, point.overrides(sweep_dir)))
        except ConfigError as exc:
            raise ConfigError(f"sweep point {point.name}: {exc}") from None
        points.append(point)
    return SweepPlan(Path(sweep_dir), base, settings, points, keys)


def load_sweep(
    files: list[str],
    overrides: list[str] | None = None,
    grid_args: list[str] | None = None,
    seeds: str | None = None,
    out: str | None = None,
) -> SweepPlan:
    """A sweep from YAML files (base config + optional `sweep:` section), `key=value` overrides
    (`sweep.workers=2` reaches the sweep section), `--grid` axes and `--seeds`."""
    tree: dict[str, Any] = {}
    for f in files:
        tree = deep_merge(tree, read_yaml(f))
    tree = deep_merge(tree, parse_overrides(overrides or []))
    for drop in ("demo",):  # sections of other commands sharing the file
        tree.pop(drop, None)
    section = tree.pop("sweep", {}) or {}
    if grid_args:
        grid = dict(section.get("grid") or {})
        for arg in grid_args:
            key, values = parse_grid_arg(arg)
            grid[key] = values
        section["grid"] = grid
    if seeds is not None:
        section["seeds"] = parse_seeds(seeds)
    settings = build_config(section, SweepConfig)
    if not settings.grid and not settings.grids:
        raise ConfigError(
            "the sweep has no grid: give --grid key=v1,v2 or a `sweep: grid:` section"
        )
    sweep_dir = out or settings.dir or tree.get("run_dir") or "runs/sweep"
    return expand_sweep(tree, settings, sweep_dir)


# ---------------------------------------------------------------- run state
def run_status(run_dir: Path) -> str:
    """'done' (done.json), 'partial' (a checkpoint or results exist) or 'new'."""
    if (run_dir / DONE_FILE).is_file():
        return "done"
    if (run_dir / "checkpoints" / "last.pt").is_file() or (run_dir / "config.yaml").is_file():
        return "partial"
    return "new"


def config_mismatch(run_dir: Path, cfg: Config) -> list[str]:
    """Fields where the config stored in a run folder differs from `cfg` (run_dir excluded)."""
    path = run_dir / "config.yaml"
    if not path.is_file():
        return []
    try:
        stored = build_config(yaml.safe_load(path.read_text()) or {}).model_dump(mode="json")
    except (ConfigError, yaml.YAMLError):
        return ["config.yaml (unreadable)"]
    ours = cfg.model_dump(mode="json")
    diffs: list[str] = []
    _diff(stored, ours, "", diffs)
    return [d for d in diffs if not d.startswith("run_dir")]


def _diff(a: Any, b: Any, prefix: str, out: list[str]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            _diff(a.get(k), b.get(k), f"{prefix}{k}.", out)
    elif a != b:
        out.append(f"{prefix[:-1]}: {a!r} in the folder vs {b!r} now")


def planned_steps(cfg: Config) -> int | None:
    """Iterations a run will take (epochs x batches per epoch); None when the size is unknown."""
    from maelab.data import get_dataset

    n = cfg.data.num_train or get_dataset(cfg.data.name).num_train
    if n is None:
        return None
    return cfg.train.epochs * max(1, n // cfg.train.batch_size)


def latest_step(run_dir: Path) -> int:
    """The last logged step of a run (0 before the first log line)."""
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return 0
    try:
        with path.open("rb") as f:
            f.seek(max(0, path.stat().st_size - 4096))
            lines = f.read().decode(errors="ignore").splitlines()
        for line in reversed(lines):
            if line.strip().startswith("{"):
                return int(json.loads(line).get("step", 0))
    except (OSError, ValueError):
        pass
    return 0


# ---------------------------------------------------------------- one run
def execute_point(
    cfg_tree: dict[str, Any],
    eval_tree: dict[str, Any],
    probes: list[str],
    threads: int | None,
) -> dict[str, Any]:
    """Pretrain (resuming), evaluate and run the probes of one point; writes done.json.

    Takes and returns plain data so that it can run in a worker process.
    """
    import torch

    from maelab.engine.pretrain import pretrain
    from maelab.evaluation.reconstruct import write_reconstruction_figure
    from maelab.experiments.evaluate import evaluate_run
    from maelab.run_folder import RunFolder

    if threads:
        torch.set_num_threads(threads)
    cfg = build_config(cfg_tree)
    run_dir = Path(cfg.run_dir)
    t0 = time.time()
    with _blas_threads(threads):
        res = pretrain(cfg, resume="auto", quiet=True)
        write_reconstruction_figure(res.model, res.splits.test, cfg.mask, RunFolder(run_dir))
        results = evaluate_run(run_dir, EvalConfig.model_validate(eval_tree))
        if probes:
            from maelab.analysis.theory import probe_checkpoint

            probe_checkpoint(run_dir / "checkpoints" / "last.pt", run_dir / "probes", probes)
    done = {
        "run": run_dir.name,
        "steps": res.steps,
        "final_loss": res.final_loss,
        "seconds": time.time() - t0,
        "metrics": results["metrics"],
    }
    write_json(run_dir / DONE_FILE, done)
    return done


def execute_baselines(
    cfg_tree: dict[str, Any], eval_tree: dict[str, Any], out_dir: str, threads: int | None
) -> dict[str, Any]:
    """Score the random-init encoder and raw pixels (worker-safe); writes done.json."""
    import torch

    from maelab.experiments.evaluate import evaluate_baselines

    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    with _blas_threads(threads):
        base = evaluate_baselines(
            build_config(cfg_tree), out_dir, EvalConfig.model_validate(eval_tree)
        )
    done = {"run": BASELINE_DIR, "seconds": time.time() - t0, "baselines": base}
    write_json(Path(out_dir) / DONE_FILE, done)
    return done


def _blas_threads(threads: int | None) -> AbstractContextManager[Any]:
    """Limit BLAS pools (numpy / scipy) like torch: oversubscribed pools crawl on small CPUs."""
    if not threads:
        return nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(threads)


# ---------------------------------------------------------------- the sweep
@dataclass
class SweepResult:
    dir: Path
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]
    seconds: float


def write_manifest(plan: SweepPlan) -> None:
    manifest = {
        "keys": plan.keys,
        "points": [{"name": p.name, "values": p.values, "seed": p.seed} for p in plan.points],
        "base": build_config(plan.base).model_dump(mode="json"),
        "sweep": plan.settings.model_dump(mode="json"),
    }
    write_json(plan.dir / MANIFEST_FILE, manifest)
    (plan.dir / "base_config.yaml").write_text(dump_config(build_config(plan.base)))


def read_manifest(sweep_dir: str | Path) -> dict[str, Any]:
    path = Path(sweep_dir) / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def check_plan(plan: SweepPlan) -> None:
    """Refuse to mix runs made with another config into this sweep (one line, with the fix)."""
    for p in plan.points:
        diffs = config_mismatch(plan.dir / p.name, plan.config(p))
        if diffs:
            raise ConfigError(
                f"run folder {plan.dir / p.name} was made with another config ({diffs[0]}); "
                "give the sweep another folder (--out) or delete that run"
            )


Job = tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...], Path, int | None]


def run_sweep(plan: SweepPlan, quiet: bool = False) -> SweepResult:
    """Run every unfinished point (and the baselines), with a progress display."""
    from maelab.experiments.progress import SweepProgress

    t0 = time.time()
    check_plan(plan)
    plan.dir.mkdir(parents=True, exist_ok=True)
    write_manifest(plan)
    s = plan.settings
    workers = max(1, s.workers)
    threads = s.threads or max(1, (os.cpu_count() or 1) // workers)
    eval_tree = s.eval.model_dump(mode="json")
    jobs: list[Job] = []
    skipped: list[str] = []
    base_dir = plan.dir / BASELINE_DIR
    if s.baselines:
        if run_status(base_dir) == "done":
            skipped.append(BASELINE_DIR)
        else:
            base_tree = build_config(deep_merge(plan.base, {"run_dir": str(base_dir)})).model_dump(
                mode="json"
            )
            jobs.append(
                (
                    BASELINE_DIR,
                    execute_baselines,
                    (base_tree, eval_tree, str(base_dir), threads),
                    base_dir,
                    None,
                )
            )
    for p in plan.points:
        run_dir = plan.dir / p.name
        if run_status(run_dir) == "done":
            skipped.append(p.name)
            continue
        cfg = plan.config(p)
        jobs.append(
            (
                p.name,
                execute_point,
                (cfg.model_dump(mode="json"), eval_tree, list(s.probes), threads),
                run_dir,
                planned_steps(cfg),
            )
        )

    ran: list[str] = []
    failed: dict[str, str] = {}
    progress = SweepProgress(
        [(name, total) for name, *_, total in jobs], len(skipped), disabled=quiet
    )
    with progress:
        for name, outcome in _execute(jobs, workers, progress):
            if isinstance(outcome, BaseException):
                failed[name] = f"{type(outcome).__name__}: {outcome}"
                progress.finish(name, ok=False)
                progress.log(f"{name}: FAILED ({failed[name]})")
                continue
            ran.append(name)
            progress.finish(name, ok=True)
            progress.log(f"{name}: {summary_line(outcome)}")
    return SweepResult(plan.dir, ran, skipped, failed, time.time() - t0)


def summary_line(done: dict[str, Any]) -> str:
    """One line of the main numbers of a finished run (or of the baselines)."""
    if "baselines" in done:
        parts = [
            f"{k} linear {v.get('linear_top1', math.nan):.1f}%"
            for k, v in done["baselines"].items()
        ]
        return ", ".join(parts) + f" ({done['seconds']:.0f} s)"
    m = done.get("metrics", {})
    text = f"loss {done.get('final_loss', math.nan):.3f}, linear {m.get('linear_top1', math.nan):.1f}%, "
    text += f"k-NN {m.get('knn_top1', math.nan):.1f}%, eff. rank {m.get('effective_rank', math.nan):.1f}"
    if "r2.global" in m:
        text += f", R2(global) {m['r2.global']:.2f}"
    return text + f" ({done.get('seconds', math.nan):.0f} s)"


def _execute(jobs: list[Job], workers: int, progress: Any) -> Iterator[tuple[str, Any]]:
    """Run jobs in this process (workers=1) or in a pool of spawned processes; yield outcomes."""
    if workers <= 1 or len(jobs) <= 1:
        for name, fn, args, run_dir, _ in jobs:
            progress.start(name, run_dir)
            try:
                yield name, fn(*args)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # one failed run must not end the sweep
                yield name, exc
        return
    ctx = get_context("spawn")  # fork after torch threads start can deadlock
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        pending: dict[Future[Any], str] = {}
        queue = list(jobs)

        def submit() -> None:
            name, fn, args, run_dir, _ = queue.pop(0)
            progress.start(name, run_dir)
            pending[pool.submit(fn, *args)] = name

        while queue and len(pending) < workers:
            submit()
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                name = pending.pop(fut)
                try:
                    outcome: Any = fut.result()
                except Exception as exc:
                    outcome = exc
                if queue:
                    submit()
                yield name, outcome
