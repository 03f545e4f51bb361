"""The frozen-feature table and the `maelab probe` config layering."""

from maelab.evaluation.frozen import SourceScores, format_table, frozen_run_config
from maelab.evaluation.knn import KNNResult
from maelab.evaluation.linear_probe import ProbeResult


def _row(name, dim, top1, top5, knn):
    return SourceScores(
        name, dim, ProbeResult(top1, top5, 99.0, 0.1, 10, 0.1), KNNResult(knn, None, 20, 0.07)
    )


def test_table_columns_and_alignment():
    table = format_table(
        [_row("mae", 128, 67.04, 96.7, 39.8), _row("pixels", 768, 91.8, 99.8, 91.8)]
    )
    lines = table.splitlines()
    assert lines[0].split() == [
        "features",
        "dim",
        "linear",
        "top-1",
        "linear",
        "top-5",
        "k-NN",
        "top-1",
    ]
    assert lines[2].split() == ["mae", "128", "67.0", "96.7", "39.8"]
    assert len({len(line) for line in lines}) == 1  # every row as wide as the header


def test_table_without_top5_for_few_classes():
    table = format_table([_row("mae", 8, 50.0, None, 40.0)])
    assert "top-5" not in table


def test_config_layers_checkpoint_data_then_overrides():
    stored = {"data": {"name": "synthetic", "num_train": 4096}, "train": {"epochs": 3}}
    cfg = frozen_run_config(stored, overrides=["data.num_train=100", "probe.linear_probe.epochs=5"])
    assert cfg.data.name == "synthetic" and cfg.data.num_train == 100
    head = cfg.probe.linear_probe
    assert head.epochs == 5 and head.optimizer == "sgd" and head.blr == 0.1
    assert cfg.probe.pool == "mean" and cfg.baselines == ["random", "pixels"]
