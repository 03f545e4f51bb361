"""The calibration's rows judge by one rule, and each row flips when a broken pipeline stands in
the treated place: a leak of the removed pixels, a mask ratio other than the config's, a code
that keeps e_r where the optimum has none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from maelab.config import MaskConfig
from maelab.data.gaussian import REGION_NOISE, gaussian_world
from maelab.experiments.calibration import (
    ANGLE_TOLERANCE,
    CODE_DIM,
    KONG_PATCH,
    KONG_RATIO,
    KONG_WORLDS,
    LOSS_TOLERANCE,
    MIN_EIGENGAP,
    SHARE_FRACTION,
    STATIONARY,
    VIT_MASK,
    VIT_PATCH,
    run_calibration,
)
from maelab.experiments.calibration_rows import (
    bound_row,
    curve_row,
    kong_row,
    trainer_row,
)
from maelab.experiments.calibration_train import LinearJob, heldout_loss, train_linear
from maelab.models.linear import LinearArch, LinearMAE
from maelab.theory.gaussian import (
    bayes_bound,
    code_angle,
    latent_shares,
    linear_loss,
    linear_optimum,
    moments,
)
from maelab.theory.kong import REGION, exact_shares, kong_point, unit_laws
from maelab.theory.mask_law import mask_law


# ---------------------------------------------------------------- the rule
def test_a_flat_curve_fails_and_the_optimum_passes() -> None:
    expected = {"a": 1.0, "b": 1.5, "c": 2.0}
    assert curve_row("r", "c", "q", expected, expected, 0.25).passed
    flat = dict.fromkeys(expected, 1.5)
    row = curve_row("r", "c", "q", flat, expected, 0.25)
    assert not row.passed and {c.condition for c in row.failed} == {"a", "c"}
    with pytest.raises(ValueError, match="flat curve"):
        curve_row("r", "c", "q", expected, expected, 0.5)


def test_trainer_row_compares_angles_only_at_an_eigengap() -> None:
    row = trainer_row({"a": 1.005, "b": 1.0}, {"a": 1.0, "b": 1.0}, 0.01,
                      {"a": 45.0, "b": 2.0}, {"a": 0.01, "b": 0.5}, 10.0, 0.1)  # fmt: skip
    assert row.passed
    assert [c.quantity for c in row.checks].count("code angle (deg)") == 1
    worse = trainer_row({"a": 1.02}, {"a": 1.0}, 0.01, {"a": None}, {"a": 0.0}, 10.0, 0.1)
    assert not worse.passed


def test_bound_row_fails_below_the_bound_and_far_above_it() -> None:
    assert bound_row(0.65, 0.003, 0.61, 1.0, 0.5, 300).passed
    leak = bound_row(0.55, 0.003, 0.61, 1.0, 0.5, 300)
    assert [c.quantity for c in leak.failed] == ["held-out loss >= bound"]
    assert not bound_row(0.95, 0.003, 0.61, 1.0, 0.5, 300).passed


# ---------------------------------------------------------------- broken pipelines
class LeakingLinearMAE(LinearMAE):
    """A pipeline bug: the encoder reads the whole image, removed patches included."""

    def forward_encoder(self, imgs, mask_ratio, noise=None, mask=None):  # type: ignore[no-untyped-def]
        _, removed, ids_restore = super().forward_encoder(imgs, mask_ratio, noise, mask)
        return self.encode(imgs), removed, ids_restore


def _fit(model: LinearMAE, steps: int = 150) -> LinearMAE:
    world = gaussian_world(STATIONARY)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    for step in range(steps):
        x, _ = world.sample(256, step)
        loss = model(x, VIT_MASK.ratio, torch.rand(256, 16, generator=gen))[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_a_leak_of_removed_pixels_flips_the_bound_row() -> None:
    bound = bayes_bound(gaussian_world(STATIONARY).covariance,
                        mask_law(VIT_MASK, 16, VIT_PATCH)).value  # fmt: skip
    rows = {}
    for name, cls in (("honest", LinearMAE), ("leaking", LeakingLinearMAE)):
        model = _fit(cls(LinearArch(16, VIT_PATCH), init_seed=0))
        mean, se = heldout_loss(model, STATIONARY, VIT_MASK, 2048, 7)
        rows[name] = bound_row(mean, se, bound, 1.0, 0.5, 150)
    assert rows["honest"].checks[0].passed  # the honest model stays above the bound
    assert not rows["leaking"].checks[0].passed and not rows["leaking"].passed


@pytest.mark.slow
def test_a_mask_ratio_other_than_the_configs_flips_the_linear_rows(tmp_path: Path) -> None:
    """The config says 0.75; a broken pipeline trains at 0.25. Scored against the config's
    exact optimum, the trainer row's loss and the reach row fail where the honest run passes."""
    cov = gaussian_world(STATIONARY).covariance
    said = MaskConfig(ratio=0.75)
    law = mask_law(said, 16, 2)
    opt = linear_optimum(cov, law, CODE_DIM)
    rows = {}
    for name, trained_at in (("honest", said), ("broken", MaskConfig(ratio=0.25))):
        job = LinearJob(name, STATIONARY, trained_at, 2, CODE_DIM, 400, 256, 1e-2)
        w = train_linear(job, tmp_path)
        angle = code_angle(np.linalg.svd(w)[2][:CODE_DIM], opt.encoder, moments(cov, law).second)
        cond = {"patch 2, ratio 0.75": linear_loss(w, cov, law)}
        rows[name] = trainer_row(cond, {"patch 2, ratio 0.75": opt.loss}, LOSS_TOLERANCE,
                                 {"patch 2, ratio 0.75": angle}, {"patch 2, ratio 0.75": 0.66},
                                 ANGLE_TOLERANCE, MIN_EIGENGAP)  # fmt: skip
    assert rows["honest"].passed
    assert not rows["broken"].passed


