"""Reference feature sources that every probe reports next to the pretrained encoder.

* `random`: the same architecture at initialisation, built with the seed pretraining used, so
  it is exactly the network pretraining started from; what pretraining adds is the difference.
* `pixels`: the flattened normalised image, what a linear model gets without any encoder.
"""

from __future__ import annotations

from maelab.models.mae import MAEArch, MaskedAutoencoder

BASELINES = ("random", "pixels")


def random_encoder(arch: MAEArch, seed: int) -> MaskedAutoencoder:
    """A freshly initialised MAE as pretraining builds it (`init_seed=train.seed`): one random
    encoder per training seed, so trained-minus-random differences pair over seeds.

    The global RNG is left alone, so asking for a baseline changes nothing else.
    """
    return MaskedAutoencoder(arch, init_seed=seed).eval()
