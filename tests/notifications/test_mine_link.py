"""Every digest to a person leads to their own page (我的督办): the line near the top of the plain
text, the HTML and the chat message, and ``Outgoing.page_url`` (the one button of a chat card);
a group bot's copy has none. The link is one reusable link per person and month."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

from sqlalchemy import select

from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Link
from duban.rules.calendar import WorkCalendar
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.vocabulary import Audience, LinkAction
from notifications.channel import Outgoing
from notifications.render import render_message
from tests.factories import import_announced, small_plan, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
MON, LATER = dt.date(2026, 11, 23), dt.date(2026, 11, 27)
SECRET = "m" * 8 + "0123456789abcdefghijklmnopqrstuv"
BASE = "https://duban.example.edu.cn"
MINE = re.compile(r"https://duban\.example\.edu\.cn/me/[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")


def sweep(engine, day: dt.date) -> list[Outgoing]:
    sent: list[Outgoing] = []
    links = LinkMaker(BASE, SECRET, day)
    now = dt.datetime.combine(day, dt.time(9, 0), TZ)
    decide(engine, today=day, cal=WorkCalendar(), tz=TZ)
    assemble(engine, today=day, links=links, now=now)
    deliver(engine, sent.append, now=now, links=links)
    return sent


def setup(engine, tmp_path) -> None:
    plan = small_plan()
    plan["departments"][0]["notify"] = ["wecombot://wkey-jwc-group"]  # the 教务处 group bot: a copy of escalations
    import_announced(engine, write_yaml(tmp_path / "p.yaml", plan), now=IMPORTED)


def test_every_digest_to_a_person_carries_their_page(engine, tmp_path):
    setup(engine, tmp_path)
    sent = sweep(engine, MON)
    people = {o.recipient: o for o in sent if o.audience == Audience.PERSON}
    groups = [o for o in sent if o.audience != Audience.PERSON]
    assert sorted(people) == ["党委书记", "分管教学副校长", "宣传部部长", "教务处副处长", "教务处处长"]
    assert [o.recipient for o in groups] == ["教务处（群）"]
    assert groups[0].page_url is None
    urls = {name: o.page_url for name, o in people.items()}
    assert all(url is not None and MINE.fullmatch(url) for url in urls.values())
    assert len(set(urls.values())) == 5  # each person their own
    head = people["教务处处长"]
    message = render_message(head)
    lines = message.text.splitlines()
    assert lines[:4] == [
        "教务处处长，您好：",
        "",
        "截至 2026-11-23，请您关注以下 2 项督办事项（测试方案）。",
        f"查看我的全部督办事项：{head.page_url}",
    ]
    assert f'查看我的全部督办事项：<a href="{head.page_url}" style="color:#b91c1c;">我的督办</a>' in (message.html or "")
    assert message.chat.splitlines()[1] == f"查看我的全部督办事项：{head.page_url}"
    assert "查看我的全部督办事项" not in render_message(groups[0]).text
    with session_scope(engine) as s:
        mine = s.scalars(select(Link).where(Link.action == LinkAction.MINE)).all()
    assert sorted((m.task_id, m.expires_on) for m in mine) == [(None, dt.date(2027, 1, 30))] * 5


def test_the_next_day_reuses_the_same_page_link(engine, tmp_path):
    setup(engine, tmp_path)
    first = {o.recipient: o.page_url for o in sweep(engine, MON) if o.audience == Audience.PERSON}
    second = {o.recipient: o.page_url for o in sweep(engine, LATER) if o.audience == Audience.PERSON}
    assert "教务处处长" in second and all(second[name] == first[name] for name in second)
    with session_scope(engine) as s:
        assert len(s.scalars(select(Link.id).where(Link.action == LinkAction.MINE)).all()) == 5


def test_an_old_payload_without_a_page_renders_without_the_line():
    out = Outgoing(
        1, 7, "教务处处长", None, MON, "主题",
        {"recipient": "教务处处长", "today": "2026-11-23", "items": [], "audience": Audience.PERSON}, 0,
    )  # fmt: skip
    message = render_message(out)
    assert "查看我的全部督办事项" not in message.text + message.chat + (message.html or "")
