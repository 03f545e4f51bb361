"""Zhang, Wang, Wang 2022: dimensional collapse of MAE features and the U-MAE remedy (the
measurements of a sweep; the study's verdicts are `maelab demo`'s)."""

from __future__ import annotations

import math

from maelab.evaluation.collapse import spectra_figure
from maelab.metric_names import (
    ALIGNMENT,
    EFFECTIVE_RANK,
    KNN_TOP1,
    LINEAR_TOP1,
    RANKME,
    UNIFORMITY,
)
from maelab.report import figures
from maelab.report.context import ReportContext
from maelab.report.page import Section, esc, fmt, img, table
from maelab.report.slicing import objective_contexts, short_label
from maelab.run_records import DATA, RANDOM_INIT

COLLAPSE_METRICS = [EFFECTIVE_RANK, RANKME, ALIGNMENT, UNIFORMITY, LINEAR_TOP1, KNN_TOP1]


def collapse_section(ctx: ReportContext) -> Section:
    c, groups, ref, fig_dir = ctx.collected, ctx.groups, ctx.ref, ctx.fig_dir
    s = Section("collapse", "Dimensional collapse and U-MAE (Zhang, Wang, Wang 2022)")
    s.body.append(
        "<p>Zhang et al. read MAE as aligning two masked views of an image and predict that "
        "MAE's features collapse onto few dimensions; U-MAE adds a uniformity term "
        "<code>lambda * mean((z_i . z_j)^2)</code> to spread them. We compare the spectrum of "
        "the feature covariance and the collapse numbers at equal budgets. Uniformity and "
        "alignment are measured on masked views (lower uniformity = more uniform).</p>"
    )
    base_data = c.baselines.get(RANDOM_INIT, {}).get(DATA)
    contexts = objective_contexts(groups, c.keys, ref)
    for n, (where_values, by_obj) in enumerate(contexts):
        first = next(iter(by_obj.values())).runs[0]
        data_name = where_values.get("data.name") or first.setting("data.name")
        # the baselines were scored on the sweep's base data only
        rand = c.baselines.get(RANDOM_INIT, {}) if base_data in (None, data_name) else {}
        rand_spec = c.baseline_spectra.get(RANDOM_INIT) if rand else None
        label = short_label(where_values) or "all runs"
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
            path = spectra_figure(
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
    return s
