"""Institutions above plans (issue 18): import names the institution, a plan never moves, an
account or a read-only link sees its institution's plans (or, for the province, every plan, read
only), an institution's own settings are checked like the DUBAN_* variables they replace."""

from __future__ import annotations

import copy

import pytest
from alembic import command
from sqlalchemy import select

from definitions.problems import PlanProblems
from duban import accounts, dashboard_access, institutions
from duban.db import alembic_config, make_engine, session_scope, upgrade
from duban.models import Account, Institution, Plan
from duban.plans.importer import import_plan
from duban.settings import Settings
from duban.vocabulary import AccountRole
from tests.factories import small_plan, write_yaml

PASSWORD = "Zq7#long-enough-passphrase"


def school_plan(code: str, organization: str) -> dict:
    plan = copy.deepcopy(small_plan())
    plan["plan"]["code"] = code
    plan["plan"]["organization"] = organization
    return plan


@pytest.fixture
def two_schools(engine, tmp_path):
    """Two schools, one plan each (and a second plan for school A)."""
    import_plan(engine, write_yaml(tmp_path / "a.yaml", school_plan("a-2026", "甲大学")), institution="a")
    import_plan(engine, write_yaml(tmp_path / "a2.yaml", school_plan("a-extra", "甲大学")), institution="a")
    import_plan(engine, write_yaml(tmp_path / "b.yaml", school_plan("b-2026", "乙学院")), institution="b")
    return engine


def plan_ids_by_code(engine) -> dict[str, int]:
    with session_scope(engine, readonly=True) as s:
        return dict(s.execute(select(Plan.code, Plan.id)).all())


def test_import_names_the_institution_after_the_plans_organization(two_schools):
    with session_scope(two_schools, readonly=True) as s:
        rows = [(i.code, i.name, i.plans) for i in institutions.list_all(s)]
    assert rows == [("a", "甲大学", 2), ("b", "乙学院", 1)]


def test_an_import_without_institution_goes_to_the_only_one(engine, tmp_path):
    diff = import_plan(engine, write_yaml(tmp_path / "p.yaml", small_plan()))
    assert (diff.institution, diff.institution_name) == ("default", "测试学院")
    assert diff.render().splitlines()[0] == "新建方案「测试方案」（demo）"
    again = import_plan(engine, write_yaml(tmp_path / "q.yaml", school_plan("second", "测试学院")))
    assert again.institution == "default"


def test_an_import_without_institution_is_refused_when_there_are_several(two_schools, tmp_path):
    with pytest.raises(PlanProblems) as err:
        import_plan(two_schools, write_yaml(tmp_path / "c.yaml", school_plan("c-2026", "丙学院")))
    assert err.value.problems[0].where == "c.yaml · 单位"
    assert err.value.problems[0].message == "系统中有多个单位，请用 --institution 指明是哪一个（已有单位：a、b）。"
    assert "c-2026" not in plan_ids_by_code(two_schools)


def test_a_plan_never_moves_to_another_institution(two_schools, tmp_path):
    with pytest.raises(PlanProblems) as err:
        import_plan(two_schools, write_yaml(tmp_path / "b.yaml", school_plan("a-2026", "乙学院")), institution="b")
    assert err.value.problems[0].message.startswith("方案编号“a-2026”已属于单位“甲大学”（a），不能导入到单位“b”。")
    # a re-import naming its own institution (or none) is an ordinary update
    diff = import_plan(two_schools, write_yaml(tmp_path / "a.yaml", school_plan("a-2026", "甲大学")))
    assert diff.institution == "a"
    assert diff.render().splitlines()[0] == "更新方案「测试方案」（a-2026）（单位：甲大学）"


@pytest.mark.parametrize("code", ["", "-x", "学校", "a b", "x" * 101])
def test_an_institution_code_is_checked(engine, tmp_path, code):
    with pytest.raises(PlanProblems) as err:
        import_plan(engine, write_yaml(tmp_path / "p.yaml", small_plan()), institution=code)
    assert "单位编号" in err.value.problems[0].message
    assert plan_ids_by_code(engine) == {}


