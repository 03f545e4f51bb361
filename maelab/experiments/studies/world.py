"""Kong et al. and Zhang et al. on the study world (`maelab demo`): mask units patch / cell /
region / straddled region at ratio 0.75 and U-MAE; `--full` adds the mask-ratio sweep
(`maelab.experiments.studies.kong_code.WORLD_FULL`, with Kong's k-wide code). docs/theory.md ("The rows") derives each row's prediction."""

from __future__ import annotations

from maelab import metric_names as m
from maelab.config import MASK_RATIO_KEY, MASK_STRATEGY_KEY, MASK_UNIT_KEY, OBJECTIVE_KEY
from maelab.experiments.declaration import (
    ALIGNMENT,
    CONTROL_R2,
    DECREASE,
    INCREASE,
    LOG_RANK,
    NONE,
    ON_TOP1,
    R2,
    TOP1,
    TOP1_GATE,
    Diff,
    Gate,
    LogRatio,
    OwnMinus,
    RowSpec,
    Study,
    Undecided,
    peak_row,
)  # fmt: skip
from maelab.verdicts import INSTRUMENT

KONG, ZHANG, ALL = "Kong", "Zhang", "all"
PATCH, CELL, REGION, STRADDLED, UMAE = "patch", "cell", "region", "straddled", "umae"


def _at(unit: int, strategy: str = "block", objective: str = "mae", ratio: float = 0.75) -> dict:
    return {
        MASK_UNIT_KEY: unit,
        MASK_STRATEGY_KEY: strategy,
        OBJECTIVE_KEY: objective,
        MASK_RATIO_KEY: ratio,
    }


def _selectivity_gate(label: str, readout: str, probe: str = m.LINEAR_PROBE) -> Gate:
    keys = [
        m.selectivity(readout, source, probe=probe) for source in (m.ENCODER, m.RANDOM, m.PIXELS)
    ]
    pca = m.selectivity(readout, m.PCA, probe=m.PRINCIPAL_PROBE) if readout in (m.S_G,) else None
    return Gate(label, *keys, pca=pca)


ON_S_G = m.S_G  # the gate of every world row: s_g on the top-k principal directions
ON_S_G_ALL = "s_g_all"  # s_g on every direction, beside it
GATES = {
    m.Z_G: _selectivity_gate("R^2(z_g)", m.Z_G),
    ON_S_G: _selectivity_gate("R^2(s_g), top-k", m.S_G, m.PRINCIPAL_PROBE),
    ON_S_G_ALL: _selectivity_gate("R^2(s_g)", m.S_G),
    m.E_R: _selectivity_gate("R^2(e_r)", m.E_R),
    m.E_C: _selectivity_gate("R^2(e_c)", m.E_C),
    ON_TOP1: TOP1_GATE,
}
E_R_FULL, E_R_MASKED = m.selectivity(m.E_R), m.selectivity(m.E_R, view=m.MASKED)
E_R_TOPK = m.selectivity(m.E_R, probe=m.PRINCIPAL_PROBE)
E_C_FULL, E_C_TOPK = m.selectivity(m.E_C), m.selectivity(m.E_C, probe=m.PRINCIPAL_PROBE)
SCRAMBLED = ("the {control} encoder on images whose {latent} is redrawn for a share of them "
             "(R^2 lower by 1.5 x margin by construction)")  # fmt: skip


def _r2_row(claim: str, treated: str, control: str, key: str, level: str) -> RowSpec:
    """treated - control of an R^2 readout, its direction derived from the shared share of
    `level`, its positive control the control condition's encoder on scrambled images."""
    latent = key.rsplit(".", 1)[1]
    return RowSpec(KONG, claim, treated, control, Diff(key), R2, shared=level, gates=(ON_S_G,),
                   positive=m.positive_control(key),
                   positive_what=SCRAMBLED.format(control=control, latent=latent))  # fmt: skip


TRAINED_MINUS_UNTRAINED = OwnMinus(m.ALIGNMENT_NORM, m.of_random(m.ALIGNMENT_NORM))
RANK_TRAINED_OVER_UNTRAINED = LogRatio(m.EFFECTIVE_RANK, m.of_random(m.EFFECTIVE_RANK))
ALIGNS = RowSpec(ZHANG, "MAE aligns mask-induced positive pairs (normalised alignment, trained - "
                 "untrained)", PATCH, None, TRAINED_MINUS_UNTRAINED, ALIGNMENT,
                 predicted=INCREASE, gates=(ON_S_G,))  # fmt: skip
COLLAPSES = RowSpec(ZHANG, "MAE collapses dimensions (log effective rank, trained / untrained)",
                    PATCH, None, RANK_TRAINED_OVER_UNTRAINED, LOG_RANK, predicted=DECREASE,
                    gates=(ON_S_G,))  # fmt: skip
COLLAPSES_VS_LATENTS = RowSpec(
    ZHANG, "MAE collapses dimensions (log effective rank, trained / the world's latents: a "
    "reference that is not collapsed)", PATCH, None, LogRatio(m.EFFECTIVE_RANK, m.LATENT_RANK),
    LOG_RANK, predicted=DECREASE, gates=(ON_S_G,))  # fmt: skip
