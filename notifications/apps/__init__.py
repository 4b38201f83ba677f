"""Personal app messages: WeCom application messages, DingTalk 工作通知, Feishu/Lark app messages.

A group bot (``notifications.channels``) cannot address one person; an institution's own app can.
Each vendor is configured once per installation (``DUBAN_WECOM_*``, ``DUBAN_DINGTALK_*``,
``DUBAN_FEISHU_*``; docs/notifications.md) and reaches a person by the id the 人员 sheet gives
(企业微信账号, 钉钉userid, 飞书open_id).  A message becomes a card with one button to the person's
own page.  ``Apps.targets`` lists the app targets of one message; the dispatcher sends each of them
in addition to the person's own channels.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from duban.vocabulary import Audience
from notifications.apps.base import AppClient
from notifications.channel import Outgoing

# the key of a person's id in ``Outgoing.app_ids`` for each vendor
WECOM, DINGTALK, FEISHU = "wecom", "dingtalk", "feishu"


@dataclass
class Apps:
    """The configured apps, by the key of the person's id they use."""

    clients: dict[str, AppClient] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.clients)

    def targets(self, out: Outgoing) -> list[tuple[AppClient, str]]:
        """(client, the person's id) for each configured app the recipient has an id for."""
        if out.audience != Audience.PERSON:
            return []
        return [(client, userid) for key, client in self.clients.items() if (userid := (out.app_ids or {}).get(key))]


__all__ = ["DINGTALK", "FEISHU", "WECOM", "AppClient", "Apps"]
