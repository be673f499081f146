"""Suite-wide test settings. Area fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os

import torch

# Under pytest-xdist two workers share the two cores: one intra-op thread each avoids oversubscription.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)