UMAE_PROBE = RowSpec(ZHANG, "U-MAE improves the linear probe over MAE (top-1 points)", UMAE,
                     PATCH, Diff(m.LINEAR_TOP1), TOP1, predicted=INCREASE,
                     gates=(ON_TOP1,))  # fmt: skip
UMAE_RANK = RowSpec(ZHANG, "U-MAE raises effective rank (the regulariser doing what it "
                    "optimises)", UMAE, PATCH, LogRatio(m.EFFECTIVE_RANK), LOG_RANK,
                    predicted=INCREASE, gates=(ON_S_G,), kind=INSTRUMENT)  # fmt: skip

WORLD = Study(
    "study world",
    conditions={PATCH: _at(4), CELL: _at(8), REGION: _at(16),
                STRADDLED: _at(16, "block_shifted"), UMAE: _at(4, objective="umae")},
    rows=(
        _r2_row("region-sized units keep less of a region's own noise (R^2(e_r), full view)",
                REGION, PATCH, E_R_FULL, m.REGION_NOISE),
        _r2_row("region-sized units keep less of a region's own noise (R^2(e_r), training "
                "mask, visible positions)", REGION, PATCH, E_R_MASKED, m.REGION_NOISE),
        _r2_row("straddled region units keep e_r (control: alignment, not size)", STRADDLED,
                REGION, E_R_FULL, m.REGION_NOISE),
        _r2_row("a patch-sized unit keeps the cell's own noise better than a cell-sized one "
                "(R^2(e_c))", PATCH, CELL, E_C_FULL, m.CELL_NOISE),
        _r2_row("region-sized units keep less of a region's own noise (R^2(e_r), top-k "
                "principal directions)", REGION, PATCH, E_R_TOPK, m.REGION_NOISE),
        _r2_row("straddled region units keep e_r (top-k principal directions)", STRADDLED,
                REGION, E_R_TOPK, m.REGION_NOISE),
        _r2_row("a patch-sized unit keeps the cell's own noise better than a cell-sized one "
                "(R^2(e_c), top-k principal directions)", PATCH, CELL, E_C_TOPK, m.CELL_NOISE),
        _r2_row("R^2(z_g) matched between region and patch units (within delta)", REGION, PATCH,
                m.selectivity(m.Z_G), m.GLOBAL),
        ALIGNS,
        COLLAPSES,
        COLLAPSES_VS_LATENTS,
        UMAE_PROBE,
        UMAE_RANK,
        RowSpec(ZHANG, "U-MAE lowers the uniformity loss (what it optimises)", UMAE, PATCH,
                Diff(m.UNIFORMITY), LOG_RANK, predicted=DECREASE, gates=(ON_S_G,),
                kind=INSTRUMENT),
        RowSpec(ALL, "the control latent reads 0 (R^2, trained encoder)", PATCH, None,
                Diff(m.selectivity(m.CONTROL)), CONTROL_R2, predicted=NONE, kind=INSTRUMENT),
    ),
    gates=GATES,
    pilot_gate=ON_S_G,
    undecided=(
        Undecided("Cao", "Q4: the decoder matters for the encoder",
                  "its own sweep: maelab sweep -c cao_q4, then maelab analyze decoder"),
        Undecided("Cao", "Q1, Q3, Q5 (coordinates, stability, global interpolation)",
                  "per checkpoint with their controls: maelab analyze probes --ckpt RUN/..."),
        Undecided("Cao", "Q2: lower rank, easier reconstruction",
                  "on the low-rank family: maelab pretrain -c lowrank, then maelab analyze probes"),
    ),
)  # fmt: skip

RATIO_CONDITIONS = {f"ratio={r}": _at(4, ratio=r) for r in (0.1, 0.5, 0.75, 0.9)}
RATIOS = list(RATIO_CONDITIONS)  # patch unit, MAE, ascending ratio
Z_G_PEAKS = peak_row(KONG, "R^2(z_g) peaks at an intermediate mask ratio", m.selectivity(m.Z_G), R2,
                     RATIOS)  # fmt: skip
PROBE_PEAKS = peak_row(KONG, "the linear probe peaks at an intermediate mask ratio", m.LINEAR_TOP1,
                       TOP1, RATIOS)  # fmt: skip
RATIO_SWEEP = Study(
    "mask-ratio sweep",
    conditions=RATIO_CONDITIONS,
    rows=(Z_G_PEAKS, PROBE_PEAKS),
    gates={},
)

AUTOENCODER = "autoencoder"  # the same encoder trained as a plain autoencoder: ratio 0, loss on all
ALIGNS_BEYOND_AE = RowSpec(
    ZHANG, "masking aligns the two views beyond a plain autoencoder (normalised alignment, MAE - "
    "the same encoder trained at ratio 0 with the loss on every patch, same seeds and steps)",
    PATCH, AUTOENCODER, Diff(m.ALIGNMENT_NORM), ALIGNMENT, predicted=INCREASE, gates=(ON_S_G,))  # fmt: skip
PLAIN_AE = Study(
    "plain autoencoder",
    conditions={AUTOENCODER: {**_at(4, ratio=0.0), "loss.on": "all"}},
    rows=(ALIGNS_BEYOND_AE,),
    gates=GATES,
    pilot_gate=ON_S_G,
)
