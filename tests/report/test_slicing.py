"""Group slicing: every expected value below is worked out by hand from the fixtures."""

import math
from pathlib import Path

from maelab.config import DECODER_DEPTH_KEY as DEC_DEPTH
from maelab.config import build_config
from maelab.report.collect import Group, RunRecord, group_runs
from maelab.report.slicing import (
    OBJECTIVE,
    RATIO,
    UNIT,
    axis_contexts,
    by_unit,
    mask_unit_px,
    objective_contexts,
    reference_values,
    series,
    short_label,
    slice_groups,
)


def _run(name, values, metrics, seed=0, **model):
    cfg = build_config({"model": model} if model else {})
    return RunRecord(name, Path(name), dict(values), seed, dict(metrics), config=cfg)


def _group(values, *linear, **model):
    """A group of one run per value in `linear` (its linear_top1), other metric: r2.global=0.5."""
    runs = [
        _run(f"{values}-{i}", values, {"linear_top1": v, "r2.global": 0.5}, i, **model)
        for i, v in enumerate(linear)
    ]
    (g,) = group_runs(runs, list(values))
    return g


def test_reference_values_count_runs_not_groups():
    # ratio 0.5: 1 run; 0.75: 2 + 1 runs -> 0.75; unit 4: 1 + 2 runs, unit 8: 1 run -> 4
    groups = [
        _group({RATIO: 0.5, UNIT: 4}, 60.0),
        _group({RATIO: 0.75, UNIT: 4}, 61.0, 63.0),
        _group({RATIO: 0.75, UNIT: 8}, 64.0),
    ]
    assert reference_values(groups, [RATIO, UNIT]) == {RATIO: 0.75, UNIT: 4}
    assert reference_values([], [RATIO]) == {}


def test_slice_groups_holds_other_axes_at_reference():
    a = _group({RATIO: 0.5, UNIT: 4}, 60.0)
    b = _group({RATIO: 0.75, UNIT: 4}, 61.0)
    c = _group({RATIO: 0.75, UNIT: 8}, 64.0)
    ref = {RATIO: 0.75, UNIT: 4}
    assert slice_groups([a, b, c], [RATIO], ref) == [a, b]
    assert slice_groups([a, b, c], [UNIT], ref) == [b, c]
    assert slice_groups([a, b, c], [RATIO, UNIT], ref) == [a, b, c]


def test_series_mean_and_sample_std_by_axis_value():
    groups = [
        _group({RATIO: 0.5}, 60.0, 64.0),  # mean 62, sample std sqrt(8)
        _group({RATIO: 0.9}, 50.0),  # one seed: std 0
        _group({RATIO: "auto"}, 1.0),  # not a number: left out
    ]
    assert series(groups, RATIO, "linear_top1") == {0.5: (62.0, math.sqrt(8.0)), 0.9: (50.0, 0.0)}
    assert series(groups, RATIO, "knn_top1") == {}


def test_by_unit_nests_ratio_under_unit():
    groups = [
        _group({RATIO: 0.5, UNIT: 4}, 60.0),
        _group({RATIO: 0.75, UNIT: 4}, 70.0),
        _group({RATIO: 0.75, UNIT: 8}, 80.0, 82.0),  # mean 81, sample std sqrt(2)
    ]
    unit_of = {0: 4.0, 1: 4.0, 2: 8.0}
    assert by_unit(groups, "linear_top1", unit_of) == {
        4.0: {0.5: (60.0, 0.0), 0.75: (70.0, 0.0)},
        8.0: {0.75: (81.0, math.sqrt(2.0))},
    }


def test_by_unit_reads_the_ratio_from_the_config_when_not_an_axis():
    g = _group({UNIT: 4}, 60.0)  # the default config's mask.ratio is 0.75
    assert by_unit([g], "linear_top1", {0: 4.0}) == {4.0: {0.75: (60.0, 0.0)}}


