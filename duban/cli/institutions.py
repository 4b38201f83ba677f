"""``duban institution …``: the institutions (schools) above the plans, and their own settings."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from duban.cli.common import _engine, _fail, _settings, app, console

institution_app = typer.Typer(
    help="单位（学校）：省级部署中每个学校一个单位，各有自己的方案、人员、账户、校历、模板和通知渠道。", no_args_is_help=True
)
app.add_typer(institution_app, name="institution")


@institution_app.command("list")
def institution_list(as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出")] = False) -> None:
    """列出单位、各单位的方案数和单独设置（密钥不显示）。"""
    from duban import institutions
    from duban.db import session_scope

    with session_scope(_engine(), readonly=True) as s:
        rows = institutions.list_all(s)
    if as_json:
        out = [{"code": r.code, "name": r.name, "plans": r.plans, "settings": r.shown_settings()} for r in rows]
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return
    if not rows:
        console.print("还没有单位。导入方案时用 --institution 编号 即建立单位（只有一个单位时可省略）。", markup=False)
        return
    from rich.table import Table

    table = Table()
    for col in ("编号", "名称", "方案数", "单独设置"):
        table.add_column(col)
    for r in rows:
        shown = "；".join(f"{institutions.OVERRIDABLE[k]}={v}" for k, v in r.shown_settings().items()) or "（沿用全局设置）"
        table.add_row(r.code, r.name, str(r.plans), shown)
    console.print(table)


@institution_app.command("add")
def institution_add(
    code: Annotated[str, typer.Argument(help="单位编号（字母、数字、_-.，例如 hnu）")],
    name: Annotated[str, typer.Option("--name", help="单位名称，例如 某某大学")],
) -> None:
    """新建单位（或修改已有单位的名称）。"""
    from duban import institutions
    from duban.db import session_scope

    try:
        with session_scope(_engine(create=True)) as s:
            inst = institutions.ensure(s, code, name)
            shown = f"{inst.name}（{inst.code}）"
    except institutions.InstitutionError as err:
        _fail(str(err), 1)
    console.print(f"单位 {shown} 已就绪。导入其方案：duban import 文件 --institution {code}", markup=False)


@institution_app.command("set")
def institution_set(
    code: Annotated[str, typer.Argument(help="单位编号")],
    values: Annotated[
        list[str],
        typer.Argument(help="设置项=值（如 calendar_file=/etc/duban/hnu-calendar.yaml）；值留空即恢复为全局设置"),
    ],
) -> None:
    """设置单位自己的校历、时区、模板目录、发送时段、邮件服务器或企业微信/钉钉/飞书应用（其余沿用全局设置）。"""
    from duban import institutions
    from duban.db import session_scope

    pairs: dict[str, str | None] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep:
            allowed = "、".join(institutions.OVERRIDABLE)
            _fail(f"“{item}”应写成 设置项=值。可以设置：{allowed}", 2)
        pairs[key.strip().lower()] = value.strip() or None
    try:
        with session_scope(_engine()) as s:
            inst = institutions.set_settings(s, code, pairs, base=_settings())
            shown = f"{inst.name}（{inst.code}）"
    except institutions.InstitutionError as err:
        _fail(str(err), 1)
    console.print(f"已更新单位 {shown} 的设置：{'、'.join(institutions.OVERRIDABLE[k] for k in pairs)}。", markup=False)
