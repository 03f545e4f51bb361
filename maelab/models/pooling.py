"""One vector per image from the encoder's tokens: the cls token or the mean patch token.

It sits beside the model because the U-MAE objective pools during training and every evaluation
(frozen features, collapse views) pools the same way; one function keeps them in agreement.
"""

from __future__ import annotations

from typing import Literal

import torch

Pool = Literal["cls", "mean"]
# Every evaluation pools this way unless told otherwise (`maelab probe`, sweeps, collapse): on the
# tuning sets of docs/small_data.md mean-pooled patch tokens probed at least as well as cls.
DEFAULT_POOL: Pool = "mean"


def pool_tokens(tokens: torch.Tensor, pool: Pool) -> torch.Tensor:
    """(N, 1 + L, D) encoder tokens -> (N, D): the cls token or the mean of the patch tokens.

    With a masked input, L is the number of visible patches.
    """
    if pool == "cls":
        return tokens[:, 0]
    if pool == "mean":
        return tokens[:, 1:].mean(dim=1)
    raise ValueError(f"unknown pooling '{pool}' (valid: cls, mean)")
