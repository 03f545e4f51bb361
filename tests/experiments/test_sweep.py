"""Sweep grid expansion (pure) and the skip / resume logic on tiny runs."""

import json

import pytest

from maelab.cli import main
from maelab.errors import ConfigError
from maelab.experiments import sweep as sw
from maelab.experiments.plan import (
    expand_grids,
    format_value,
    load_sweep,
    parse_grid_arg,
    parse_seeds,
    run_name,
)
from maelab.experiments.sweep import run_sweep
from maelab.run_folder import RunFolder


def run_status(run_dir):
    return RunFolder(run_dir).status()


# ---------------------------------------------------------------- pure parts
def test_run_name_formats_values_in_order():
    assert (
        run_name({"mask.ratio": 0.75, "mask.unit": 8}, 0) == "mask.ratio=0.75__mask.unit=8__seed=0"
    )
    assert format_value(None) == "none"
    assert format_value(True) == "true"
    assert format_value([0.2, 1.0]) == "0.2-1.0"
    assert format_value("a/b") == "a_b"


def test_parse_grid_arg_and_seeds():
    assert parse_grid_arg("mask.ratio=0.1,0.5, 0.9") == ("mask.ratio", [0.1, 0.5, 0.9])
    assert parse_grid_arg("objective.name=mae,umae") == ("objective.name", ["mae", "umae"])
    assert parse_grid_arg("data.crop_scale=[[0.2,1.0],[0.5,1.0]]") == (
        "data.crop_scale",
        [[0.2, 1.0], [0.5, 1.0]],
    )
    assert parse_seeds("0,1,2") == [0, 1, 2]
    for bad in ("mask.ratio", "=1,2", "mask.ratio="):
        with pytest.raises(ConfigError):
            parse_grid_arg(bad)
    with pytest.raises(ConfigError):
        parse_seeds("a,b")


def test_expand_grids_is_the_product_times_seeds():
    points, keys = expand_grids([{"a": [1, 2, 3], "b": ["x", "y"]}], [0, 1])
    assert keys == ["a", "b"]
    assert len(points) == 3 * 2 * 2
    combos = {(p.values["a"], p.values["b"], p.seed) for p in points}
    assert combos == {(a, b, s) for a in (1, 2, 3) for b in ("x", "y") for s in (0, 1)}


def test_union_of_grids_fills_missing_axes_from_base_and_dedups(tiny_yaml):
    # grid 2 leaves mask.unit at the base value 4, so its ratio-0.75 point repeats grid 1's
    plan = load_sweep(
        [str(tiny_yaml)],
        [
            "sweep.grids=[{mask.ratio: [0.5, 0.75], mask.unit: [4, 8]}, {mask.ratio: [0.75], objective.name: [umae]}]"
        ],
        seeds="0",
        out="/tmp/unused",
    )
    assert plan.keys == ["mask.ratio", "mask.unit", "objective.name"]
    names = [p.name for p in plan.points]
    assert len(names) == len(set(names)) == 5
    assert "mask.ratio=0.75__mask.unit=4__objective.name=mae__seed=0" in names
    assert "mask.ratio=0.75__mask.unit=4__objective.name=umae__seed=0" in names


def test_cli_grid_replaces_yaml_axis_and_bad_values_fail_early(tiny_yaml):
    plan = load_sweep([str(tiny_yaml)], [], ["mask.ratio=0.1,0.9"], "3", out="/tmp/unused")
    assert [p.name for p in plan.points] == ["mask.ratio=0.1__seed=3", "mask.ratio=0.9__seed=3"]
    with pytest.raises(ConfigError, match="mask.ratio=1.5"):
        load_sweep([str(tiny_yaml)], [], ["mask.ratio=0.5,1.5"], out="/tmp/unused")
    with pytest.raises(ConfigError, match="no grid"):
        load_sweep([str(tiny_yaml)], [], [], out="/tmp/unused")


