"""A person's accounts (人员 sheet: 工号, 企业微信账号, 钉钉userid, 飞书open_id): the form each service
accepts, and no account given to two people of a plan (the one would read the other's messages)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from definitions.problems import Locator, Problem
from definitions.schema import PersonIn
from definitions.single_line import CONTROL


@dataclass(frozen=True)
class IdRule:
    what: str  # the column's name, as the template writes it
    pattern: re.Pattern[str]
    accepted: str  # what is accepted, in the words of the message


ID_RULES: dict[str, IdRule] = {
    # 工号: the institution's own (CAS / OIDC account); any one line of up to 64 characters
    "staff_no": IdRule("工号", re.compile(r"^\S(?:.{0,62}\S)?$"), "1–64 个字符，不能以空格开头或结尾"),
    # WeCom: "长度为1~64个字节。只能由数字、字母和“_-@.”四种字符组成，且第一个字符必须是数字或字母"
    "wecom_userid": IdRule(
        "企业微信账号",
        re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.@]{0,63}$"),
        "企业微信成员的账号（UserID），1–64 位字母、数字或 _-.@，以字母或数字开头（在企业微信管理后台“通讯录→成员详情→账号”中查看）",
    ),
    "dingtalk_userid": IdRule(
        "钉钉userid",
        re.compile(r"^[A-Za-z0-9_\-.@$]{1,64}$"),
        "钉钉用户的 userid，1–64 位字母、数字或 _-.@$（在钉钉管理后台“通讯录→成员详情”中查看）",
    ),
    "feishu_open_id": IdRule(
        "飞书open_id",
        re.compile(r"^ou_[A-Za-z0-9]{1,61}$"),
        "飞书用户在本应用下的 open_id，以 ou_ 开头，其后为字母和数字（可在飞书开放平台的 API 调试台按手机号或邮箱查询）",
    ),
}


def person_id_problems(people: list[PersonIn], loc: Locator) -> list[Problem]:
    """Every account of ``people`` that is malformed or also given to another person, located."""
    out: list[Problem] = []
    for field, rule in ID_RULES.items():
        seen: dict[str, int] = {}
        for i, person in enumerate(people):
            value = getattr(person, field)
            if not value or CONTROL.search(value):  # a control character is single_line's to report
                continue
            if not rule.pattern.match(value):
                out.append(Problem(loc.person(i, field), f"{rule.what}“{value}”格式不正确：应为{rule.accepted}"))
            elif value in seen:
                first = seen[value]
                out.append(
                    Problem(
                        loc.person(i, field),
                        f"{rule.what}“{value}”已填给第 {first + 1} 位人员（{people[first].name}）；每人的{rule.what}应各不相同",
                    )
                )
            else:
                seen[value] = i
    return out
