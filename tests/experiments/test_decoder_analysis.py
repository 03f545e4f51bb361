"""`maelab analyze decoder`: Cao Q4 decided from a decoder-depth sweep folder
(maelab.experiments.decoder_analysis, the declaration studies/cao_q4), on hand-made results:
known paired effects give known outcomes, the regime gate holds rows back, and the report shows
the rows and the ablation figure it wrote."""

import json

import pytest

from maelab import verdicts as vd
from maelab.cli import main
from maelab.errors import ConfigError
from maelab.experiments.decoder_analysis import analyze_decoder, format_q4
from maelab.report import build_report


def fake_sweep(root, top1, random=80.0, seeds=(0, 1, 2), epochs=10, loss=0.1):
    """A sweep folder whose runs report `top1[depth] + seed * 0.1` (linear probe, %) after
    `epochs` epochs, final loss `loss`."""
    points = []
    for depth, width in ((0, 64), (1, 64), (4, 128)):
        for s in seeds:
            name = f"model.decoder_depth={depth}__model.decoder_embed_dim={width}__seed={s}"
            values = {"model.decoder_depth": depth, "model.decoder_embed_dim": width}
            points.append({"name": name, "values": values, "seed": s})
            (root / name).mkdir(parents=True)
            value = top1[depth] + 0.1 * s + (0.05 * s * s if depth == 4 else 0.0)
            metrics = {
                "linear_top1": value,
                "random.linear_top1": random + 0.2 * s,
                "final_loss": loss,
            }
            (root / name / "results.json").write_text(json.dumps({"metrics": metrics}))
    manifest = {
        "keys": ["model.decoder_depth", "model.decoder_embed_dim"],
        "points": points,
        "base": {"train": {"epochs": epochs}},
    }
    (root / "sweep.json").write_text(json.dumps(manifest))
    (root / "baselines").mkdir()
    base = {"baselines": {"pixels": {"linear_top1": 90.0}}}
    (root / "baselines" / "results.json").write_text(json.dumps(base))
    return root


def pilot_of(tmp_path, loss=0.1):
    """The same sweep, 3x the epochs, on seed 0: the pilot each condition is held against."""
    return fake_sweep(tmp_path / "pilot", {0: 84.0, 1: 88.0, 4: 88.2}, seeds=(0,), epochs=30,
                      loss=loss)  # fmt: skip


def test_known_effects_give_known_outcomes(tmp_path):
    sweep = fake_sweep(tmp_path / "q4", {0: 84.0, 1: 88.0, 4: 88.2})
    depths, table, path = analyze_decoder(sweep, pilot=pilot_of(tmp_path))
    assert path == sweep / "probes" / "verdicts.json"
    assert depths == {"linear head": 0, "one block": 1, "deep": 4}
    rows = {v.claim.split(" gives")[0]: v for v in vd.read_verdicts(path).verdicts}
    one, deep = rows["Q4: one decoder block"], rows["Q4: a deep, wide decoder"]
    assert one.effect == pytest.approx(4.0) and one.control == pytest.approx(84.1)
    assert one.n_seeds == 3 and one.outcome == "agrees"
    # deep - one block = 0.2 + 0.05 s^2: a small effect inside the 1-point margin
    assert deep.effect == pytest.approx(0.2 + 0.05 * 5 / 3)
    # ... which asserts an absence: top-1 has no positive control, so it reads inconclusive
    assert deep.outcome == "inconclusive" and deep.ci[1] < 1.0
    assert deep.reason == "readout cannot see the effect"
    assert {r.condition for r in table.regime} == {
        "linear head · linear top-1", "one block · linear top-1", "deep · linear top-1"}  # fmt: skip
    assert "one block (depth 1)" in format_q4(depths, table)
    assert (sweep / "probes" / "decoder_ablation.png").is_file()
    report = build_report(sweep)
    assert [v.outcome for v in report.verdicts] == ["agrees", "inconclusive"]
    page = report.path.read_text()
    assert "Cao Q4: decoder depth and width shape the encoder" in page  # the figure's heading
    # once in the page's summary, once in the Cao section
    assert page.count("Q4: one decoder block gives") == 2


def test_regime_not_reached_when_the_encoder_does_not_beat_random(tmp_path):
    sweep = fake_sweep(tmp_path / "q4", {0: 79.0, 1: 88.0, 4: 90.0})
    _, table, _ = analyze_decoder(sweep, pilot=pilot_of(tmp_path))
    outcomes = {v.claim[:20]: v.outcome for v in table.verdicts}
    assert outcomes == {"Q4: one decoder bloc": "regime not reached",
                        "Q4: a deep, wide dec": "agrees"}  # fmt: skip


def test_cli_and_missing_axis(tmp_path, capsys):
    sweep = fake_sweep(tmp_path / "q4", {0: 84.0, 1: 88.0, 4: 88.2}, seeds=(0,))
    assert main(["analyze", "decoder", "--sweep", str(sweep), "--out", str(tmp_path / "v")]) == 0
    out = capsys.readouterr().out  # one seed: no interval, so no gate passes either
    assert out.count("| 1 | regime not reached") == 2 and "verdicts: " in out
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "sweep.json").write_text(json.dumps({"points": [
        {"name": "a", "values": {"mask.ratio": 0.5}, "seed": 0}]}))  # fmt: skip
    with pytest.raises(ConfigError, match="no model.decoder_depth axis"):
        analyze_decoder(tmp_path / "other")


def test_q4_without_a_pilot_or_short_of_it_counts_nothing(tmp_path):
    sweep = fake_sweep(tmp_path / "q4", {0: 84.0, 1: 88.0, 4: 88.2})
    _, table, _ = analyze_decoder(sweep)
    assert {v.reason for v in table.verdicts} == {"convergence not checked: no pilot"}
    _, table, _ = analyze_decoder(sweep, pilot=pilot_of(tmp_path, loss=0.05))  # half the loss
    assert {v.shown_outcome for v in table.verdicts} == {"regime not reached (still learning)"}
    wrong = fake_sweep(tmp_path / "short", {0: 84.0, 1: 88.0, 4: 88.2}, seeds=(0,), epochs=20)
    with pytest.raises(ConfigError, match="is no pilot of"):
        analyze_decoder(sweep, pilot=wrong)
