"""Fixtures of the reliability tests; helpers live in reliability_helpers.py next to this file."""

import sys
from pathlib import Path

import pytest
import torch

# the tests import their helpers by module name, whatever pytest's import mode
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def keep_threads():
    """Restore torch's thread count after an in-process run that sets train.threads."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)
