"""The helpers that keep the suite honest: a process clock set for a whole run (tests/clock.py)
and the guard that records any attempt to leave the machine (tests/sitehook/sitecustomize.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HOOK = Path(__file__).resolve().parent / "sitehook"
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("instant", "local", "utc_day"),
    [
        ("2026-12-01T03:30:00+08:00", "2026-12-01 03:30", "2026-11-30"),
        ("2026-12-01T12:00:00+08:00", "2026-12-01 12:00", "2026-12-01"),
        ("2026-12-01T23:50:00+08:00", "2026-12-01 23:50", "2026-12-01"),
    ],
)
def test_clock_sets_every_python_process_of_a_run(tmp_path, instant, local, utc_day):
    script = tmp_path / "show.py"
    script.write_text(
        "import datetime as dt, subprocess, sys, time, zoneinfo\n"
        "tz = zoneinfo.ZoneInfo('Asia/Shanghai')\n"
        "print(dt.datetime.now(tz).strftime('%Y-%m-%d %H:%M'), dt.datetime.now(dt.timezone.utc).date().isoformat(), flush=True)\n"
        "start = time.monotonic(); time.sleep(0.05); assert time.monotonic() - start < 5  # sleeps still work\n"
        "if len(sys.argv) < 2:\n"
        "    subprocess.run([sys.executable, __file__, 'child'], check=True)\n",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TESTCLOCK_OFFSET", "PYTHONPATH")}
    out = subprocess.run(
        [sys.executable, "-m", "tests.clock", instant, "--", sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("clock: every Python process starts at")
    assert out[1:] == [f"{local} {utc_day}", f"{local} {utc_day}"]  # the child agrees with its parent


def test_clock_refuses_an_instant_without_offset():
    proc = subprocess.run(
        [sys.executable, "-m", "tests.clock", "2026-12-01T03:30", "--", "true"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "the instant needs a UTC offset" in proc.stderr


def test_netguard_records_addresses_off_the_machine_only(tmp_path):
    log = tmp_path / "net.log"
    code = (
        "import socket\n"
        "s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); port = s.getsockname()[1]\n"
        "socket.create_connection(('127.0.0.1', port), timeout=2).close()\n"
        "socket.getaddrinfo('localhost', port)\n"
        "try:\n    socket.getaddrinfo('mail.example.invalid', 25)\nexcept OSError:\n    pass\n"
        "try:\n    socket.create_connection(('192.0.2.1', 25), timeout=0.01)\nexcept OSError:\n    pass\n"
    )
    env = {**os.environ, "PYTHONPATH": str(HOOK), "NETGUARD_LOG": str(log)}
    subprocess.run([sys.executable, "-c", code], env=env, timeout=60, check=True)
    lines = log.read_text(encoding="utf-8").splitlines()
    assert [line.split(": ", 1)[1] for line in lines] == [
        "getaddrinfo 'mail.example.invalid'",
        "getaddrinfo '192.0.2.1'",
        "connect ('192.0.2.1', 25)",
    ]
