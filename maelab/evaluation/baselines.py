"""Reference feature sources that every probe reports next to the pretrained encoder.

* `random`: the same architecture at initialisation, built with the seed pretraining used, so
  it is exactly the network pretraining started from; what pretraining adds is the difference.
* `pixels`: the flattened normalised image, what a linear model gets without any encoder.
"""

from __future__ import annotations

import torch

from maelab.models.mae import MAEArch, MaskedAutoencoder

BASELINES = ("random", "pixels")


def random_encoder(arch: MAEArch, seed: int) -> MaskedAutoencoder:
    """A freshly initialised MAE as pretraining builds it (`torch.manual_seed(train.seed)` first).

    The global RNG state is restored afterwards, so asking for a baseline changes nothing else.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MaskedAutoencoder(arch)
    return model.eval()
