"""Static plan of our chart: `vmq-validate plan` against `helm template` + kubernetes-validate alone.

Goal (issue 3): our own checks add at most 50 % to what a pipeline pays for rendering and schema
validation. Every chart profile is rendered once and timed three ways, each the median of
``--repeat`` runs, all in this same run:
  baseline  = helm template (subprocess) + kubernetes-validate on the render (subprocess)
  plan      = `python -m validators plan -f RENDER` (subprocess: interpreter start, imports, checks;
              bytecode cached as for an installed package)
  in-process = read + normalise + facts + every traffic check (no interpreter start)
Rows: plan/baseline and in-process/baseline (goal <= 0.5).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "vernemq"


def _median(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def _run(argv: list[str], env: dict | None = None) -> None:
    out = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if out.returncode not in (0, 1):
        raise RuntimeError(f"{argv[:3]} failed: {out.stderr[-400:]}")


def main(argv: list[str]) -> list[dict]:
    repeat = 5
    for a in argv:
        if a.startswith("--repeat="):
            repeat = int(a.split("=", 1)[1])
    helm = shutil.which("helm", path=str(ROOT / ".tools" / "bin")) or shutil.which("helm")
    kv = shutil.which("kubernetes-validate", path=str(Path(sys.executable).parent)) or shutil.which("kubernetes-validate")
    profiles = sorted((CHART / "ci").glob("*-values.yaml"))
    if not (helm and kv and profiles):
        return [{"name": "plan vs helm template + kubernetes-validate", "ratio": float("nan"), "goal": "<= 0.5",
                 "unit": "x", "detail": "skipped: needs helm, kubernetes-validate and the chart profiles"}]
    sys.path.insert(0, str(ROOT))
    from validators.collect import manifests
    from validators.core.policy import Policy
    from validators.core.registry import by_category
    from validators.core.runner import run_checks

    base_t = plan_t = inproc_t = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        # like an installed tool (pip byte-compiles site-packages): bytecode is cached, in a scratch folder
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        for prof in profiles:
            render = Path(tmp) / (prof.stem + ".yaml")
            cmd = [helm, "template", "t", str(CHART), "-n", "mqtt", "-f", str(prof)]
            render.write_text(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
            base_t += _median(lambda: (_run(cmd), _run([kv, "--quiet", str(render)])), repeat)
            plan_argv = [sys.executable, "-m", "validators", "plan", "-f", str(render), "-n", "mqtt",
                         "--release", "t", "--format", "json"]
            _run(plan_argv, env)  # warm the bytecode cache
            plan_t += _median(lambda: _run(plan_argv, env), repeat)

            def inproc():
                facts, _meta = manifests.collect([str(render)], "mqtt", "t", None)
                run_checks("plan", by_category("traffic"), facts, Policy.default())
            inproc()  # warm imports once
            inproc_t += _median(inproc, repeat)
    n = len(profiles)
    detail = (f"{n} profiles, medians of {repeat}: baseline {base_t / n * 1000:.0f} ms/profile, "
              f"plan {plan_t / n * 1000:.0f} ms, in-process checks {inproc_t / n * 1000:.1f} ms")
    return [
        {"name": "plan (subprocess) / (helm template + kubernetes-validate)", "ratio": plan_t / base_t,
         "goal": "<= 0.5", "unit": "x", "detail": detail},
        {"name": "traffic checks in-process / (helm template + kubernetes-validate)", "ratio": inproc_t / base_t,
         "goal": "<= 0.5", "unit": "x", "detail": detail},
    ]
