"""Render a stored message (digest, bulletin, channel test) for each format a channel needs.

Templates (zh-CN, Jinja2) live in ``notifications/templates``; an institution overrides any of
them by putting a file of the same name in ``DUBAN_TEMPLATE_DIR``:

=================  =========================================================================
``<kind>.txt.j2``   plain text: the outbox and the text part of an email
``<kind>.html.j2``  the HTML part of an email (inline styles only; autoescaped)
``<kind>.chat.j2``  chat services (WeCom, DingTalk, Feishu …): plain text where ``{{ cut }}``
                    marks the places a long message may be split into several
``digest.summary.chat.j2``  what a person's group bot gets instead of their digest: counts
                    and task names, no action links (``render_group_chat``)
=================  =========================================================================

``kind`` is ``digest`` (a person's daily digest, escalations included), ``bulletin`` (通报 for
the leading group) or ``test`` (``duban notify test``).
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined

from duban.vocabulary import MessageKind
from notifications.digest import TEMPLATES, digest_context, environment

CUT = "\x1f"  # where a chat message may be split (ASCII unit separator: never in user text)


@dataclass
class Message:
    """One message rendered for every format a channel may need."""

    subject: str
    text: str
    html: str | None
    chat: str  # with ``CUT`` between units


@functools.lru_cache(maxsize=8)
def html_environment(template_dir: Path | None = None) -> Environment:
    loaders = [FileSystemLoader(str(template_dir))] if template_dir else []
    loaders.append(FileSystemLoader(str(TEMPLATES)))
    return Environment(loader=ChoiceLoader(loaders), undefined=StrictUndefined, autoescape=True, trim_blocks=True, lstrip_blocks=True)


PERIOD_WORDS = {"week": "本周", "month": "本月"}


def bulletin_context(payload: dict[str, Any]) -> dict[str, Any]:
    """A bulletin's template variables (a payload queued before bulletins had 期号 still renders)."""
    items = payload.get("items", [])
    serious = [i for i in items if i.get("serious")]
    others = [i for i in items if not i.get("serious")]
    issue = payload.get("bulletin") or {}
    old = payload.get("weekly") or {}
    ranking = [
        {**d, "change": d.get("change", ""), "score": float(d["score"])} for d in payload.get("ranking") or old.get("departments", [])
    ]
    return dict(
        plan_name=payload.get("plan_name", ""),
        today=payload["today"],
        open_tasks=payload.get("open_tasks", 0),
        total=len(items),
        serious=serious,
        others=others,
        office_after=payload.get("office_after", 15),
        by_department=[tuple(x) for x in payload.get("by_department", [])],
        sections=[("列入通报的事项", serious), ("其他逾期事项", others)],
        audience_name=payload.get("audience_name", "各位领导"),
        office_name=payload.get("office_name") or "领导小组办公室",
        title=issue.get("title", "督办通报"),
        period=issue.get("period", ""),
        period_word=PERIOD_WORDS.get(issue.get("kind", ""), "本期"),
        compared_with=issue.get("compared_with", ""),
        figures=payload.get("figures") or old or None,
        # the figures' name before issue 14, with the ranking (an institution's own template may use them)
        weekly={**(payload.get("figures") or old), "departments": ranking} if payload.get("figures") or old else None,
        ranking=ranking,
        unranked=payload.get("unranked", []),
        nothing_due=payload.get("nothing_due", "暂无到期事项"),
        completed=payload.get("completed", []),
        completed_total=payload.get("completed_total", 0),
        explanation=payload.get("explanation", []),
    )


def context(payload: dict[str, Any], urls: dict[int, str]) -> dict[str, Any]:
    kind = payload.get("kind", "digest")
    if kind == MessageKind.BULLETIN:
        return bulletin_context(payload)
    if kind == MessageKind.TEST:
        return dict(recipient=payload["recipient"], now=payload.get("now", ""), office=payload.get("office", ""))
    return digest_context(payload, urls)


def _message_context(out) -> tuple[str, dict[str, Any]]:
    ctx = context(out.payload, out.urls)
    ctx.update(subject=out.subject, cut=CUT)
    return out.payload.get("kind", "digest"), ctx


def render_message(out, *, template_dir: Path | None = None) -> Message:
    """Every format of one claimed message (``notifications.channel.Outgoing`` or the like)."""
    kind, ctx = _message_context(out)
    text_env = environment(template_dir)
    text = text_env.get_template(f"{kind}.txt.j2").render(**ctx)
    html = html_environment(template_dir).get_template(f"{kind}.html.j2").render(**ctx)
    chat = text_env.get_template(f"{kind}.chat.j2").render(**ctx)
    return Message(subject=out.subject, text=text, html=html, chat=chat)


def render_group_chat(out, *, summary: bool, template_dir: Path | None = None) -> str:
    """The chat text a group bot may receive (anyone in the group reads it): never an action link.

    ``summary``: a person's own digest as ``digest.summary.chat.j2`` (counts and task names, where
    to act: their email or their page, whose link is the person's own and so not shown); otherwise
    the message's chat template rendered without the link URLs (a group digest has none; this makes
    sure)."""
    bare = copy.copy(out)
    bare.urls = {}
    kind, ctx = _message_context(bare)
    name = "digest.summary.chat.j2" if summary and kind == "digest" else f"{kind}.chat.j2"
    return environment(template_dir).get_template(name).render(**ctx)


def render_text(out, *, template_dir: Path | None = None) -> str:
    """The plain text of any message kind (what the outbox writes)."""
    kind, ctx = _message_context(out)
    return environment(template_dir).get_template(f"{kind}.txt.j2").render(**ctx)


def now_text(tz: dt.tzinfo | None = None) -> str:
    return dt.datetime.now(tz).strftime("%Y-%m-%d %H:%M")
