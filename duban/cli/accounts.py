"""``duban account …`` and ``duban dashboard-link``: who may open the dashboard."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from duban.cli.common import _engine, _fail, _parse_day, _runtime, _settings, app, console
from duban.vocabulary import AccountRole

account_app = typer.Typer(help="看板账户：领导小组办公室、领导和只读账户的登录名与密码。", no_args_is_help=True)
app.add_typer(account_app, name="account")


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            _fail("没有从标准输入读到密码。", 2)
        return password
    return typer.prompt("密码", hide_input=True, confirmation_prompt="再次输入密码")


@account_app.command("add")
def account_add(
    login: Annotated[str, typer.Argument(help="登录名（不含空格）")],
    role: Annotated[str, typer.Option("--role", help="角色：office（领导小组办公室）、leader（领导）或 viewer（只读，仅统计数字）")],
    plan: Annotated[str | None, typer.Option("--plan", help="只能查看这个方案（方案编号）；缺省为本单位全部方案")] = None,
    institution: Annotated[
        str | None, typer.Option("--institution", help="所属单位（学校）编号：可查看该单位全部方案；只有一个单位时可省略")
    ] = None,
    province: Annotated[bool, typer.Option("--province", help="省级账户：查看全部单位的汇总和各单位情况（只读，不能办理）")] = False,
    person: Annotated[str | None, typer.Option("--person", help="对应人员表中的姓名（办公室账户据此打开审核页面）")] = None,
    name: Annotated[str | None, typer.Option("--name", help="显示名称（缺省为人员姓名或登录名）")] = None,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取密码（供脚本使用）")] = False,
) -> None:
    """新建看板账户（密码输入两次，或用 --password-stdin）。"""
    from duban.accounts import AccountError, create_account
    from duban.db import session_scope

    engine = _engine()
    password = _read_password(password_stdin)
    try:
        with session_scope(engine) as s:
            a = create_account(
                s, login, password, role=role, display_name=name, plan_code=plan, person=person, institution=institution, province=province
            )
            scope = _scope_label(s, a.institution_id, plan)
            label = AccountRole(a.role).label
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已新建账户 {login}（{label}，{scope}）。登录地址：{_settings().base_url.rstrip('/')}/login", markup=False)


def _scope_label(session, institution_id: int | None, plan: str | None) -> str:
    """What an account or a read-only link sees, as the operator reads it."""
    if institution_id is None:
        return "省级：全部单位，只读"
    from duban.institutions import DEFAULT_CODE
    from duban.models import Institution

    inst = session.get_one(Institution, institution_id)
    scope = f"方案 {plan}" if plan else "全部方案"
    return scope if inst.code == DEFAULT_CODE else f"{inst.name}（{inst.code}）{scope}"


@account_app.command("list")
def account_list() -> None:
    """列出看板账户。"""
    from rich.table import Table

    from duban.accounts import list_accounts
    from duban.db import session_scope

    with session_scope(_engine(), readonly=True) as s:
        rows = list_accounts(s)
    if not rows:
        console.print("还没有看板账户。可用 duban account add 登录名 --role office 新建。", markup=False)
        return
    rt = _runtime()
    table = Table()
    for col in ("登录名", "显示名称", "角色", "单位", "方案", "人员", "状态", "最近登录"):
        table.add_column(col)
    for r in rows:
        from duban.links import local_time

        table.add_row(
            r["login"],
            r["name"],
            AccountRole.label_of(r["role"]),
            r["institution"] or "省级（全部单位）",
            r["plan"] or "全部方案",
            r["person"] or "",
            "启用" if r["active"] else "已停用",
            local_time(r["last_login_at"], rt.tz) or "从未登录",
        )
    console.print(table)


@account_app.command("disable")
def account_disable(login: Annotated[str, typer.Argument(help="登录名")]) -> None:
    """停用账户（立即退出其所有登录）。"""
    _set_active(login, False, f"已停用账户 {login}，其所有登录已失效。")


@account_app.command("enable")
def account_enable(login: Annotated[str, typer.Argument(help="登录名")]) -> None:
    """重新启用账户（并解除密码错误造成的锁定）。"""
    _set_active(login, True, f"已启用账户 {login}。")


def _set_active(login: str, active: bool, done: str) -> None:
    from duban.accounts import AccountError, set_active
    from duban.db import session_scope

    try:
        with session_scope(_engine()) as s:
            set_active(s, login, active)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(done, markup=False)


@account_app.command("passwd")
def account_passwd(
    login: Annotated[str, typer.Argument(help="登录名")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="从标准输入读取新密码（供脚本使用）")] = False,
) -> None:
    """重设账户密码（解除锁定，并使其所有登录失效）。"""
    from duban.accounts import AccountError, get_account, set_password
    from duban.db import session_scope

    engine = _engine()
    with session_scope(engine, readonly=True) as s:
        if get_account(s, login) is None:
            _fail(f"没有登录名为“{login}”的账户（可用 duban account list 查看）", 1)
    password = _read_password(password_stdin)
    try:
        with session_scope(engine) as s:
            set_password(s, login, password)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已重设账户 {login} 的密码，其原有登录已失效。", markup=False)


@app.command("dashboard-link")
def dashboard_link_command(
    plan: Annotated[str | None, typer.Option("--plan", help="只读链接可查看的方案（方案编号）；缺省为本单位全部方案")] = None,
    institution: Annotated[
        str | None, typer.Option("--institution", help="所属单位（学校）编号：可查看该单位全部方案；只有一个单位时可省略")
    ] = None,
    province: Annotated[bool, typer.Option("--province", help="省级账户：查看全部单位的汇总和各单位情况（只读，不能办理）")] = False,
    days: Annotated[int | None, typer.Option("--days", help="有效天数（缺省 DUBAN_DASHBOARD_LINK_DAYS，30 天）")] = None,
    note: Annotated[str, typer.Option("--note", help="备注：发给谁（列表中显示）")] = "",
    list_links: Annotated[bool, typer.Option("--list", help="列出已发出的只读链接")] = False,
    revoke: Annotated[int | None, typer.Option("--revoke", help="撤销这个编号的只读链接")] = None,
) -> None:
    """生成看板只读链接（供不使用账户的领导查看，到期失效，可撤销）。"""
    if list_links:
        _list_dashboard_links()
    elif revoke is not None:
        _revoke_dashboard_link(revoke)
    else:
        _issue_dashboard_link(plan=plan, institution=institution, province=province, days=days, note=note)


def _list_dashboard_links() -> None:
    """``duban dashboard-link --list``: every read-only link, with its scope and state."""
    from rich.table import Table

    from duban.dashboard_access import list_dashboard_links
    from duban.db import session_scope
    from duban.links import local_time

    with session_scope(_engine(), readonly=True) as s:
        rows = list_dashboard_links(s)
    if not rows:
        console.print("还没有发出只读链接。", markup=False)
        return
    table = Table()
    for col in ("编号", "单位", "方案", "备注", "有效期至", "状态", "最近使用"):
        table.add_column(col)
    today = _parse_day(None)
    tz = _runtime().tz
    for r in rows:
        state = "已撤销" if r["revoked_at"] else ("已过期" if r["expires_on"] < today else "有效")
        table.add_row(
            str(r["id"]),
            r["institution"] or "省级（全部单位）",
            r["plan"] or "全部方案",
            r["note"],
            r["expires_on"].isoformat(),
            state,
            local_time(r["last_used_at"], tz) or "未使用",
        )
    console.print(table)


def _revoke_dashboard_link(link_id: int) -> None:
    """``duban dashboard-link --revoke ID``."""
    from duban.accounts import AccountError
    from duban.dashboard_access import revoke_dashboard_link
    from duban.db import session_scope
    from duban.models import utcnow

    try:
        with session_scope(_engine()) as s:
            revoke_dashboard_link(s, link_id, now=utcnow())
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"已撤销只读链接 {link_id}，该链接及用它打开的页面已不能再查看。", markup=False)


def _issue_dashboard_link(*, plan: str | None, institution: str | None, province: bool, days: int | None, note: str) -> None:
    """``duban dashboard-link``: a new read-only link, printed once."""
    import getpass

    from duban.accounts import AccountError
    from duban.dashboard_access import dashboard_url, issue_dashboard_link
    from duban.db import session_scope

    settings = _settings()
    try:
        with session_scope(_engine()) as s:
            row, token = issue_dashboard_link(
                s,
                secret=settings.secret_key or "",
                plan_code=plan,
                days=days or settings.dashboard_link_days,
                today=_parse_day(None),
                note=note,
                created_by=getpass.getuser(),
                institution=institution,
                province=province,
            )
            link_id, expires = row.id, row.expires_on
            scope = _scope_label(s, row.institution_id, plan)
    except AccountError as err:
        _fail(str(err), 1)
    console.print(f"只读链接（编号 {link_id}，{scope}，有效期至 {expires.isoformat()}）：", markup=False)
    print(dashboard_url(settings.base_url, token))
    console.print(f"链接只显示一次，请妥善转交；如需收回：duban dashboard-link --revoke {link_id}", markup=False)
