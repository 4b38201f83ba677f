"""The 人员 sheet's accounts (工号, 企业微信账号, 钉钉userid, 飞书open_id): read under the headers offices
write, checked at import (sheet, row and column named), synchronised and written back by export."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from definitions.export import write_plan_file
from definitions.loaders import load_plan
from definitions.problems import PlanProblems
from duban.db import session_scope
from duban.models import Person
from duban.plans.export import plan_file_from_store
from duban.plans.importer import import_plan
from tests.factories import DEPARTMENT_ROWS, PEOPLE_ROWS, small_plan, write_xlsx, write_yaml

TASKS = [
    ["序号", "育人体系", "重点项目", "具体任务", "牵头单位", "责任人", "完成时限"],
    ["1", "课程育人", "思政课", "集体备课", "教务处", "教务处处长", "2026年12月底前"],
]
OPEN_ID = "ou_7d8a6e6df7621556ce0d21922b676706"


def people(header_ids, *ids_per_row):
    rows = [[*PEOPLE_ROWS[0], *header_ids]]
    for i, row in enumerate(PEOPLE_ROWS[1:]):
        rows.append([*row, *(ids_per_row[i] if i < len(ids_per_row) else [""] * len(header_ids))])
    return rows


def xlsx(tmp_path, rows):
    return write_xlsx(tmp_path / "p.xlsx", {"任务清单": TASKS, "人员": rows, "部门": DEPARTMENT_ROWS})


@pytest.mark.parametrize(
    "headers",
    [
        ["工号", "企业微信账号", "钉钉userid", "飞书open_id"],
        ["职工号", "企业微信", "钉钉", "飞书"],
        ["统一身份认证账号", "企业微信 UserID", "钉钉 UserID", "飞书 OpenID"],
    ],
)
def test_accounts_are_read_under_the_usual_headers(tmp_path, headers):
    rows = people(headers, ["0012345", "zhang.san@jwc", "manager4220", OPEN_ID], [20190002, "LiSi", "", ""])
    d = load_plan(xlsx(tmp_path, rows))
    by_name = {p.name: p for p in d.people}
    secretary, vice = by_name["党委书记"], by_name["分管教学副校长"]
    assert (secretary.staff_no, secretary.wecom_userid, secretary.dingtalk_userid, secretary.feishu_open_id) == (
        "0012345", "zhang.san@jwc", "manager4220", OPEN_ID,
    )  # fmt: skip
    assert (vice.staff_no, vice.wecom_userid, vice.dingtalk_userid, vice.feishu_open_id) == ("20190002", "LiSi", None, None)


@pytest.mark.parametrize(
    ("column", "value", "expected"),
    [
        (
            "企业微信账号",
            "张三",
            "企业微信账号“张三”格式不正确：应为企业微信成员的账号（UserID），1–64 位字母、数字或 _-.@，以字母或数字开头",
        ),
        ("企业微信账号", "_zhang", "企业微信账号“_zhang”格式不正确"),
        ("企业微信账号", "a" * 65, "企业微信账号“" + "a" * 65 + "”格式不正确"),
        ("钉钉userid", "user id", "钉钉userid“user id”格式不正确：应为钉钉用户的 userid，1–64 位字母、数字或 _-.@$"),
        ("飞书open_id", "on_7d8a6e6df", "飞书open_id“on_7d8a6e6df”格式不正确：应为飞书用户在本应用下的 open_id，以 ou_ 开头"),
        ("飞书open_id", "zhangsan", "飞书open_id“zhangsan”格式不正确"),
    ],
)
def test_a_malformed_account_is_named_by_sheet_row_and_column(tmp_path, column, value, expected):
    headers = ["工号", "企业微信账号", "钉钉userid", "飞书open_id"]
    ids = ["", "", "", ""]
    ids[headers.index(column)] = value
    with pytest.raises(PlanProblems) as err:
        load_plan(xlsx(tmp_path, people(headers, [], [], ids)))
    (problem,) = err.value.problems
    assert problem.where == f"p.xlsx · 工作表「人员」 · 第 4 行 · 「{column}」列"
    assert problem.message.startswith(expected)


def test_an_account_given_to_two_people_is_refused(tmp_path):
    headers = ["工号", "企业微信账号"]
    with pytest.raises(PlanProblems) as err:
        load_plan(xlsx(tmp_path, people(headers, ["1001", "zhangsan"], ["1001", "zhangsan"])))
    assert [str(p) for p in err.value.problems] == [
        "p.xlsx · 工作表「人员」 · 第 3 行 · 「工号」列：工号“1001”已填给第 1 位人员（党委书记）；每人的工号应各不相同",
        "p.xlsx · 工作表「人员」 · 第 3 行 · 「企业微信账号」列：企业微信账号“zhangsan”已填给第 1 位人员（党委书记）；每人的企业微信账号应各不相同",
    ]


def test_yaml_keys_and_their_problems(tmp_path):
    plan = small_plan()
    plan["people"][0].update(staff_no="1001", wecom_userid="sj", dingtalk_userid="01234", feishu_open_id=OPEN_ID)
    (secretary, *_) = load_plan(write_yaml(tmp_path / "p.yaml", plan)).people
    assert (secretary.staff_no, secretary.wecom_userid, secretary.dingtalk_userid, secretary.feishu_open_id) == (
        "1001",
        "sj",
        "01234",
        OPEN_ID,
    )
    plan["people"][1]["feishu_open_id"] = "ou_bad id"
    with pytest.raises(PlanProblems) as err:
        load_plan(write_yaml(tmp_path / "p.yaml", plan))
    assert [p.where for p in err.value.problems] == ["p.yaml · people[1].feishu_open_id"]


def test_sync_writes_the_accounts_shows_the_change_and_export_writes_them_back(engine, tmp_path):
    plan = small_plan()
    plan["people"][2].update(staff_no="0012345", wecom_userid="zhangsan", dingtalk_userid="0123456789", feishu_open_id=OPEN_ID)
    path = write_yaml(tmp_path / "p.yaml", plan)
    import_plan(engine, path, now=dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC))
    with session_scope(engine) as s:
        row = s.execute(
            select(Person.staff_no, Person.wecom_userid, Person.dingtalk_userid, Person.feishu_open_id).where(Person.name == "教务处处长")
        ).one()
        assert tuple(row) == ("0012345", "zhangsan", "0123456789", OPEN_ID)
    plan["people"][2]["wecom_userid"] = "zhangsan2"
    del plan["people"][2]["feishu_open_id"]
    diff = import_plan(engine, write_yaml(tmp_path / "p.yaml", plan), now=dt.datetime(2026, 11, 3, 9, 0, tzinfo=dt.UTC))
    assert diff.people_changed == ["教务处处长"]
    with session_scope(engine) as s:
        row = s.execute(select(Person.wecom_userid, Person.feishu_open_id).where(Person.name == "教务处处长")).one()
        assert tuple(row) == ("zhangsan2", None)
        exported = plan_file_from_store(s, "demo")
    assert exported is not None
    out = write_plan_file(exported, tmp_path / "out.xlsx")
    again = {p.name: p for p in load_plan(out).people}["教务处处长"]
    assert (again.staff_no, again.wecom_userid, again.dingtalk_userid, again.feishu_open_id) == ("0012345", "zhangsan2", "0123456789", None)


def test_csv_people_file_with_accounts(tmp_path):
    import csv

    def write(name, rows):
        with open(tmp_path / name, "w", encoding="utf-8-sig", newline="") as f:
            csv.writer(f).writerows(rows)

    write("清单.csv", TASKS)
    write("人员.csv", people(["工号", "企业微信", "钉钉", "飞书"], ["0012345", "sj", "", ""], ["", "", "", "ou_bad-id"]))
    write("部门.csv", DEPARTMENT_ROWS)
    with pytest.raises(PlanProblems) as err:
        load_plan(tmp_path / "清单.csv")
    (problem,) = err.value.problems
    assert str(problem).startswith("人员.csv · 第 3 行 · 「飞书」列：飞书open_id“ou_bad-id”格式不正确")
    write("人员.csv", people(["工号", "企业微信", "钉钉", "飞书"], ["0012345", "sj", "", ""]))
    (secretary, *_) = load_plan(tmp_path / "清单.csv").people
    assert (secretary.staff_no, secretary.wecom_userid) == ("0012345", "sj")
