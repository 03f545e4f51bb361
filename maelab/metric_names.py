"""The names of the numbers in a run's `results.json` (`maelab.run_records`): written by the
evaluation and the study's readouts (`maelab.experiments.evaluate`,
`maelab.experiments.study_readout`, `maelab.probes.selectivity`), read by the study declarations
(`maelab.experiments.studies`) and the report. Every name is built here, once.

    linear_top1, knn_top1, effective_rank, ...  the trained encoder (`evaluate_model`)
    random.<metric>                             the same seed's untrained network, same code
    random100.<metric>                          seed s + 100's untrained network (the placebo of
                                                rows that are already trained - untrained)
    r2.<level>                                  identifiability ridge R^2 of a latent level
    <probe>.<view>.<source>.<readout>           selectivity: probe sel (linear ridge), selk
                                                (Nystroem-RBF), selp (full view on its top-k
                                                principal directions); view full / masked;
                                                source encoder / random / pixels; readout
                                                z_g / s_g / e_r / e_c / control
                                                source pca: the whole image's top-k principal
                                                components of pixels (a fair pixel baseline)
    pc.<selectivity key>                        positive control: R^2 of the run's encoder on
                                                images whose latent is scrambled for a share of
                                                them (a drop of 1.5 x margin by construction),
                                                minus the readout itself
    ref.latent_rank                             effective rank of the world's true latents
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
OTHER_RANDOM = "random100"  # the untrained network of seed s + 100
OTHER_SEED = 100  # its seed offset
PCA = "pca"  # whole-image principal components of the pixels, read like an encoder's feature
LATENT_RANK = "ref.latent_rank"
FULL, MASKED = "full", "masked"
CODE = "code"  # a view: the model's k-wide code of the visible part under the training mask
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


def of_other_random(metric: str) -> str:
    """The same metric of seed s + 100's untrained network: ``random100.<metric>``."""
    return f"{OTHER_RANDOM}.{metric}"


def positive_control(key: str) -> str:
    """The positive control of a selectivity readout: ``pc.<key>``."""
    return f"pc.{key}"


def untrained(key: str) -> str:
    """The key that reads the same number from the untrained network the trained one started
    from: an encoder's selectivity readout -> the random source's; a plain metric ->
    ``random.<metric>``; the untrained network's own -> seed s + 100's. Keys that describe no
    network (``shared.``, ``ref.``, ``pixels.``) are their own."""
    if key.startswith(("shared.", "ref.", f"{PIXELS}.")):
        return key
    parts = key.split(".")
    if len(parts) == 4 and parts[0] in (LINEAR_PROBE, KERNEL_PROBE, PRINCIPAL_PROBE):
        source = {ENCODER: RANDOM, RANDOM: OTHER_RANDOM}.get(parts[2])
        if source is None:
            raise ValueError(f"{key}: no untrained twin of source {parts[2]!r}")
        return ".".join([parts[0], parts[1], source, parts[3]])
    if key.startswith(f"{RANDOM}."):
        return of_other_random(key.removeprefix(f"{RANDOM}."))
    if key.startswith(f"{OTHER_RANDOM}."):
        raise ValueError(f"{key}: already the placebo's network")
    return of_random(key)
