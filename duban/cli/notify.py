"""``duban notify test / bulletin``: a person's channels, and the 督办通报."""

from __future__ import annotations

from typing import Annotated

import typer

from duban.cli.common import _engine, _fail, _parse_day, _runtime, _settings, app, console
from duban.vocabulary import MessageKind, PlanRoleKind

notify_app = typer.Typer(help="通知：测试个人的通知渠道、发送督办通报。", no_args_is_help=True)
app.add_typer(notify_app, name="notify")


@notify_app.command("test")
def notify_test_command(
    person: Annotated[str, typer.Argument(help="人员姓名（人员表中的姓名）")],
    plan: Annotated[str | None, typer.Option("--plan", help="方案编号（同名人员在多个方案中时必填）")] = None,
) -> None:
    """向一位人员的每个通知渠道（含企业微信、钉钉、飞书的单位应用）发送一条测试消息，并逐一报告结果和服务方的回答（地址中的密钥不显示）。"""
    from notifications.channels import AppriseChannel

    settings = _settings()
    rt = _runtime()
    p, code, office = _find_person(person, plan)
    out = _test_message(p, office, rt)
    dispatcher = AppriseChannel(
        settings.smtp_url,
        template_dir=settings.template_dir,
        smtp_timeout=settings.smtp_timeout,
        smtp_final_timeout=settings.smtp_final_timeout,
        tz=rt.tz,
        apps=rt.apps,
    )
    try:
        targets = dispatcher.targets(out)
        if not targets:
            hint = "未设置 DUBAN_SMTP_URL（单位邮件服务器）" if p.email else "人员表中没有邮箱"
            _fail(
                f"{p.name} 没有可用的通知渠道：{hint}，通知地址也为空。"
                + ("" if rt.apps else "系统也未配置企业微信、钉钉或飞书的单位应用。")
                + "请在人员表中填写邮箱、通知地址或应用账号后重新导入。",
                1,
            )
        report = dispatcher.send(out, every=True)
    finally:
        dispatcher.close()
    _print_report(p.name, code, targets, report)


def _find_person(person: str, plan: str | None):
    """The person named ``person`` (in plan ``plan``), their plan's code and its office's names."""
    from sqlalchemy import select

    from duban.db import session_scope
    from duban.models import Person, Plan, PlanRole

    with session_scope(_engine(), readonly=True) as s:
        q = select(Person, Plan.code).join(Plan, Plan.id == Person.plan_id).where(Person.name == person)
        if plan is not None:
            q = q.where(Plan.code == plan)
        found = s.execute(q).all()
        if not found:
            _fail(f"没有找到人员“{person}”" + (f"（方案 {plan}）" if plan else "") + "。请检查姓名，或先用 duban import 导入人员表。", 1)
        if len(found) > 1:
            _fail(f"有 {len(found)} 个方案中都有“{person}”（{'、'.join(c for _, c in found)}），请用 --plan 指定方案编号。", 1)
        p, code = found[0]
        office = "、".join(
            s.scalars(
                select(Person.name)
                .join(PlanRole, PlanRole.person_id == Person.id)
                .where(PlanRole.plan_id == p.plan_id, PlanRole.role == PlanRoleKind.OFFICE)
                .order_by(PlanRole.position)
            )
        )
    return p, code, office


def _test_message(p, office: str, rt):
    """The test message to ``p``: their channels and their chat-app ids."""
    from notifications.apps import DINGTALK, FEISHU, WECOM
    from notifications.channel import Outgoing
    from notifications.render import now_text

    ids = {WECOM: p.wecom_userid, DINGTALK: p.dingtalk_userid, FEISHU: p.feishu_open_id}
    return Outgoing(
        0, p.id, p.name, p.email, rt.today(), "【督办系统】通知渠道测试",
        {"kind": MessageKind.TEST, "recipient": p.name, "now": now_text(rt.tz), "office": office, "items": []},
        0, plan_id=p.plan_id, channels=list(p.notify_urls or ()), mobile=p.mobile, app_ids={k: v for k, v in ids.items() if v},
        page_url=_page_url(rt, p.id, p.plan_id),
    )  # fmt: skip


def _print_report(name: str, code: str, targets, report) -> None:
    """One row per channel: its kind, its address (secrets hidden), the result and the service's own answer."""
    from rich.table import Table

    from notifications.channel import LABELS

    table = Table(title=f"{name}（方案 {code}）的通知渠道测试")
    for col in ("顺序", "渠道", "地址（已隐藏密钥）", "结果", "说明", "服务方回答"):
        table.add_column(col)
    # strict=False: an outbox copy, when kept, is one attempt more than the targets (not a channel to test)
    for i, (t, a) in enumerate(zip(targets, report.attempts, strict=False), 1):
        note = a.error or ("每次都发" if t.always else (f"分 {a.parts} 段发出" if a.parts > 1 else ""))
        table.add_row(str(i), LABELS.get(a.channel, a.channel), a.target, "成功" if a.ok else "失败", note, a.answer or "")
    console.print(table)
    failed = sum(1 for a in report.attempts if not a.ok)
    if failed:
        _fail(f"{len(report.attempts)} 个渠道中有 {failed} 个发送失败，请核对上表中的地址后重试。", 1)
    console.print(f"全部 {len(report.attempts)} 个渠道发送成功。请向 {name} 确认已收到测试消息。", markup=False)


