"""The pod lab's images: a Debian bookworm base (debootstrap + podman import) and a VerneMQ-shaped image on it.

    from tests.podlab.images import ensure_base, ensure_vernemq
    ref = ensure_vernemq()                      # localhost/podlab/vernemq:2.1.2 (the official image's behaviour)
    src = ensure_vernemq(flavor="source")       # localhost/podlab/vernemq-source:2.1.2 (a build from source)
    up = ensure_vernemq(tag="2.1.2-r1")         # the same image under a second tag, for upgrade scenarios

Both are cached by the hash of their inputs: a stamp under .tools/podlab/ holds the hash, and `podman image
exists` must agree, so a second run builds nothing. Builds take a file lock, so parallel test runs (or two
workers) never build the same image twice at once. No registry is used: the base comes from Debian's mirror
as apt on this machine is configured, everything else from tests/podlab/image/, tests/standin/ and the lab's
node (tests/lab/vmqlabnode.erl, whose HTTP part the image's node uses): build_context() lists them all.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path

from tests.podlab.podman import ROOT, podman

IMAGE_DIR = Path(__file__).resolve().parent / "image"
STANDIN_DIR = ROOT / "tests" / "standin"
STANDIN_FILES = ("__init__.py", "mqtt.py", "node.py")
LAB_DIR = ROOT / "tests" / "lab"
LAB_FILES = ("vmqlabnode.erl",)  # its HTTP part serves the pod node too (one source for both labs' nodes)
CACHE = ROOT / ".tools" / "podlab"

SUITE = "bookworm"
# What the official image installs that matters to the chart (bash procps openssl iproute2 curl jq net-tools),
# plus what the lab's own parts need: a real Erlang/OTP (the node and vmq-admin's hidden node), Mosquitto
# (the MQTT broker behind the stand-in) and python3 (the stand-in).
BASE_PACKAGES = ("bash", "procps", "openssl", "iproute2", "curl", "jq", "net-tools", "ca-certificates",
                 "erlang-base", "mosquitto", "python3")
BASE_REPO = "localhost/podlab/bookworm-base"
PATH_ENV = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FLAVORS = {"official": "localhost/podlab/vernemq", "source": "localhost/podlab/vernemq-source"}
DEFAULT_TAG = "2.1.2"
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


class ImageError(RuntimeError):
    pass


def _hash(*parts: bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(len(p).to_bytes(8, "big"))
        h.update(p)
    return h.hexdigest()


@contextmanager
def _locked(name: str):
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached(stamp: Path, key: str, ref: str) -> bool:
    if not stamp.is_file() or stamp.read_text().strip() != key:
        return False
    return podman("image", "exists", ref, check=False).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt on this machine uses (deb822 .sources or one-line sources.list); env
    PODLAB_DEBIAN_MIRROR overrides it."""
    if os.environ.get("PODLAB_DEBIAN_MIRROR"):
        return os.environ["PODLAB_DEBIAN_MIRROR"]
    apt = Path("/etc/apt")
    for f in sorted(apt.glob("sources.list.d/*.sources")):
        for stanza in f.read_text().split("\n\n"):
            fields = {}
            for line in stanza.splitlines():
                if ":" in line and not line.lstrip().startswith("#"):
                    k, _, v = line.partition(":")
                    fields[k.strip().lower()] = v.strip()
            if SUITE in fields.get("suites", "").split() and "main" in fields.get("components", "").split():
                return fields["uris"].split()[0]
    for f in [apt / "sources.list", *sorted(apt.glob("sources.list.d/*.list"))]:
        if f.is_file():
            for line in f.read_text().splitlines():
                m = re.match(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", line)
                if m:
                    return m.group(1)
    raise ImageError(f"no apt source for Debian {SUITE} found under /etc/apt; set PODLAB_DEBIAN_MIRROR")


def ensure_base() -> str:
    """The Debian bookworm base image (minbase + BASE_PACKAGES), built once per package list."""
    key = _hash(SUITE.encode(), " ".join(BASE_PACKAGES).encode(), PATH_ENV.encode(), b"base-v1")
    ref = f"{BASE_REPO}:{key[:12]}"
    stamp = CACHE / "base.stamp"
    with _locked("base"):
        if _cached(stamp, key, ref):
            return ref
        debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
        tmp = Path(tempfile.mkdtemp(prefix="podlab-base-", dir="/var/tmp"))
        try:
            rootfs = tmp / "root"
            proc = subprocess.run(
                [debootstrap, "--variant=minbase", "--include=" + ",".join(BASE_PACKAGES), SUITE, str(rootfs),
                 debian_mirror()], capture_output=True, text=True)
            if proc.returncode != 0:
                raise ImageError(f"debootstrap failed ({proc.returncode}): {(proc.stdout + proc.stderr)[-1500:]}")
            for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                         "usr/share/locale", "usr/share/info"):
                shutil.rmtree(rootfs / junk, ignore_errors=True)
            (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
            (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
            tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
            imp = subprocess.run(
                ["podman", "import", "--change", f"ENV PATH={PATH_ENV}", "--change", 'CMD ["/bin/bash"]',
                 "-", ref], stdin=tar.stdout, capture_output=True, text=True,
                env={**os.environ, "CONTAINERS_CONF": str(Path(__file__).resolve().parent / "containers.conf")})
            tar.stdout.close()
            if tar.wait() != 0 or imp.returncode != 0:
                raise ImageError(f"podman import failed: {imp.stderr[-1500:]}")
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        stamp.write_text(key)
        return ref


def image_ref(flavor: str = "official", tag: str = DEFAULT_TAG) -> str:
    if flavor not in FLAVORS:
        raise ValueError(f"flavor must be one of {sorted(FLAVORS)}, not {flavor!r}")
    if not _TAG_RE.match(tag):
        raise ValueError(f"tag {tag!r} is not a valid image tag")
    return f"{FLAVORS[flavor]}:{tag}"


def _inputs() -> list[Path]:
    return [p for p in IMAGE_DIR.rglob("*") if p.is_file() and "__pycache__" not in p.parts]


def build_context() -> dict[str, Path]:
    """Every file of the image's build context: its path in the context -> the file in the repository. The
    build copies exactly these and the cache key hashes exactly these, so no input changes without a rebuild."""
    files = {f"image/{p.relative_to(IMAGE_DIR).as_posix()}": p for p in _inputs()}
    files.update({f"standin/{f}": STANDIN_DIR / f for f in STANDIN_FILES})
    files.update({f"lab/{f}": LAB_DIR / f for f in LAB_FILES})
    return files


def _file_parts(rel: str, path: Path) -> list[bytes]:
    """What a cache key takes of one input file: its name in the context, its bytes, its executable bit."""
    return [rel.encode(), path.read_bytes(), b"x" if os.access(path, os.X_OK) else b"-"]


def _tree_hash(files: list[Path], base: Path) -> list[bytes]:
    """The key parts of ``files``, named relative to ``base`` (the validator image's context)."""
    return [part for f in sorted(files) for part in _file_parts(str(f.relative_to(base)), f)]


def context_key(base: str, flavor: str, tag: str, files: dict[str, Path]) -> str:
    parts = [base.encode(), flavor.encode(), tag.encode()]
    for rel, path in sorted(files.items()):
        parts += _file_parts(rel, path)
    return _hash(*parts)


def ensure_vernemq(flavor: str = "official", tag: str = DEFAULT_TAG) -> str:
    """The VerneMQ-shaped image of `flavor` under `tag` (tags other than the default differ only by a label)."""
    ref = image_ref(flavor, tag)
    base = ensure_base()
    files = build_context()
    key = context_key(base, flavor, tag, files)
    stamp = CACHE / f"vernemq-{flavor}-{tag}.stamp"
    with _locked("vernemq"):
        if _cached(stamp, key, ref):
            return ref
        ctx = Path(tempfile.mkdtemp(prefix="podlab-ctx-", dir="/var/tmp"))
        try:
            for rel, src in files.items():
                (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, ctx / rel)
            podman("build", "--pull=never", "--layers", "--build-arg", f"BASE={base}", "--build-arg", f"FLAVOR={flavor}",
                   "--label", f"io.podlab.tag={tag}", "--label", f"io.podlab.flavor={flavor}",
                   "--label", f"io.podlab.inputs={key[:16]}",
                   "-f", str(ctx / "image" / "Containerfile"), "-t", ref, str(ctx), timeout=900)
        finally:
            shutil.rmtree(ctx, ignore_errors=True)
        stamp.write_text(key)
        return ref


if __name__ == "__main__":  # python -m tests.podlab.images [flavor [tag]]
    import sys

    print(ensure_vernemq(*sys.argv[1:3]))
