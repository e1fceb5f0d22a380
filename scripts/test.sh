#!/usr/bin/env bash
# Every test and linter. Called by `make test` (after bootstrap) and so by .ci/run.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export PATH="$ROOT/.tools/venv/bin:$ROOT/.tools/bin:$PATH"
export ANSIBLE_CONFIG="$ROOT/ansible.cfg"
export PYTHONDONTWRITEBYTECODE=1

status=0
run() { # NAME CMD...
  local name="$1"; shift
  printf '\n==> %s\n' "$name"
  if "$@"; then printf '<== %s: ok\n' "$name"; else printf '<== %s: FAILED\n' "$name"; status=1; fi
}

run yamllint yamllint --strict .
if [[ -f site.yml ]]; then
  run ansible-lint ansible-lint --offline --profile production -q
fi
# pytest runs the chart, validator, lab, ansible and molecule tests; its closing line is the verdict.
run pytest python -m pytest -q -p no:cacheprovider "$@"
exit $status
