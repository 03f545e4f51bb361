"""Fixtures of the reliability tests (helpers live in reliability_helpers.py)."""

import pytest
import torch


@pytest.fixture(autouse=True)
def keep_threads():
    """Restore torch's thread count after an in-process run that sets train.threads."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
