"""`make bench`: runs every benchmark module and prints ratios measured in this same run.

Each module ``tests/bench/bench_*.py`` defines ``main(argv) -> list[dict]``; every dict is one
measured comparison: {"name", "ratio", "goal", "unit", "detail"} where ``ratio`` is against a
baseline measured in the same run. Nothing here asserts on time: benchmarks print, tests test.

    python -m tests.bench                 # all
    python -m tests.bench reachability    # modules whose name contains the word
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    want = [a for a in argv if not a.startswith("-")]
    here = Path(__file__).parent
    names = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    names = [n for n in names if not want or any(w in n for w in want)]
    if not names:
        print("no benchmark matched", want, file=sys.stderr)
        return 2
    rows = []
    for name in names:
        mod = importlib.import_module(f"tests.bench.{name}")
        print(f"== {name}", flush=True)
        for row in mod.main([a for a in argv if a.startswith("-")]):
            row = {"bench": name, **row}
            rows.append(row)
            print(f"   {row['name']}: {row['ratio']:.2f}{row.get('unit', 'x')} (goal {row.get('goal', '-')})"
                  f"  {row.get('detail', '')}", flush=True)
    out = Path("build/bench.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
