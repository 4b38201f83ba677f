"""A message as a card: a title, the digest's counts (待签收 3 项、已逾期 1 项), a few task titles and
one button to the person's own page.  Each vendor lays the card out in its own format and within
its own size limits (``fit``: as many titles as fit, then "等 N 项")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from duban.vocabulary import MessageKind
from notifications.channel import Outgoing
from notifications.digest import digest_context
from notifications.render import render_text

MAX_TITLES = 5  # task titles on a card; the rest are counted ("等 N 项")
BUTTON = "我的督办"  # at most 4 characters (WeCom's btntxt)
TEST_BUTTON = "打开督办"


@dataclass
class Card:
    title: str
    summary: str  # the counts, or the one line of a notice
    lines: list[str]  # task titles (at most MAX_TITLES)
    total: int  # how many entries the message has (lines may show fewer)
    url: str
    button: str = BUTTON


def utf8_len(text: str) -> int:
    return len(text.encode("utf-8"))


def cut_bytes(text: str, limit: int, tail: str = "…") -> str:
    """``text`` within ``limit`` UTF-8 bytes, never inside a character; ``tail`` marks a cut."""
    if utf8_len(text) <= limit:
        return text
    room = limit - utf8_len(tail)
    return text.encode("utf-8")[: max(room, 0)].decode("utf-8", errors="ignore") + tail


def fit(card: Card, limit: int, layout: Callable[[list[str], str], str]) -> str:
    """The body ``layout(lines, more)`` with as many of the card's titles as fit in ``limit``
    bytes; ``more`` is "等 N 项" when some are left out.  At worst the body is cut."""
    for k in range(len(card.lines), -1, -1):
        left = card.total - k
        more = f"等 {card.total} 项" if left > 0 and card.total > 1 else ""
        body = layout(card.lines[:k], more)
        if utf8_len(body) <= limit:
            return body
    return cut_bytes(layout([], ""), limit)


def card_of(out: Outgoing, base_url: str) -> Card:
    """The card of a claimed message: a digest's counts and first titles; a test or a bulletin's gist."""
    kind = out.payload.get("kind", "digest")
    if kind == MessageKind.TEST:
        summary = "这是督办系统发送的测试消息，收到即说明该渠道可用，无需回复。"
        return Card(out.subject, summary, [], 0, out.page_url or base_url, TEST_BUTTON)
    if kind != "digest" and "items" not in out.payload:
        lines = [ln.strip() for ln in render_text(out, template_dir=out.template_dir).splitlines() if ln.strip()]
        return Card(out.subject, lines[1] if len(lines) > 1 else out.subject, [], 0, out.page_url or base_url, TEST_BUTTON)
    ctx = digest_context(out.payload, out.urls)
    entries = [item for group in ctx["groups"] for item in group["entries"]]
    first_link = next((url for item in entries for _label, url in item.links), None)
    title = f"{ctx['tag']}{out.recipient}，您有 {ctx['total']} 项督办事项"
    return Card(
        title=title,
        summary="、".join(ctx["counts"]),
        lines=[item.title for item in entries[:MAX_TITLES]],
        total=len(entries),
        url=out.page_url or first_link or base_url,
    )
