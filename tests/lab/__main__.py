"""`python -m tests.lab up|down|status` (also `make lab` / `make lab-down`).

    up [-n 3] [--http-port 8888]   build a detached lab and print its targets file path
    status                         list the labs on this host and each node's cluster view
    down [ID]                      tear down detached labs and labs whose owning process is gone
"""

from __future__ import annotations

import argparse
import sys

from . import Lab, LabError, can_build, list_states, pid_alive, teardown_state


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab")
    sub = ap.add_subparsers(dest="cmd", required=True)
    up = sub.add_parser("up", help="build a detached lab")
    up.add_argument("-n", type=int, default=3)
    up.add_argument("--http-port", type=int, default=8888)
    sub.add_parser("status", help="list labs")
    down = sub.add_parser("down", help="tear down labs")
    down.add_argument("id", nargs="?")
    down.add_argument("--all", action="store_true", help="also labs whose owner is still running")
    args = ap.parse_args(argv)

    if args.cmd == "up":
        ok, why = can_build()
        if not ok:
            print(f"cannot build the lab: {why}", file=sys.stderr)
            return 2
        lab = Lab(n=args.n, http_port=args.http_port, detached=True)
        try:
            lab.up()
        except (LabError, KeyboardInterrupt) as exc:
            lab.down()
            print(f"lab failed: {exc}", file=sys.stderr)
            return 1
        path = lab.write_targets(lab.dir / "targets.yaml")
        print(f"lab {lab.id} is up: {lab.n} nodes on {lab.subnet}")
        for n in lab.nodes:
            print(f"  {n.name:<24} netns {n.netns}  {n.http_url}")
        print(f"targets file: {path}\n  vmq-validate distribution --targets {path}")
        print("tear down: python -m tests.lab down")
        return 0
    if args.cmd == "status":
        states = list_states()
        if not states:
            print("no lab on this host")
        for st in states:
            owner = "detached" if st.get("detached") else (
                f"owned by pid {st['owner_pid']}" + ("" if pid_alive(st["owner_pid"]) else " (gone)"))
            print(f"lab {st['id']} ({owner}) subnet {st.get('subnet')}")
            for n in st.get("nodes", []):
                print(f"  {n['name']:<24} netns {n['netns']}  {n['http']}")
        return 0
    removed = 0
    for st in list_states():
        mine = args.id is None or st["id"] == args.id
        orphan = st.get("detached") or not pid_alive(st["owner_pid"]) or args.all or args.id
        if mine and orphan:
            teardown_state(st)
            removed += 1
            print(f"removed lab {st['id']}")
    if not removed:
        print("no lab to remove")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
