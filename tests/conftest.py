"""Shared pytest configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
VMQ_FIXTURES = FIXTURES / "vernemq" / "2.1.2"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def pytest_addoption(parser):
    parser.addoption("--kube-context", default=None, help="run the e2e suite against this kube context")
    parser.addoption("--kubeconfig", default=None, help="kubeconfig for the e2e suite")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def vmq_fixtures() -> Path:
    return VMQ_FIXTURES
