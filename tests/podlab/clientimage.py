"""The stand-in for the helm-test pod's `eclipse-mosquitto` image: the lab's Debian base plus the
Mosquitto command-line clients (`mosquitto_pub`, `mosquitto_sub`) and their library, copied from this
machine's Debian packages (mosquitto-clients, libmosquitto1: the same bookworm release as the base).

Only the two clients matter to the chart's test pod (it runs `sh -c` with them, as a non-root user, on a
read-only root); the broker itself is not in it. Cached by input hash like the other lab images.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path

from tests.podlab.images import CACHE, ensure_base
from tests.podlab.podman import podman

REF = "localhost/podlab/mqtt-clients:latest"
FILES = ("/usr/bin/mosquitto_pub", "/usr/bin/mosquitto_sub")


def _library() -> Path:
    for d in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/lib/x86_64-linux-gnu"):
        p = Path(d) / "libmosquitto.so.1"
        if p.exists():
            return p.resolve()
    raise RuntimeError("libmosquitto.so.1 not found: install the Debian package mosquitto-clients")


def ensure_mqtt_clients() -> str:
    base = ensure_base()
    lib = _library()
    files = [Path(f) for f in FILES] + [lib]
    for f in files:
        if not f.exists():
            raise RuntimeError(f"{f} not found: install the Debian package mosquitto-clients")
    h = hashlib.sha256(base.encode())
    for f in files:
        h.update(f.read_bytes())
    key = h.hexdigest()
    stamp = CACHE / "mqtt-clients.stamp"
    if stamp.exists() and stamp.read_text() == key and podman("image", "exists", REF, check=False).returncode == 0:
        return REF
    ctx = Path(tempfile.mkdtemp(prefix="podlab-mqttc-", dir="/var/tmp"))
    try:
        for f in files:
            shutil.copy2(f, ctx / f.name)
        (ctx / "Containerfile").write_text(
            f"FROM {base}\n"
            "COPY mosquitto_pub mosquitto_sub /usr/bin/\n"
            f"COPY {lib.name} /usr/lib/libmosquitto.so.1\n"
            "RUN ldconfig && mosquitto_pub --help >/dev/null 2>&1; mosquitto_sub --help | head -1\n"
            "USER 1883\n")
        podman("build", "--pull=never", "-t", REF, str(ctx), timeout=600)
    finally:
        shutil.rmtree(ctx, ignore_errors=True)
    CACHE.mkdir(parents=True, exist_ok=True)
    stamp.write_text(key)
    return REF
