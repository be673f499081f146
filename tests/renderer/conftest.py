"""Fixtures for the renderer tests."""

from __future__ import annotations

import pytest

from tests.renderer.scenes import Scene, make_scene


@pytest.fixture
def scene() -> Scene:
    return make_scene()
