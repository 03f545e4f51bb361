"""Verdict records, deciding a table, verdicts.json (schema 2; schema-1 files still read) and its validator."""

from __future__ import annotations

import copy
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as sps

from maelab import stats, verdicts
from maelab.config import load_config
from maelab.verdicts import PositiveControl, Row, Verdicts, VerdictsError

KONG, ZHANG = "Kong et al. 2023", "Zhang, Wang, Wang 2022"


def table() -> list[Row]:
    """Three prediction rows (one Holm family), an instrument and a gated-out condition."""
    return [
        Row(KONG, "region unit raises R2(z_g)", "increase", 0.02, [0.11, 0.09, 0.13, 0.10]),
        Row(KONG, "patch unit keeps e_c", "increase", 0.02, [0.05, -0.04, 0.02, 0.01]),
        Row(ZHANG, "U-MAE probe gain", "increase", 0.01, [0.004, -0.003, 0.002, 0.001]),
        Row(KONG, "control latent reads 0", "none", 0.05, [0.01, -0.01, 0.0, 0.005], "instrument"),
        Row(KONG, "straddled unit", "decrease", 0.02, [-0.2, -0.3, -0.25], regime_reached=False),
    ]


def sample() -> Verdicts:
    regime = verdicts.regime_record("unit=16", [0.5, 0.55, 0.52], [0.3, 0.33, 0.31], [0.45] * 3)
    return Verdicts(
        commit="abc123", config_hash="0123456789abcdef", regime=(regime,),
        verdicts=tuple(verdicts.decide_table(table())),
    )  # fmt: skip


# ---------------------------------------------------------------- deciding a table
def test_decide_table_by_hand() -> None:
    rows = verdicts.decide_table(table())
    p = [stats.paired_effect(r.per_seed).p_value for r in table()[:3]]
    # the Holm family is the three prediction rows; by hand from their t-test p-values
    order = np.argsort(p)
    m = 3
    expected_adjusted = np.empty(3)
    running = 0.0
    for k, i in enumerate(order):
        running = max(running, min(1.0, (m - k) * p[i]))
        expected_adjusted[i] = running
    assert [r.p_holm for r in rows[:3]] == pytest.approx(expected_adjusted.tolist(), rel=1e-12)
    # row 0 has the smallest p (0.0011) and passes its step (< 0.05 / 3) -> level 1 - 0.05/3
    assert p[0] < 0.05 / 3 and rows[0].level == pytest.approx(1 - 0.05 / 3)
    lo, hi = sps.t.interval(1 - 0.05 / 3, 3, loc=0.1075, scale=sps.sem(table()[0].per_seed))
    assert rows[0].ci == pytest.approx((lo, hi), rel=1e-10)
    assert rows[0].outcome == "agrees" and rows[0].effect == pytest.approx(0.1075)
    assert rows[0].min_detectable == pytest.approx((hi - lo) / 2, rel=1e-10)
    # row 2 (p 0.55) fails its step (>= 0.05 / 2): it and row 1 (p 0.63) share that level
    assert rows[1].level == rows[2].level == pytest.approx(0.975)
    assert rows[1].outcome == "inconclusive"
    # CI inside +-0.01 (smaller than the claimed effect), but no positive control shows that
    # the readout could see an effect: the absence is not asserted
    assert rows[2].outcome == "inconclusive" and rows[2].reason == verdicts.UNSEEN
    assert rows[2].shown_outcome == "inconclusive (readout cannot see the effect)"
    # instrument and gated-out rows stay outside the family, at 95%, without a Holm p
    assert rows[3].kind == "instrument" and rows[3].level == 0.95 and rows[3].p_holm is None
    assert rows[3].outcome == "agrees"
    assert rows[4].outcome == "regime not reached" and rows[4].p_holm is None
    assert rows[4].ci == pytest.approx(stats.paired_effect([-0.2, -0.3, -0.25]).ci)


def test_decide_table_refuses_unknown_kind() -> None:
    with pytest.raises(ValueError, match=r"rows\[0\].kind"):
        verdicts.decide_table([Row(KONG, "x", "increase", 0.1, [1.0, 2.0], kind="sanity")])
    with pytest.raises(ValueError, match=r"rows\[1\].predicted"):
        verdicts.decide_table([table()[0], Row(KONG, "x", "up", 0.1, [1.0, 2.0])])


