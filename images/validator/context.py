#!/usr/bin/env python3
"""Make the build context of images/validator/Dockerfile: the Dockerfile and wheels/.

    python images/validator/context.py OUT_DIR

wheels/ holds the vmq-validators wheel built from this checkout, its runtime dependencies at the versions
requirements/lock.txt pins (binary wheels for CPython 3.11 on manylinux x86_64), and pip's wheel for the
build stage. The image build then installs offline (--no-index). Prints the context directory.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
#: the project's runtime dependencies (pyproject.toml [project] dependencies), resolved with the lock
RUNTIME = ("kubernetes", "pyyaml", "jsonschema", "paho-mqtt", "prometheus-client")


def pip(*args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"pip {args[0]} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")


def make(out: Path) -> Path:
    import pip as _pip

    wheels = out / "wheels"
    if out.exists():
        shutil.rmtree(out)
    wheels.mkdir(parents=True)
    shutil.copy2(HERE / "Dockerfile", out / "Dockerfile")
    with tempfile.TemporaryDirectory(prefix="vmq-src-") as tmp:
        # build from a clean copy of the package sources, so nothing in the checkout (build/, caches) leaks in
        src = Path(tmp) / "src"
        src.mkdir()
        shutil.copy2(ROOT / "pyproject.toml", src)
        shutil.copytree(ROOT / "validators", src / "validators",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        pip("wheel", "--no-deps", "--wheel-dir", str(wheels), str(src))
    pip("download", "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp",
        "--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_17_x86_64", "--platform",
        "manylinux_2_28_x86_64", "--platform", "any", "-c", str(ROOT / "requirements" / "lock.txt"),
        "-d", str(wheels), *RUNTIME, f"pip=={_pip.__version__}")
    return out


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    print(make(Path(sys.argv[1]).resolve()))
