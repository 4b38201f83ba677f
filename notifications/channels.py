"""Deliver a digest through apprise: a person's own channels, the institution's mail relay, group bots.

Routing is configuration, not code (``notifications.addresses``): the first channel that takes a
message ends the round ("fallback"); an ``always=`` entry receives every message regardless.  A
department's group bot and the plan's leading-group / office channels are lists of the same URLs,
used for group messages (escalation copies, bulletins).

The institution's chat apps (``notifications.apps``: WeCom application messages, DingTalk 工作通知,
Feishu/Lark app messages) reach a person by their id from the 人员 sheet and receive every
message as a card.

Formats: an email carries an HTML part and a plain-text part (``notifications.smtp``); chat
services get plain text (the apprise plugins for WeCom, DingTalk, Feishu and Lark post ``text``
messages), split between items under each service's documented size limit
(``notifications.channel.KIND_FACTS``), so a link is never cut.

Group bots (WeCom group bot, DingTalk, Feishu, Lark webhooks) are sent by ``notifications.bots``,
which reads the vendor's answer (apprise 1.13 trusts HTTP 200; the vendors refuse with 200 and an
error code).  A group can read what its bot posts, so a bot never gets a personal action link:
a group message goes without links; a person's digest goes to their personal channels (email,
other apprise services) and, once delivered there, their bots get a summary (task codes and
names, "请查看邮件或个人督办页面办理").  A person with only group bots gets only the summary, and
that is the delivery.  A bot that answers "too many messages" gives the message back for a later
round (a skipped attempt, as a paused relay).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

from duban.vocabulary import Audience
from notifications import bots
from notifications.addresses import Target, quiet_apprise, targets_for
from notifications.apps import AppClient, Apps
from notifications.bots import BOT_KINDS
from notifications.channel import Attempt, ChannelKind, DeliveryReport, Outgoing
from notifications.outbox import OutboxChannel
from notifications.render import CUT, Message, render_group_chat, render_message
from notifications.smtp import RelayPaused, SMTPPool, build_email, smtp_reason

OTHER_CHAT_LIMIT = 4000


# ---------------------------------------------------------------------------------------------
# Chat: split between items, never inside a line


def split_chat(text: str, limit: int, cut: str) -> list[str]:
    """Pack the units of ``text`` (separated by ``cut``) into parts of at most ``limit`` UTF-8 bytes.

    A unit longer than a part is split between its lines; a line is never cut (a link stays
    whole even in the rare case that it alone exceeds the limit).  Parts after the first are
    numbered.
    """
    units = [u.strip("\n") for u in text.split(cut)]
    units = [u for u in units if u.strip()]
    room = limit - 24  # the "（续 2/9）" label
    size = lambda s: len(s.encode("utf-8"))  # noqa: E731
    pieces: list[str] = []
    for u in units:
        if size(u) <= room:
            pieces.append(u)
        else:
            pieces.extend(line for line in u.split("\n") if line.strip())
    parts: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}\n\n{piece}" if current else piece
        if current and size(candidate) > room:
            parts.append(current)
            current = piece
        else:
            current = candidate
    if current:
        parts.append(current)
    if len(parts) > 1:
        parts = [p if i == 0 else f"（续 {i + 1}/{len(parts)}）\n{p}" for i, p in enumerate(parts)]
        parts[0] = f"（1/{len(parts)}）\n{parts[0]}"
    return parts


# ---------------------------------------------------------------------------------------------
# The apprise channel


class AppriseChannel:
    """The :class:`~notifications.channel.Channel` that sends a claimed digest through the
    recipient's own channels (apprise URLs, the mail relay).

    Returns a :class:`DeliveryReport`; never raises for a channel failure (each is an attempt with its
    reason).  ``outbox``: a local outbox that takes the message when the recipient has no
    channel at all (the embedded demo), and ``outbox_copy`` writes every message there too.

    Mail: ``smtp_timeout`` bounds connecting and each command (a ``cto=`` in the URL wins),
    ``smtp_final_timeout`` the wait for the relay to confirm a whole message.  ``pool`` holds the
    connections and the relay's circuit breaker (a paused relay gives a skipped attempt, see
    :class:`~notifications.smtp.SMTPPool`); tests pass one with a short cool-down or own clock.
    """

    name = "dispatch"
    idempotent = False  # a message sent again is a second message

    def __init__(
        self,
        relay_url: str | None = None,
        *,
        template_dir: Path | None = None,
        outbox: OutboxChannel | None = None,
        outbox_copy: bool = False,
        smtp_timeout: float = 15.0,
        smtp_final_timeout: float = 600.0,
        tz: dt.tzinfo | None = None,
        pool: SMTPPool | None = None,
        apps: Apps | None = None,
    ):
        self.relay_url = relay_url or None
        self.template_dir = template_dir
        self.outbox = outbox
        self.outbox_copy = outbox_copy and outbox is not None
        self.smtp_timeout = smtp_timeout
        self.smtp_final_timeout = smtp_final_timeout
        self.tz = tz
        self.pool = pool if pool is not None else SMTPPool()
        self.apps = apps or Apps()

    # -- targets ---------------------------------------------------------------------------
    def targets(self, out: Outgoing) -> list[Target]:
        """The message's channels in order: the institution's apps the person has an id for (each
        receives every message, as ``always=``), then the person's own (or the group's) URLs."""
        if out.audience == Audience.PERSON:
            apps = [Target(c.kind, "", c.target(userid), True, userid, c) for c, userid in self.apps.targets(out)]
            return apps + targets_for(list(out.channels or ()), email=out.email, relay_url=self.relay_url)
        return targets_for(list(out.channels or ()))

    # -- sending ---------------------------------------------------------------------------
    def send(self, out: Outgoing, *, every: bool = False) -> DeliveryReport:
        """Fallback: the first channel that takes the message ends the round (``always`` ones
        receive it regardless); ``every=True`` tries every channel (``duban notify test``).

        A group bot never receives a personal action link (module docstring): a group digest goes
        to it without links; a person's own digest goes to their personal channels, and their
        group bots get a summary once it was delivered (or, without a personal channel, only the
        summary, which then is the delivery)."""
        targets = self.targets(out)
        message = render_message(out, template_dir=self.template_dir)
        group = GroupText(out, self.template_dir)
        if summarised(out) and not every:
            personal = [t for t in targets if t.kind not in BOT_KINDS]
            bots = [t for t in targets if t.kind in BOT_KINDS]
            report = self._fallback(personal, out, message, group, every=False)
            if report.ok or not personal:
                for t in bots:
                    report.attempts.append(replace(self.send_to(t, out, message, group), summary=True))
        else:
            report = self._fallback(targets, out, message, group, every=every)
        if self.outbox is not None and (self.outbox_copy or not targets):
            report.attempts.append(_to_outbox(self.outbox, out))
        return report

    def _fallback(self, targets: list[Target], out: Outgoing, message: Message, group: GroupText, *, every: bool) -> DeliveryReport:
        report = DeliveryReport()
        delivered = False
        for t in targets:
            if delivered and not (t.always or every):
                continue
            attempt = self.send_to(t, out, message, group)
            report.attempts.append(attempt)
            if attempt.ok and not t.always:
                delivered = True
        return report

    def send_to(self, t: Target, out: Outgoing, message: Message, group: GroupText | None = None) -> Attempt:
        if isinstance(t.plugin, AppClient):
            return t.plugin.attempt(t.to or "", out)
        if t.plugin is None:
            return Attempt(t.kind, t.redacted, False, "通知地址无法识别，请在人员表或部门表中改正后重新导入")
        if t.kind == ChannelKind.EMAIL:
            return self._email(t, out, message)
        if t.kind in BOT_KINDS:
            return self._bot(t, group or GroupText(out, self.template_dir))
        return self._chat(t, message)

    def _email(self, t: Target, out: Outgoing, message: Message) -> Attempt:
        p = t.plugin
        recipients = [t.to] if t.to else [addr for _name, addr in p.targets]
        timeout = float(getattr(p, "socket_connect_timeout", 0) or 0) if "cto=" in t.url else self.smtp_timeout
        final_timeout = max(self.smtp_final_timeout, timeout)
        name = out.recipient if t.to else None
        try:
            for to in recipients:
                data = build_email(
                    subject=message.subject,
                    text=message.text,
                    html=message.html,
                    from_addr=p.from_addr,
                    to=to,
                    to_name=name,
                    smtp_host=p.smtp_host,
                    tz=self.tz,
                )
                self.pool.send(p, p.from_addr[1], [to], data, timeout, final_timeout)
        except RelayPaused as err:  # nothing tried: not the recipient's failure, the message waits
            return Attempt(ChannelKind.EMAIL, t.redacted, False, smtp_reason(err, p.smtp_host, p.port, timeout), skipped=True)
        except Exception as err:  # noqa: BLE001 - any failure is a reason on the attempt
            return Attempt(ChannelKind.EMAIL, t.redacted, False, smtp_reason(err, p.smtp_host, p.port, timeout))
        return Attempt(ChannelKind.EMAIL, t.redacted, True)

    def _chat(self, t: Target, message: Message) -> Attempt:
        from apprise import NotifyFormat

        limit = t.kind.chat_limit or min(int(getattr(t.plugin, "body_maxlen", OTHER_CHAT_LIMIT) or OTHER_CHAT_LIMIT), OTHER_CHAT_LIMIT)
        parts = split_chat(message.chat, limit, CUT)
        mention = ""
        if t.kind == ChannelKind.DINGTALK and getattr(t.plugin, "targets", None):
            # DingTalk highlights an @ only when the mobile number also appears in the text
            mention = "\n" + " ".join(f"@{m}" for m in t.plugin.targets)
        for n, part in enumerate(parts, 1):
            with quiet_apprise() as said:
                try:
                    ok = t.plugin.notify(body=part + mention, title="", body_format=NotifyFormat.TEXT)
                except Exception as err:  # noqa: BLE001 - a plugin should not raise; if it does, it failed
                    ok = False
                    said.append(f"{err.__class__.__name__}: {err}")
            if not ok:
                reason = "；".join(dict.fromkeys(s for s in said if s)) or "服务未接受该消息"
                prefix = f"第 {n}/{len(parts)} 段" if len(parts) > 1 else ""
                done = f"（前 {n - 1} 段已发出）" if n > 1 else ""
                return Attempt(t.kind, t.redacted, False, f"{t.kind.label}{prefix}发送失败{done}：{reason}", parts=len(parts))
        return Attempt(t.kind, t.redacted, True, parts=len(parts))

    def _bot(self, t: Target, group: GroupText) -> Attempt:
        """A group bot: the text without personal links, in parts, each answer read
        (``notifications.bots``); a rate limit gives the message back for later (not an attempt)."""
        text = group.text()
        if group.leaks(text):  # a template override that prints a link anyway: never post it to a group
            return Attempt(t.kind, t.redacted, False, f"{t.kind.label}群消息中含有个人办理链接，已停止发送，请检查消息模板")
        parts = split_chat(text, t.kind.chat_limit or OTHER_CHAT_LIMIT, CUT)
        mention = ""
        if t.kind == ChannelKind.DINGTALK and getattr(t.plugin, "targets", None):
            # DingTalk highlights an @ only when the mobile number also appears in the text
            mention = "\n" + " ".join(f"@{m}" for m in t.plugin.targets)
        for n, part in enumerate(parts, 1):
            answer = bots.send(t.kind, t.plugin, part + mention)
            if not answer.ok:
                prefix = f"第 {n}/{len(parts)} 段" if len(parts) > 1 else ""
                done = f"（前 {n - 1} 段已发出）" if n > 1 else ""
                reason = f"{t.kind.label}{prefix}发送失败{done}：{answer.reason}"
                return Attempt(t.kind, t.redacted, False, reason, parts=len(parts), skipped=answer.retryable and n == 1)
        return Attempt(t.kind, t.redacted, True, parts=len(parts))

    def close(self) -> None:
        self.pool.close()


def summarised(out: Outgoing) -> bool:
    """A person's own digest: its group bots get a summary, never the digest with its links."""
    return out.audience == Audience.PERSON and out.payload.get("kind", "digest") == "digest"


class GroupText:
    """What a group bot may receive of a message, rendered once when first needed: a person's
    digest as a summary (``digest.summary.chat.j2``), anything else without action links."""

    def __init__(self, out: Outgoing, template_dir: Path | None):
        self.out, self.template_dir = out, template_dir
        self._text: str | None = None

    def text(self) -> str:
        if self._text is None:
            self._text = render_group_chat(self.out, summary=summarised(self.out), template_dir=self.template_dir)
        return self._text

    def leaks(self, text: str) -> bool:
        page = self.out.page_url  # 我的督办 acts for its holder (批量签收): as personal as an action link
        return any(url in text for url in self.out.urls.values()) or bool(page and page in text)


def _to_outbox(outbox: OutboxChannel, out: Outgoing) -> Attempt:
    try:
        outbox.send(out)
    except Exception as err:  # noqa: BLE001
        return Attempt(ChannelKind.OUTBOX, str(outbox.folder), False, f"{err.__class__.__name__}: {err}")
    return Attempt(ChannelKind.OUTBOX, str(outbox.path_for(out)), True)
