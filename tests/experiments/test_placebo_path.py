"""The placebo goes through the identical pipeline: a trained run's own weights passed as its
"untrained" network give every study readout twice, number for number, so every contrast row's
placebo equals its raw contrast and the decided effect is exactly 0."""

from __future__ import annotations

import math

from maelab import metric_names as m
from maelab.evaluation.splits import cached_splits
from maelab.experiments import study_readout
from maelab.experiments.declaration import Diff
from maelab.experiments.measurements import Measurements
from maelab.experiments.studies.world import E_R_FULL, E_R_MASKED
from maelab.models.checkpoints import load_pretrained
from tests.evaluation.conftest import pretrain_tiny


def test_trained_weights_through_the_placebo_path_give_raw_exactly(tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    pretrain_tiny(run, "train.epochs=2")
    model, cfg = load_pretrained(run / "checkpoints" / "last.pt")
    splits = cached_splits(cfg.data)
    monkeypatch.setattr(study_readout, "random_encoder", lambda arch, seed: model)
    metrics = study_readout.study_metrics(model, cfg, splits, images=32)
    pairs = [(k, m.untrained(k)) for k in metrics if ".encoder." in k and not k.startswith("pc.")]
    assert len(pairs) >= 10
    for trained, untrained in pairs:
        a, b = metrics[trained], metrics[untrained]
        assert a == b or (math.isnan(a) and math.isnan(b)), trained
    # two "conditions" of the same run: each row's placebo is its raw contrast, exactly
    shifted = {k: v + (0.1 if ".encoder." in k else 0.0) for k, v in metrics.items()}
    shifted.update({m.untrained(k): shifted[k] for k in shifted if ".encoder." in k
                    and not k.startswith("pc.")})  # fmt: skip
    runs = Measurements({"a": {1: shifted}, "b": {1: metrics}})
    for value in (Diff(E_R_FULL), Diff(E_R_MASKED)):
        raw = value(runs, "a", "b", [1])
        assert raw == value.untrained()(runs, "a", "b", [1])
        assert math.isnan(raw[0]) or abs(raw[0] - 0.1) < 1e-12