def test_summary_counts_predictions_only() -> None:
    counts = verdicts.summary(verdicts.decide_table(table()))
    assert counts == {"agrees": 1, "disagrees": 0, "inconclusive": 2, "regime not reached": 1}
    only_instrument = verdicts.decide_table([table()[3]])
    assert sum(verdicts.summary(only_instrument).values()) == 0


def test_regime_record() -> None:
    r = verdicts.regime_record("unit=16", [0.5, 0.55, 0.52], [0.3, 0.33, 0.31], [0.45, 0.46, 0.44])
    assert r.encoder == pytest.approx(0.52333333) and r.pixels == pytest.approx(0.45)
    d = np.array([0.2, 0.22, 0.21])
    assert r.ci == pytest.approx(sps.t.interval(0.95, 2, loc=d.mean(), scale=sps.sem(d)))
    assert r.reached and r.above_pixels
    low = verdicts.regime_record("unit=4", [0.3, 0.32, 0.29], [0.3, 0.31, 0.3], [0.4] * 3)
    assert not low.reached and not low.above_pixels


# ---------------------------------------------------------------- files
def test_write_read_round_trip(tmp_path: Path) -> None:
    v = sample()
    path = verdicts.write_verdicts(tmp_path / "demo", v)
    assert path == tmp_path / "demo" / "verdicts.json"
    assert verdicts.read_verdicts(tmp_path / "demo") == v
    obj = json.loads(path.read_text())
    assert list(obj) == ["schema", "commit", "config_hash", "ci_method", "regime", "verdicts"]
    assert obj["schema"] == 2 and obj["ci_method"] == stats.CI_METHOD
    assert "control" not in obj["verdicts"][0]
    assert not list(path.parent.glob("*.tmp"))  # atomic writer left no temp file


def test_one_seed_writes_null_interval(tmp_path: Path) -> None:
    rows = verdicts.decide_table([Row(KONG, "one seed", "increase", 0.02, [0.3], control=0.1)])
    path = verdicts.write_verdicts(
        tmp_path / "v.json", Verdicts("unknown", "h", verdicts=tuple(rows))
    )
    text = path.read_text()
    assert "NaN" not in text
    row = json.loads(text)["verdicts"][0]
    assert row["ci"] == [None, None] and row["min_detectable"] is None
    assert row["outcome"] == "inconclusive" and row["control"] == 0.1
    back = verdicts.read_verdicts(path).verdicts[0]
    assert math.isnan(back.ci[0]) and back.per_seed == (0.3,)


def test_read_refuses_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(VerdictsError, match="cannot read"):
        verdicts.read_verdicts(tmp_path / "none.json")
    (tmp_path / "verdicts.json").write_text("{not json")
    with pytest.raises(VerdictsError, match="not JSON"):
        verdicts.read_verdicts(tmp_path)


def test_write_refuses_an_invalid_record(tmp_path: Path) -> None:
    bad = Verdicts("c", "h", verdicts=(verdicts.decide_table(table())[0],), ci_method="")
    with pytest.raises(VerdictsError, match="ci_method"):
        verdicts.write_verdicts(tmp_path, bad)
    assert not (tmp_path / "verdicts.json").exists()


# ---------------------------------------------------------------- validator
def _bad(edit) -> dict:
    obj = copy.deepcopy(sample().to_json())
    edit(obj)
    return obj


