"""Calibration on known answers: maelab's pipeline measured on Gaussian worlds whose optimum
is exact, before it measures anything unknown (SPEC rule 9).

The declaration below fixes every condition, budget and tolerance. `run_calibration` trains
what each row needs with maelab's own engine (maelab.experiments.calibration_train), computes
the exact answers (maelab.theory) meanwhile, and judges each row by one rule
(maelab.experiments.calibration_rows). docs/theory.md, "Calibration: known answers", derives
every expected value and says which are exact and which Monte Carlo.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from maelab.config import GaussianConfig, MaskConfig
from maelab.data.gaussian import gaussian_world
from maelab.experiments.calibration_figures import (
    ReachCurve,
    bound_figure,
    kong_map_figure,
    reach_figure,
)
from maelab.experiments.calibration_rows import (
    BISULCO_FULL,
    BISULCO_K,
    CalibrationRow,
    bound_row,
    curve_row,
    kong_row,
    trainer_row,
)
from maelab.experiments.calibration_train import LinearJob, VitJob, VitOutcome, run_jobs
from maelab.run_folder import CALIBRATION_FILE, write_json_atomic
from maelab.theory.gaussian import (
    bayes_bound,
    code_angle,
    eigengap,
    latent_shares,
    linear_loss,
    linear_optimum,
    moments,
    reach,
)
from maelab.theory.kong import KongPoint, exact_shares, kong_map, unit_masks
from maelab.theory.mask_law import MaskLaw, mask_law

# ---------------------------------------------------------------- the declaration
STATIONARY = GaussianConfig()  # 16 px field: short- + long-range kernel + white noise
RATIOS = (0.25, 0.5, 0.75, 0.9)
PATCHES = (1, 2, 4)
CODE_DIM = 3  # the trained k: at an eigengap (>= 0.5) of every condition's optimum
KONG_PATCH, KONG_RATIO = 2, 0.75  # 16 px hierarchy: patch 2, cell 4, region 8 (4 regions)
KONG_WORLDS: dict[str, tuple[GaussianConfig, int]] = {  # name -> (world, trained k)
    "order-holds": (
        GaussianConfig(kind="hierarchy", pixel_noise=0.1, region_noise_std=1.0,
                       cell_noise_std=1.0), 8),
    "order-reverses": (
        GaussianConfig(kind="hierarchy", global_dim=3, region_noise_dim=3, cell_noise_dim=3,
                       pixel_noise=2.0, region_noise_std=1.0, cell_noise_std=3.0), 3),
}  # fmt: skip
# the Kong map: pixel noise x (s_r, s_c) x k
MAP_NOISES = (0.01, 0.1, 0.3, 1.0, 3.0)
MAP_SCALES = ((0.3, 0.3), (1.0, 1.0), (1.0, 3.0))
MAP_CODE_DIMS = (2, 4, 8)
VIT_PATCH, VIT_MASK = 4, MaskConfig(ratio=0.75)

# tolerances, fixed before the final run
LOSS_TOLERANCE = 0.01  # of the optimal loss
REACH_FRACTION = 0.25  # of the optimal reach's spread across conditions
SHARE_FRACTION = 0.25  # of the optimal shares' spread across units
ANGLE_TOLERANCE, MIN_EIGENGAP = 15.0, 0.1  # degrees, on the data; where the eigengap is this wide
BOUND_FRACTION = 0.5  # of the way from the Bayes bound to the trivial predictor


@dataclass(frozen=True)
class Budget:
    full_rank_steps: int = 400
    rank_steps: int = 600
    batch: int = 256
    full_rank_lr: float = 5e-3
    rank_lr: float = 1e-2
    vit_steps: int = 400
    vit_batch: int = 128
    vit_lr: float = 6e-3


FULL = Budget()
QUICK = Budget(full_rank_steps=100, rank_steps=60, batch=128, vit_steps=40, vit_batch=64)


@dataclass(frozen=True)
class CalibrationResult:
    rows: tuple[CalibrationRow, ...]
    seconds: float
    out_dir: Path
    figures: dict[str, Path]
    kong_map: tuple[KongPoint, ...]
    vit: VitOutcome
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.rows)


def condition(patch: int, ratio: float) -> str:
    return "plain AE (ratio 0)" if ratio == 0 else f"patch {patch}, ratio {ratio:g}"


def linear_jobs(
    budget: Budget, ratios: tuple[float, ...], patches: tuple[int, ...]
) -> list[LinearJob]:
    """The stationary field's runs: every (patch, ratio) and the plain AE, at full rank and k."""
    jobs = []
    for rank, steps, lr in ((None, budget.full_rank_steps, budget.full_rank_lr),
                            (CODE_DIM, budget.rank_steps, budget.rank_lr)):  # fmt: skip
        tag = "full" if rank is None else f"k{rank}"
        grid = [(p, r, "masked") for p in patches for r in ratios] + [(patches[-1], 0.0, "all")]
        for patch, ratio, loss_on in grid:
            name = f"linear-{tag}-{condition(patch, ratio)}".replace(" ", "").replace(",", "-")
            jobs.append(LinearJob(name, STATIONARY, MaskConfig(ratio=ratio), patch, rank,
                                  steps, budget.batch, lr, loss_on))  # fmt: skip
    return jobs