@pytest.mark.slow
def test_a_code_that_keeps_e_r_flips_the_kong_row() -> None:
    """Where region units leave e_r unshared, the optimum keeps none; a map that copies the
    visible region's e_r into a removed region does, and the row fails."""
    world, k = KONG_WORLDS["order-holds"]
    gw = gaussian_world(world)
    expected = exact_shares(world, KONG_PATCH, KONG_RATIO, k)
    assert expected[REGION][REGION_NOISE] < 1e-3
    laws = unit_laws(world, KONG_PATCH, KONG_RATIO)
    load = gw.loadings[REGION_NOISE]  # (D, 4 regions, Er)
    read = np.linalg.pinv(load.reshape(load.shape[0], -1))  # pixels -> every e_r
    write = np.roll(load, 1, axis=1).reshape(load.shape[0], -1)  # into the next region
    treated = {}
    for unit in expected:
        w = linear_optimum(gw.covariance, laws[unit], k).weights
        if unit == REGION:
            w = w + write @ read  # a code keeping e_r: share ~0.14 where the optimum has 0
        treated[unit] = {lv: float(v.sum()) for lv, v in latent_shares(w, gw, laws[unit]).items()}
    honest = kong_row("order-holds", expected, expected, SHARE_FRACTION)
    broken = kong_row("order-holds", treated, expected, SHARE_FRACTION)
    assert honest.passed and not broken.passed
    assert any("region" in c.condition for c in broken.failed)


@pytest.mark.slow
def test_the_kong_worlds_hold_and_reverse_as_declared() -> None:
    holds = kong_point(*_world_args("order-holds"))
    reverses = kong_point(*_world_args("order-reverses"))
    assert holds.holds and holds.effect > 0.04
    assert not reverses.holds and reverses.effect < 0


def _world_args(name: str) -> tuple:
    world, k = KONG_WORLDS[name]
    return world, KONG_PATCH, KONG_RATIO, k


@pytest.mark.slow
def test_quick_calibration_writes_its_rows_and_figures(tmp_path: Path) -> None:
    result = run_calibration(tmp_path, quick=True, workers=1, with_map=False)
    names = [r.name for r in result.rows]
    assert names[:3] == ["trainer-finds-optimum", "bisulco-reach-full-rank", "bisulco-reach-k"]
    assert names[-1] == "vit-reaches-bound" and any(n.startswith("kong") for n in names)
    saved = json.loads((tmp_path / "calibration.json").read_text())
    assert [r["name"] for r in saved["rows"]] == names
    assert all(Path(p).is_file() for p in result.figures.values())
    for row in result.rows:
        for c in row.checks:
            assert np.isfinite([c.treated, c.expected, c.tolerance]).all()
