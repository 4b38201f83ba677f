"""The ``duban`` command assembled: every command module registers on the one ``app``; ``main``
is the console script (pyproject.toml)."""

from __future__ import annotations

import contextlib
import os
import sys

# each module registers its commands on app when imported: this order is the order of `duban --help`
from duban.cli import plans  # noqa: F401  # isort: skip
from duban.cli import announce  # noqa: F401  # isort: skip
from duban.cli import checks  # noqa: F401  # isort: skip
from duban.cli import running  # noqa: F401  # isort: skip
from duban.cli import notify  # noqa: F401  # isort: skip
from duban.cli import accounts  # noqa: F401  # isort: skip
from duban.cli import institutions  # noqa: F401  # isort: skip
from duban.cli import paper  # noqa: F401  # isort: skip
from duban.cli import review  # isort: skip
from duban.cli.common import app, console, err_console
from duban.settings import ConfigurationError

app.add_typer(review.review_app, name="review")

__all__ = ["app", "console", "main"]


def main() -> None:
    # The temporary Prefect server that `duban check`, `demo` and `review start` run in would
    # otherwise try to send usage telemetry and, on an intranet, print an English error for it.
    # An operator who wants it sets the variable.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _no_proxy_for_loopback()
    status = _end_without_teardown()
    try:
        app()
    except ConfigurationError as err:  # settings read outside a command
        err_console.print(f"无法启动：{err}", markup=False)
        status[0] = 2
        sys.exit(2)
    except SystemExit as done:
        status[0] = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
        raise
    except KeyboardInterrupt:  # Ctrl+C: the status a shell expects (128 + SIGINT)
        status[0] = 130
        raise
    except BaseException:
        status[0] = 1
        raise


def _no_proxy_for_loopback() -> None:
    """An office machine often sets http_proxy without no_proxy: Prefect's client would then ask
    the Prefect server on this machine through the proxy and fail ("Failed to reach API"). Our
    servers are on loopback, which no proxy should carry."""
    local = ["127.0.0.1", "localhost", "::1"]
    for name in ("NO_PROXY", "no_proxy"):
        present = [h.strip() for h in os.environ.get(name, "").split(",") if h.strip()]
        os.environ[name] = ",".join(present + [h for h in local if h not in present])


def _end_without_teardown() -> list[int]:
    """Registered before duban's and Prefect's exit handlers, so it runs after them (Prefect's flush
    of a run's last logs and events, stopping a temporary server); then it shuts logging down itself
    (logging's own handler, registered earlier, would run later) and ends the process without the
    interpreter's teardown of every loaded module, ≈ 0.5 s once Prefect is loaded, paid by every
    `duban check`. Returns the cell the exit status is written to."""
    import atexit
    import logging

    status = [0]

    def finish() -> None:
        logging.shutdown()
        from duban import db

        for engine in list(db._engines.values()):  # close database connections cleanly
            engine.dispose()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status[0])

    atexit.register(finish)
    return status
