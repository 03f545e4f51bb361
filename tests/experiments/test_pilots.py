"""Pilots (maelab.experiments.pilots): a budget's key ignores what does not change learning, a
pilot judges the budget of a third of its epochs, the study folder's pilots win over the
shipped ones, and the shipped pilots are the demo's own budget."""

from __future__ import annotations

import json

import pytest

from maelab.errors import ConfigError
from maelab.experiments import pilots
from maelab.experiments.demo import plan_demo
from maelab.experiments.measurements import Measurements
from maelab.experiments.studies.world import WORLD


def test_the_key_ignores_seed_and_folders_but_not_the_budget() -> None:
    base = {"train": {"epochs": 4, "seed": 1}, "run_dir": "a"}
    assert pilots.budget_key(base) == pilots.budget_key(
        {"train": {"epochs": 4, "seed": 7, "save_every": 9}, "run_dir": "b"}
    )
    assert pilots.budget_key(base) != pilots.budget_key({"train": {"epochs": 5}})
    # a pilot of 12 epochs judges the runs of 4
    assert pilots.budget_key({"train": {"epochs": 12}}, 12 // pilots.PILOT_FACTOR) == (
        pilots.budget_key(base)
    )


def test_entries_are_read_from_the_study_folder_first(tmp_path) -> None:
    runs = {c: {0: {"final_loss": 0.1 + i, "selp.full.encoder.s_g": 0.8, "steps": 768.0}}
            for i, c in enumerate(WORLD.conditions)}  # fmt: skip
    entry = pilots.pilot_entry(WORLD, Measurements(runs))
    assert entry["steps"] == 768 and entry["judges_steps"] == 256
    assert entry["conditions"]["patch"] == {"loss": 0.1, "readout": 0.8}
    pilots.write_pilot(tmp_path, "k", entry)
    assert pilots.read_pilots("k", tmp_path)["cell"]["loss"] == pytest.approx(1.1)
    assert pilots.read_pilots("absent", tmp_path) is None
    (tmp_path / "pilot" / "pilots.json").write_text("{not json")
    with pytest.raises(ConfigError, match="not JSON"):
        pilots.read_pilots("k", tmp_path)


def test_the_shipped_pilots_judge_the_shipped_demo() -> None:
    plan = plan_demo()
    found = pilots.read_pilots(pilots.budget_key(plan.world.plan.base))
    assert found is not None and set(found) == set(WORLD.conditions)
    shipped = json.loads(pilots.SHIPPED.read_text())
    (entry,) = shipped.values()
    assert entry["steps"] == 3 * entry["judges_steps"] == 768 and entry["seed"] == 0
