"""Reading run folders and pooling seeds."""

import json
import statistics

import pytest
import yaml

from maelab.config import Config
from maelab.models.presets import make_arch
from maelab.report.collect import collect, differing_keys, group_runs, mean_std


def _fake_run(folder, ratio, seed, linear):
    folder.mkdir(parents=True)
    cfg = {"run_dir": str(folder), "mask": {"ratio": ratio}, "train": {"seed": seed, "epochs": 1}}
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    (folder / "results.json").write_text(
        json.dumps({"metrics": {"linear_top1": linear}, "spectrum": [2.0, 1.0]})
    )


def test_mean_std_matches_statistics():
    xs = [1.0, 2.5, 4.0]
    assert mean_std(xs) == (statistics.fmean(xs), statistics.stdev(xs))
    assert mean_std([3.0, float("nan")]) == (3.0, 0.0)


def test_folder_of_runs_without_manifest_groups_by_differing_fields(tmp_path):
    for ratio, seed, lin in [(0.5, 0, 60.0), (0.5, 1, 64.0), (0.9, 0, 50.0)]:
        _fake_run(tmp_path / f"r{ratio}_s{seed}", ratio, seed, lin)
    c = collect(tmp_path)
    assert c.kind == "sweep" and c.keys == ["mask.ratio"]
    groups = {g.values["mask.ratio"]: g for g in group_runs(c.runs, c.keys)}
    assert groups[0.5].n == 2 and groups[0.5].mean["linear_top1"] == 62.0
    assert groups[0.5].std["linear_top1"] == statistics.stdev([60.0, 64.0])
    assert groups[0.9].std["linear_top1"] == 0.0


def test_single_run_folder(tmp_path):
    _fake_run(tmp_path / "run", 0.75, 0, 70.0)
    c = collect(tmp_path / "run")
    assert c.kind == "run" and c.runs[0].metrics["linear_top1"] == 70.0
    assert c.runs[0].spectrum == [2.0, 1.0]


def test_differing_keys_ignores_run_dir_and_seed():
    a = {"run_dir": "a", "train": {"seed": 0, "epochs": 1}, "mask": {"ratio": 0.5}}
    b = {"run_dir": "b", "train": {"seed": 1, "epochs": 1}, "mask": {"ratio": 0.9}}
    assert differing_keys([a, b]) == ["mask.ratio"]


def test_configs_are_validated_and_architectures_resolved(tmp_path):
    _fake_run(tmp_path / "run", 0.75, 3, 70.0)
    (run,) = collect(tmp_path / "run").runs
    assert isinstance(run.config, Config) and run.config.mask.ratio == 0.75
    assert run.seed == 3
    # the default preset ("tiny") fills the architecture: patch 4, decoder 128 wide
    assert run.arch == make_arch("tiny")
    assert run.setting("model.preset") == "tiny" and run.setting("mask.ratio") == 0.75


def test_invalid_config_is_skipped_with_a_warning(tmp_path):
    _fake_run(tmp_path / "good", 0.5, 0, 60.0)
    _fake_run(tmp_path / "also_good", 0.9, 0, 50.0)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.yaml").write_text(yaml.safe_dump({"mask": {"ratio": 0.5, "colour": "red"}}))
    with pytest.warns(UserWarning, match=r"skipping run folder .*bad.*mask\.colour"):
        c = collect(tmp_path)
    assert sorted(r.name for r in c.runs) == ["also_good", "good"]
    assert c.keys == ["mask.ratio"]


def test_unknown_preset_is_an_invalid_config(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump({"model": {"preset": "enormous"}}))
    with pytest.warns(UserWarning, match="unknown model preset 'enormous'"):
        assert collect(run).runs == []


def test_sweep_point_without_config_counts_as_not_started(tmp_path):
    _fake_run(tmp_path / "p0", 0.5, 0, 60.0)
    manifest = {
        "keys": ["mask.ratio"],
        "points": [
            {"name": "p0", "values": {"mask.ratio": 0.5}, "seed": 0},
            {"name": "p1", "values": {"mask.ratio": 0.9}, "seed": 0},
        ],
    }
    (tmp_path / "sweep.json").write_text(json.dumps(manifest))
    c = collect(tmp_path)
    assert [r.finished for r in c.runs] == [True, False]
    assert c.runs[1].config is None and c.runs[1].arch is None and c.runs[1].setting("x") is None


def test_differing_keys_compare_validated_configs(tmp_path):
    # one run states the default mask strategy, the other leaves it out: not an axis
    _fake_run(tmp_path / "a", 0.5, 0, 60.0)
    _fake_run(tmp_path / "b", 0.9, 0, 50.0)
    cfg = yaml.safe_load((tmp_path / "a" / "config.yaml").read_text())
    cfg["mask"]["strategy"] = "random"
    (tmp_path / "a" / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert collect(tmp_path).keys == ["mask.ratio"]
