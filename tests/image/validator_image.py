"""The validators image (images/validator/Dockerfile), built with podman from the pod lab's local Debian
bookworm base (tests/podlab/images.py: debootstrap + podman import; Python 3.11 from Debian), since no
registry is reachable here. The default BASE of the Dockerfile (a python slim image pinned by digest) is
what a publishing build uses.

    from tests.image.validator_image import ensure_validator_image
    ref = ensure_validator_image()     # localhost/podlab/vmq-validators:<input hash>

Cached by the hash of every input (the base image, the Dockerfile, the context script, pyproject.toml, the
lock and the validators package): a second run builds nothing.

    python -m tests.image.validator_image     # build (or reuse) and print the reference
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from tests.podlab.images import CACHE, _cached, _hash, _locked, _tree_hash, ensure_base
from tests.podlab.podman import ROOT, podman

IMAGE_DIR = ROOT / "images" / "validator"
REPO = "localhost/podlab/vmq-validators"


def _inputs() -> list[Path]:
    files = [IMAGE_DIR / "Dockerfile", IMAGE_DIR / "context.py", ROOT / "pyproject.toml",
             ROOT / "requirements" / "lock.txt"]
    files += [p for p in (ROOT / "validators").rglob("*") if p.is_file() and "__pycache__" not in p.parts
              and p.suffix != ".pyc"]
    return files


def ensure_validator_image() -> str:
    base = ensure_base()
    key = _hash(base.encode(), *_tree_hash(_inputs(), ROOT))
    ref = f"{REPO}:{key[:12]}"
    stamp = CACHE / "vmq-validators.stamp"
    with _locked("vmq-validators"):
        if _cached(stamp, key, ref):
            return ref
        import subprocess
        import sys

        ctx = Path(tempfile.mkdtemp(prefix="vmq-validators-ctx-", dir="/var/tmp"))
        try:
            proc = subprocess.run([sys.executable, str(IMAGE_DIR / "context.py"), str(ctx / "c")],
                                  capture_output=True, text=True, timeout=600)
            if proc.returncode != 0:
                raise RuntimeError(f"images/validator/context.py failed: {proc.stderr[-2000:]}")
            podman("build", "--pull=never", "--build-arg", f"BASE={base}", "--label",
                   f"io.vmq-validators.inputs={key[:16]}", "-t", ref, str(ctx / "c"), timeout=900)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
        stamp.write_text(key)
        return ref


if __name__ == "__main__":
    print(ensure_validator_image())