def test_accounts_see_their_institution_and_the_province_sees_all_read_only(two_schools):
    ids = plan_ids_by_code(two_schools)
    with session_scope(two_schools) as s:
        school = accounts.create_account(s, "a-office", PASSWORD, role=AccountRole.OFFICE, institution="a")
        one_plan = accounts.create_account(s, "b-leader", PASSWORD, role=AccountRole.LEADER, plan_code="b-2026")
        province = accounts.create_account(s, "prov", PASSWORD, role=AccountRole.OFFICE, province=True)
        viewers = {a.login: dashboard_access.viewer_of(s, ("a", a.id, 0), today=None) for a in (school, one_plan, province)}  # type: ignore[arg-type]
        assert (school.institution_id, one_plan.institution_id, province.institution_id) == (
            s.scalar(select(Institution.id).where(Institution.code == "a")),
            s.scalar(select(Institution.id).where(Institution.code == "b")),
            None,
        )
    seen = {login: sorted(code for code, pid in ids.items() if v.may_see(pid)) for login, v in viewers.items()}
    acted = {login: sorted(code for code, pid in ids.items() if v.may_act(pid)) for login, v in viewers.items()}
    assert seen == {"a-office": ["a-2026", "a-extra"], "b-leader": ["b-2026"], "prov": ["a-2026", "a-extra", "b-2026"]}
    assert acted == {"a-office": ["a-2026", "a-extra"], "b-leader": ["b-2026"], "prov": []}
    assert [v.province for v in viewers.values()] == [False, False, True]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "系统中有多个单位，请用 --institution 指明是哪一个（已有单位：a、b）。（省级账户请用 --province）"),
        ({"institution": "zz"}, "没有编号为“zz”的单位。已有单位：a、b（省级账户请用 --province）"),
        ({"institution": "a", "plan_code": "b-2026"}, "方案“b-2026”不属于单位“a”。"),
        ({"province": True, "institution": "a"}, "省级账户（--province）查看全部单位，不能同时指定方案或单位。"),
    ],
)
def test_an_account_scope_that_cannot_be_is_refused(two_schools, options, message):
    with pytest.raises(accounts.AccountError) as err, session_scope(two_schools) as s:
        accounts.create_account(s, "x", PASSWORD, role=AccountRole.OFFICE, **options)
    assert str(err.value) == message
    with session_scope(two_schools, readonly=True) as s:
        assert s.scalar(select(Account).where(Account.login == "x")) is None


def test_a_read_only_link_of_a_school_sees_only_that_school(two_schools):
    import datetime as dt

    ids = plan_ids_by_code(two_schools)
    today = dt.date(2026, 11, 30)
    with session_scope(two_schools) as s:
        row, _ = dashboard_access.issue_dashboard_link(s, secret="k" * 40, plan_code=None, days=7, today=today, institution="b")
        opened = dashboard_access.start_link_session(
            s, row.id, now=dt.datetime(2026, 11, 30, 2, tzinfo=dt.UTC), until=dt.datetime(2026, 11, 30, 10, tzinfo=dt.UTC)
        )
        viewer = dashboard_access.viewer_of(s, ("l", row.id, opened), today=today)
    assert viewer is not None
    assert sorted(code for code, pid in ids.items() if viewer.may_see(pid)) == ["b-2026"]
    assert not viewer.province


def test_institution_settings_are_checked_like_the_variables_they_replace(two_schools):
    base = Settings(demo=True)
    with session_scope(two_schools) as s:
        institutions.set_settings(s, "a", {"timezone": "Asia/Urumqi", "send_hours": "09:00-17:00"}, base=base)
    with pytest.raises(institutions.InstitutionError) as err, session_scope(two_schools) as s:
        institutions.set_settings(s, "a", {"send_hours": "25:00-26:00", "timezone": ""}, base=base)
    assert str(err.value).startswith("单位“a”的设置有误：DUBAN_SEND_HOURS：")
    with pytest.raises(institutions.InstitutionError) as err, session_scope(two_schools) as s:
        institutions.set_settings(s, "a", {"wecom_corp_id": "ww1"}, base=base)
    assert "企业微信应用的配置不完整" in str(err.value)
    with pytest.raises(institutions.InstitutionError) as err, session_scope(two_schools) as s:
        institutions.set_settings(s, "a", {"database_url": "sqlite://"}, base=base)
    assert str(err.value).startswith("“database_url”不是单位可以单独设置的项。")
    with session_scope(two_schools, readonly=True) as s:
        own = institutions.get(s, "a").settings
        applied = institutions.settings_for(base, own, code="a")
    assert own == {"timezone": "Asia/Urumqi", "send_hours": "09:00-17:00"}  # nothing of the refused changes
    assert (applied.timezone, applied.send_hours, applied.secret_key) == ("Asia/Urumqi", "09:00-17:00", base.secret_key)


def test_runtime_for_an_institution_applies_its_settings(two_schools, use_database):
    from duban.runtime import runtime

    with session_scope(two_schools) as s:
        institutions.set_settings(s, "b", {"timezone": "Asia/Urumqi"}, base=Settings(demo=True))
    rt = runtime()
    assert str(rt.for_institution("b").tz) == "Asia/Urumqi"
    assert rt.for_institution("a") is rt  # nothing of its own: the installation's runtime
    with pytest.raises(institutions.InstitutionError):
        rt.for_institution("zz")


def test_upgrade_puts_existing_plans_and_accounts_into_one_institution(database_url, tmp_path):
    """An installation that ran one school before institutions existed keeps working: its plans,
    accounts and links join the institution ``default``, named after its organization."""
    eng = make_engine(database_url)
    upgrade(eng)
    import_plan(eng, write_yaml(tmp_path / "p.yaml", small_plan()))
    with session_scope(eng) as s:
        accounts.create_account(s, "office", PASSWORD, role=AccountRole.OFFICE)
    command.downgrade(alembic_config(eng), "0010")
    upgrade(eng)
    with session_scope(eng, readonly=True) as s:
        inst = s.scalars(select(Institution)).one()
        assert (inst.code, inst.name) == ("default", "测试学院")
        assert s.scalars(select(Plan.institution_id)).all() == [inst.id]
        assert s.scalars(select(Account.institution_id)).all() == [inst.id]
    eng.dispose()
