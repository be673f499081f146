"""Service test fixtures: the real tiny model (loaded once per test process) and small scenes."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_reconstructor() -> Any:
    """``models.Reconstructor("tiny")`` on the CPU: the real network (trained weights when present,
    else seeded random ones)."""
    from models import Reconstructor

    return Reconstructor("tiny", device="cpu")
