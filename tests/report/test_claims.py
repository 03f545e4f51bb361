"""The computed verdicts on hand-made numbers."""

import math

from maelab.report import claims


def test_peaks_inside_needs_three_points_and_an_interior_max():
    assert claims.peaks_inside({0.1: (0.2, 0), 0.5: (0.6, 0), 0.9: (0.3, 0)}) is True
    assert claims.peaks_inside({0.1: (0.7, 0), 0.5: (0.6, 0), 0.9: (0.3, 0)}) is False
    assert claims.peaks_inside({0.1: (0.2, 0), 0.9: (0.3, 0)}) is None
    # nan points are ignored, not taken as the max
    assert claims.peaks_inside({0.1: (0.2, 0), 0.5: (0.6, 0), 0.75: (math.nan, 0), 0.9: (0.1, 0)})


def test_kong_peak_requires_every_unit():
    up = {0.1: (0.2, 0.01), 0.5: (0.6, 0.01), 0.9: (0.3, 0.01)}
    down = {0.1: (0.7, 0.01), 0.5: (0.6, 0.01), 0.9: (0.3, 0.01)}
    assert claims.kong_peak({4: up, 8: up}, "R2", "x").agrees is True
    v = claims.kong_peak({4: up, 8: down}, "R2", "x")
    assert v.agrees is False and "unit 8: peak at ratio 0.1" in v.measured
    assert claims.kong_peak({}, "R2", "x").agrees is None


def test_kong_low_level_extremes_compares_lean_at_ends_with_the_peak():
    g = {0.1: (0.3, 0), 0.5: (0.6, 0), 0.9: (0.4, 0)}
    c_ok = {0.1: (0.5, 0), 0.5: (0.4, 0), 0.9: (0.5, 0)}  # lean +0.2, -0.2, +0.1
    c_bad = {0.1: (0.1, 0), 0.5: (0.4, 0), 0.9: (0.5, 0)}  # lean -0.2 at 0.1
    assert claims.kong_low_level_extremes({4: g}, {4: c_ok}).agrees is True
    assert claims.kong_low_level_extremes({4: g}, {4: c_bad}).agrees is False


def test_kong_unit_uses_shared_ratios_only():
    s4 = {0.5: (0.4, 0), 0.75: (0.5, 0), 0.1: (0.9, 0)}
    s8 = {0.5: (0.5, 0), 0.75: (0.6, 0)}
    v = claims.kong_unit({4: s4, 8: s8}, "R2", "x")
    assert v.agrees is True and "[0.5, 0.75]" in v.measured
    assert claims.kong_unit({4: s4}, "R2", "x").agrees is None


def test_zhang_checks_direction():
    assert claims.zhang_umae("effective_rank", "rank", (30.0, 1.0), (40.0, 1.0), "better").agrees
    close = claims.zhang_umae("linear_top1", "lin", (70.0, 2.0), (71.0, 1.0), "better")
    assert close.agrees and "within the seed std" in close.measured
    assert not claims.zhang_umae("uniformity", "unif", (-1.0, 0), (-0.5, 0), "worse").agrees
    assert claims.zhang_umae("linear_top1", "lin", (math.nan, 0), (1.0, 0), "better").agrees is None
    assert claims.zhang_collapse((30.0, 2.0), 70.0, 128).agrees is True
    assert claims.zhang_collapse((80.0, 2.0), 70.0, 128).agrees is False


def test_cao_checks():
    assert claims.cao_q4({1: (60.0, 1.0), 2: (70.0, 1.0)}, "lin").agrees is True
    assert claims.cao_q4({1: (69.0, 1.0), 2: (70.0, 1.0)}, "lin").agrees is False
    assert claims.cao_q4({2: (70.0, 1.0)}, "lin").agrees is None
    pos = {"similarity_spearman": -0.8, "coordinate_r2": [0.99, 0.9], "learnable_pos_embed": False}
    assert claims.cao_q1(pos).agrees is True
    assert claims.cao_q1({**pos, "coordinate_r2": [0.99, 0.1]}).agrees is False
    stab = {"block_update": [0.3, 0.4], "adjacent_cka": [0.9, 0.8]}
    assert claims.cao_q3(stab).agrees is True
    assert claims.cao_q3({**stab, "block_update": [0.3, 1.4]}).agrees is False
    # the first block rewrites the raw patch embedding; only later blocks must be small updates
    assert claims.cao_q3({**stab, "block_update": [3.0, 0.4]}).agrees is True
    lr = {"spearman_rho": 0.4, "spearman_p": 0.001, "relative_effective_rank": {"4": 0.5}}
    assert claims.cao_q2(lr).agrees is True
    assert claims.cao_q2({**lr, "spearman_p": 0.3}).agrees is False
    att = {
        "mean_distance": 1.5,
        "uniform_distance": 1.6,
        "near_share": 0.3,
        "uniform_near_share": 0.4,
    }
    ko = {"far_increase": -0.05, "far_increase_se": 0.01, "near_increase": -0.04,
          "near_increase_se": 0.01, "near_minus_far": 0.01, "near_minus_far_se": 0.01, "num_knocked": 4}  # fmt: skip
    assert claims.cao_q5({"attention": att, "knockout": ko}).agrees is True
    local = {**ko, "near_minus_far": 0.08}  # neighbours matter much more than far patches
    assert claims.cao_q5({"attention": att, "knockout": local}).agrees is False
    focused = {**att, "near_share": 0.9}
    assert claims.cao_q5({"attention": focused, "knockout": ko}).agrees is False
    assert all(
        f(None).agrees is None for f in (claims.cao_q1, claims.cao_q2, claims.cao_q3, claims.cao_q5)
    )


def test_control_sanity_and_summary():
    assert claims.control_sanity({"a": 0.01, "b": -0.02}).agrees is True
    v = claims.control_sanity({"a": 0.01, "b": -0.2})
    assert v.agrees is False and "b" in v.measured
    counts = claims.summarise([v, claims.control_sanity({"a": 0.0}), claims.cao_q1(None)])
    assert counts == {"agrees": 1, "disagrees": 1, "not measured": 1}
