"""Link tokens never reach a log: a logging filter that redacts them.

A token in an address is a key to someone's task (``/l/<token>``, ``/rv/<token>``), to their
own page (``/me/<token>``) or to the dashboard (``/d/<token>``): a log line that shows it would let whoever reads the log act as
that person. :class:`TokenFilter` rewrites every record of the web's loggers (duban's own, and
uvicorn's access and error logs) with those path segments and any ``token=`` query value (and the
``ticket=``, ``code=`` and ``authCode=`` of a sign-in's callback) replaced by ``…``; :func:`install`
puts it on them (called by the app and by ``duban serve``/``run``).
"""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "…"
TOKEN_PATH = re.compile(r"(/(?:l|rv|d|me|bot/v2/hook)/)[^/?#\s\"']+")  # (a Feishu/Lark group bot's token)
# link tokens; the sign-in's one-time CAS tickets and OAuth codes, and the access tokens and app
# secrets its server-side calls carry in their addresses (duban/sso/, notifications/apps and the
# group bots' keys, notifications/bots: logged by httpx at INFO)
TOKEN_QUERY = re.compile(r"((?:^|[?&;\s])(?:token|ticket|code|authCode|access_token|corpsecret|appsecret|key)=)[^&;#\s\"']+")
# the loggers a web request writes to; a filter on a logger is not applied to its children's
# records, so each is named
LOGGERS = ("duban.web", "duban.web.dashboard", "uvicorn", "uvicorn.error", "uvicorn.access", "fastapi", "starlette", "httpx")


def redact(text: str) -> str:
    """``text`` with link tokens replaced by ``…``."""
    return TOKEN_QUERY.sub(r"\1" + REDACTED, TOKEN_PATH.sub(r"\1" + REDACTED, text))


def _redact_arg(arg: Any) -> Any:
    if isinstance(arg, str):
        return redact(arg)
    if arg is None or isinstance(arg, int | float):
        return arg  # a %d stays a number
    text = str(arg)  # an address object (httpx.URL): its text, when it holds a secret
    clean = redact(text)
    return clean if clean != text else arg


class TokenFilter(logging.Filter):
    """Redacts link tokens in a record's message, arguments and traceback (keeps every record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            # uvicorn's access formatter unpacks the arguments itself: keep them a tuple
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install() -> None:
    """Put one :class:`TokenFilter` on each of :data:`LOGGERS` (again: nothing added)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, TokenFilter) for f in logger.filters):
            logger.addFilter(TokenFilter())
