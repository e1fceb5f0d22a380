"""A network namespace of our own for the stand-in, so nftables rules never touch anything else.

    with Netns() as ns:                      # `ip netns add vmqsi-<random>`, lo up
        ns.cmd(["mosquitto", ...])           # -> ["ip", "netns", "exec", name, "mosquitto", ...]
        ns.call(fn, *args)                   # fn runs in a thread that entered the namespace (setns(2));
                                             # threads it starts are inside too (they inherit the namespace)
        ns.nft("add table inet t ...")       # nft inside the namespace

Needs root (CAP_SYS_ADMIN). The namespace is deleted on exit; processes started in it must be stopped first.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import subprocess
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

CLONE_NEWNET = 0x40000000


def _enter(name: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into {name}: {os.strerror(err)}")
    finally:
        os.close(fd)


class Netns:
    def __init__(self, prefix: str = "vmqsi"):
        self.name = f"{prefix}-{secrets.token_hex(4)}"
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "Netns":
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)
        try:
            subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True, capture_output=True)
            # one long-lived thread inside the namespace runs everything the tests do there
            self._pool = ThreadPoolExecutor(max_workers=1, initializer=_enter, initargs=(self.name,))
            self._pool.submit(lambda: None).result()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def cmd(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        assert self._pool is not None, "the namespace is not up"
        return self._pool.submit(fn, *args, **kwargs).result()

    def nft(self, script: str) -> None:
        cp = subprocess.run(self.cmd(["nft", "-f", "-"]), input=script, text=True, capture_output=True)
        if cp.returncode != 0:
            raise OSError(f"nft in {self.name}: {cp.stderr.strip()}")
