"""`maelab demo`'s steps one at a time, without training: plan the sweep from the declaration,
put hand-made results where the sweep would, then decide and write."""

from __future__ import annotations

import json

from maelab import metric_names as m
from maelab.experiments.demo import decide_demo, plan_demo, write_demo
from maelab.experiments.measurements import members
from maelab.experiments.plan import write_manifest
from maelab.experiments.studies.world import WORLD
from maelab.run_folder import BASELINE_DIR
from maelab.run_records import Baselines, RunResults, write_baselines, write_run_results
from maelab.verdicts import read_verdicts


def fake_metrics(seed: int) -> dict[str, float]:
    """Every readout the world's rows and gates read: the encoder above its random twin."""
    out = {m.shared(level): 1.0 for level in (m.GLOBAL, m.REGION_NOISE, m.CELL_NOISE)}
    for readout in m.SELECTIVITY_READOUTS:
        for probe in (m.LINEAR_PROBE, m.PRINCIPAL_PROBE):
            for source, value in ((m.ENCODER, 0.6), (m.RANDOM, 0.4), (m.PIXELS, 0.5)):
                out[m.selectivity(readout, source, probe=probe)] = value + 0.01 * seed
        out[m.selectivity(readout, view=m.MASKED)] = 0.5
        out[m.selectivity(readout, m.RANDOM, view=m.MASKED)] = 0.3
        out[m.positive_control(m.selectivity(readout))] = -0.03
    for metric, value in ((m.LINEAR_TOP1, 40.0), (m.EFFECTIVE_RANK, 20.0),
                          (m.ALIGNMENT_NORM, 0.3), (m.UNIFORMITY, -2.0)):  # fmt: skip
        out[metric] = value + seed
        out[m.of_random(metric)] = value / 2
        out[m.of_other_random(metric)] = value / 2 + 0.01 * seed
    out[m.LATENT_RANK] = 40.0
    return out


def test_plan_decide_write_without_training(tmp_path):
    plan = plan_demo(quick=True, out=str(tmp_path), overrides=["sweep.seeds=[0,1,2,3]"])
    points = plan.world.plan.points
    found = members([(p.values, p.seed) for p in points], WORLD.conditions, {})
    assert {n: len(v) for n, v in found.items()} == {
        "patch": 4, "cell": 4, "region": 4, "straddled": 4, "umae": 3}  # fmt: skip
    write_manifest(plan.world.plan)  # what the sweep step writes first
    for p in points:
        write_run_results(tmp_path / p.name, RunResults(fake_metrics(p.seed), [], []))
    write_baselines(tmp_path / BASELINE_DIR, Baselines({m.PIXELS: {m.LINEAR_TOP1: 30.0}}))
    decided = decide_demo(plan)
    assert len(decided.decision.verdicts) == len(WORLD.rows)
    path = write_demo(plan, decided)
    record = read_verdicts(path)
    umae = next(v for v in record.verdicts if v.claim.startswith("U-MAE improves"))
    assert umae.per_seed == (0.0, 0.0, 0.0) and umae.n_seeds == 3  # U-MAE: the first 3 seeds
    assert umae.raw is not None and umae.placebo.per_seed == (0.0, 0.0, 0.0)
    assert all(v.reason == "convergence not checked: no pilot" for v in record.verdicts
               if v.kind == "prediction")  # a quick budget has no pilot  # fmt: skip
    study = json.loads((tmp_path / "study.json").read_text())
    assert study["seeds"] == [0, 1, 2, 3] and study["real"] is None
    assert study["references"]["latent_dimension"] > 0
