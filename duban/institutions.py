"""Institutions: the level above plans (a school under a provincial department).

An installation that runs one school has one institution, ``default``, made by the first import
(or the first account) without ``--institution``.  A province runs one per school: ``duban import
--institution CODE`` names it, and the school's accounts, links and sweep see only its plans.

What an institution sets apart from the installation is kept in ``Institution.settings``, limited
to :data:`OVERRIDABLE` and checked like the ``DUBAN_*`` variable of the same name;
:func:`settings_for` gives the installation's settings with them applied (the sweep, delivery and
the web pages of that school use it through ``Runtime.for_institution``).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from duban.model_base import utcnow
from duban.models import Institution, Plan
from duban.settings import ConfigurationError, Settings

DEFAULT_CODE = "default"
DEFAULT_NAME = "本单位"
CODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

# what an institution may set for itself (the DUBAN_* variable of the same name, lower case)
OVERRIDABLE: dict[str, str] = {
    "timezone": "时区",
    "calendar_file": "校历文件",
    "template_dir": "通知模板目录",
    "send_hours": "发送时段",
    "smtp_url": "邮件服务器",
    "wecom_corp_id": "企业微信企业ID",
    "wecom_agent_id": "企业微信应用AgentId",
    "wecom_secret": "企业微信应用Secret",
    "wecom_secret_block": "企业微信应用Secret（Prefect Secret 块名称）",
    "dingtalk_app_key": "钉钉应用AppKey",
    "dingtalk_app_secret": "钉钉应用AppSecret",
    "dingtalk_app_secret_block": "钉钉应用AppSecret（Prefect Secret 块名称）",
    "dingtalk_agent_id": "钉钉应用AgentId",
    "feishu_app_id": "飞书应用App ID",
    "feishu_app_secret": "飞书应用App Secret",
    "feishu_app_secret_block": "飞书应用App Secret（Prefect Secret 块名称）",
    "feishu_lark": "飞书国际版（Lark）",
}
SECRET_KEYS = frozenset(k for k in OVERRIDABLE if k.endswith("_secret"))


class InstitutionError(Exception):
    """An institution that cannot be found, made or changed as asked; the message is for the operator."""


@dataclass(frozen=True)
class InstitutionInfo:
    id: int
    code: str
    name: str
    plans: int
    settings: dict[str, Any]

    def shown_settings(self) -> dict[str, str]:
        """The institution's own settings as listed to the operator: secrets never shown."""
        return {k: ("（已设置）" if k in SECRET_KEYS else str(v)) for k, v in sorted(self.settings.items())}


def check_code(code: str) -> str:
    code = (code or "").strip()
    if not CODE_PATTERN.match(code):
        raise InstitutionError(f"单位编号“{code}”无效：应以字母或数字开头，只含字母、数字、“_”“-”“.”，不超过 100 个字符。")
    return code


def get(session: Session, code: str) -> Institution:
    inst = session.scalar(select(Institution).where(Institution.code == code))
    if inst is None:
        known = "、".join(session.scalars(select(Institution.code).order_by(Institution.code))) or "（暂无）"
        raise InstitutionError(f"没有编号为“{code}”的单位。已有单位：{known}")
    return inst


def ensure(session: Session, code: str, name: str | None = None) -> Institution:
    """The institution ``code``, made (named ``name``, or after its code) when it does not exist yet."""
    code = check_code(code)
    inst = session.scalar(select(Institution).where(Institution.code == code))
    if inst is None:
        inst = Institution(
            code=code,
            name=(name or (DEFAULT_NAME if code == DEFAULT_CODE else code)).strip()[:300],
            settings={},
            active=True,
            created_at=utcnow(),
        )
        session.add(inst)
        session.flush()
    elif name and name.strip() and inst.name != name.strip():
        inst.name = name.strip()[:300]
    return inst


def default_for(session: Session, *, name: str | None = None) -> Institution:
    """The institution a command means when it names none: the only one there is (made as
    ``default`` when there is none yet); with several, the operator must say which."""
    codes = list(session.scalars(select(Institution.code).order_by(Institution.code)))
    if not codes:
        return ensure(session, DEFAULT_CODE, name or None)
    if len(codes) == 1:
        return get(session, codes[0])
    raise InstitutionError(f"系统中有多个单位，请用 --institution 指明是哪一个（已有单位：{'、'.join(codes)}）。")