@pytest.mark.parametrize(
    "edit,field",
    [
        (lambda o: o.pop("commit"), "verdicts.json.commit: missing"),
        (lambda o: o.update(schema=3), "schema"),
        (lambda o: o.update(schema=True), "schema"),
        (lambda o: o.update(extra=1), "verdicts.json.extra: unknown field"),
        (lambda o: o.update(config_hash=5), "config_hash"),
        (lambda o: o.update(regime={}), "regime: expected a list"),
        (lambda o: o["regime"][0].update(ci=[0.1]), r"regime\[0\].ci"),
        (lambda o: o["regime"][0].update(encoder=None), r"regime\[0\].encoder"),
        (lambda o: o["regime"][0].pop("pixels"), r"regime\[0\].pixels: missing"),
        (lambda o: o["verdicts"][1].update(kind="check"), r"verdicts\[1\].kind"),
        (lambda o: o["verdicts"][1].update(outcome="agree"), r"verdicts\[1\].outcome"),
        (lambda o: o["verdicts"][0].update(effect="0.1"), r"verdicts\[0\].effect"),
        (lambda o: o["verdicts"][0].update(effect=0.5), r"verdicts\[0\].effect: .* not the mean"),
        (lambda o: o["verdicts"][0].update(ci=[0.2, 0.1]), r"verdicts\[0\].ci"),
        (
            lambda o: o["verdicts"][0].update(ci=[0.2, 0.3]),
            r"verdicts\[0\].ci: .* does not contain",
        ),
        (lambda o: o["verdicts"][0].update(n_seeds=3), r"verdicts\[0\].per_seed"),
        (lambda o: o["verdicts"][0].update(n_seeds=2.0), r"verdicts\[0\].n_seeds"),
        (lambda o: o["verdicts"][0]["per_seed"].__setitem__(0, None), r"per_seed\[0\]"),
        (lambda o: o["verdicts"][0].update(min_detectable=float("inf")), "min_detectable"),
        (lambda o: o["verdicts"][0].update(predicted="up"), r"verdicts\[0\].predicted"),
        (lambda o: o["verdicts"][0].update(level="high"), r"verdicts\[0\].level"),
        (lambda o: o["verdicts"][0].update(note="x"), r"verdicts\[0\].note: unknown field"),
        (lambda o: o["verdicts"].__setitem__(0, []), r"verdicts\[0\]: expected an object"),
    ],
)
def test_validator_names_the_bad_field(edit, field: str) -> None:
    verdicts.validate(sample().to_json())  # the unedited sample is valid
    with pytest.raises(VerdictsError, match=field) as info:
        verdicts.validate(_bad(edit))
    assert "\n" not in str(info.value)


def test_validator_refuses_a_list() -> None:
    with pytest.raises(VerdictsError, match="expected an object"):
        verdicts.validate([])


# ---------------------------------------------------------------- provenance
def test_config_hash_is_stable() -> None:
    a = {"train": {"seed": 0, "epochs": 3}, "mask": {"ratio": 0.75}}
    b = {"mask": {"ratio": 0.75}, "train": {"epochs": 3, "seed": 0}}
    assert verdicts.config_hash(a) == verdicts.config_hash(b)
    assert re.fullmatch(r"[0-9a-f]{16}", verdicts.config_hash(a))
    assert verdicts.config_hash(a) != verdicts.config_hash({**a, "mask": {"ratio": 0.5}})
    # a pydantic config hashes as its JSON dump
    cfg = load_config()
    assert verdicts.config_hash(cfg) == verdicts.config_hash(cfg.model_dump(mode="json"))
    assert verdicts.config_hash(cfg) != verdicts.config_hash(
        load_config(overrides=["train.seed=3"])
    )


def test_git_commit(tmp_path: Path) -> None:
    here = verdicts.git_commit()
    assert here == "unknown" or re.fullmatch(r"[0-9a-f]{40}", here)
    assert verdicts.git_commit(tmp_path) == "unknown"
    assert verdicts.git_commit(tmp_path / "missing") == "unknown"


# ---------------------------------------------------------------- placebo and positive control
def _row(per_seed, placebo=None, control=None, predicted="increase", margin=0.02) -> Row:
    return Row(KONG, "claim", predicted, margin, per_seed, placebo=placebo,
               positive_control=control)  # fmt: skip


def test_a_row_with_a_placebo_is_decided_on_raw_minus_placebo() -> None:
    raw, untrained = [0.30, 0.25, 0.33, 0.28, 0.31], [0.10, 0.12, 0.08, 0.11, 0.09]
    (v,) = verdicts.decide_table([_row(raw, untrained)])
    diff = [a - b for a, b in zip(raw, untrained, strict=True)]
    assert v.per_seed == pytest.approx(diff, abs=1e-15)
    assert v.effect == pytest.approx(np.mean(diff))
    lo, hi = sps.t.interval(0.95, 4, loc=np.mean(diff), scale=sps.sem(diff))
    assert v.ci == pytest.approx((lo, hi), rel=1e-10)
    assert v.raw is not None and v.raw.per_seed == tuple(raw)
    assert v.raw.effect == pytest.approx(np.mean(raw))
    assert v.placebo is not None and v.placebo.per_seed == tuple(untrained)
    assert v.placebo.outcome == "agrees"  # the untrained network alone shows the increase too
    # ... so the row, which asserts that effect, reads inconclusive
    assert v.outcome == "inconclusive" and v.reason == verdicts.PLACEBO_SAME


