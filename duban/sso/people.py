"""Who an identity is: the person of the 人员 sheet, and their dashboard account.

CAS and OIDC accounts are matched with the column ``DUBAN_SSO_MATCH`` names (工号 ``staff_no`` by
default, or ``email`` / ``mobile``); WeCom and DingTalk userids with ``wecom_userid`` /
``dingtalk_userid``.  Only active people count; none, or more than one, is a polite refusal that
says what to ask the office, and shows no data.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

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


def person_of(session: Session, identity: Identity, *, match: SsoMatch) -> Person:
    """The one active person the identity names (else :class:`SsoError`)."""
    column = column_of(identity.method, match)
    attr = getattr(Person, column)
    value = identity.subject.strip()
    cond = func.lower(attr) == value.lower() if column == SsoMatch.EMAIL else attr == value
    found = list(session.scalars(select(Person).where(cond, Person.active.is_(True)).order_by(Person.id).limit(2)))
    what = ACCOUNT_NAMES[column]
    if not found:
        raise SsoError(
            "未找到您的人员信息",
            f"您已通过身份认证（{what}：{value}），但督办系统的人员名单中没有登记这个{what}。"
            f"请联系领导小组办公室，在人员表中为您登记{what}后再登录。",
            403,
        )
    if len(found) > 1:
        raise SsoError(
            "无法确定您的身份",
            f"督办系统的人员名单中有多位人员登记了同一{what}（{value}），无法确定您的身份。请联系领导小组办公室核对人员表中的{what}。",
            409,
        )
    return found[0]


def account_of(session: Session, identity: Identity, person: Person | None, *, mode: SsoAccountMatch) -> Account | None:
    """The active dashboard account of the identity: the one linked to the person, or (``login``)
    the one whose login is the institution's account.  Two linked accounts: none (ambiguous)."""
    if mode == SsoAccountMatch.LOGIN:
        q = select(Account).where(Account.login == identity.subject.strip())
    elif person is not None:
        q = select(Account).where(Account.person_id == person.id)
    else:
        return None
    found = list(session.scalars(q.where(Account.active.is_(True)).limit(2)))
    return found[0] if len(found) == 1 else None