KongJobs = dict[tuple[str, str], LinearJob]  # (world, unit) -> its run


def kong_jobs(budget: Budget, worlds: dict[str, tuple[GaussianConfig, int]]) -> KongJobs:
    return {
        (name, unit): LinearJob(f"kong-{name}-{unit}", world, mask, KONG_PATCH, k,
                                budget.rank_steps, budget.batch, budget.rank_lr)
        for name, (world, k) in worlds.items()
        for unit, mask in unit_masks(world, KONG_PATCH, KONG_RATIO).items()
    }  # fmt: skip


def law_of(job: LinearJob) -> MaskLaw:
    loss_on = "all" if job.loss_on == "all" else "masked"
    return mask_law(job.mask, job.world.image_size, job.patch_size, loss_on)


@dataclass
class Exact:
    """The exact answers, computed while the runs train."""

    optima: dict[str, object] = field(default_factory=dict)  # job name -> LinearOptimum
    gaps: dict[str, float] = field(default_factory=dict)
    kong: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    bound: float = float("nan")
    linear_bound: float = float("nan")
    kong_map: tuple[KongPoint, ...] = ()
    seconds: float = 0.0


def exact_answers(jobs: list[LinearJob], worlds: dict[str, tuple[GaussianConfig, int]],
                  with_map: bool) -> Exact:  # fmt: skip
    t0 = time.time()
    ex = Exact()
    cov = gaussian_world(STATIONARY).covariance
    for job in (j for j in jobs if j.name.startswith("linear-")):
        law = law_of(job)
        ex.optima[job.name] = linear_optimum(cov, law, job.code_dim)
        if job.code_dim is not None:
            full = linear_optimum(cov, law)
            ex.gaps[job.name] = eigengap(full.weights, cov, law, job.code_dim)
    for name, (world, k) in worlds.items():
        ex.kong[name] = exact_shares(world, KONG_PATCH, KONG_RATIO, k)
    vit_law = mask_law(VIT_MASK, STATIONARY.image_size, VIT_PATCH)
    ex.bound = bayes_bound(cov, vit_law).value
    ex.linear_bound = linear_optimum(cov, vit_law).loss
    if with_map:
        base = GaussianConfig(kind="hierarchy")
        ex.kong_map = tuple(kong_map(base, MAP_NOISES, MAP_SCALES, MAP_CODE_DIMS))
    ex.seconds = time.time() - t0
    return ex


