"""A local Prefect server for `duban run` on one machine, and finding one for `duban check`.

Prefect's temporary (ephemeral) server answers API calls but does not run the scheduler, so
scheduled deployments would never get runs.  When no ``PREFECT_API_URL`` is configured, `duban
run` starts ``prefect server start`` as a child process (its database in the duban data folder),
waits until it answers, and stops it on exit.  With ``PREFECT_API_URL`` set, that server is used.

While it serves, `duban run` records the server's API address in the data folder
(``prefect/api_url``), so a `duban check` (or `duban demo`) started beside it runs its flow there
— seen in the same UI, and without paying ≈ 5–15 s for a temporary server of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import http.client
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

from duban.settings import Settings


class PrefectServerError(RuntimeError):
    pass


LOOPBACK = "127.0.0.1"  # every Prefect server duban starts listens here only (no authentication: docs/web.md)
# the servers we ask are our own, on this machine: never through an office's HTTP proxy (http_proxy)
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def healthy(api_url: str, timeout: float = 2) -> bool:
    try:
        with _LOCAL.open(f"{api_url}/health", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, http.client.HTTPException):  # nothing there, or something that does not speak HTTP
        return False


def _address_file(settings: Settings) -> Path:
    return settings.data_dir / "prefect" / "api_url"


def configured_api_url() -> str | None:
    """PREFECT_API_URL as Prefect would read it, without importing Prefect (≈ 2 s) when it is not
    loaded yet: the variable, else the active profile of Prefect's profiles file."""
    if "prefect.settings" in sys.modules:  # already loaded (tests, a flow): ask Prefect itself
        from prefect.settings import PREFECT_API_URL

        return PREFECT_API_URL.value() or None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    import tomllib

    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect")
    path = Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml")
    try:
        profiles = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active")
    value = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL") if active else None
    return str(value) if value else None


def running_api_url(settings: Settings) -> str | None:
    """The Prefect API a command should use instead of a temporary server of its own: the configured
    ``PREFECT_API_URL``, else the server of a `duban run` on this data folder when it answers."""
    configured = configured_api_url()
    if configured:
        return configured.rstrip("/")
    try:
        recorded = _address_file(settings).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return recorded if recorded and healthy(recorded, timeout=1) else None


@contextlib.contextmanager
def recorded_address(settings: Settings, api_url: str) -> Iterator[None]:
    """Record the API address of the server `duban run` uses while it runs (removed on exit)."""
    path = _address_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(api_url, encoding="utf-8")
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            if path.read_text(encoding="utf-8").strip() == api_url:
                path.unlink()


def _die_with_parent() -> Callable[[], None] | None:
    """Linux: a ``preexec_fn`` after which the child gets SIGTERM when the process that started it
    dies, even by kill -9 (PR_SET_PDEATHSIG). Resolved here, in the parent: between fork and exec
    the child only makes the call (no import, no library loading)."""
    if sys.platform != "linux":
        return None
    try:
        import ctypes
        import signal

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return lambda: prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _home(settings: Settings) -> Path:
    home = Path(os.environ.get("PREFECT_HOME") or settings.data_dir / "prefect")
    home.mkdir(parents=True, exist_ok=True)
    return home


