"""A local Prefect server for `duban run` on one machine.

Prefect's temporary (ephemeral) server answers API calls but does not run the scheduler, so
scheduled deployments would never get runs.  When no ``PREFECT_API_URL`` is configured, `duban
run` starts ``prefect server start`` as a child process (its database in the duban data folder),
waits until it answers, and stops it on exit.  With ``PREFECT_API_URL`` set, that server is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from duban.settings import Settings


class PrefectServerError(RuntimeError):
    pass


def _healthy(api_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=2) as resp:  # noqa: S310 - loopback
            return resp.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def local_prefect_server(settings: Settings, *, port: int = 4200, timeout: float = 120) -> Iterator[str]:
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        yield configured.rstrip("/")
        return
    api_url = f"http://127.0.0.1:{port}/api"
    if _healthy(api_url):  # already running (another duban run, or started by hand)
        yield api_url
        return
    home = Path(os.environ.get("PREFECT_HOME") or settings.data_dir / "prefect")
    home.mkdir(parents=True, exist_ok=True)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or shutil.which("prefect")
    if prefect is None:
        raise PrefectServerError("找不到 prefect 命令：请确认 duban 安装完整（pip install duban）")
    log = open(home / "server.log", "ab")  # noqa: SIM115 - closed below
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    proc = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _healthy(api_url):
            if proc.poll() is not None:
                raise PrefectServerError(f"Prefect 服务未能启动（退出码 {proc.returncode}），详见 {home / 'server.log'}")
            if time.monotonic() > deadline:
                raise PrefectServerError(f"Prefect 服务 {timeout:.0f} 秒内未就绪，详见 {home / 'server.log'}")
            time.sleep(0.5)
        yield api_url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