def for_import(session: Session, plan_code: str, code: str | None, *, name: str | None = None, organization: str = "") -> Institution:
    """The institution an imported plan belongs to: the one named (made if new), else the plan's
    own (a re-import), else :func:`default_for`.  A plan never moves between institutions: the plan
    code is the installation's, so another school's plan of the same code is refused by name."""
    plan = session.scalar(select(Plan).where(Plan.code == plan_code))
    if plan is not None:
        own = session.get_one(Institution, plan.institution_id)
        if code is not None and check_code(code) != own.code:
            raise InstitutionError(
                f"方案编号“{plan_code}”已属于单位“{own.name}”（{own.code}），不能导入到单位“{code}”。"
                "各单位的方案编号须互不相同：请用 --plan 给该方案另取一个编号（例如加上单位编号前缀）。"
            )
        if name and name.strip():
            own.name = name.strip()[:300]
        return own
    if code is not None:
        return ensure(session, code, name or organization or None)
    return default_for(session, name=name or organization or None)


def list_all(session: Session) -> list[InstitutionInfo]:
    counts = dict(session.execute(select(Plan.institution_id, func.count()).group_by(Plan.institution_id)).all())
    return [
        InstitutionInfo(i.id, i.code, i.name, counts.get(i.id, 0), dict(i.settings or {}))
        for i in session.scalars(select(Institution).order_by(Institution.code))
    ]


@dataclass(frozen=True)
class SweepScope:
    """One institution as the daily sweep and delivery see it: its plans, and whether it has settings
    of its own (then it needs its own runtime: calendar, time zone, channel, apps)."""

    code: str
    name: str
    plan_ids: tuple[int, ...]
    plan_codes: tuple[str, ...]
    own_settings: bool


def sweep_scopes(session: Session, codes: Collection[str] | None = None, *, plan: str | None = None) -> list[SweepScope]:
    """The active institutions that have plans, by code (``codes``: these only; an unknown code
    raises ``InstitutionError`` naming the known ones; ``plan``: only the institution of that plan,
    with that plan only)."""
    for code in codes or ():
        get(session, code)
    q = (
        select(Institution.code, Institution.name, Institution.settings, Plan.id, Plan.code)
        .join(Plan, Plan.institution_id == Institution.id)
        .where(Institution.active.is_(True))
        .order_by(Institution.code, Plan.id)
    )
    if codes is not None:
        q = q.where(Institution.code.in_(list(codes)))
    if plan is not None:
        q = q.where(Plan.code == plan)
    found: dict[str, list[Any]] = {}
    for row in session.execute(q):
        found.setdefault(row[0], []).append(row)
    return [
        SweepScope(
            code,
            rows[0][1],
            tuple(r[3] for r in rows),
            tuple(r[4] for r in rows),
            bool({k for k in rows[0][2] or {} if k in OVERRIDABLE}),
        )
        for code, rows in found.items()
    ]


def school_names(names: list[str]) -> str:
    """Schools as a log line or a run's name says them: the first three, and how many in all."""
    return "、".join(names[:3]) + (f" 等 {len(names)} 个单位" if len(names) > 3 else "")


def plan_ids(session: Session, institution_id: int) -> list[int]:
    return list(session.scalars(select(Plan.id).where(Plan.institution_id == institution_id).order_by(Plan.id)))


def set_settings(session: Session, code: str, values: dict[str, str | None], *, base: Settings) -> Institution:
    """Set (a value) or clear (None or "") the institution's own settings, each checked as the
    ``DUBAN_*`` variable of its name would be; nothing is changed when one is wrong."""
    inst = get(session, code)
    merged = dict(inst.settings or {})
    for key, value in values.items():
        if key not in OVERRIDABLE:
            allowed = "、".join(OVERRIDABLE)
            raise InstitutionError(f"“{key}”不是单位可以单独设置的项。可以设置：{allowed}")
        if value is None or value == "":
            merged.pop(key, None)
        else:
            merged[key] = value
    settings_for(base, merged, code=inst.code)  # raises with the item named
    inst.settings = merged
    return inst


def settings_for(base: Settings, overrides: dict[str, Any] | None, *, code: str = "") -> Settings:
    """``base`` with an institution's own settings applied, checked as a whole (an app configured
    in part is refused as it would be in the environment)."""
    if not overrides:
        return base
    data = base.model_dump()
    data.update({k: v for k, v in overrides.items() if k in OVERRIDABLE})
    try:
        return Settings.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        key = str(first["loc"][0]) if first.get("loc") else ""
        label = OVERRIDABLE.get(key, key)
        raise InstitutionError(f"单位“{code}”的设置“{key}”（{label}）无效：{first['msg']}") from None
    except ConfigurationError as err:
        raise InstitutionError(f"单位“{code}”的设置有误：{err}") from None