# ---------------------------------------------------------------- runs
def _train_lines(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [json.loads(x) for x in lines if '"train"' in x]


def test_sweep_runs_skips_done_and_resumes_unfinished(tiny_yaml, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    plan = load_sweep([str(tiny_yaml)], [], ["mask.ratio=0.5,0.75"], out=str(out))
    res = run_sweep(plan, quiet=True)
    assert sorted(res.ran) == sorted(p.name for p in plan.points) and not res.failed
    for p in plan.points:
        run_dir = out / p.name
        assert run_status(run_dir) == "done"
        metrics = json.loads((run_dir / "results.json").read_text())["metrics"]
        for key in ("linear_top1", "knn_top1", "effective_rank", "rankme", "alignment",
                    "uniformity", "r2.global", "r2.region", "r2.cell", "r2.control"):  # fmt: skip
            assert key in metrics
    manifest = json.loads((out / "sweep.json").read_text())
    assert [p["name"] for p in manifest["points"]] == [p.name for p in plan.points]

    # everything done: nothing runs again
    res2 = run_sweep(plan, quiet=True)
    assert res2.ran == [] and sorted(res2.skipped) == sorted(res.ran)

    # a run whose evaluation crashed after training resumes without training again
    victim = out / plan.points[0].name
    (victim / "done.json").unlink()
    steps_before = [r["step"] for r in _train_lines(victim)]
    assert run_status(victim) == "partial"
    res3 = run_sweep(plan, quiet=True)
    assert res3.ran == [victim.name]
    assert [r["step"] for r in _train_lines(victim)] == steps_before
    assert run_status(victim) == "done"


def test_failed_run_is_reported_and_others_continue(tiny_yaml, tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    plan = load_sweep([str(tiny_yaml)], [], ["mask.ratio=0.5,0.75"], out=str(out))
    real = sw.execute_point

    def flaky(cfg_tree, *args):
        if cfg_tree["mask"]["ratio"] == 0.5:
            raise RuntimeError("boom")
        return real(cfg_tree, *args)

    monkeypatch.setattr(sw, "execute_point", flaky)
    res = run_sweep(plan, quiet=True)
    assert list(res.failed) == [plan.points[0].name] and "boom" in res.failed[plan.points[0].name]
    assert res.ran == [plan.points[1].name]
    assert run_status(out / plan.points[0].name) != "done"


def test_changed_config_in_existing_folder_is_refused(tiny_yaml, tmp_path):
    out = tmp_path / "sweep"
    run_sweep(load_sweep([str(tiny_yaml)], [], ["mask.ratio=0.5"], out=str(out)), quiet=True)
    changed = load_sweep([str(tiny_yaml)], ["train.blr=0.01"], ["mask.ratio=0.5"], out=str(out))
    with pytest.raises(ConfigError, match="train.blr"):
        run_sweep(changed, quiet=True)


def test_sweep_probes_and_baselines_are_written(tiny_yaml, tmp_path):
    out = tmp_path / "sweep"
    plan = load_sweep(
        [str(tiny_yaml)],
        ["sweep.probes=[stability]", "sweep.baselines=true"],
        ["mask.ratio=0.5"],
        out=str(out),
    )
    res = run_sweep(plan, quiet=True)
    assert not res.failed and set(res.ran) == {"baselines", plan.points[0].name}
    run = out / plan.points[0].name
    assert (run / "probes" / "stability.json").is_file() and (
        run / "probes" / "stability.png"
    ).is_file()
    base = json.loads((out / "baselines" / "results.json").read_text())["baselines"]
    assert set(base) == {"random_init", "pixels"}
    assert base["pixels"]["dim"] == 3 * 16 * 16 and "r2.global" in base["random_init"]


def test_a_grid_may_run_on_the_first_seeds_only():
    points, keys = expand_grids([{"a": [1, 2]}, {"b": ["x"], "first_seeds": 1}], [3, 4])
    assert keys == ["a", "b"]  # `first_seeds` is no axis
    assert sorted((p.values["a"], p.seed) for p in points if p.values["b"] != "x") == [
        (1, 3), (1, 4), (2, 3), (2, 4)
    ]  # fmt: skip
    assert [p.seed for p in points if p.values["b"] == "x"] == [3]
    for bad in (0, "3", [3]):
        with pytest.raises(ConfigError, match="positive integer"):
            expand_grids([{"b": ["x"], "first_seeds": bad}], [0])


@pytest.mark.slow
def test_sweep_runs_get_their_recipe_and_resume_without_a_mismatch(tmp_path):
    """A sweep on small images fills what its YAML leaves unset from the small-data recipe (as
    `maelab pretrain` does), scores the baselines' random encoder with the recipe's architecture,
    and a rerun of the same sweep finds its runs finished (no config mismatch)."""
    cfg = tmp_path / "digits.yaml"
    cfg.write_text(
        "data: {name: digits, num_train: 128, num_test: 64, num_workers: 0}\n"
        "train: {epochs: 1, batch_size: 32, log_every: 1}\n"
        "sweep: {grid: {mask.ratio: [0.75]}, seeds: [0],\n"
        "        eval: {pool: mean, linear_probe: {epochs: 1, warmup_epochs: 0}, view_images: 32,\n"
        "               identifiability: false}}\n"
    )
    plan = load_sweep([str(cfg)], out=str(tmp_path / "sweep"))
    res = run_sweep(plan, quiet=True)
    assert not res.failed and len(res.ran) == 2
    stored = (tmp_path / "sweep" / plan.points[0].name / "config.yaml").read_text()
    assert "blr: 0.002" in stored and "depth: 6" in stored  # the small-data recipe's
    base = json.loads((tmp_path / "sweep" / "baselines" / "results.json").read_text())
    run = json.loads((tmp_path / "sweep" / plan.points[0].name / "results.json").read_text())
    # the recipe's 128-wide encoder, not the default (tiny, 192 wide)
    assert base["baselines"]["random_init"]["dim"] == run["metrics"]["dim"] == 128
    again = run_sweep(load_sweep([str(cfg)], out=str(tmp_path / "sweep")), quiet=True)
    assert not again.failed and not again.ran


@pytest.mark.parametrize("command", ["sweep", "demo"])
def test_out_naming_a_file_is_one_line(command, tmp_path, capsys):
    """`--out` on an existing file: one line naming the path, before anything trains."""
    taken = tmp_path / "notes.txt"
    taken.write_text("mine")
    grid = ["--grid", "mask.ratio=0.5,0.75"] if command == "sweep" else ["--quick", "--quiet"]
    assert main([command, *grid, "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"maelab: error: sweep folder {taken} is a file, not a folder; pass --out a new folder "
        "(or this sweep's)"
    ]
    assert taken.read_text() == "mine"
