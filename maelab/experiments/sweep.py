"""Running a sweep: every unfinished point of a plan (and the baselines), resumable.

A run is finished when its `done.json` exists (written after pretraining and the evaluations);
re-running a sweep skips finished runs and resumes the others from their last checkpoint. Runs
train in this process or in a pool of spawned worker processes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
from threadpoolctl import threadpool_limits

from maelab.config import build_config, deep_merge
from maelab.engine.pretrain import pretrain
from maelab.evaluation.reconstruct import write_reconstruction_figure
from maelab.evaluation.results import EvalConfig
from maelab.experiments.plan import SweepPlan, check_plan, planned_steps, write_manifest
from maelab.experiments.progress import SweepProgress
from maelab.experiments.run_results import evaluate_baselines, evaluate_run
from maelab.probes.runner import probe_checkpoint
from maelab.run_folder import BASELINE_DIR, RunFolder, write_json_atomic


def execute_point(
    cfg_tree: dict[str, Any],
    eval_tree: dict[str, Any],
    probes: list[str],
    threads: int | None,
) -> dict[str, Any]:
    """Pretrain (resuming), evaluate and run the probes of one point; writes done.json.

    Takes and returns plain data so that it can run in a worker process.
    """
    if threads:
        torch.set_num_threads(threads)
    cfg = build_config(cfg_tree)
    folder = RunFolder(cfg.run_dir)
    run_dir = folder.root
    t0 = time.time()
    with _blas_threads(threads):
        res = pretrain(cfg, resume="auto", quiet=True)
        write_reconstruction_figure(res.model, res.splits.test, cfg.mask, folder)
        results = evaluate_run(run_dir, EvalConfig.model_validate(eval_tree))
        if probes:
            probe_checkpoint(folder.last_checkpoint, folder.probes, probes)
    done = {
        "run": run_dir.name,
        "steps": res.steps,
        "final_loss": res.final_loss,
        "seconds": time.time() - t0,
        "metrics": results.metrics,
    }
    write_json_atomic(folder.done, done)
    return done


def execute_baselines(
    cfg_tree: dict[str, Any], eval_tree: dict[str, Any], out_dir: str, threads: int | None
) -> dict[str, Any]:
    """Score the random-init encoder and raw pixels (worker-safe); writes done.json."""
    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    with _blas_threads(threads):
        base = evaluate_baselines(
            build_config(cfg_tree), out_dir, EvalConfig.model_validate(eval_tree)
        )
    done = {"run": BASELINE_DIR, "seconds": time.time() - t0, "baselines": base}
    write_json_atomic(RunFolder(out_dir).done, done)
    return done


def _blas_threads(threads: int | None) -> AbstractContextManager[Any]:
    """Limit BLAS pools (numpy / scipy) like torch: oversubscribed pools crawl on small CPUs."""
    if not threads:
        return nullcontext()
    return threadpool_limits(threads)


@dataclass
class SweepResult:
    dir: Path
    ran: list[str]
    skipped: list[str]
    failed: dict[str, str]
    seconds: float


Job = tuple[str, Callable[..., dict[str, Any]], tuple[Any, ...], Path, int | None]


def run_sweep(plan: SweepPlan, quiet: bool = False) -> SweepResult:
    """Run every unfinished point (and the baselines), with a progress display."""
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
    base_dir = RunFolder(plan.dir).baselines
    if s.baselines:
        if RunFolder(base_dir).status() == "done":
            skipped.append(BASELINE_DIR)
        else:
            base_tree = build_config(deep_merge(plan.base, {"run_dir": str(base_dir)})).model_dump(
                mode="json", exclude_unset=True
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
        if RunFolder(run_dir).status() == "done":
            skipped.append(p.name)
            continue
        cfg = plan.config(p)
        jobs.append(
            (
                p.name,
                execute_point,
                # only the fields the sweep sets: the run's recipe fills the others
                (
                    cfg.model_dump(mode="json", exclude_unset=True),
                    eval_tree,
                    list(s.probes),
                    threads,
                ),
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
