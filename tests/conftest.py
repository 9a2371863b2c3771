import os
import tempfile

import pytest
import torch

# Tests always run at the smallest profile unless a test chooses otherwise.
os.environ.setdefault("MMCL_PROFILE", "smoke")
# Caches (rendered scenes, trained encoders) go to a fresh folder: tests never read a stale file
# from an earlier session nor leave files in the user's cache.
os.environ["MMCL_CACHE_DIR"] = tempfile.mkdtemp(prefix="mmcl-test-cache-")
torch.set_num_threads(max(1, min(2, torch.get_num_threads())))


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(0)
