"""Pod lab fixtures. Without podman/root the lab's tests skip with one line saying how to enable them;
with CI=true they fail instead, so CI never passes by skipping them."""

from __future__ import annotations

import os

import pytest

from tests.podlab.podman import unavailable_reason


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


@pytest.fixture(autouse=True, scope="session")
def podlab_available():
    reason = unavailable_reason()
    if reason is not None:
        if _in_ci():
            pytest.fail(f"CI=true but {reason}", pytrace=False)
        pytest.skip(reason)