def test_mask_unit_defaults_to_one_patch_of_the_architecture():
    assert mask_unit_px(_group({UNIT: 8}, 1.0, preset="micro")) == 8.0
    assert mask_unit_px(_group({RATIO: 0.5}, 1.0, preset="micro")) == 4.0  # patch 4
    assert mask_unit_px(_group({RATIO: 0.5}, 1.0, preset="vit_base_patch16")) == 16.0
    assert mask_unit_px(_group({RATIO: 0.5}, 1.0, preset="tiny", patch_size=8)) == 8.0
    unstarted = RunRecord("x", Path("x"), {}, 0)  # no config: unit unknown
    assert math.isnan(mask_unit_px(Group({}, [unstarted], {}, {})))


def test_short_label_keeps_the_last_part_or_the_parent_of_name():
    values = {RATIO: 0.5, OBJECTIVE: "umae", DEC_DEPTH: 1, "name": "x"}
    assert short_label(values) == "ratio=0.5, objective=umae, decoder_depth=1, name=x"
    assert short_label({}) == ""


def test_axis_contexts_put_comparisons_first():
    keys = [RATIO, OBJECTIVE]
    g1 = _group({RATIO: 0.5, OBJECTIVE: "mae"}, 1.0)
    g2 = _group({RATIO: 0.75, OBJECTIVE: "mae"}, 2.0)
    g3 = _group({RATIO: 0.75, OBJECTIVE: "umae"}, 3.0)
    ref = {RATIO: 0.5, OBJECTIVE: "mae"}
    # only ratio 0.75 holds two objectives: it comes alone, although ratio 0.5 is the reference
    assert axis_contexts([g1, g2, g3], keys, OBJECTIVE, ref, "mae") == [
        ({RATIO: 0.75}, {"mae": g2, "umae": g3})
    ]
    # no comparison: the one context at the reference values
    assert axis_contexts([g2, g1], keys, OBJECTIVE, ref, "mae") == [({RATIO: 0.5}, {"mae": g1})]
    # neither: the first context
    assert axis_contexts([g2], keys, OBJECTIVE, ref, "mae") == [({RATIO: 0.75}, {"mae": g2})]


def test_axis_contexts_order_reference_comparison_first_and_fill_default():
    keys = [RATIO, DEC_DEPTH]
    a1 = _group({RATIO: 0.5, DEC_DEPTH: 1}, 1.0)
    a2 = _group({RATIO: 0.5, DEC_DEPTH: 2}, 2.0)
    b1 = _group({RATIO: 0.75, DEC_DEPTH: 1}, 3.0)
    b2 = _group({RATIO: 0.75, DEC_DEPTH: 2}, 4.0)
    ref = {RATIO: 0.75, DEC_DEPTH: 2}
    out = axis_contexts([a1, a2, b1, b2], keys, DEC_DEPTH, ref, None)
    assert out == [({RATIO: 0.75}, {1: b1, 2: b2}), ({RATIO: 0.5}, {1: a1, 2: a2})]
    # the axis missing from the values and unset in the config: the default stands in
    g = _group({RATIO: 0.5}, 1.0)
    assert axis_contexts([g], [RATIO], DEC_DEPTH, {}, "preset") == [({RATIO: 0.5}, {"preset": g})]


def test_objective_contexts_prefer_mae_umae_pairs():
    keys = [RATIO, OBJECTIVE]
    g1 = _group({RATIO: 0.5, OBJECTIVE: "mae"}, 1.0)
    g2 = _group({RATIO: 0.5, OBJECTIVE: "other"}, 2.0)
    g3 = _group({RATIO: 0.75, OBJECTIVE: "mae"}, 3.0)
    g4 = _group({RATIO: 0.75, OBJECTIVE: "umae"}, 4.0)
    ref = {RATIO: 0.5, OBJECTIVE: "mae"}
    assert objective_contexts([g1, g2, g3, g4], keys, ref) == [
        ({RATIO: 0.75}, {"mae": g3, "umae": g4})
    ]
    # without a pair, every comparison stays
    assert objective_contexts([g1, g2], keys, ref) == [({RATIO: 0.5}, {"mae": g1, "other": g2})]
