"""Service test fixtures: the real tiny model (loaded once per test process), small scenes and a throwaway
PostgreSQL server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.app.postgres_server import PostgresServer, temporary_postgres, unavailable_reason


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL cluster per test process (each test makes its own database); skips with the reason
    when the server binaries or the driver are missing."""
    reason = unavailable_reason()
    if reason:
        pytest.skip(f"PostgreSQL tests skipped: {reason}")
    with temporary_postgres() as server:
        yield server


@pytest.fixture(scope="session")
def tiny_reconstructor() -> Any:
    """``models.Reconstructor("tiny")`` on the CPU: the real network (trained weights when present,
    else seeded random ones)."""
    from models import Reconstructor

    return Reconstructor("tiny", device="cpu")
