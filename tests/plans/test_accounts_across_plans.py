"""The 人员 sheet's people are the institution's (issue 18): a 工号 (or chat-app userid) that another
plan of the same institution gives to someone of another name is a warning of the import (file,
sheet, row and column named, and the other plan), never a refusal; the same name, another school's
plan, or the plan itself is no warning."""

from __future__ import annotations

import pytest
from sqlalchemy import select, update

from duban.db import session_scope
from duban.models import Person, Plan
from duban.plans.importer import import_plan
from tests.definitions.test_person_ids import people, xlsx
from tests.factories import small_plan, write_yaml

STAFF_NO = "20061234"
ADVICE = "同一单位内工号相同即视为同一人（其“我的督办”合并显示两个方案的任务），请核对是否填错。"


def plan(code: str, name: str, ids: dict[str, dict[str, str]]) -> dict:
    """The small plan under another code and name, with accounts given to people by name."""
    d = small_plan()
    d["plan"].update(code=code, name=name)
    for person in d["people"]:
        person.update(ids.get(person["name"], {}))
    return d


@pytest.fixture
def school(engine, tmp_path):
    """甲大学 (institution a): 三全育人, where 教务处处长 has the 工号 20061234."""
    import_plan(
        engine, write_yaml(tmp_path / "sqyr.yaml", plan("sqyr", "三全育人", {"教务处处长": {"staff_no": STAFF_NO}})), institution="a"
    )
    return engine


def staff_nos(engine) -> set[tuple[str, str, str]]:
    with session_scope(engine, readonly=True) as s:
        rows = s.execute(
            select(Plan.code, Person.name, Person.staff_no).join(Plan, Plan.id == Person.plan_id).where(Person.staff_no.is_not(None))
        )
        return {tuple(r) for r in rows}


def test_the_same_staff_no_under_another_name_is_a_warning_not_a_refusal(school, tmp_path):
    path = write_yaml(tmp_path / "ylxk.yaml", plan("ylxk", "一流学科", {"教务处副处长": {"staff_no": STAFF_NO}}))
    expected = (
        "ylxk.yaml · people[3].staff_no：工号“20061234”在本单位的方案“三全育人”中登记为“教务处处长”，"
        "与此处的姓名“教务处副处长”不同。" + ADVICE
    )
    dry = import_plan(school, path, institution="a", dry_run=True)
    assert dry.warnings == [expected]
    diff = import_plan(school, path, institution="a")
    assert diff.warnings == [expected]
    assert f"提示：{expected}" in diff.render().splitlines()
    assert diff.to_dict()["warnings"] == [expected]
    assert staff_nos(school) == {("sqyr", "教务处处长", STAFF_NO), ("ylxk", "教务处副处长", STAFF_NO)}
    # re-imported, 三全育人 is warned the other way round
    again = import_plan(school, tmp_path / "sqyr.yaml", institution="a")
    assert again.warnings == [
        "sqyr.yaml · people[2].staff_no：工号“20061234”在本单位的方案“一流学科”中登记为“教务处副处长”，"
        "与此处的姓名“教务处处长”不同。" + ADVICE
    ]


def test_a_workbook_names_the_sheet_row_and_column(school, tmp_path):
    rows = people(["工号", "企业微信账号"], [], [], [STAFF_NO, ""], ["", "xcb"])  # row 4: 教务处处长; row 5: 宣传部部长
    path = xlsx(tmp_path, rows)
    with session_scope(school) as s:  # 三全育人 gives 宣传部部长's WeCom account to 党委书记
        s.execute(update(Person).where(Person.name == "党委书记").values(wecom_userid="xcb"))
    diff = import_plan(school, path, institution="a", plan_code="xlsx-plan")
    assert diff.warnings == [
        "p.xlsx · 工作表「人员」 · 第 5 行 · 「企业微信账号」列：企业微信账号“xcb”在本单位的方案“三全育人”中登记为“党委书记”，"
        "与此处的姓名“宣传部部长”不同。同一单位内企业微信账号相同即视为同一人（其“我的督办”合并显示两个方案的任务），请核对是否填错。"
    ]


def test_no_warning_for_the_same_name_another_school_or_the_plan_itself(school, tmp_path):
    same = write_yaml(tmp_path / "ylxk.yaml", plan("ylxk", "一流学科", {"教务处处长": {"staff_no": STAFF_NO}}))
    assert import_plan(school, same, institution="a").warnings == []
    other = write_yaml(tmp_path / "b.yaml", plan("b-2026", "乙校方案", {"党委书记": {"staff_no": STAFF_NO}}))
    assert import_plan(school, other, institution="b").warnings == []
    assert import_plan(school, tmp_path / "sqyr.yaml", institution="a").warnings == []
    assert staff_nos(school) == {("sqyr", "教务处处长", STAFF_NO), ("ylxk", "教务处处长", STAFF_NO), ("b-2026", "党委书记", STAFF_NO)}
