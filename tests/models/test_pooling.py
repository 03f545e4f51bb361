"""Token pooling: the cls token or the mean patch token, by hand."""

import pytest
import torch

from maelab.models.pooling import pool_tokens


def test_pool_tokens_by_hand():
    tokens = torch.arange(2 * 3 * 2, dtype=torch.float32).view(2, 3, 2)  # (N, 1 + L, D)
    torch.testing.assert_close(pool_tokens(tokens, "cls"), torch.tensor([[0.0, 1.0], [6.0, 7.0]]))
    # mean of tokens 1 and 2: [(2 + 4) / 2, (3 + 5) / 2] and [(8 + 10) / 2, (9 + 11) / 2]
    torch.testing.assert_close(pool_tokens(tokens, "mean"), torch.tensor([[3.0, 4.0], [9.0, 10.0]]))


def test_unknown_pooling_is_refused():
    with pytest.raises(ValueError, match="unknown pooling"):
        pool_tokens(torch.zeros(1, 2, 3), "max")  # type: ignore[arg-type]
