"""What a run needs, built once from the settings: calendar, time zone, links, channel."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from duban.db import get_engine
from duban.links import LinkMaker
from duban.rules.calendar import InstitutionCalendar, WorkCalendar
from duban.settings import Settings, get_settings


@dataclass
class Runtime:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return get_engine(self.settings.database_url)

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.settings.timezone)

    @cached_property
    def calendar(self) -> WorkCalendar:
        institution = InstitutionCalendar.load(self.settings.calendar_file) if self.settings.calendar_file else None
        return WorkCalendar(institution)

    def today(self) -> dt.date:
        return dt.datetime.now(self.tz).date()

    def for_institution(self, code: str) -> Runtime:
        """The runtime of one institution: the installation's settings with the institution's own
        (time zone, calendar file, templates, send hours, mail relay, chat apps) applied; the same
        store.  Raises ``InstitutionError`` for an unknown code."""
        from duban import institutions
        from duban.db import session_scope

        with session_scope(self.engine, readonly=True) as session:
            overrides = dict(institutions.get(session, code).settings or {})
        return Runtime(institutions.settings_for(self.settings, overrides, code=code)) if overrides else self

    def links(self, today: dt.date | None = None) -> LinkMaker:
        return LinkMaker(
            self.settings.base_url, self.settings.secret_key or "", today or self.today(), days_after_due=self.settings.link_days_after_due
        )

    @cached_property
    def channel(self):
        """Where messages go. In demo mode always the local outbox, at once and at any hour: a demo
        never reaches anybody, whatever addresses its plan carries. Otherwise the local outbox until
        a channel is configured (DUBAN_SMTP_URL, or an apprise URL of a person, department or plan);
        then the apprise dispatcher, which still writes to the outbox for recipients without any
        channel (and a copy of every message with DUBAN_OUTBOX_COPY=1)."""
        from notifications.outbox import OutboxChannel

        outbox = OutboxChannel(self.settings.outbox_path)
        if self.settings.demo or not (self.settings.smtp_url or self.apps or channels_configured(self.engine)):
            return outbox
        from notifications.channels import AppriseChannel

        return AppriseChannel(
            self.settings.smtp_url,
            template_dir=self.settings.template_dir,
            outbox=outbox,
            outbox_copy=bool(self.settings.outbox_copy),
            smtp_timeout=self.settings.smtp_timeout,
            smtp_final_timeout=self.settings.smtp_final_timeout,
            tz=self.tz,
            apps=self.apps,
        )

    @cached_property
    def apps(self):
        """The institution's chat apps (WeCom, DingTalk, Feishu/Lark) that are configured: see
        :func:`configured_apps`."""
        return configured_apps(self.settings)

    def quiet(self):
        """Quiet hours for delivery: the institution's window, and each plan's own (policy.send_hours)."""
        from sqlalchemy import select

        from duban.db import session_scope
        from duban.models import Plan
        from duban.rules.quiet import QuietHours, parse_send_hours

        per_plan = {}
        with session_scope(self.engine, readonly=True) as session:
            for pid, policy in session.execute(select(Plan.id, Plan.policy)):
                if (policy or {}).get("send_hours"):
                    per_plan[pid] = parse_send_hours(policy["send_hours"])
        return QuietHours(self.calendar, self.tz, parse_send_hours(self.settings.send_hours), per_plan)

    def deliver_options(self, today: dt.date | None = None) -> dict:
        """What ``duban.sweep.delivery.deliver`` needs besides the channel (flows, the CLI and the web app pass these).

        Quiet hours and worker threads apply to real channels only: the local outbox disturbs nobody."""
        from notifications.channels import AppriseChannel

        real = isinstance(self.channel, AppriseChannel)
        return dict(
            links=self.links(today),
            template_dir=self.settings.template_dir,
            workers=self.settings.deliver_workers if real else 1,
            quiet=self.quiet() if real else None,
            unreachable_after=self.settings.unreachable_after,
            today=today or self.today(),
            lease=dt.timedelta(seconds=self.settings.deliver_lease),
            journal_dir=self.settings.data_dir / "delivery",
        )


def configured_apps(settings: Settings, resolve=None):
    """The apps of ``settings`` (``DUBAN_WECOM_*``, ``DUBAN_DINGTALK_*``, ``DUBAN_FEISHU_*``) as
    :class:`notifications.apps.Apps`.  A secret given as a Prefect Secret block's name is read when
    first needed, by ``resolve`` (default: :func:`duban.orchestration.secret_block_value`)."""
    from notifications.apps import DINGTALK, FEISHU, WECOM, Apps
    from notifications.apps.base import AppClient
    from notifications.apps.feishu import FeishuApp

    s = settings
    clients: dict[str, AppClient] = {}
    if wecom := wecom_app(s, resolve):
        clients[WECOM] = wecom
    if s.dingtalk_agent_id is not None and (dingtalk := dingtalk_app(s, resolve)):
        clients[DINGTALK] = dingtalk
    if s.feishu_app_id:
        clients[FEISHU] = FeishuApp(
            s.feishu_app_id, _secret(s.feishu_app_secret, s.feishu_app_secret_block, resolve), lark=s.feishu_lark,
            api_base=s.feishu_api_base, timeout=s.app_timeout, base_url=s.base_url,
        )  # fmt: skip
    return Apps(clients)


def wecom_app(settings: Settings, resolve=None, *, timeout: float | None = None):
    """The WeCom app (``DUBAN_WECOM_*``) when configured, else None: the app messages and the WeCom
    sign-in share it (and so its cached token)."""
    from notifications.apps.wecom import WeComApp

    s = settings
    if not (s.wecom_corp_id and s.wecom_agent_id is not None):
        return None
    return WeComApp(
        s.wecom_corp_id, s.wecom_agent_id, _secret(s.wecom_secret, s.wecom_secret_block, resolve),
        api_base=s.wecom_api_base, timeout=timeout or s.app_timeout, base_url=s.base_url,
    )  # fmt: skip


def dingtalk_app(settings: Settings, resolve=None, *, timeout: float | None = None):
    """The DingTalk app (``DUBAN_DINGTALK_*``) when its key and secret are configured, else None:
    工作通知, 待办 and the DingTalk sign-in share it (and so its cached tokens)."""
    from notifications.apps.dingtalk import DingTalkApp

    s = settings
    if not (s.dingtalk_app_key and (s.dingtalk_app_secret is not None or s.dingtalk_app_secret_block)):
        return None
    return DingTalkApp(
        s.dingtalk_app_key, s.dingtalk_agent_id, _secret(s.dingtalk_app_secret, s.dingtalk_app_secret_block, resolve),
        api_base=s.dingtalk_oapi_base, v1_base=s.dingtalk_api_base, timeout=timeout or s.app_timeout, base_url=s.base_url,
    )  # fmt: skip


def _secret(value, block: str | None, resolve):
    from notifications.apps.base import Secret

    return Secret(value.get_secret_value() if value is not None else None, block or None, resolve or secret_block_value)


def secret_block_value(name: str) -> str:
    # Prefect is orchestration's (docs/architecture.md): imported only when a secret is a block's name
    from duban.orchestration import secret_block_value

    return secret_block_value(name)


def channels_configured(engine: Engine) -> bool:
    """Whether any person, department or plan of the store has a notification URL."""
    from sqlalchemy import String, cast, func, literal, select

    from duban.db import session_scope
    from duban.models import Department, Person, Plan

    with session_scope(engine, readonly=True) as session:
        for column in (Person.notify_urls, Department.notify_urls):  # "[]" when empty
            if session.scalar(select(literal(1)).where(func.length(cast(column, String)) > 2).limit(1)):
                return True
        return any(any(v for v in (c or {}).values()) for c in session.scalars(select(Plan.channels)))


def runtime() -> Runtime:
    return Runtime(get_settings())