def run_calibration(
    out_dir: str | Path, quick: bool = False, workers: int = 2, with_map: bool = True
) -> CalibrationResult:
    """Train, solve and judge every row; write DIR/calibration.json and the figures.

    ``quick`` runs a small grid on a small budget (a smoke test: its rows are not the
    calibration and need not pass).
    """
    t0 = time.time()
    out = Path(out_dir)
    budget = QUICK if quick else FULL
    ratios, patches = ((0.5, 0.75, 0.9), (2, 4)) if quick else (RATIOS, PATCHES)
    worlds = dict(list(KONG_WORLDS.items())[:1]) if quick else KONG_WORLDS
    linear = linear_jobs(budget, ratios, patches)
    kong = kong_jobs(budget, worlds)
    vit = VitJob("vit", STATIONARY, VIT_MASK, VIT_PATCH, budget.vit_steps, budget.vit_batch,
                 budget.vit_lr)  # fmt: skip
    runs = run_jobs([*linear, *kong.values(), vit], out / "runs", workers,
                    lambda: exact_answers(linear, worlds, with_map and not quick))  # fmt: skip
    trained, ex = runs.results, runs.waited
    rows, curves = linear_rows(linear, trained, ex)
    rows += kong_rows(kong, worlds, trained, ex)
    outcome = trained["vit"]
    assert isinstance(outcome, VitOutcome)
    trivial = float(np.trace(gaussian_world(STATIONARY).covariance)) / STATIONARY.image_size**2
    rows.append(
        bound_row(outcome.heldout, outcome.stderr, ex.bound, trivial, BOUND_FRACTION,
                  outcome.steps, notes=(f"the best linear MAE (mask-blind): {ex.linear_bound:.4f}",))
    )  # fmt: skip
    figures = {
        "reach": reach_figure(curves, out / "figures" / "calibration_reach.png"),
        "bound": bound_figure(outcome, ex.bound, ex.linear_bound, trivial,
                              out / "figures" / "calibration_bound.png"),
    }  # fmt: skip
    if ex.kong_map:
        figures["kong_map"] = kong_map_figure(ex.kong_map, out / "figures" / "kong_map.png")
    seconds = time.time() - t0
    timings = {
        "total": seconds, "exact answers": ex.seconds,
        "training (sum over runs)": sum(runs.seconds.values()),
        **{f"run {name}": t for name, t in runs.seconds.items()},
    }  # fmt: skip
    result = CalibrationResult(tuple(rows), seconds, out, figures, ex.kong_map, outcome, timings)
    write_json_atomic(out / CALIBRATION_FILE, summary(result))
    return result


def linear_rows(
    jobs: list[LinearJob], trained: dict, ex: Exact
) -> tuple[list[CalibrationRow], dict[str, ReachCurve]]:
    """The trainer row (at k) and the two Bisulco reach rows (full rank, k), and the reach
    curves they compare (for the figure)."""
    cov = gaussian_world(STATIONARY).covariance
    Key = tuple[int, float]
    reach_t: dict[str, dict[Key, float]] = {"full": {}, "k": {}}
    reach_e: dict[str, dict[Key, float]] = {"full": {}, "k": {}}
    losses, optimal, angles, gaps = {}, {}, {}, {}
    for job in jobs:
        law, w, opt = law_of(job), trained[job.name], ex.optima[job.name]
        side = "full" if job.code_dim is None else "k"
        key = (job.patch_size, job.mask.ratio)
        reach_t[side][key] = reach(w, cov, law)
        reach_e[side][key] = reach(opt.weights, cov, law)  # type: ignore[attr-defined]
        if side == "k" and job.loss_on == "masked":
            cond = condition(*key)
            losses[cond] = linear_loss(w, cov, law)
            optimal[cond] = opt.loss  # type: ignore[attr-defined]
            rows_t = np.linalg.svd(w)[2][: job.code_dim]
            second = moments(cov, law).second  # the code compared on the masked inputs
            angles[cond] = code_angle(rows_t, opt.encoder, second)  # type: ignore[attr-defined]
            gaps[cond] = ex.gaps[job.name]

    def labelled(values: dict[Key, float]) -> dict[str, float]:
        return {condition(*key): v for key, v in values.items()}

    rows = [trainer_row(losses, optimal, LOSS_TOLERANCE, angles, gaps, ANGLE_TOLERANCE,
                        MIN_EIGENGAP)]  # fmt: skip
    curves = {}
    for side, name, width in (
        ("full", BISULCO_FULL, "full rank"),
        ("k", BISULCO_K, f"k = {CODE_DIM}"),
    ):
        claim = f"trained reach follows the exact optimum's at {width}"
        row = curve_row(name, claim, "reach (px)", labelled(reach_t[side]),
                        labelled(reach_e[side]), REACH_FRACTION, against_sentence(reach_e[side]))  # fmt: skip
        rows.append(row)
        verdict = "pass" if row.passed else "FAIL"
        curves[f"{width}: {verdict}"] = {
            k: (reach_t[side][k], reach_e[side][k]) for k in reach_e[side]
        }
    return rows, curves