def _page_url(rt, person_id: int, plan_id: int) -> str:
    """The person's own page (我的督办): the test shows the button a chat card carries."""
    from duban.db import session_scope
    from duban.links import issue

    maker = rt.links()
    with session_scope(rt.engine) as s:
        (lid,) = issue(s, [maker.mine(person_id, plan_id)], secret=maker.secret, today=maker.today)
        return maker.urls(s, [lid])[lid]


KIND_WORDS = {"week": "week", "周": "week", "周通报": "week", "month": "month", "月": "month", "月通报": "month"}


@notify_app.command("bulletin")
def notify_bulletin_command(
    plan: Annotated[str | None, typer.Option("--plan", help="只印发这个方案的通报（方案编号）；缺省为全部方案")] = None,
    today: Annotated[str | None, typer.Option("--today", help="按这一天统计和印发（YYYY-MM-DD，缺省为今天）")] = None,
    kind: Annotated[str | None, typer.Option("--kind", help="周通报（week / 周）或月通报（month / 月）；缺省按方案设置")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="只显示通报内容和收件对象，不印发、不发送")] = False,
    force: Annotated[bool, typer.Option("--force", help="本期（本周或本月）已印发时再印发一期")] = False,
) -> None:
    """督办通报：印发本期周通报或月通报（期号顺延，附汇总、逾期事项和单位考核排名），发给领导小组和领导小组办公室（群和个人）。"""
    from duban.rollup import RollupError
    from duban.rollup.bulletins import issue_bulletins
    from notifications.bulletin import BulletinError

    day = _parse_day(today)
    kinds = None
    if kind is not None:
        if kind.strip() not in KIND_WORDS:
            _fail(f"通报类别“{kind}”不正确，可填 week（周通报）或 month（月通报）。", 2)
        kinds = [KIND_WORDS[kind.strip()]]
    engine = _engine()
    rt = _runtime()
    try:
        run = issue_bulletins(
            engine, today=day, cal=rt.calendar, tz=rt.tz, plan_code=plan, kinds=kinds, scheduled=False,
            channel=rt.channel.name, dry_run=dry_run, force=force,
        )  # fmt: skip
    except (BulletinError, RollupError) as err:
        _fail(str(err), 1)
    for text in run.already:
        console.print(f"{text}已印发，本期不再印发（可加 --force 再印发一期）。", markup=False)
    for code in run.no_recipients:
        console.print(f"方案 {code} 的通报没有收件对象：请在方案表中填写领导小组、领导小组办公室成员或其群通知地址。", markup=False)
    if not run.issued:
        return
    if dry_run:
        _preview(run, rt)
        return
    _report_sent(run, engine, rt, day)


def _preview(run, rt) -> None:
    from notifications.digest import environment
    from notifications.render import bulletin_context

    for issued in run.issued:
        ctx = bulletin_context({**issued.payload, "audience_name": "各位领导"})
        text = environment(rt.settings.template_dir).get_template("bulletin.txt.j2").render(**ctx, subject="", cut="")
        console.print(text, markup=False)
        console.print(f"收件对象：{'、'.join(q.audience for q in issued.queued)}", markup=False)
    console.print("（预览：以上通报尚未印发、未发送，期号未占用。去掉 --dry-run 即可印发。）", markup=False)


def _report_sent(run, engine, rt, day) -> None:
    from duban.sweep.rows import digest_rows
    from duban.sweep.sending import deliver_due

    deliver_due(rt)
    rows = {r["编号"]: r for r in digest_rows(engine, run_on=day)}
    for issued in run.issued:
        console.print(f"已印发方案 {issued.plan} 的{issued.title}，{issued.period}：", markup=False)
        for q in issued.queued:
            r = rows.get(q.digest_id)
            if r is not None:
                line = f"  {r['收件人']}：{r['状态']}" + (f"（{r['渠道']}）" if r["渠道"] else "")
                console.print(line + (f"，{r['失败原因']}" if r["失败原因"] else ""), markup=False)
    ids = {q.digest_id for q in run.queued}
    waiting = sum(1 for i, r in rows.items() if i in ids and r["状态"] == "待发送")
    console.print(
        f"通报已生成 {len(ids)} 份" + (f"，其中 {waiting} 份不在发送时段内，将于下一个工作时段发出" if waiting else "") + "。",
        markup=False,
    )
