"""The web pages' one Jinja environment and one render helper (link pages, review pages, dashboard).

Pages are rendered straight into an ``HTMLResponse``: the templates use neither ``request`` nor
``url_for`` (``TemplateResponse`` adds both to the context and a debug message per response).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, Template, select_autoescape

from duban.filecheck import accept_attribute
from duban.vocabulary import LinkAction

HERE = Path(__file__).parent
STATIC = HERE / "static"

# the page titles of the link pages' actions (templates: ``titles[action]``)
ACTION_TITLES = {
    LinkAction.ACK: "签收任务",
    LinkAction.PROGRESS: "反馈工作进展",
    LinkAction.DONE: "提交办结",
    LinkAction.EXTEND: "申请延期",
    LinkAction.VIEW: "任务详情",
    LinkAction.REVIEW: "审核",
    LinkAction.QUEUE: "待审核事项",
}


def file_url(token: str, evidence_id: int) -> str:
    """A file of a link page's task, downloaded through the link (templates: ``file_url``)."""
    return f"/l/{token}/files/{evidence_id}"


ENV = Environment(
    loader=FileSystemLoader(str(HERE / "templates")),
    autoescape=select_autoescape(default=True, default_for_string=True),
    auto_reload=False,  # compiled once per process (no stat of each template per page)
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.globals.update(titles=ACTION_TITLES, file_url=file_url, file_accept=accept_attribute())
_TEMPLATE_CACHE: dict[str, Template] = {}


def template(name: str) -> Template:
    """A compiled template of :data:`ENV`, looked up once per process."""
    t = _TEMPLATE_CACHE.get(name)
    if t is None:
        t = _TEMPLATE_CACHE[name] = ENV.get_template(name)
    return t


def render(name: str, ctx: Mapping[str, Any] | None = None, status: int = 200, headers: Mapping[str, str] | None = None) -> HTMLResponse:
    """The page ``name`` with ``ctx``, as an HTML response."""
    return HTMLResponse(template(name).render(ctx or {}), status_code=status, headers=headers)


def error_page(title: str, message: str, status: int, **extra: Any) -> HTMLResponse:
    """A page that explains (never a stack trace): ``error.html``."""
    return render("error.html", {"title": title, "message": message, **extra}, status)
