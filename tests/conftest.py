import os

import pytest
import torch

# Tests always run at the smallest profile unless a test chooses otherwise.
os.environ.setdefault("MMCL_PROFILE", "smoke")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
