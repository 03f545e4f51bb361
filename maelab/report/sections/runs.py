"""Sections about the runs themselves: overview, training curves, reconstructions and the
frozen-feature probe table with its baselines."""

from __future__ import annotations

import json
import math
from collections.abc import Callable

from maelab.report import figures
from maelab.report.collect import training_curve
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, fmt, img, table
from maelab.report.slicing import short_label
from maelab.run_folder import RunFolder, read_json

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
RECONSTRUCTION_LIMIT = 6  # settings shown; one seed each


def overview_section(ctx: ReportContext) -> Section:
    c = ctx.collected
    s = Section("overview", "Overview")
    done = sum(r.finished for r in c.runs)
    s.body.append(
        f"<p>{'Sweep' if c.kind == 'sweep' else 'Run'} folder <code>{esc(c.root)}</code>: "
        f"{len(c.runs)} run(s), {done} evaluated"
        + (f"; axes: {', '.join(f'<code>{esc(k)}</code>' for k in c.keys)}" if c.keys else "")
        + ".</p>"
    )
    # the first run that has written its config (a sweep point may not have started)
    first = next((r for r in c.runs if r.config is not None), None)
    if c.kind == "run" and c.runs:
        s.body.extend(measured_probe_table(RunFolder(c.runs[0].path)))
    if first is not None:
        facts = [(name, text) for name, text in setting_facts(first.setting) if text]
        s.body.append(table(["", "first run"], [[esc(a), esc(b)] for a, b in facts]))
    return s


def _join(*parts: str | None, sep: str = ", ") -> str:
    return sep.join(p for p in parts if p)


def _part(template: str, value: object) -> str | None:
    """`template` filled with `value`, or None when the value is unknown (never shows "None")."""
    return None if value is None else template.format(value)


def setting_facts(get: Callable[[str], object]) -> list[tuple[str, str]]:
    """(name, text) rows of a run's main settings; unknown fields are left out, not "None"."""
    sizes = _join(
        _part("{} train", get("data.num_train")), _part("{} test", get("data.num_test")), sep=" / "
    )
    data = _join(
        _part("{}", get("data.name")),
        _part("{} px", get("data.image_size")),
    ) + (f" ({sizes})" if sizes else "")
    model = _join(
        _part("preset {}", get("model.preset")),
        _part("{} wide", get("model.embed_dim")),
        _part("{} deep", get("model.depth")),
        _part("patch {}", get("model.patch_size")),
        _part("init from {}", get("model.init")),
    )
    training = _join(
        _part("{} epochs", get("train.epochs")),
        _part("batch {}", get("train.batch_size")),
        _part("lr {}", get("train.lr")) or _part("blr {}", get("train.blr")),
    )
    mask = _join(
        _part("{}", get("mask.strategy")),
        _part("ratio {}", get("mask.ratio")),
        _part("unit {} px", get("mask.unit")),
    )
    return [("data", data), ("model", model), ("training", training), ("mask", mask)]


def measured_probe_table(folder: RunFolder) -> list[str]:
    """HTML for RUN/probe.json (MAE / random / pixels rows), or one line saying it is absent."""
    if not folder.probe_result.is_file():
        return [
            "<p class='note'>No probe table: run <code>maelab probe --ckpt "
            f"{esc(folder.last_checkpoint)}</code> to measure the encoder against random and "
            "pixel baselines.</p>"
        ]
    record = read_json(folder.probe_result)
    rows = [
        [esc(r["source"]), str(r["dim"]), fmt(r["linear"]["top1"]), fmt(r["knn"]["top1"])]
        for r in record.get("rows", [])
    ]
    pool = record.get("probe", {}).get("pool")
    images = _join(
        _part("{} train", record.get("num_train")),
        _part("{} test", record.get("num_test")),
        sep=" / ",
    )
    about = _join(_part("{} pool", pool), _part("{} images", images or None))
    head = f"<p>Frozen-feature probe ({esc(about)}), from <code>probe.json</code>:</p>"
    return [head, table(["features", "dim", "linear top-1 %", "k-NN top-1 %"], rows)]


def training_section(ctx: ReportContext) -> Section:
    c = ctx.collected
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
                keep[short_label(r.values) or r.name] = curves[r.name]
        curves = keep
    else:
        curves = {
            (short_label(r.values) + f" s{r.seed}") if r.values else r.name: curves[r.name]
            for r in c.runs
            if r.name in curves
        }
    s.body.append(
        img(
            figures.curves_figure(curves, ctx.fig_dir / "training_curves.png"),
            "training loss per run (first seed of each setting when there are many)",
        )
    )
    return s


def reconstructions_section(ctx: ReportContext) -> Section:
    s = Section("reconstructions", "Reconstructions")
    shown, seen = 0, set()
    for r in ctx.collected.runs:
        png = RunFolder(r.path).reconstruction_figure
        key = json.dumps({k: v for k, v in r.values.items()}, sort_keys=True, default=str)
        if png.is_file() and key not in seen and shown < RECONSTRUCTION_LIMIT:
            seen.add(key)
            shown += 1
            s.body.append(
                img(
                    png,
                    f"{short_label(r.values) or r.name} (seed {r.seed}): original | masked | reconstruction + visible",
                )
            )
    if not shown:
        s.body.append("<p class='note'>No reconstruction figures found.</p>")
    return s


def probes_section(ctx: ReportContext) -> Section:
    c, groups = ctx.collected, ctx.groups
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
            [esc(short_label(g.values) or g.runs[0].name), str(g.n)]
            + [fmt(g.mean.get(m, math.nan), g.std.get(m)) for m, _ in metrics]
        )
    for name, vals in c.baselines.items():
        rows.append(
            [f"<i>baseline: {esc(name.replace('_', ' '))}</i>", "–"]
            + [fmt(vals.get(m, math.nan)) for m, _ in metrics]
        )
    s.body.append(table(header, rows))
    return s