def against_sentence(expected: dict[tuple[int, float], float]) -> tuple[str, ...]:
    """Where the optimum's reach falls as the mask ratio or the patch size grows (against the
    paper's sentence), as notes: these points test the trainer against the sentence. The plain
    AE (ratio 0) is compared with the lowest ratio of the same patch size."""
    notes = []
    patches = sorted({p for p, r in expected if r > 0})
    ratios = sorted({r for p, r in expected if r > 0})
    ae = next((v for (p, r), v in expected.items() if r == 0), None)
    for p in patches:
        line = [(condition(p, 0), ae)] if ae is not None else []
        line += [(condition(p, r), expected[(p, r)]) for r in ratios if (p, r) in expected]
        notes += _falls(line, "ratio")
    for r in ratios:
        notes += _falls(
            [(condition(p, r), expected[(p, r)]) for p in patches if (p, r) in expected], "patch"
        )
    return tuple(notes)


def _falls(line: list[tuple[str, float]], what: str) -> list[str]:
    return [
        f"against the sentence ({what}): reach falls from {a} ({va:.3f}) to {b} ({vb:.3f})"
        for (a, va), (b, vb) in zip(line, line[1:], strict=False)
        if vb < va
    ]


def kong_rows(
    jobs: KongJobs, worlds: dict[str, tuple[GaussianConfig, int]], trained: dict, ex: Exact
) -> list[CalibrationRow]:
    rows = []
    for name, (world, k) in worlds.items():
        gw = gaussian_world(world)
        treated = {}
        for (world_name, unit), job in jobs.items():
            if world_name == name:
                shares = latent_shares(trained[job.name], gw, law_of(job))
                treated[unit] = {level: float(v.sum()) for level, v in shares.items()}
        note = (f"pixel noise {world.pixel_noise:g}, s_r {world.region_noise_std:g}, "
                f"s_c {world.cell_noise_std:g}, k {k}")  # fmt: skip
        rows.append(kong_row(name, treated, ex.kong[name], SHARE_FRACTION, (note,)))
    return rows


def summary(result: CalibrationResult) -> dict:
    """The rows as plain data (DIR/calibration.json)."""
    return {
        "passed": result.passed,
        "seconds": result.seconds,
        "timings": result.timings,
        "rows": [
            {
                **asdict(r),
                "passed": r.passed,
                "checks": [{**asdict(c), "passed": c.passed} for c in r.checks],
            }
            for r in result.rows
        ],  # fmt: skip
        "vit_curve": [list(p) for p in result.vit.curve],
        "kong_map": [
            {**asdict(p), "effect": p.effect, "holds": p.holds, "cell_holds": p.cell_holds}
            for p in result.kong_map
        ],
        "figures": {k: str(v) for k, v in result.figures.items()},
    }
