import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same global RNG state."""
    np.random.seed(0)  # noqa: NPY002 - code under test may use the legacy RNG
    torch.manual_seed(0)
