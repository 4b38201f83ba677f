"""Run a command with every Python process's clock set to a given instant (then ticking).

    python -m tests.clock 2026-12-01T03:30:00+08:00 -- python -m pytest -n 2

The suite must give the same result at any hour; CI runs it once more at night in Beijing with
this (``make test-night``). The clock is moved by tests/sitehook/sitecustomize.py in each Python
process the command starts (pytest, its workers, Prefect servers, duban commands), all by the same
offset. Non-Python programs (PostgreSQL, Chromium) keep the real clock; duban never takes the
time from them.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import time
from pathlib import Path

HOOK = Path(__file__).resolve().parent / "sitehook"


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__, file=sys.stderr)
        return 2
    target = dt.datetime.fromisoformat(argv[0])
    if target.tzinfo is None:
        print("the instant needs a UTC offset, e.g. 2026-12-01T03:30:00+08:00", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env["TESTCLOCK_OFFSET"] = repr(target.timestamp() - time.time())
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HOOK), env.get("PYTHONPATH", "")) if p)
    print(f"clock: every Python process starts at {target.isoformat()} (then ticks)", flush=True)
    os.execvpe(argv[2], argv[2:], env)  # noqa: S606 - becomes the command the caller named
    return 127  # unreachable


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
