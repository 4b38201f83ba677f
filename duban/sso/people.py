"""Who an identity is: the person of the 人员 sheet, and their dashboard account.

CAS and OIDC accounts are matched with the column ``DUBAN_SSO_MATCH`` names (工号 ``staff_no`` by
default, or ``email`` / ``mobile``); WeCom and DingTalk userids with ``wecom_userid`` /
``dingtalk_userid``.  Only active people count.  The same account in plans of one institution is
one human (:mod:`duban.person_rows`); none, two in one plan, or the account registered at two
institutions is a polite refusal that says what to ask the office, and shows no data.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from duban import person_rows
from duban.models import Account, Person
from duban.sso import Identity, SsoError
from duban.vocabulary import SignInMethod, SsoAccountMatch, SsoMatch

# what the refusal calls the account, per column
ACCOUNT_NAMES = {
    SsoMatch.STAFF_NO: "工号",
    SsoMatch.EMAIL: "电子邮箱",
    SsoMatch.MOBILE: "手机号",
    "wecom_userid": "企业微信账号",
    "dingtalk_userid": "钉钉账号（userid）",
}


def column_of(method: SignInMethod, match: SsoMatch) -> str:
    if method == SignInMethod.WECOM:
        return "wecom_userid"
    if method == SignInMethod.DINGTALK:
        return "dingtalk_userid"
    return str(match)


def people_of(session: Session, identity: Identity, *, match: SsoMatch) -> list[Person]:
    """The active person rows the identity names: one per plan of ONE institution (the same human
    in the school's plans, :mod:`duban.person_rows`), the first made first; else :class:`SsoError`.
    A sign-in keeps the first; 我的督办 gathers the others (:func:`duban.person_rows.same_person_rows`).

    None: not registered.  Two rows in one plan: ambiguous.  Rows in two institutions: refused
    (a 工号 is unique only inside a school, and one sign-in cannot say which), never naming them."""
    column = column_of(identity.method, match)
    value = identity.subject.strip()
    found = person_rows.matching(session, column, value)
    what = ACCOUNT_NAMES[column]
    if not found:
        raise SsoError(
            "未找到您的人员信息",
            f"您已通过身份认证（{what}：{value}），但督办系统的人员名单中没有登记这个{what}。"
            f"请联系领导小组办公室，在人员表中为您登记{what}后再登录。",
            403,
        )
    if len({institution for _, _, institution in found}) > 1:
        raise SsoError(
            "无法确定您所在的学校",
            f"您的{what}（{value}）在多所学校的人员名单中均有登记，系统无法确定您所在的学校。"
            f"请联系本校领导小组办公室，由其核对人员表中的{what}。",
            409,
        )
    plans = [plan for _, plan, _ in found]
    if len(set(plans)) < len(plans):
        raise SsoError(
            "无法确定您的身份",
            f"督办系统的人员名单中有多位人员登记了同一{what}（{value}），无法确定您的身份。请联系领导小组办公室核对人员表中的{what}。",
            409,
        )
    people = {p.id: p for p in session.scalars(select(Person).where(Person.id.in_([pid for pid, _, _ in found])))}
    return [people[pid] for pid, _, _ in found]


def account_of(session: Session, identity: Identity, people: Sequence[Person], *, mode: SsoAccountMatch) -> Account | None:
    """The active dashboard account of the identity: the one linked to its person (any of its rows
    in the school's plans, :func:`people_of`), or (``login``) the one whose login is the
    institution's account.  Two linked accounts: none (ambiguous)."""
    if mode == SsoAccountMatch.LOGIN:
        q = select(Account).where(Account.login == identity.subject.strip())
    elif people:
        q = select(Account).where(Account.person_id.in_([p.id for p in people]))
    else:
        return None
    found = list(session.scalars(q.where(Account.active.is_(True)).limit(2)))
    return found[0] if len(found) == 1 else None
