"""Reading run folders and pooling seeds."""

import json
import statistics

import yaml

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
