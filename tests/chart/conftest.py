"""Fixtures for the chart tests: helm binaries and renders cached once per (helm, profile, extra values)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Iterable

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vernemq"
CI = CHART / "ci"
TOOLS = ROOT / ".tools"
RELEASE = "mqtt"
NAMESPACE = "vernemq"
FULLNAME = f"{RELEASE}-vernemq"

PROFILES = sorted(p.name.removesuffix("-values.yaml") for p in CI.glob("*-values.yaml"))


def _tool(name: str, *fallbacks: str) -> str:
    for cand in (TOOLS / "bin" / name, TOOLS / "venv" / "bin" / name, *fallbacks):
        if Path(cand).exists():
            return str(cand)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"{name} is not installed (run scripts/bootstrap.sh)")
    return found


HELMS = {"helm4": "helm", "helm3": "helm3"}


class HelmError(Exception):
    pass


class Renderer:
    """`helm template` with a cache: every (helm, profile, --set...) combination renders once per session."""

    def __init__(self):
        self._cache: dict[tuple, str] = {}
        self.bins = {k: _tool(v) for k, v in HELMS.items()}

    def text(self, profile: str | None = "00-default", *, helm: str = "helm4", sets: Iterable[str] = (),
             values: Iterable[Path] = (), extra: Iterable[str] = (), cache: bool = True) -> str:
        key = (helm, profile, tuple(sets), tuple(str(v) for v in values), tuple(extra))
        if key not in self._cache or not cache:
            cmd = [self.bins[helm], "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
            if profile:
                cmd += ["-f", str(CI / f"{profile}-values.yaml")]
            for v in values:
                cmd += ["-f", str(v)]
            for s in sets:
                cmd += ["--set", s]
            cmd += list(extra)
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
            if proc.returncode != 0:
                raise HelmError(proc.stderr)
            self._cache[key] = proc.stdout
        return self._cache[key]

    def docs(self, profile: str | None = "00-default", **kw) -> list[dict]:
        return [d for d in yaml.safe_load_all(self.text(profile, **kw)) if d]


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool (Debian package prometheus), for the PrometheusRule unit tests."""
    tool = shutil.which("promtool")
    if not tool:
        pytest.skip("promtool is not installed (Debian package prometheus, scripts/bootstrap.sh)")
    return tool


@pytest.fixture(scope="session")
def renderer() -> Renderer:
    return Renderer()


@pytest.fixture(scope="session")
def default_docs(renderer) -> list[dict]:
    return renderer.docs("00-default")


def find(docs: list[dict], kind: str, name: str | None = None) -> dict:
    hits = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(hits) == 1, f"expected one {kind} {name or ''}, found {[d['metadata']['name'] for d in hits]}"
    return hits[0]


def find_all(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def container(sts: dict, name: str = "vernemq") -> dict:
    return next(c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def env_of(c: dict) -> dict:
    return {e["name"]: e for e in c.get("env", [])}


def helm_tool(name: str) -> str:
    return _tool(name)
