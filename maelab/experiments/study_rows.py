"""The study's verdict table from the runs of a demo: conditions, regime gates, rows, predictions.

A *condition* is a named set of sweep axis values (e.g. ``region: {mask.unit: 16}``); its runs
are the points with those values, one per seed. Each run's `results.json` holds the readouts of
`maelab.experiments.study_readout`. This module pairs runs over seeds, derives each Kong row's
predicted direction from the latents the two conditions' masks share (``shared.<level>``, from
`maelab.theory.shared_latents`), gates every row on its conditions' regime, and hands the rows to
`maelab.verdicts.decide_table`. docs/theory.md lists the rows, their predictions and margins.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from maelab import verdicts as vd

SHARED_TIE = 0.05  # shares of shared nodes closer than this predict no difference
# per-seed metric -> (regime readout label, metric key of the encoder, of the random encoder)
GATES: dict[str, tuple[str, str, str, str]] = {
    "z_g": ("R^2(z_g)", "sel.full.encoder.z_g", "sel.full.random.z_g", "sel.full.pixels.z_g"),
    "s_g": (
        "R^2(s_g), top-k",
        "selp.full.encoder.s_g",
        "selp.full.random.s_g",
        "selp.full.pixels.s_g",
    ),
    "s_g_all": ("R^2(s_g)", "sel.full.encoder.s_g", "sel.full.random.s_g", "sel.full.pixels.s_g"),
    "e_r": ("R^2(e_r)", "sel.full.encoder.e_r", "sel.full.random.e_r", "sel.full.pixels.e_r"),
    "e_c": ("R^2(e_c)", "sel.full.encoder.e_c", "sel.full.random.e_c", "sel.full.pixels.e_c"),
    "top1": ("linear top-1", "linear_top1", "random.linear_top1", "pixels.linear_top1"),
}


@dataclass
class StudyRuns:
    """Per condition, per seed, the flat metrics of the run (plus the pixel baseline's)."""

    runs: dict[str, dict[int, dict[str, float]]]
    pixels: dict[str, float] = field(default_factory=dict)

    def seeds(self, *conditions: str) -> list[int]:
        """Seeds that every named condition has, in order."""
        common = set.intersection(*(set(self.runs.get(c, {})) for c in conditions))
        return sorted(common)

    def values(self, condition: str, key: str, seeds: list[int]) -> list[float]:
        out = []
        for s in seeds:
            m = self.runs[condition][s]
            out.append(float(m.get(key, self.pixels.get(key.removeprefix("pixels."), math.nan))))
        return out


@dataclass(frozen=True)
class Undecided:
    paper: str
    claim: str
    reason: str


@dataclass
class StudyTable:
    """What the demo writes: regime records, decided rows, derived predictions, undecided rows."""

    regime: list[vd.RegimeRecord]
    verdicts: list[vd.VerdictRecord]
    derived: dict[str, str]  # claim -> the derived prediction in words
    undecided: list[Undecided]
    curves: dict[str, list[dict[str, Any]]]  # condition -> learning curve of its first seed


def conditions_of(
    points: list[tuple[dict[str, Any], int]],
    names: Mapping[str, Mapping[str, Any]],
    default: Callable[[str], Any] = lambda key: None,
) -> dict[str, list[tuple[int, int]]]:
    """Condition name -> [(point index, seed)] for points whose values match the condition;
    a field that is no axis of the sweep takes its value from `default` (the base config)."""
    out: dict[str, list[tuple[int, int]]] = {n: [] for n in names}
    for i, (values, seed) in enumerate(points):
        for name, want in names.items():
            if all(values.get(k, default(k)) == v for k, v in want.items()):
                out[name].append((i, seed))
    return out


def gate(runs: StudyRuns, condition: str, readout: str) -> vd.RegimeRecord | None:
    """The regime record of one condition on one readout (None when it has no runs, or its runs
    lack the readout: real images have no latents)."""
    label, enc, rnd, pix = GATES[readout]
    seeds = runs.seeds(condition)
    if not seeds:
        return None
    encoder, random = runs.values(condition, enc, seeds), runs.values(condition, rnd, seeds)
    if any(math.isnan(x) for x in (*encoder, *random)):
        return None
    return vd.regime_record(
        f"{condition} · {label}", encoder, random, runs.values(condition, pix, seeds)
    )


def direction_from_shares(treated: float, control: float) -> str:
    """The predicted direction of a readout when a latent is shared more (or less) often."""
    if math.isnan(treated) or math.isnan(control) or abs(treated - control) < SHARED_TIE:
        return "none"
    return "increase" if treated > control else "decrease"


@dataclass(frozen=True)
class RowSpec:
    """One comparison: treated - control of a per-seed metric, its prediction and its gate."""

    paper: str
    claim: str
    treated: str
    control: str | None  # None: a one-condition row (the treated value itself)
    value: Callable[[StudyRuns, str, str | None, list[int]], list[float]]
    margin: float
    predicted: str | None = None  # None: derived from `shared` below
    shared: str | None = None  # the level whose shared share decides the direction
    gates: tuple[str, ...] = ()  # readouts both conditions must pass
    kind: str = "prediction"


def diff(key: str) -> Callable[[StudyRuns, str, str | None, list[int]], list[float]]:
    def f(runs: StudyRuns, t: str, c: str | None, seeds: list[int]) -> list[float]:
        a = runs.values(t, key, seeds)
        if c is None:
            return a
        return [x - y for x, y in zip(a, runs.values(c, key, seeds), strict=True)]

    return f


def log_ratio(key: str, base: str | None = None) -> Callable[..., list[float]]:
    """log(treated / control) of `key`, or log(key / base) of the treated runs (`base` key)."""

    def f(runs: StudyRuns, t: str, c: str | None, seeds: list[int]) -> list[float]:
        a = runs.values(t, key, seeds)
        b = runs.values(t, base, seeds) if base else runs.values(c or t, key, seeds)
        return [math.log(x / y) if x > 0 and y > 0 else math.nan for x, y in zip(a, b, strict=True)]

    return f


def own_minus(key: str, base: str) -> Callable[..., list[float]]:
    """`key - base` within the treated runs (trained minus the same seed's random encoder)."""

    def f(runs: StudyRuns, t: str, c: str | None, seeds: list[int]) -> list[float]:
        return [x - y for x, y in zip(runs.values(t, key, seeds), runs.values(t, base, seeds), strict=True)]  # fmt: skip

    return f


def peak(key: str, interior: list[str], ends: list[str]) -> Callable[..., list[float]]:
    """Per seed: the best interior condition minus the best endpoint condition."""

    def f(runs: StudyRuns, t: str, c: str | None, seeds: list[int]) -> list[float]:
        inner = [runs.values(n, key, seeds) for n in interior]
        outer = [runs.values(n, key, seeds) for n in ends]
        return [
            max(v) - max(w)
            for v, w in zip(zip(*inner, strict=True), zip(*outer, strict=True), strict=True)
        ]

    return f


def derive(spec: RowSpec, runs: StudyRuns, seeds: list[int]) -> tuple[str, str]:
    """(predicted direction, the prediction in words) for a row."""
    if spec.shared is None or spec.control is None:
        return spec.predicted or "none", spec.predicted or "none"
    key = f"shared.{spec.shared}"
    t = sum(runs.values(spec.treated, key, seeds)) / len(seeds)
    c = sum(runs.values(spec.control, key, seeds)) / len(seeds)
    direction = direction_from_shares(t, c)
    words = (
        f"{spec.shared} shared in {t:.0%} ({spec.treated}) vs {c:.0%} ({spec.control}): {direction}"
    )
    return direction, words


def build_table(runs: StudyRuns, specs: list[RowSpec], conditions: list[str]) -> StudyTable:
    """Regime records of every condition, the decided rows and the undecided ones."""
    regime: list[vd.RegimeRecord] = []
    reached: dict[tuple[str, str], bool] = {}
    for cond in conditions:
        for readout in GATES:
            rec = gate(runs, cond, readout)
            if rec is not None:
                regime.append(rec)
                reached[(cond, readout)] = rec.reached
    rows, derived, undecided = [], {}, []
    for spec in specs:
        names = [spec.treated] + ([spec.control] if spec.control else [])
        missing = [n for n in names if n not in runs.runs or not runs.runs[n]]
        if missing:
            undecided.append(Undecided(spec.paper, spec.claim, f"no runs of {', '.join(missing)}"))
            continue
        seeds = runs.seeds(*names)
        per_seed = spec.value(runs, spec.treated, spec.control, seeds)
        if any(math.isnan(x) for x in per_seed):
            undecided.append(Undecided(spec.paper, spec.claim, "a readout is missing (nan)"))
            continue
        predicted, words = derive(spec, runs, seeds)
        ok = all(reached.get((n, g), False) for n in names for g in spec.gates)
        rows.append(vd.Row(spec.paper, spec.claim, predicted, spec.margin, per_seed, spec.kind, ok))
        derived[spec.claim] = words
    return StudyTable(regime, vd.decide_table(rows), derived, undecided, {})


# ---------------------------------------------------------------- the study's rows
R2_MARGIN, TOP1_MARGIN, LOG_MARGIN, ALIGN_MARGIN, CONTROL_MARGIN = 0.02, 1.0, 0.05, 0.05, 0.05


def study_specs(ratio_conditions: list[str] | None = None) -> list[RowSpec]:
    """The rows of docs/theory.md ("The rows"), with the conditions of the demo YAML:
    patch / cell / region / straddled (mask units at ratio 0.75, MAE) and umae (patch unit);
    `ratio_conditions` (patch unit, ascending ratio) adds the peak row of `--full`."""
    k, z, c = "Kong", "Zhang", "all"
    specs = [
        RowSpec(k, "region-sized units keep less of a region's own noise (R^2(e_r), full view)",
                "region", "patch", diff("sel.full.encoder.e_r"), R2_MARGIN,
                shared="region_noise", gates=("s_g",)),
        RowSpec(k, "region-sized units keep less of a region's own noise (R^2(e_r), training "
                "mask, visible positions)", "region", "patch", diff("sel.masked.encoder.e_r"),
                R2_MARGIN, shared="region_noise", gates=("s_g",)),
        RowSpec(k, "straddled region units keep e_r (control: alignment, not size)", "straddled",
                "region", diff("sel.full.encoder.e_r"), R2_MARGIN, shared="region_noise",
                gates=("s_g",)),
        RowSpec(k, "a patch-sized unit keeps the cell's own noise better than a cell-sized one "
                "(R^2(e_c))", "patch", "cell", diff("sel.full.encoder.e_c"), R2_MARGIN,
                shared="cell_noise", gates=("s_g",)),
        RowSpec(k, "region-sized units keep less of a region's own noise (R^2(e_r), top-k "
                "principal directions)", "region", "patch", diff("selp.full.encoder.e_r"),
                R2_MARGIN, shared="region_noise", gates=("s_g",)),
        RowSpec(k, "straddled region units keep e_r (top-k principal directions)", "straddled",
                "region", diff("selp.full.encoder.e_r"), R2_MARGIN, shared="region_noise",
                gates=("s_g",)),
        RowSpec(k, "a patch-sized unit keeps the cell's own noise better than a cell-sized one "
                "(R^2(e_c), top-k principal directions)", "patch", "cell",
                diff("selp.full.encoder.e_c"), R2_MARGIN, shared="cell_noise", gates=("s_g",)),
        RowSpec(k, "R^2(z_g) matched between region and patch units (within delta)", "region",
                "patch", diff("sel.full.encoder.z_g"), R2_MARGIN, shared="global",
                gates=("s_g",)),
        RowSpec(z, "MAE aligns mask-induced positive pairs (normalised alignment, trained - "
                "untrained)", "patch", None, own_minus("alignment_norm", "random.alignment_norm"),
                ALIGN_MARGIN, predicted="increase", gates=("s_g",)),
        RowSpec(z, "MAE collapses dimensions (log effective rank, trained / untrained)", "patch",
                None, log_ratio("effective_rank", "random.effective_rank"), LOG_MARGIN,
                predicted="decrease", gates=("s_g",)),
        RowSpec(z, "U-MAE improves the linear probe over MAE (top-1 points)", "umae", "patch",
                diff("linear_top1"), TOP1_MARGIN, predicted="increase", gates=("top1",)),
        RowSpec(z, "U-MAE raises effective rank (the regulariser doing what it optimises)",
                "umae", "patch", log_ratio("effective_rank"), LOG_MARGIN, predicted="increase",
                gates=("s_g",), kind="instrument"),
        RowSpec(z, "U-MAE lowers the uniformity loss (what it optimises)", "umae", "patch",
                diff("uniformity"), LOG_MARGIN, predicted="decrease", gates=("s_g",),
                kind="instrument"),
        RowSpec(c, "the control latent reads 0 (R^2, trained encoder)", "patch", None,
                diff("sel.full.encoder.control"), CONTROL_MARGIN, predicted="none",
                kind="instrument"),
    ]  # fmt: skip
    if ratio_conditions and len(ratio_conditions) >= 3:
        ends = [ratio_conditions[0], ratio_conditions[-1]]
        inner = ratio_conditions[1:-1]
        for key, label, margin in (
            ("sel.full.encoder.z_g", "R^2(z_g)", R2_MARGIN),
            ("linear_top1", "the linear probe", TOP1_MARGIN),
        ):
            specs.append(
                RowSpec(k, f"{label} peaks at an intermediate mask ratio", inner[0], None,
                        peak(key, inner, ends), margin, predicted="increase")
            )  # fmt: skip
    return specs


REAL_MAE, REAL_UMAE = "ratio=0.75", "umae"  # condition names of the real-image part


def real_image_specs(label: str, ratio_conditions: list[str]) -> list[RowSpec]:
    """The rows that need no latents, on real images (`--full`'s real part, docs/theory.md):
    conditions are named `<label> ratio=R` (MAE) and `<label> umae`; every condition's gate is
    the linear probe's top-1 against the same seed's random encoder."""
    z, k = "Zhang", "Kong"
    mae, umae = f"{label} {REAL_MAE}", f"{label} {REAL_UMAE}"
    specs = [
        RowSpec(z, f"{label}: MAE aligns mask-induced positive pairs (normalised alignment, "
                "trained - untrained)", mae, None,
                own_minus("alignment_norm", "random.alignment_norm"), ALIGN_MARGIN,
                predicted="increase", gates=("top1",)),
        RowSpec(z, f"{label}: MAE collapses dimensions (log effective rank, trained / "
                "untrained)", mae, None, log_ratio("effective_rank", "random.effective_rank"),
                LOG_MARGIN, predicted="decrease", gates=("top1",)),
        RowSpec(z, f"{label}: U-MAE improves the linear probe over MAE (top-1 points)", umae,
                mae, diff("linear_top1"), TOP1_MARGIN, predicted="increase", gates=("top1",)),
        RowSpec(z, f"{label}: U-MAE raises effective rank (the regulariser doing what it "
                "optimises)", umae, mae, log_ratio("effective_rank"), LOG_MARGIN,
                predicted="increase", gates=("top1",), kind="instrument"),
    ]  # fmt: skip
    if len(ratio_conditions) >= 3:
        ends, inner = [ratio_conditions[0], ratio_conditions[-1]], ratio_conditions[1:-1]
        specs.append(
            RowSpec(k, f"{label}: the linear probe peaks at an intermediate mask ratio",
                    inner[0], None, peak("linear_top1", inner, ends), TOP1_MARGIN,
                    predicted="increase", gates=("top1",))
        )  # fmt: skip
    return specs


NOT_IN_DEMO = [
    Undecided("Cao", "Q4: the decoder matters for the encoder",
              "its own sweep: maelab sweep -c cao_q4, then maelab analyze decoder"),
    Undecided("Cao", "Q1, Q3, Q5 (coordinates, stability, global interpolation)",
              "per checkpoint with their controls: maelab analyze probes --ckpt RUN/..."),
    Undecided("Cao", "Q2: lower rank, easier reconstruction",
              "on the low-rank family: maelab pretrain -c lowrank, then maelab analyze probes"),
]  # fmt: skip


def format_table(table: StudyTable) -> str:
    """The verdict table as text: paper | claim | derived prediction | effect +- CI | n | min
    detectable | outcome; instrument checks and undecided rows apart."""
    lines = ["paper | claim | derived prediction | effect [CI] | n | min det. | outcome"]
    for kind in ("prediction", "instrument"):
        if kind == "instrument":
            lines.append("instrument checks (never count for a paper):")
        for v in (v for v in table.verdicts if v.kind == kind):
            lo, hi = v.ci
            lines.append(
                f"{v.paper} | {v.claim} | {table.derived.get(v.claim, v.predicted)} | "
                f"{v.effect:+.4f} [{lo:+.4f}, {hi:+.4f}] | {v.n_seeds} | "
                f"{v.min_detectable:.4f} | {v.outcome}"
            )
    lines.append(
        "regime (condition · readout | encoder | random | pixels | CI enc - rnd | reached)"
    )
    for r in table.regime:
        lines.append(
            f"{r.condition} | {r.encoder:.3f} | {r.random:.3f} | {r.pixels:.3f} | "
            f"[{r.ci[0]:+.4f}, {r.ci[1]:+.4f}] | {'yes' if r.reached else 'no'}"
            f"{' (above pixels)' if r.above_pixels else ''}"
        )
    for u in table.undecided:
        lines.append(f"not decided: {u.paper} | {u.claim} | {u.reason}")
    return "\n".join(lines)
