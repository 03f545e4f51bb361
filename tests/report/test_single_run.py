"""`maelab report RUN` on one run folder: the probe table first, no "None" fields."""

import json

import yaml

from maelab.report import build_report
from maelab.report.sections.runs import setting_facts


def _fake_run(root, with_probe: bool):
    root.mkdir(parents=True)
    cfg = {"run_dir": str(root), "data": {"name": "folder", "num_train": None, "num_test": None},
           "mask": {"strategy": "random", "ratio": 0.75, "unit": None}}  # fmt: skip
    (root / "config.yaml").write_text(yaml.safe_dump(cfg))
    if with_probe:
        rows = [
            {"source": s, "dim": d, "linear": {"top1": lin}, "knn": {"top1": knn}}
            for s, d, lin, knn in [
                ("mae", 192, 91.5, 87.0),
                ("random", 192, 80.1, 45.2),
                ("pixels", 784, 88.8, 92.3),
            ]  # fmt: skip
        ]
        record = {"probe": {"pool": "mean"}, "num_train": 4000, "num_test": 1000, "rows": rows}
        (root / "probe.json").write_text(json.dumps(record))


def test_single_run_leads_with_the_probe_table(tmp_path):
    _fake_run(tmp_path / "run", with_probe=True)
    page = build_report(tmp_path / "run").path.read_text()
    overview = page[page.index('<section id="overview">') :]
    overview = overview[: overview.index("</section>")]
    assert "<td>mae</td><td>192</td><td>91.5</td><td>87.0</td>" in overview
    assert "<td>random</td>" in overview and "<td>pixels</td>" in overview
    assert overview.index("probe.json") < overview.index("this run")
    assert "None" not in overview


def test_missing_probe_is_one_line_and_unknown_settings_are_left_out(tmp_path):
    _fake_run(tmp_path / "run", with_probe=False)
    page = build_report(tmp_path / "run").path.read_text()
    assert "No probe table: run <code>maelab probe --ckpt" in page
    facts = dict(setting_facts({"data.name": "folder", "mask.ratio": 0.75}.get))
    assert facts["data"] == "folder" and facts["mask"] == "ratio 0.75" and facts["model"] == ""