def test_the_trained_weights_as_their_own_placebo_give_zero() -> None:
    raw = [0.30, 0.25, 0.33, 0.28, 0.31]
    (v,) = verdicts.decide_table([_row(raw, list(raw))])
    assert v.per_seed == (0.0,) * 5 and v.effect == 0.0
    assert v.raw.effect == pytest.approx(np.mean(raw))


def test_an_effect_beyond_a_null_placebo_agrees() -> None:
    raw = [0.30, 0.25, 0.33, 0.28, 0.31]
    (v,) = verdicts.decide_table([_row(raw, [0.01, -0.02, 0.0, 0.02, -0.01])])
    assert v.outcome == "agrees" and v.reason is None
    assert v.placebo.outcome == "disagrees"  # inside the margin: the untrained network shows none


def test_an_absence_needs_a_detected_positive_control() -> None:
    small = [0.001, -0.002, 0.0015, 0.0, -0.0005]
    seen = PositiveControl("a constructed drop of 1.5 x margin", [-0.03, -0.031, -0.029, -0.03,
                                                                 -0.032])  # fmt: skip
    blind = PositiveControl("the same drop, lost in noise", [-0.03, 0.02, -0.05, 0.04, -0.01])
    absent, shown, hidden = verdicts.decide_table(
        [_row(small), _row(small, control=seen), _row(small, control=blind)]
    )
    assert absent.outcome == "inconclusive" and absent.reason == verdicts.UNSEEN
    assert shown.outcome == "disagrees" and shown.reason is None
    assert shown.positive_control.detected and shown.positive_control.effect < 0
    assert hidden.outcome == "inconclusive" and not hidden.positive_control.detected
    # a null prediction that agrees asserts an absence as well
    (null,) = verdicts.decide_table([_row(small, predicted="none")])
    assert null.outcome == "inconclusive" and null.reason == verdicts.UNSEEN


def test_placebo_fields_round_trip_and_validate(tmp_path) -> None:
    raw, untrained = [0.30, 0.25, 0.33], [0.01, -0.02, 0.0]
    control = PositiveControl("drop", [-0.03, -0.031, -0.029])
    decided = verdicts.decide_table([_row(raw, untrained, control)])
    regime = verdicts.RegimeRecord(
        "patch · s_g", 0.7, 0.5, 0.4, (0.1, 0.2), pca=0.77,
        convergence=verdicts.Convergence(0.105, 0.1, 0.70, 0.71, 0.05, 0.02),
    )  # fmt: skip
    v = Verdicts("abc", "0123456789abcdef", regime=(regime,), verdicts=tuple(decided))
    back = verdicts.read_verdicts(verdicts.write_verdicts(tmp_path, v))
    assert back.verdicts == v.verdicts and back.regime == v.regime
    assert back.regime[0].converged is True and back.regime[0].above_pca is False
    obj = v.to_json()
    obj["verdicts"][0]["placebo"]["per_seed"][1] += 0.01  # per_seed is no longer raw - placebo
    with pytest.raises(verdicts.VerdictsError, match=r"per_seed\[1\].*not raw - placebo"):
        verdicts.validate(obj)
    obj = v.to_json()
    del obj["verdicts"][0]["placebo"]
    with pytest.raises(verdicts.VerdictsError, match="raw and placebo come together"):
        verdicts.validate(obj)


def test_convergence_is_loss_within_5_percent_and_the_gate_within_the_margin() -> None:
    c = verdicts.Convergence
    assert c(0.104, 0.1, 0.70, 0.71, 0.05, 0.02).converged
    assert not c(0.106, 0.1, 0.70, 0.71, 0.05, 0.02).converged  # loss 6% above the pilot's
    assert not c(0.100, 0.1, 0.68, 0.71, 0.05, 0.02).converged  # the pilot reads 0.03 more