class _Child:
    """A Prefect server process of ours: its log file, waiting until it answers, stopping it."""

    def __init__(self, args: list[str], env: dict[str, str], log_path: Path, label: str):
        self.log_path, self.label = log_path, label
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        # S603: the arguments are ours (this Python or the installed prefect, fixed options and a port);
        # PLW1509: preexec_fn is resolved in the parent and only calls prctl(PR_SET_PDEATHSIG) in the child (no imports, no locks)
        self.proc = subprocess.Popen(  # noqa: S603
            args,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509
        )

    def wait_healthy(self, api_url: str, *, timeout: float, poll: float) -> None:
        deadline = time.monotonic() + timeout
        while not healthy(api_url, timeout=1):
            if self.proc.poll() is not None:
                raise PrefectServerError(f"{self.label}未能启动（退出码 {self.proc.returncode}），详见 {self.log_path}")
            if time.monotonic() > deadline:
                raise PrefectServerError(f"{self.label} {timeout:.0f} 秒内未就绪，详见 {self.log_path}")
            time.sleep(poll)

    def stop(self, grace: float) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def temporary_prefect_server(settings: Settings, *, timeout: float = 120) -> Callable[[], str]:
    """Prefect's temporary (ephemeral) server for one command, started at once as a child process.

    Prefect would start the same server itself, but only when the flow is called and after
    importing the whole server in the calling process first (≈ 2–5 s here), then again in the
    child. Started here, before the command imports Prefect and its flows, the child loads while
    the command does: the command calls ``ready()`` (which waits for it and returns its API URL)
    just before running a flow. Stopped when the process exits, after Prefect's own exit handlers
    have sent the run's last logs and events (they were registered later, so they run first); on
    Linux it also dies with a killed command."""
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    home = _home(settings)
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # what Prefect's own SubprocessASGIServer sets: no UI, the ephemeral server's services
        "PREFECT_UI_ENABLED": "0",
        "PREFECT__SERVER_EPHEMERAL": "1",
        "PREFECT__SERVER_FINAL": "1",
    }
    child = _Child(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            LOOPBACK,
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        env,
        home / "temporary-server.log",
        "临时 Prefect 服务",
    )

    def ready() -> str:
        child.wait_healthy(api_url, timeout=timeout, poll=0.1)
        return api_url

    atexit.register(child.stop, 10)
    return ready


def server_command(prefect: str, port: int) -> list[str]:
    """The command line of the Prefect server `duban run` starts: on the loopback address only.
    Its UI and API have no authentication (anyone who reaches them can run and cancel flows):
    reach them from another machine through a reverse proxy with authentication (docs/web.md, "Behind a reverse proxy")."""
    return [prefect, "server", "start", "--host", LOOPBACK, "--port", str(port)]


def server_env(home: Path, port: int) -> dict[str, str]:
    """The environment of that server (the caller's, with the address and port set here: a
    PREFECT_SERVER_API_HOST of the caller never opens it to the network)."""
    # the UI asks /ui-settings where the API is; without these it answers port 4200 whatever port
    # the server listens on (and the UI shows another server's runs, or nothing)
    return {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_HOST": LOOPBACK,
        "PREFECT_SERVER_API_PORT": str(port),
        "PREFECT_UI_API_URL": f"http://{LOOPBACK}:{port}/api",
    }


@contextlib.contextmanager
def local_prefect_server(settings: Settings, *, port: int = 4200, timeout: float = 120) -> Iterator[str]:
    configured = configured_api_url()
    if configured:
        yield configured.rstrip("/")
        return
    api_url = f"http://127.0.0.1:{port}/api"
    if healthy(api_url):  # already running (another duban run, or started by hand)
        yield api_url
        return
    home = _home(settings)
    prefect = shutil.which("prefect", path=str(Path(sys.executable).parent)) or shutil.which("prefect")
    if prefect is None:
        raise PrefectServerError("找不到 prefect 命令：请确认 duban 安装完整（pip install duban）")
    child = _Child(server_command(prefect, port), server_env(home, port), home / "server.log", "Prefect 服务")
    try:
        child.wait_healthy(api_url, timeout=timeout, poll=0.5)
        yield api_url
    finally:
        child.stop(20)


def wait_until_healthy(api_url: str, *, timeout: float, poll: float = 1.0) -> bool:
    """Whether the Prefect API at ``api_url`` answers within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not healthy(api_url.rstrip("/")):
        if time.monotonic() > deadline:
            return False
        time.sleep(poll)
    return True


def main(argv: list[str] | None = None) -> int:
    """``python -m duban.prefect_server --wait SECONDS``: wait for the configured Prefect server
    (PREFECT_API_URL) to answer; deploy/duban-deploy.service runs it before ``prefect deploy``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m duban.prefect_server", description="等待 Prefect 服务就绪（PREFECT_API_URL）")
    parser.add_argument("--wait", type=float, default=120, metavar="SECONDS", help="最多等待的秒数（默认 120）")
    args = parser.parse_args(argv)
    api_url = configured_api_url()
    if not api_url:
        print("未设置 PREFECT_API_URL：请在 /etc/duban/duban.env 中填写 Prefect 服务的地址。", file=sys.stderr)
        return 2
    if not wait_until_healthy(api_url, timeout=args.wait):
        print(f"Prefect 服务 {api_url} 在 {args.wait:.0f} 秒内未就绪：请检查 duban-prefect-server 服务及其日志。", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
