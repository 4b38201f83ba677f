"""Where `duban serve` and `duban run` listen and whom they believe (issue 17): a forged
X-Forwarded-For is ignored unless it comes from a configured reverse proxy, and the Prefect
server duban starts (no authentication) listens on the loopback address only."""

from __future__ import annotations

import contextlib
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from duban.prefect_server import server_command, server_env
from duban.settings import Settings
from tests.cli.test_ports import DUBAN, env  # noqa: F401  (env: a fixture)
from tests.servers import free_port

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def status_of(url: str, headers: dict[str, str] | None = None) -> int:
    try:
        with NO_PROXY.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


@contextlib.contextmanager
def duban_serve(env: dict[str, str], cwd: Path, **settings: str) -> Iterator[str]:  # noqa: F811
    port = free_port()
    extra = {f"DUBAN_{k.upper()}": v for k, v in settings.items()}
    proc = subprocess.Popen(  # noqa: S603 - our own command
        [str(DUBAN), "serve", "--port", str(port)], cwd=cwd, env={**env, **extra}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError):
                if status_of(f"{base}/healthz") == 200:
                    break
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.monotonic() < deadline, "duban serve did not start"
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        proc.wait(20)


def forged_requests(base: str) -> list[int]:
    """Three link requests from this client, each claiming another address (the limit is 2 a minute)."""
    return [status_of(f"{base}/l/not-a-link", {"X-Forwarded-For": f"203.0.113.{n}"}) for n in (1, 2, 3)]


@pytest.mark.parametrize(
    ("proxies", "answers"),
    [
        (None, [404, 404, 429]),  # the default: no proxy, the forged addresses are ignored
        ("10.0.0.9", [404, 404, 429]),  # a proxy, but not this client: ignored
        ("127.0.0.1", [404, 404, 404]),  # this client is the configured proxy: believed, three addresses
    ],
    ids=["default", "another-proxy", "this-proxy"],
)
def test_x_forwarded_for_is_believed_only_from_a_configured_proxy(env, tmp_path, proxies, answers):  # noqa: F811
    settings = {"rate_limit_per_minute": "2"} | ({"trusted_proxies": proxies} if proxies else {})
    with duban_serve(env, tmp_path, **settings) as base:
        assert forged_requests(base) == answers


@pytest.mark.parametrize(
    ("proxies", "options"),
    [
        ("", {"proxy_headers": False}),
        ("  ", {"proxy_headers": False}),
        ("10.0.0.9", {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.9"}),
        ("10.0.0.0/24,::1", {"proxy_headers": True, "forwarded_allow_ips": "10.0.0.0/24,::1"}),
    ],
)
def test_the_uvicorn_options_of_serve_and_run(monkeypatch, proxies, options):
    from duban.cli.running import web_server_options

    monkeypatch.setenv("DUBAN_DEMO", "1")
    assert web_server_options(Settings(trusted_proxies=proxies)) == options


def test_the_default_trusts_no_proxy(monkeypatch):
    monkeypatch.setenv("DUBAN_DEMO", "1")
    assert Settings().trusted_proxies == ""


def test_the_prefect_server_listens_on_loopback_only(tmp_path, monkeypatch):
    monkeypatch.setenv("PREFECT_SERVER_API_HOST", "0.0.0.0")  # noqa: S104 - what an operator's environment might say
    args = server_command("/usr/bin/prefect", 4300)
    assert args == ["/usr/bin/prefect", "server", "start", "--host", "127.0.0.1", "--port", "4300"]
    child_env = server_env(tmp_path, 4300)
    assert child_env["PREFECT_SERVER_API_HOST"] == "127.0.0.1"
    assert child_env["PREFECT_UI_API_URL"] == "http://127.0.0.1:4300/api"
    assert child_env["PREFECT_HOME"] == str(tmp_path)
