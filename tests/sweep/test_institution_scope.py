"""The sweep scoped to one institution's plans (``plan_ids``): assemble and deliver take only that
school's ledger items and digests, the other school's wait for their own run; the day's outcome
counts a school's own; delivery goes by institution, one group for the schools without settings
of their own and a group for each school with its own channel."""

from __future__ import annotations

import copy
import datetime as dt
from collections import Counter
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from duban import institutions
from duban.db import session_scope
from duban.links import LinkMaker
from duban.models import Digest, Plan
from duban.rules.calendar import WorkCalendar
from duban.runtime import Runtime
from duban.settings import Settings
from duban.sweep.decisions import decide
from duban.sweep.delivery import deliver
from duban.sweep.digests import assemble
from duban.sweep.sending import day_outcome, delivery_groups
from duban.vocabulary import LedgerStatus
from tests.factories import import_announced, small_plan, write_yaml

TZ = ZoneInfo("Asia/Shanghai")
IMPORTED = dt.datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
MON = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 8, 30, tzinfo=TZ)
LINKS = LinkMaker("https://duban.example.edu.cn", "k" * 8 + "0123456789abcdefghijklmnopqrstuv", MON)


def school_plan(code: str, organization: str) -> dict:
    plan = copy.deepcopy(small_plan())
    plan["plan"]["code"], plan["plan"]["organization"] = code, organization
    return plan


@pytest.fixture
def two_schools(engine, tmp_path):
    import_announced(engine, write_yaml(tmp_path / "a.yaml", school_plan("a-2026", "甲大学")), now=IMPORTED, institution="a")
    import_announced(engine, write_yaml(tmp_path / "b.yaml", school_plan("b-2026", "乙学院")), now=IMPORTED, institution="b")
    for plan in ("a-2026", "b-2026"):
        decide(engine, today=MON, cal=WorkCalendar(), tz=TZ, plan_code=plan)
    with session_scope(engine, readonly=True) as s:
        return engine, dict(s.execute(select(Plan.code, Plan.id)).all())


def digests_by_plan(engine) -> Counter:
    with session_scope(engine, readonly=True) as s:
        return Counter((plan, status) for plan, status in s.execute(select(Digest.plan_id, Digest.status)))


def test_assemble_and_deliver_take_only_the_schools_plans(two_schools):
    engine, plans = two_schools
    a, b = plans["a-2026"], plans["b-2026"]
    assert assemble(engine, today=MON, links=LINKS, now=NOW, plan_ids=[a]) == 5
    assert digests_by_plan(engine) == Counter({(a, LedgerStatus.PENDING): 5})
    assert assemble(engine, today=MON, links=LINKS, now=NOW, plan_ids=[b]) == 5
    sent: list[str] = []
    result = deliver(engine, lambda out: sent.append(out.recipient), now=NOW, links=LINKS, plan_ids=[b])
    assert (result.sent, len(sent)) == (5, 5)
    assert digests_by_plan(engine) == Counter({(a, LedgerStatus.PENDING): 5, (b, LedgerStatus.SENT): 5})
    later = NOW + dt.timedelta(minutes=1)
    assert day_outcome(engine, run_on=MON, since=NOW - dt.timedelta(minutes=1), now=later, plan_ids=[b]).sent == 5
    assert day_outcome(engine, run_on=MON, since=NOW - dt.timedelta(minutes=1), now=later, plan_ids=[a]).sent == 0
    assert deliver(engine, lambda out: None, now=NOW, links=LINKS, plan_ids=[b]).sent == 0  # nothing of a's
    assert deliver(engine, lambda out: None, now=NOW, links=LINKS).sent == 5  # no scope: everything due


def test_delivery_groups_share_the_installations_runtime_unless_a_school_has_its_own(two_schools, database_url):
    engine, plans = two_schools
    rt = Runtime(Settings(database_url=database_url, demo=True))
    (everyone,) = delivery_groups(rt)
    assert (everyone.rt, everyone.codes, everyone.plan_ids, everyone.label) == (rt, ["a", "b"], None, "甲大学、乙学院")
    with session_scope(engine) as s:
        institutions.set_settings(s, "b", {"send_hours": "09:00-17:00"}, base=rt.settings)
    plain, own = delivery_groups(rt)
    assert (plain.rt, plain.codes, plain.plan_ids) == (rt, ["a"], [plans["a-2026"]])
    assert (own.codes, own.plan_ids, own.rt.settings.send_hours) == (["b"], [plans["b-2026"]], "09:00-17:00")
    (only_b,) = delivery_groups(rt, ["b"])
    assert only_b.codes == ["b"]
    with pytest.raises(institutions.InstitutionError, match="没有编号为“zz”的单位。已有单位：a、b"):
        delivery_groups(rt, ["zz"])
