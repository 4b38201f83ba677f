"""One human across the plans of an institution: the person rows that are the same person.

The 人员 sheet is a plan's, so a school with two plans (三全育人 and 一流学科) keeps one person row
per plan for the same human.  Rows of plans of the SAME institution that share an account are one
human: the 工号 (``staff_no``), the WeCom or DingTalk userid, or the column the sign-in matches
(``DUBAN_SSO_MATCH``: e-mail, compared without case, or mobile).  The sign-in opens one session for
them (:mod:`duban.sso.people`) and 我的督办 lists the tasks of every one of them
(:func:`same_person_rows`).  Rows of two institutions never are: a 工号 is unique only inside a
school.  The import warns when two plans of a school give one account two names
(:func:`name_clashes`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.orm import Session

from duban.models import Person, Plan
from duban.values import chunks
from duban.vocabulary import SsoMatch

# the accounts that name one human wherever they appear in a school's plans
IDENTITY_COLUMNS = ("staff_no", "wecom_userid", "dingtalk_userid")


@dataclass(frozen=True)
class PersonRow:
    """One person row of the human: whose tasks, in which plan."""

    person_id: int
    plan_id: int
    plan_name: str
    name: str


def equals(column: str, value: str) -> ColumnElement[bool]:
    """The people whose ``column`` is ``value`` (an e-mail compared without case)."""
    attr = getattr(Person, column)
    return func.lower(attr) == value.lower() if column == SsoMatch.EMAIL else attr == value


def matching(session: Session, column: str, value: str) -> list[tuple[int, int, int]]:
    """(person id, plan id, institution id) of every active person whose ``column`` is ``value``,
    in the order the rows were made."""
    rows = session.execute(
        select(Person.id, Person.plan_id, Plan.institution_id)
        .join(Plan, Plan.id == Person.plan_id)
        .where(equals(column, value), Person.active.is_(True))
        .order_by(Person.id)
    )
    return [(r.id, r.plan_id, r.institution_id) for r in rows]


def same_person_rows(session: Session, person: Person, *, match: str = SsoMatch.STAFF_NO) -> list[PersonRow]:
    """The person's row first, then, by plan, the active row of each other plan of the same
    institution that shares one of its accounts (:data:`IDENTITY_COLUMNS` and the sign-in's
    ``match`` column).  An account that another row of the person's own plan shares too (an
    office's e-mail) names no one; a plan with two rows sharing the person's accounts gives none."""
    own = PersonRow(person.id, person.plan_id, "", person.name)
    accounts = {c: _key(c, v) for c in dict.fromkeys([*IDENTITY_COLUMNS, str(match)]) if (v := getattr(person, c, None)) and v.strip()}
    if not accounts:
        return [_named(session, own)]
    institution = select(Plan.institution_id).where(Plan.id == person.plan_id).scalar_subquery()
    rows = session.execute(
        select(Person.id, Person.plan_id, Plan.name.label("plan_name"), Person.name, *(getattr(Person, c) for c in accounts))
        .join(Plan, Plan.id == Person.plan_id)
        .where(or_(*(equals(c, v) for c, v in accounts.items())), Person.id != person.id)
        .where(Plan.institution_id == institution, Person.active.is_(True))
        .order_by(Person.plan_id, Person.id)
    ).all()
    shared = {c for c, v in accounts.items() if any(r.plan_id == person.plan_id and _key(c, getattr(r, c)) == v for r in rows)}
    per_plan: dict[int, list[PersonRow]] = {}
    for r in rows:
        if r.plan_id != person.plan_id and any(_key(c, getattr(r, c)) == v for c, v in accounts.items() if c not in shared):
            per_plan.setdefault(r.plan_id, []).append(PersonRow(r.id, r.plan_id, r.plan_name, r.name))
    return [_named(session, own)] + [found[0] for found in per_plan.values() if len(found) == 1]


def _key(column: str, value: str | None) -> str:
    """An account as compared: trimmed (an e-mail without case)."""
    value = (value or "").strip()
    return value.lower() if column == SsoMatch.EMAIL else value


def _named(session: Session, row: PersonRow) -> PersonRow:
    name = session.scalar(select(Plan.name).where(Plan.id == row.plan_id)) or ""
    return PersonRow(row.person_id, row.plan_id, name, row.name)


@dataclass(frozen=True)
class Clash:
    """An account given to a person of this plan under another name in another plan of the school."""

    column: str
    value: str
    name: str  # in this plan
    other_name: str
    other_plan: str  # its name


def name_clashes(session: Session, plan_id: int, institution_id: int, accounts: Iterable[tuple[str, str, str]]) -> list[Clash]:
    """For ``accounts`` (column, value, name in this plan), every active person of another plan of
    the institution with the same account and another name."""
    wanted = [(c, v, n) for c, v, n in accounts if c in IDENTITY_COLUMNS and v]
    others: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (column, value) -> [(name, plan name)]
    for column in IDENTITY_COLUMNS:
        attr = getattr(Person, column)
        for part in chunks(sorted({v for c, v, _ in wanted if c == column}), 500):
            rows = session.execute(
                select(attr, Person.name, Plan.name)
                .join(Plan, Plan.id == Person.plan_id)
                .where(Plan.institution_id == institution_id, Plan.id != plan_id, Person.active.is_(True), attr.in_(part))
                .order_by(Plan.id, Person.id)
            )
            for value, name, plan_name in rows:
                others.setdefault((column, value), []).append((name, plan_name))
    return [
        Clash(column, value, name, other, plan_name)
        for column, value, name in wanted
        for other, plan_name in others.get((column, value), ())
        if other != name
    ]
