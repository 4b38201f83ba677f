"""`duban run`, `duban serve` and `duban demo --serve` when a port they need is taken: one message
(which port, which option picks another) and a non-zero exit, before anything is started."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from duban.db import make_engine, upgrade

DUBAN = Path(sys.executable).parent / "duban"


@pytest.fixture
def env(tmp_path) -> dict[str, str]:
    """The environment of a `duban` process on an empty store of its own, no Prefect configured."""
    engine = make_engine(f"sqlite:///{tmp_path / 'duban.db'}")
    upgrade(engine)
    engine.dispose()
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("DUBAN_", "PREFECT_"))}
    return {
        **clean,
        "DUBAN_DEMO": "1",
        "DUBAN_DATABASE_URL": f"sqlite:///{tmp_path / 'duban.db'}",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "COLUMNS": "300",
    }


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A port another program listens on (and never answers)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def duban(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(DUBAN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def web_port_message(port: int, command: str) -> str:
    return (
        f"无法启动网页服务：端口 {port}（127.0.0.1）已被占用，可能已有 duban run、duban serve 或其他程序在使用。"
        f"请先停止占用该端口的程序，或用 --port 指定其他端口，如 {command} --port {port + 1}。\n"
    )


@pytest.mark.parametrize(
    ("args", "command"),
    [(["run"], "duban run"), (["serve"], "duban serve"), (["demo", "--serve"], "duban demo --serve")],
    ids=["run", "serve", "demo"],
)
def test_a_taken_web_port_stops_the_command_before_it_starts_anything(env, tmp_path, args, command):
    with taken_port() as port:
        proc = duban(env, tmp_path, *args, "--port", str(port))
    assert proc.returncode == 1
    assert proc.stdout == ""  # nothing started, nothing imported into the store
    assert proc.stderr == web_port_message(port, command)
    assert not (tmp_path / "prefect").exists()  # no Prefect server was started


def test_a_prefect_port_held_by_another_program_is_one_message(env, tmp_path):
    with taken_port() as port:
        proc = duban(env, tmp_path, "run", "--no-web", "--prefect-port", str(port))
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"无法启动本机 Prefect 服务：端口 {port} 已被其他程序占用（不是 Prefect 服务）。"
        f"请先停止占用该端口的程序，或用 --prefect-port 指定其他端口，如 duban run --prefect-port {port + 1}。\n"
    )
    assert not (tmp_path / "prefect").exists()
