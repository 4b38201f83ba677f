"""What a run needs, built once from the settings: calendar, time zone, links, channel."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from duban.db import get_engine
from duban.rules.calendar import InstitutionCalendar, WorkCalendar
from duban.settings import Settings, get_settings
from duban.sweep import LinkMaker


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

    def links(self, today: dt.date | None = None) -> LinkMaker:
        return LinkMaker(self.settings.base_url, self.settings.secret_key or "", today or self.today())

    @cached_property
    def channel(self):
        from notifications.outbox import OutboxChannel

        return OutboxChannel(self.settings.outbox_path)


def runtime() -> Runtime:
    return Runtime(get_settings())
