"""Loaded by every Python process whose PYTHONPATH starts with this folder: the suite run by
``python -m tests.clock`` (and each xdist worker, Prefect server and duban command it starts),
and the demo child of tests/test_cli.py.

* ``TESTCLOCK_OFFSET=<seconds>``: the process clock runs that far ahead of (or behind) the real
  one, from the first line of the process on (time-machine, ticking). Every process of a run gets
  the same offset, so a Prefect server and its clients agree on the time. Monotonic clocks, sleeps
  and timeouts are left alone (Debian's libfaketime 0.9.10 breaks Python's timed waits).
* ``NETGUARD_LOG=<file>``: every attempt to reach an address off this machine (a name look-up or
  a connect) is recorded there, whatever library makes it, before it happens (an audit hook).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys

_OFFSET = os.environ.get("TESTCLOCK_OFFSET")
_LOG = os.environ.get("NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", ""}

if _OFFSET:
    import time

    import time_machine

    time_machine.travel(time.time() + float(_OFFSET), tick=True).start()


def _local(host) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").lower()
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _record(what: str) -> None:
    with open(_LOG, "a", encoding="utf-8") as f:  # type: ignore[arg-type]
        f.write(f"{os.getpid()} {' '.join(sys.argv[:3])}: {what}\n")


def _hook(event: str, args: tuple) -> None:
    if event == "socket.getaddrinfo":
        if not _local(args[0]):
            _record(f"getaddrinfo {args[0]!r}")
    elif event == "socket.connect":
        sock, address = args
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _local(address[0]):
            _record(f"connect {address!r}")


if _LOG:
    sys.addaudithook(_hook)
