"""One self-contained HTML page over a run or a sweep: figures embedded as base64 PNGs, tables,
and for each paper the prediction beside our measurement with a computed verdict."""

from __future__ import annotations

import base64
import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from maelab.report import claims, figures
from maelab.report.claims import Verdict
from maelab.report.collect import Collected, Group, collect, get_dotted, group_runs, training_curve

RATIO, UNIT, OBJECTIVE, DEC_DEPTH = (
    "mask.ratio",
    "mask.unit",
    "objective.name",
    "model.decoder_depth",
)
LEVELS = [
    ("r2.global", "R2 global z_g"),
    ("r2.region", "R2 region z_r"),
    ("r2.cell", "R2 cell z_c"),
]
TABLE_METRICS = [
    ("linear_top1", "linear %"),
    ("knn_top1", "k-NN %"),
    ("effective_rank", "eff. rank"),
    ("rankme", "RankMe"),
    ("alignment", "alignment"),
    ("uniformity", "uniformity"),
    ("r2.global", "R2 global"),
    ("r2.region", "R2 region"),
    ("r2.cell", "R2 cell"),
    ("r2.control", "R2 control"),
]
SECTION_IDS = ["overview", "verdicts", "training", "reconstructions", "probes", "identifiability",
               "collapse", "cao"]  # fmt: skip


@dataclass
class Section:
    id: str
    title: str
    body: list[str] = field(default_factory=list)  # HTML fragments
    verdicts: list[Verdict] = field(default_factory=list)


# ---------------------------------------------------------------- html helpers
def esc(x: Any) -> str:
    return html.escape(str(x))


def img(path: Path, alt: str) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{data}"><figcaption>{esc(alt)}</figcaption></figure>'


def fmt(mean: float, std: float | None = None) -> str:
    if mean is None or not math.isfinite(mean):
        return "–"
    digits = 1 if abs(mean) >= 10 else 3
    text = f"{mean:.{digits}f}"
    if std is not None and math.isfinite(std) and std > 0:
        text += f" ± {std:.{digits}f}"
    return text


def table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def verdict_table(verdicts: Sequence[Verdict]) -> str:
    rows = [
        [
            esc(v.source),
            esc(v.claim),
            esc(v.measured),
            f'<span class="{v.mark.replace(" ", "-")}">{v.mark}</span>',
        ]
        for v in verdicts
    ]
    return table(["paper", "prediction", "our measurement", "verdict"], rows, "verdicts")


CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em} h2{border-bottom:1px solid #ccc;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.85em} td,th{border:1px solid #ddd;padding:.25em .5em;vertical-align:top}
th{background:#f4f4f4} td{text-align:right} td:first-child{text-align:left}
table.verdicts td{text-align:left}
.agrees{color:#176b2c;font-weight:600} .disagrees{color:#a31515;font-weight:600} .not-measured{color:#777}
figure{margin:1em 0} img{max-width:100%} figcaption{font-size:.8em;color:#555}
.note{font-size:.85em;color:#555} code{background:#f4f4f4;padding:0 .2em}
nav a{margin-right:1em}
"""


# ---------------------------------------------------------------- slicing
def reference_values(groups: Sequence[Group], keys: Sequence[str]) -> dict[str, Any]:
    """The most common value of each axis among finished runs (the 'base' of other slices)."""
    ref = {}
    for k in keys:
        counts = Counter(json.dumps(g.values.get(k)) for g in groups for _ in g.runs)
        if counts:
            ref[k] = json.loads(counts.most_common(1)[0][0])
    return ref


def slice_groups(groups: Sequence[Group], free: Sequence[str], ref: dict[str, Any]) -> list[Group]:
    """Groups whose axes outside `free` sit at their reference values."""
    return [g for g in groups if all(g.values.get(k) == v for k, v in ref.items() if k not in free)]


def series(groups: Sequence[Group], x_key: str, metric: str) -> dict[float, tuple[float, float]]:
    out = {}
    for g in groups:
        x = g.values.get(x_key)
        if isinstance(x, (int, float)) and metric in g.mean:
            out[float(x)] = (g.mean[metric], g.std[metric])
    return out


def by_unit(
    groups: Sequence[Group], metric: str, unit_of: dict[int, float]
) -> dict[float, dict[float, tuple[float, float]]]:
    """metric by mask unit, then by mask ratio."""
    out: dict[float, dict[float, tuple[float, float]]] = {}
    for i, g in enumerate(groups):
        ratio = g.values.get(RATIO, get_dotted(g.runs[0].config, RATIO))
        if metric in g.mean and isinstance(ratio, (int, float)):
            out.setdefault(unit_of[i], {})[float(ratio)] = (g.mean[metric], g.std[metric])
    return out


def _unit(g: Group) -> float:
    """A group's mask unit in px (unset: one patch)."""
    cfg = g.runs[0].config
    u = g.values.get(UNIT, get_dotted(cfg, UNIT))
    if u is None:
        arch_patch = get_dotted(cfg, "model.patch_size")
        u = (
            arch_patch
            if arch_patch is not None
            else 4
            if get_dotted(cfg, "model.preset") == "micro"
            else None
        )
    return float(u) if u is not None else math.nan


# ---------------------------------------------------------------- sections
def overview_section(c: Collected, groups: list[Group]) -> Section:
    s = Section("overview", "Overview")
    done = sum(r.finished for r in c.runs)
    s.body.append(
        f"<p>{'Sweep' if c.kind == 'sweep' else 'Run'} folder <code>{esc(c.root)}</code>: "
        f"{len(c.runs)} run(s), {done} evaluated"
        + (f"; axes: {', '.join(f'<code>{esc(k)}</code>' for k in c.keys)}" if c.keys else "")
        + ".</p>"
    )
    cfg = c.runs[0].config if c.runs else {}
    facts = [
        (
            "data",
            f"{get_dotted(cfg, 'data.name')} ({get_dotted(cfg, 'data.num_train')} train / {get_dotted(cfg, 'data.num_test')} test)",
        ),
        ("model", f"preset {get_dotted(cfg, 'model.preset')}"),
        (
            "training",
            f"{get_dotted(cfg, 'train.epochs')} epochs, batch {get_dotted(cfg, 'train.batch_size')}, blr {get_dotted(cfg, 'train.blr')}",
        ),
        (
            "mask",
            f"{get_dotted(cfg, 'mask.strategy')}, ratio {get_dotted(cfg, 'mask.ratio')}, unit {get_dotted(cfg, 'mask.unit')}",
        ),
    ]
    s.body.append(table(["", "first run"], [[esc(a), esc(b)] for a, b in facts]))
    return s


def training_section(c: Collected, fig_dir: Path) -> Section:
    s = Section("training", "Training curves")
    curves = {r.name: training_curve(r) for r in c.runs}
    curves = {k: v for k, v in curves.items() if v}
    if not curves:
        s.body.append("<p class='note'>No metrics.jsonl with training steps found.</p>")
        return s
    if len(curves) > 12:  # one seed per group keeps the plot readable
        seen, keep = set(), {}
        for r in c.runs:
            key = json.dumps(r.values, sort_keys=True, default=str)
            if key not in seen and r.name in curves:
                seen.add(key)
                keep[_short(r.values) or r.name] = curves[r.name]
        curves = keep
    else:
        curves = {
            (_short(r.values) + f" s{r.seed}") if r.values else r.name: curves[r.name]
            for r in c.runs
            if r.name in curves
        }
    s.body.append(
        img(
            figures.curves_figure(curves, fig_dir / "training_curves.png"),
            "training loss per run (first seed of each setting when there are many)",
        )
    )
    return s


def _short(values: dict[str, Any]) -> str:
    """`mask.ratio=0.5, objective.name=mae` -> `ratio=0.5, objective=mae`."""
    parts = []
    for k, v in values.items():
        *parents, last = k.split(".")
        parts.append(f"{parents[-1] if last == 'name' and parents else last}={v}")
    return ", ".join(parts)


def reconstructions_section(c: Collected, limit: int = 6) -> Section:
    s = Section("reconstructions", "Reconstructions")
    shown, seen = 0, set()
    for r in c.runs:
        png = r.path / "figures" / "reconstruction.png"
        key = json.dumps({k: v for k, v in r.values.items()}, sort_keys=True, default=str)
        if png.is_file() and key not in seen and shown < limit:
            seen.add(key)
            shown += 1
            s.body.append(
                img(
                    png,
                    f"{_short(r.values) or r.name} (seed {r.seed}): original | masked | reconstruction | reconstruction + visible",
                )
            )
    if not shown:
        s.body.append("<p class='note'>No reconstruction figures found.</p>")
    return s


def probes_section(c: Collected, groups: list[Group], fig_dir: Path) -> Section:
    s = Section("probes", "Frozen-feature probes and baselines")
    s.body.append(
        "<p>Linear probe (BatchNorm + Linear) and weighted k-NN on frozen pooled features; "
        "effective rank and RankMe of the pooled test features; alignment of two masked views "
        "and uniformity of the masked view (Wang &amp; Isola); held-out ridge R2 of the synthetic "
        "latents. Baselines: the same encoder at initialisation, and raw pixels. Mean ± std over "
        "seeds.</p>"
    )
    metrics = [
        m
        for m in TABLE_METRICS
        if any(m[0] in g.mean for g in groups) or any(m[0] in b for b in c.baselines.values())
    ]
    header = ["setting", "runs"] + [label for _, label in metrics]
    rows = []
    for g in groups:
        rows.append(
            [esc(_short(g.values) or g.runs[0].name), str(g.n)]
            + [fmt(g.mean.get(m, math.nan), g.std.get(m)) for m, _ in metrics]
        )
    for name, vals in c.baselines.items():
        rows.append(
            [f"<i>baseline: {esc(name.replace('_', ' '))}</i>", "–"]
            + [fmt(vals.get(m, math.nan)) for m, _ in metrics]
        )
    s.body.append(table(header, rows))
    return s


def identifiability_section(
    c: Collected, groups: list[Group], ref: dict[str, Any], fig_dir: Path
) -> Section:
    s = Section("identifiability", "Which latent level is recovered (Kong et al. 2023)")
    s.body.append(
        "<p>Kong et al. model images as a hierarchy of latents (global -> region -> cell -> "
        "pixels) and predict that the mask ratio and the mask unit decide which level MAE "
        "identifies. On the synthetic data every level is known, so we read each one back from "
        "the frozen encoder with held-out ridge regressions (region and cell latents from the "
        "tokens of their own patches; global latent and class from the pooled feature).</p>"
    )
    sl = slice_groups(groups, [RATIO, UNIT], ref) if c.keys else groups
    units = [_unit(g) for g in sl]
    unit_of = dict(enumerate(units))
    ratios = {g.values.get(RATIO) for g in sl}
    if RATIO not in c.keys or len(ratios) < 2 or not any("r2.global" in g.mean for g in sl):
        s.body.append(
            "<p class='note'>Needs a sweep over <code>mask.ratio</code> on the synthetic data.</p>"
        )
        s.verdicts += [claims.kong_peak({}, "R2", "R2 of the global latent")]
        return s
    cells: dict[str, dict[tuple[float, float], tuple[float, float]]] = {}
    for metric, label in [*LEVELS, ("linear_top1", "linear probe % (class)")]:
        data = {}
        for i, g in enumerate(sl):
            if metric in g.mean:
                data[(float(g.values[RATIO]), units[i])] = (g.mean[metric], g.std[metric])
        if data:
            cells[label] = data
    s.body.append(
        img(
            figures.heatmap_figure(cells, fig_dir / "identifiability_heatmap.png"),
            "held-out R2 per latent level (and linear probe) by mask ratio x mask unit; mean ± std over seeds",
        )
    )
    panels: dict[str, dict[str, dict[float, tuple[float, float]]]] = {}
    base_lines: dict[str, dict[str, float]] = {}
    for metric, label in [*LEVELS, ("linear_top1", "linear probe %")]:
        per_unit = by_unit(sl, metric, unit_of)
        panels[label] = {f"unit {u:g}": v for u, v in sorted(per_unit.items())}
        base_lines[label] = {
            f"{k.replace('_', ' ')}": b.get(metric, math.nan) for k, b in c.baselines.items()
        }
    s.body.append(
        img(
            figures.lines_figure(
                panels, fig_dir / "identifiability_lines.png", baselines=base_lines
            ),
            "the same numbers against the mask ratio, one line per mask unit; dashed: baselines",
        )
    )
    g_by_unit = by_unit(sl, "r2.global", unit_of)
    s.verdicts += [
        claims.kong_peak(g_by_unit, "R2", "R2 of the global latent z_g"),
        claims.kong_peak(
            by_unit(sl, "linear_top1", unit_of),
            "linear %",
            "the linear probe (ImageNet: 0.1/0.25/0.5/0.75/0.9 -> 47.5/53.6/60.1/67.4/63.0)",
        ),
        claims.kong_low_level_extremes(g_by_unit, by_unit(sl, "r2.cell", unit_of)),
        claims.kong_unit(g_by_unit, "R2(global)", "the R2 of the global latent"),
        claims.kong_unit(
            by_unit(sl, "linear_top1", unit_of),
            "linear %",
            "the linear probe (ImageNet: 8/16/32 px -> 62.6/69.0/73.3)",
        ),
    ]
    controls = {g.runs[0].name: g.mean["r2.control"] for g in groups if "r2.control" in g.mean}
    controls.update(
        {f"baseline {k}": b["r2.control"] for k, b in c.baselines.items() if "r2.control" in b}
    )
    s.verdicts.append(claims.control_sanity(controls))
    pix = c.baselines.get("pixels", {}).get("r2.global")
    if pix is not None and math.isfinite(pix):
        best = max((g.mean.get("r2.global", -math.inf) for g in sl), default=math.nan)
        s.body.append(
            f"<p class='note'>Raw pixels read the global latent with ridge R2 {pix:.2f}; the best "
            f"encoder here reaches {best:.2f}. Where pixels already expose a level linearly, the "
            "probe measures what the encoder keeps rather than what it un-mixes.</p>"
        )
    return s


def axis_contexts(
    groups: Sequence[Group], keys: Sequence[str], axis: str, ref: dict[str, Any], default: Any
) -> list[tuple[dict[str, Any], dict[Any, Group]]]:
    """Groups by the values of every axis but `axis`: [(context, {axis value: group})].

    Contexts where `axis` takes several values come first (the comparisons); without any, the
    one context at the reference values (the most common axis values)."""
    others = [k for k in keys if k != axis]
    contexts: dict[str, tuple[dict[str, Any], dict[Any, Group]]] = {}
    for g in groups:
        ctx = {k: g.values.get(k) for k in others}
        value = g.values.get(axis, get_dotted(g.runs[0].config, axis))
        key = json.dumps(ctx, sort_keys=True, default=str)
        contexts.setdefault(key, (ctx, {}))[1].setdefault(default if value is None else value, g)
    out = list(contexts.values())
    at_ref = [c for c in out if all(ref.get(k) == v for k, v in c[0].items())]
    multi = sorted((c for c in out if len(c[1]) > 1), key=lambda c: c not in at_ref)
    return multi or at_ref[:1] or out[:1]


def objective_contexts(
    groups: Sequence[Group], keys: Sequence[str], ref: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Group]]]:
    """`axis_contexts` over the objective; contexts holding both MAE and U-MAE first."""
    out = axis_contexts(groups, keys, OBJECTIVE, ref, "mae")
    out = [(ctx, {str(k): g for k, g in by.items()}) for ctx, by in out]
    paired = [c for c in out if {"mae", "umae"} <= set(c[1])]
    return paired or out


COLLAPSE_METRICS = [
    "effective_rank",
    "rankme",
    "alignment",
    "uniformity",
    "linear_top1",
    "knn_top1",
]
UMAE_CHECKS = [("effective_rank", "effective rank", "better"), ("rankme", "RankMe", "better"),
               ("uniformity", "uniformity", "worse"), ("linear_top1", "linear probe %", "better"),
               ("knn_top1", "k-NN %", "better")]  # fmt: skip


def collapse_section(
    c: Collected, groups: list[Group], ref: dict[str, Any], fig_dir: Path
) -> Section:
    s = Section("collapse", "Dimensional collapse and U-MAE (Zhang, Wang, Wang 2022)")
    s.body.append(
        "<p>Zhang et al. read MAE as aligning two masked views of an image and predict that "
        "MAE's features collapse onto few dimensions; U-MAE adds a uniformity term "
        "<code>lambda * mean((z_i . z_j)^2)</code> to spread them. We compare the spectrum of "
        "the feature covariance and the collapse numbers at equal budgets. Uniformity and "
        "alignment are measured on masked views (lower uniformity = more uniform).</p>"
    )
    base_data = c.baselines.get("random_init", {}).get("data")
    contexts = objective_contexts(groups, c.keys, ref)
    for n, (ctx, by_obj) in enumerate(contexts):
        data_name = ctx.get("data.name") or get_dotted(
            next(iter(by_obj.values())).runs[0].config, "data.name"
        )
        # the baselines were scored on the sweep's base data only
        rand = c.baselines.get("random_init", {}) if base_data in (None, data_name) else {}
        rand_spec = c.baseline_spectra.get("random_init") if rand else None
        label = _short(ctx) or "all runs"
        if len(contexts) > 1:
            s.body.append(f"<h3>{esc(label)}</h3>")
        spectra = {}
        for obj, g in by_obj.items():
            run = next((r for r in g.runs if r.spectrum), None)
            if run:
                spectra[f"{obj.upper()} (seed {run.seed})"] = run.spectrum
        if rand_spec:
            spectra["random init"] = rand_spec
        if spectra:
            path = figures.spectra_figure(
                spectra,
                fig_dir / f"collapse_spectra_{n}.png",
                f"covariance spectrum of pooled features\n({label})",
            )
            s.body.append(
                img(
                    path,
                    "eigenvalues of the feature covariance (normalised): MAE vs U-MAE vs the untrained encoder",
                )
            )
        rows = {
            obj.upper(): {m: (g.mean[m], g.std[m]) for m in g.mean} for obj, g in by_obj.items()
        }
        if rand:
            rows["random init"] = {
                m: (float(v), 0.0) for m, v in rand.items() if isinstance(v, (int, float))
            }
        path = figures.bars_figure(rows, COLLAPSE_METRICS, fig_dir / f"collapse_bars_{n}.png")
        s.body.append(img(path, "collapse numbers and probes, mean ± std over seeds"))
        s.body.append(
            table(
                ["", *COLLAPSE_METRICS],
                [
                    [esc(k)] + [fmt(*v.get(m, (math.nan, math.nan))) for m in COLLAPSE_METRICS]
                    for k, v in rows.items()
                ],
            )
        )
        mae, umae = by_obj.get("mae"), by_obj.get("umae")
        where = f" [{label}]" if len(contexts) > 1 else ""
        if mae is not None and rand:
            v = claims.zhang_collapse(
                (mae.mean.get("effective_rank", math.nan), mae.std.get("effective_rank", math.nan)),
                rand.get("effective_rank", math.nan),
                int(mae.mean.get("dim", 0) or 0),
            )
            s.verdicts.append(claims.Verdict(v.source, v.claim + where, v.measured, v.agrees))
        if mae is None or umae is None:
            s.verdicts.append(
                claims.Verdict(
                    claims.ZHANG,
                    "U-MAE vs MAE at equal budgets",
                    "needs MAE and U-MAE runs (objective.name=umae)",
                    None,
                )
            )
            continue
        for metric, name, sense in UMAE_CHECKS:
            pair = [
                (g.mean.get(metric, math.nan), g.std.get(metric, math.nan)) for g in (mae, umae)
            ]
            v = claims.zhang_umae(metric, name, pair[0], pair[1], sense)
            s.verdicts.append(claims.Verdict(v.source, v.claim + where, v.measured, v.agrees))
    return s


def _decoder_width(cfg: dict[str, Any]) -> int:
    """The decoder width of a run's config, filled from its preset when left unset."""
    from maelab.models.presets import PRESETS

    width = get_dotted(cfg, "model.decoder_embed_dim")
    preset = PRESETS.get(str(get_dotted(cfg, "model.preset")), {})
    return int(width or preset.get("decoder_embed_dim", 0))


def _probe_records(c: Collected) -> dict[str, dict[str, Any]]:
    from maelab.probes.results import read_probe_results

    found = read_probe_results(c.root / "probes")
    for r in c.runs:
        for name, rec in read_probe_results(r.path / "probes").items():
            found.setdefault(name, rec)
    return found


def cao_section(c: Collected, groups: list[Group], ref: dict[str, Any], fig_dir: Path) -> Section:
    s = Section("cao", "How MAE works inside (Cao, Xu, Clifton 2022: Q1-Q5)")
    s.body.append(
        "<p>Cao et al. read patch attention as a learned integral-kernel transform and ask five "
        "questions. Q1, Q2, Q3 and Q5 are probes of one trained model; Q4 compares runs that "
        "differ only in the decoder.</p>"
    )
    recs = _probe_records(c)
    for name, title in [
        ("position", "Q1 position"),
        ("low_rank", "Q2 low rank"),
        ("stability", "Q3 stability"),
        ("interpolation", "Q5 interpolation"),
    ]:
        rec = recs.get(name)
        if rec and Path(rec["figure"]).is_file():
            s.body.append(
                f"<h3>{esc(title)}</h3><p class='note'>{esc(rec.get('question', ''))}; checkpoint <code>{esc(rec.get('checkpoint', ''))}</code></p>"
            )
            s.body.append(img(Path(rec["figure"]), title))
    res = {k: v.get("result") for k, v in recs.items()}
    s.verdicts += [
        claims.cao_q1(res.get("position")),
        claims.cao_q2(res.get("low_rank")),
        claims.cao_q3(res.get("stability")),
    ]
    dec: list[Group] = []
    if DEC_DEPTH in c.keys:  # the first set of runs that differ only in the decoder depth
        dec = list(axis_contexts(groups, c.keys, DEC_DEPTH, ref, None)[0][1].values())
    by_depth = series(dec, DEC_DEPTH, "linear_top1")
    if len(by_depth) >= 2:
        try:
            from maelab.probes import decoder_ablation
            from maelab.probes import figures as probe_figures

            rows = [{"model.decoder_depth": r.values[DEC_DEPTH],
                     "model.decoder_embed_dim": _decoder_width(r.config),
                     "linear": r.metrics.get("linear_top1"), "knn": r.metrics.get("knn_top1"),
                     "effective_rank": r.metrics.get("effective_rank")}
                    for g in dec for r in g.runs]  # fmt: skip
            path = probe_figures.decoder_ablation_figure(
                decoder_ablation(rows), fig_dir / "decoder_ablation.png"
            )
            s.body.append(
                "<h3>Q4 decoder</h3>"
                + img(path, "encoder probes by decoder depth (runs differing only in the decoder)")
            )
        except (ImportError, ValueError, KeyError) as exc:
            s.body.append(f"<p class='note'>decoder ablation figure unavailable: {esc(exc)}</p>")
    s.verdicts.append(claims.cao_q4(by_depth, "linear probe %"))
    s.verdicts.append(claims.cao_q5(res.get("interpolation")))
    return s


def verdicts_section(sections: Sequence[Section]) -> Section:
    allv = [v for sec in sections for v in sec.verdicts]
    counts = claims.summarise(allv)
    s = Section("verdicts", "Predictions vs measurements")
    s.body.append(
        f"<p>{counts['agrees']} agree, {counts['disagrees']} disagree, {counts['not measured']} "
        "not measured. Each verdict is computed from the numbers below (see each section); small "
        "CPU budgets give small effects, so read the spread over seeds before the verdict.</p>"
    )
    s.body.append(verdict_table(allv))
    return s


# ---------------------------------------------------------------- page
@dataclass
class Report:
    path: Path
    verdicts: list[Verdict]

    def counts(self) -> dict[str, int]:
        return claims.summarise(self.verdicts)


def build_report(
    folder: str | Path, out: str | Path | None = None, title: str | None = None
) -> Report:
    """Write the HTML report of a run or sweep folder (default FOLDER/report.html; figures also
    saved under FOLDER/report_figures/); returns its path and the computed verdicts."""
    c = collect(folder)
    out = Path(out) if out else c.root / "report.html"
    fig_dir = c.root / "report_figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    groups = group_runs(c.runs, c.keys if c.kind == "sweep" else [])
    ref = reference_values(groups, c.keys)
    body_sections = [
        overview_section(c, groups),
        training_section(c, fig_dir),
        reconstructions_section(c),
        probes_section(c, groups, fig_dir),
        identifiability_section(c, groups, ref, fig_dir),
        collapse_section(c, groups, ref, fig_dir),
        cao_section(c, groups, ref, fig_dir),
    ]
    sections = [body_sections[0], verdicts_section(body_sections), *body_sections[1:]]
    nav = "".join(f'<a href="#{s.id}">{esc(s.title.split(" (")[0])}</a>' for s in sections)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(title or 'maelab report')}</title><style>{CSS}</style></head><body>",
        f"<h1>{esc(title or 'maelab report')}: {esc(c.root.name)}</h1><nav>{nav}</nav>",
    ]
    for s in sections:
        parts.append(f'<section id="{s.id}"><h2>{esc(s.title)}</h2>')
        parts.extend(s.body)
        if s.verdicts and s.id != "verdicts":
            parts.append("<h3>Prediction vs measurement</h3>" + verdict_table(s.verdicts))
        parts.append("</section>")
    parts.append("<p class='note'>Generated by maelab report.</p></body></html>")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(parts))
    return Report(out, [v for sec in body_sections for v in sec.verdicts])
