"""The names of the numbers in a run's `results.json` (`maelab.run_records`): written by the
evaluation and the study's readouts (`maelab.experiments.evaluate`,
`maelab.experiments.study_readout`, `maelab.probes.selectivity`), read by the study declarations
(`maelab.experiments.studies`) and the report. Every name is built here, once.

    linear_top1, knn_top1, effective_rank, ...  the trained encoder (`evaluate_model`)
    random.<metric>                             the same seed's untrained network, same code
    r2.<level>                                  identifiability ridge R^2 of a latent level
    <probe>.<view>.<source>.<readout>           selectivity: probe sel (linear ridge), selk
                                                (Nystroem-RBF), selp (full view on its top-k
                                                principal directions); view full / masked;
                                                source encoder / random / pixels; readout
                                                z_g / s_g / e_r / e_c / control
    shared.<level>                              share of a level's nodes the mask leaves shared
    curve.effective_rank.<source>               effective rank of the held-out pooled features
"""

from __future__ import annotations

# ---------------------------------------------------------------- one encoder (evaluate_model)
LINEAR_TOP1 = "linear_top1"
LINEAR_TRAIN_TOP1 = "linear_train_top1"
KNN_TOP1 = "knn_top1"
EFFECTIVE_RANK = "effective_rank"
RANKME = "rankme"
ALIGNMENT = "alignment"
ALIGNMENT_NORM = "alignment_norm"
UNIFORMITY = "uniformity"
DIM = "dim"
FINAL_LOSS = "final_loss"

# ---------------------------------------------------------------- sources and views
ENCODER, RANDOM, PIXELS = "encoder", "random", "pixels"
FULL, MASKED = "full", "masked"
LINEAR_PROBE, KERNEL_PROBE, PRINCIPAL_PROBE = "sel", "selk", "selp"
Z_G, S_G, E_R, E_C, CONTROL = "z_g", "s_g", "e_r", "e_c", "control"  # selectivity readouts
SELECTIVITY_READOUTS = (Z_G, S_G, E_R, E_C, CONTROL)  # maelab.probes.selectivity reads each
S_G_TOPK = "s_g_topk"  # a learning-curve row's s_g on the top-k principal directions
# the levels whose shared share the mask decides (maelab.theory.shared_latents)
GLOBAL, REGION_NOISE, CELL_NOISE = "global", "region_noise", "cell_noise"


def of_random(metric: str) -> str:
    """The same metric of the same seed's untrained network: ``random.<metric>``."""
    return f"{RANDOM}.{metric}"


def of_pixels(metric: str) -> str:
    """The same metric of the raw-pixel baseline (read from the sweep's baselines)."""
    return f"{PIXELS}.{metric}"


def identifiability(level: str) -> str:
    """Held-out ridge R^2 of a latent level: ``r2.<level>``."""
    return f"r2.{level}"


def selectivity(
    readout: str, source: str = ENCODER, view: str = FULL, probe: str = LINEAR_PROBE
) -> str:
    """A selectivity readout: ``<probe>.<view>.<source>.<readout>``."""
    return f"{probe}.{view}.{source}.{readout}"


def shared(level: str) -> str:
    """The share of a level's nodes that the training mask leaves shared: ``shared.<level>``."""
    return f"shared.{level}"


def held_rank(source: str) -> str:
    """Effective rank of the held-out images' pooled features of a source."""
    return f"curve.{EFFECTIVE_RANK}.{source}"
