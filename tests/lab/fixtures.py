"""Pytest helpers for lab tests.

    from tests.lab.fixtures import require_lab
    @pytest.fixture(scope="module")
    def lab():
        require_lab()
        with Lab(n=3) as lab:
            yield lab

`require_lab()` fails loudly when CI=true and the lab cannot be built; locally it skips with the reason.
"""

from __future__ import annotations

import os

import pytest

from . import can_build


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_lab() -> None:
    ok, why = can_build()
    if ok:
        return
    if in_ci():
        pytest.fail(f"CI=true but the lab cannot be built: {why}", pytrace=False)
    pytest.skip(f"lab not available: {why}")
