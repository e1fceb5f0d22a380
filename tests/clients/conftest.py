"""Fixtures of the client-state tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def vmq_fixtures_bytes(vmq_fixtures) -> list[bytes]:
    """Every captured session/show answer, as bytes (seeds for mutation fuzzing)."""
    return [f.read_bytes() for f in sorted(vmq_fixtures.glob("*/node*_api_v1_session_show*.json"))]
