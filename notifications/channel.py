"""What a channel is: the message it takes (``Outgoing``), what it reports (``DeliveryReport``),
and the ``Channel`` protocol that ``duban.sweep.delivery.deliver`` sends through.

Both the local outbox (``notifications.outbox``) and the apprise channel (``notifications.channels``)
implement it; neither needs to import the sweep.  ``ChannelKind`` holds the facts of each kind of
channel in one table (its label, its chat size limit, the apprise plugin that sends it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from duban.vocabulary import Audience
from notifications.render import render_text


class ChannelKind(StrEnum):
    EMAIL = "email"
    WECOM = "wecom"
    DINGTALK = "dingtalk"
    FEISHU = "feishu"
    LARK = "lark"
    # an institution's own app, one person at a time (notifications.apps)
    WECOM_APP = "wecom_app"
    DINGTALK_WORK = "dingtalk_work"
    FEISHU_APP = "feishu_app"
    LARK_APP = "lark_app"
    OUTBOX = "outbox"
    OTHER = "other"

    @property
    def label(self) -> str:
        return KIND_FACTS[self].label

    @property
    def chat_limit(self) -> int | None:
        return KIND_FACTS[self].chat_limit


@dataclass(frozen=True)
class KindFacts:
    label: str
    plugin: str | None = None  # the apprise plugin class that sends this kind
    chat_limit: int | None = None  # UTF-8 bytes of one chat message (None: not a chat, or unknown)


# Size limits of one chat message, in UTF-8 bytes, from each service's documentation:
# WeCom group bot text content ≤ 2048 bytes; Feishu/Lark request body ≤ 20 KB (we keep room for
# the JSON around it); DingTalk documents no byte limit for a bot's text but shows long messages
# poorly on a phone, so we keep its parts short.
KIND_FACTS: dict[ChannelKind, KindFacts] = {
    ChannelKind.EMAIL: KindFacts("邮件", "NotifyEmail"),
    ChannelKind.WECOM: KindFacts("企业微信", "NotifyWeComBot", 2048),
    ChannelKind.DINGTALK: KindFacts("钉钉", "NotifyDingTalk", 4000),
    ChannelKind.FEISHU: KindFacts("飞书", "NotifyFeishu", 18000),
    ChannelKind.LARK: KindFacts("Lark", "NotifyLark", 18000),
    # app messages are cards laid out within each API's own limits (notifications.apps)
    ChannelKind.WECOM_APP: KindFacts("企业微信应用消息"),
    ChannelKind.DINGTALK_WORK: KindFacts("钉钉工作通知"),
    ChannelKind.FEISHU_APP: KindFacts("飞书应用消息"),
    ChannelKind.LARK_APP: KindFacts("Lark 应用消息"),
    ChannelKind.OUTBOX: KindFacts("本地发件箱"),
    ChannelKind.OTHER: KindFacts("其他"),
}
LABELS = {kind.value: facts.label for kind, facts in KIND_FACTS.items()}  # by stored value (``deliveries.channel``)


def label(kind: str) -> str:
    """The Chinese name of a channel kind as stored (unknown kinds as they are)."""
    return LABELS.get(kind, kind)


@dataclass
class Outgoing:
    """A claimed digest, ready for a channel: its payload and the URLs of its links."""

    id: int
    recipient_id: int | None
    recipient: str
    email: str | None
    run_on: dt.date
    subject: str
    payload: dict[str, Any]
    attempts: int
    urls: dict[int, str] = field(default_factory=dict)
    template_dir: Path | None = None
    plan_id: int | None = None
    audience: str = Audience.PERSON  # person | department | leading_group | office
    channels: list[str] = field(default_factory=list)  # the person's (or group's) apprise URLs: secrets, never shown
    mobile: str | None = None
    # the person's own page (我的督办): the one button of a chat card (None: no such page for this reader)
    page_url: str | None = None
    # the person's ids in the institution's chat apps (notifications.apps: "wecom", "dingtalk", "feishu")
    app_ids: dict[str, str] = field(default_factory=dict)

    @property
    def body(self) -> str:
        """The plain-text message (what the outbox writes and an email's text part carries)."""
        return render_text(self, template_dir=self.template_dir)


@dataclass
class Attempt:
    channel: str
    target: str
    ok: bool
    error: str | None = None
    at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    parts: int = 1
    skipped: bool = False  # not tried: the channel is paused (its server stopped answering); not the recipient's failure
    permanent: bool = False  # sending again cannot help (the app does not know the person): the office is told at once
    answer: str | None = None  # the service's own answer (an app's errcode and errmsg), for `duban notify test`
    # a group bot that got only a summary of a person's digest (no personal links): it tells the
    # person something is waiting but does not deliver the digest while a personal channel exists
    summary: bool = False


@dataclass
class DeliveryReport:
    """What happened to one message: an attempt per channel tried."""

    attempts: list[Attempt] = field(default_factory=list)

    @property
    def _delivering(self) -> list[Attempt]:
        """The attempts that deliver the message itself: a group bot's summary of a person's digest
        counts only when the person has no other channel."""
        full = [a for a in self.attempts if not a.summary]
        return full or self.attempts

    @property
    def ok(self) -> bool:
        return any(a.ok for a in self._delivering)

    @property
    def paused(self) -> bool:
        """Nothing was tried: every channel of the message is paused. The message waits for a later
        round; it is not a failed attempt (it never counts towards "unreachable")."""
        return bool(self.attempts) and all(a.skipped for a in self._delivering)

    @property
    def permanent(self) -> bool:
        """Nothing took the message and every failure is one that sending again cannot mend."""
        failed = [a for a in self.attempts if not a.ok]
        return not self.ok and bool(failed) and all(a.permanent for a in failed)

    @property
    def via(self) -> str:
        return ",".join(dict.fromkeys(a.channel for a in self.attempts if a.ok))

    @property
    def reason(self) -> str:
        failed = [f"{label(a.channel)} {a.target}：{a.error}" for a in self.attempts if not a.ok]
        return "；".join(failed) or "没有可用的通知渠道"


@runtime_checkable
class Channel(Protocol):
    """Sends one message.  ``send`` raises on failure, or returns a report of its attempts; None
    when the channel has nothing to report but that it took the message (``deliver`` then records
    one attempt under the channel's ``name``)."""

    name: str
    idempotent: bool  # sending the same message again is harmless (marked sent per batch, not per message)

    def send(self, out: Outgoing) -> DeliveryReport | None: ...

    def close(self) -> None: ...


class CallableChannel:
    """A plain function ``out -> None`` as a channel (tests, scripts): not idempotent."""

    name = "channel"
    idempotent = False

    def __init__(self, send):
        self._send = send

    def send(self, out: Outgoing) -> DeliveryReport | None:
        return self._send(out)

    def close(self) -> None:
        pass


def as_channel(send: Channel | Any) -> Channel:
    """``send`` itself when it is a :class:`Channel`; a plain callable wrapped as one."""
    return send if isinstance(send, Channel) else CallableChannel(send)
