"""我的督办 (``/me/{token}`` and ``/me``): a person's own page, and 批量签收.

- ``GET /me/{token}``: the page of the person whose ``LinkAction.MINE`` link it is (every digest
  to a person carries it); ``GET /me``: the same page for the person signed in through the
  institution's sign-in (:func:`duban.web.person_signin.current_person`), or a page that says how
  to open it.  One page function serves both (:func:`_page`).  Either way the page is the human's:
  the person row of the link or session and the same human's rows in the institution's other plans
  (:func:`duban.person_rows.same_person_rows`), each task labelled with its plan when there are several.
- The page lists the person's open tasks (overdue first, then by due date) with what each asks
  now and buttons to the existing action pages (the person's own links, issued or reused the way
  a message does: a GET writes at most those link rows, never a task's state), and the finished
  ones folded at the bottom.
- 批量签收: the form posts the tasks to sign (CSRF, like the link pages); the first POST only
  shows "请确认签收以下 N 项任务" with a signed nonce (a mail scanner that submits forms stops
  there); the second POST signs them all in one transaction (:func:`duban.mine.acknowledge_many`).
  A nonce is bound to the browser's cookie and the person, lasts :data:`CONFIRM_MINUTES` and is
  used once (remembered by the process; signing again acts on nothing anyway: the tasks are signed).

See docs/web.md, "我的督办".
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from duban import mine
from duban.action_common import Origin
from duban.db import session_scope
from duban.link_tokens import LinkError, sign, verify
from duban.links import LinkRefused, resolve
from duban.models import Person, Plan, Task, utcnow
from duban.person_rows import PersonRow, same_person_rows
from duban.vocabulary import LinkAction
from duban.web import person_signin
from duban.web.deps import (
    FORM_COOKIE,
    UNREADABLE_FORM,
    Cookie,
    CsrfCookie,
    Refusal,
    client_ip,
    limit_link,
    limiters,
    link_refusal,
    read_form,
    runtime,
    store_write,
    too_many,
)
from duban.web.pages import STATE_CLASS
from duban.web.render import render
from duban.web.security import CSRF_FIELD, csrf_ok, csrf_token
from duban.web.signin import form_token

router = APIRouter()
ME_COOKIE = CsrfCookie("duban_csrf_me", "/me")
CONFIRM_MINUTES = 15
MAX_TASKS = 500  # tasks one 批量签收 may name
SIGN_IN = "/sso/login?next=/me"  # the institution's sign-in (CAS / OIDC), which comes back to /me
EXPIRED_FORM = (
    "页面已过期，请重新打开",
    "为保护您的账户安全，本次提交未被受理（页面校验信息缺失或不匹配）。请重新打开“我的督办”后再提交。",
    403,
)


@dataclass
class Holder:
    """Whose page it is and how they came: by their link (``token``) or signed in (``/me``).
    ``rows``: the person row of the link or the session first, then the same human's rows in the
    institution's other plans (:func:`duban.person_rows.same_person_rows`)."""

    request: Request
    rows: tuple[PersonRow, ...]
    token: str | None
    cookie: Cookie
    link_id: int = 0  # the link's (by link)

    @property
    def person_id(self) -> int:
        return self.rows[0].person_id

    @property
    def name(self) -> str:
        return self.rows[0].name

    @property
    def several(self) -> bool:
        """Tasks of more than one plan: each is labelled with its plan."""
        return len(self.rows) > 1

    @property
    def rt(self):
        return runtime(self.request)

    @property
    def base(self) -> str:
        return f"/me/{self.token}" if self.token else "/me"

    @property
    def binding(self) -> int:
        """What the CSRF field is bound to besides the cookie: the link, or (negative) the person."""
        return self.link_id if self.token else -self.person_id

    @property
    def channel(self) -> str:
        return "link" if self.token else "web"

    def csrf(self) -> str:
        return csrf_token(self.rt.settings.secret_key, self.cookie.value, self.binding)

    def render(self, name: str, ctx: dict[str, Any], status: int = 200) -> Response:
        names = [r.plan_name for r in self.rows]
        base = {
            "person": {"name": self.name},
            "plan": {"name": "、".join(names)},
            "plan_names": names,
            "several": self.several,
            "base": self.base,
            "csrf": self.csrf(),
        }
        if self.token:
            return self.cookie.keep(render(name, {**base, **ctx}, status))
        # signed in: the sign-out form posts to /sso/logout with the dashboard's sign-out field
        form_cookie = FORM_COOKIE.of(self.request)
        signout = form_token(self.rt.settings.secret_key, form_cookie.value, "logout")
        return form_cookie.keep(self.cookie.keep(render(name, {**base, "signout": signout, **ctx}, status)))


def _by_link(request: Request, token: str) -> Holder:
    """The holder of a 我的督办 link: the rate limits, then the link (refused with its reason)."""
    limit_link(request, token, prefix="me:")
    rt, cookie = runtime(request), ME_COOKIE.of(request)
    with session_scope(rt.engine, readonly=True) as s:
        try:
            r = resolve(s, token, secret=rt.settings.secret_key, today=rt.today(), tz=rt.tz)
        except LinkRefused as err:
            raise link_refusal(err, renewable=False, cookie=cookie) from None
        if r.action != LinkAction.MINE:
            raise Refusal("链接无效", "此链接不是“我的督办”链接。请使用通知中“查看我的全部督办事项”的链接。", 404)
        rows = same_person_rows(s, r.person, match=rt.settings.sso_match)
        return Holder(request, tuple(rows), token, cookie, r.link.id)


def _by_session(request: Request) -> Holder | None:
    """The person signed in (None: nobody)."""
    if wait := limiters(request).ip.hit(f"me:ip:{client_ip(request)}"):
        raise too_many(wait)
    who = person_signin.current_person(request)
    if who is None:
        return None
    rt = runtime(request)
    with session_scope(rt.engine, readonly=True) as s:
        person = s.get(Person, who[0])
        if person is None:
            return None
        rows = same_person_rows(s, person, match=rt.settings.sso_match)
    return Holder(request, tuple(rows), None, ME_COOKIE.of(request))


ByLink = Annotated[Holder, Depends(_by_link)]


# -- the page ---------------------------------------------------------------------------------------


def _page(holder: Holder, *, error: str | None = None, status: int = 200) -> Response:
    """The person's page (both routes): their tasks with buttons, the counts, the 批量签收 form."""
    rt = holder.rt
    today = rt.today()
    maker = rt.links(today)

    def load(s: Session) -> list[mine.MyTask]:
        tasks = mine.tasks_of(s, holder.rows, cal=rt.calendar, today=today, tz=rt.tz)
        mine.attach_links(s, tasks, maker)  # the links of the row holding each task: issued or reused
        return tasks

    tasks = store_write(rt, f"my page of person {holder.person_id}", load)
    open_tasks = [t for t in tasks if not t.finished]
    counts = {
        "open": len(open_tasks),
        "overdue": sum(1 for t in open_tasks if t.overdue_days),
        "ack": sum(1 for t in open_tasks if mine.ACK_ASK in t.asks),
        "soon": sum(1 for t in open_tasks if mine.SOON_ASK in t.asks),
        "report": sum(1 for t in open_tasks if mine.REPORT_ASK in t.asks),
        "review": sum(1 for t in open_tasks if mine.REVIEW_ASK in t.asks),
    }
    ctx = {
        "today": today.isoformat(),
        "tasks": open_tasks,
        "finished": [t for t in tasks if t.finished],
        "waiting": mine.waiting_for_ack(tasks),
        "counts": counts,
        "error": error,
        "state_classes": STATE_CLASS,
    }
    return holder.render("my_tasks.html", ctx, status)


@router.get("/me", response_class=HTMLResponse)
def my_page_signed_in(request: Request):
    holder = _by_session(request)
    if holder is None:
        return render("my_signin.html", {"sign_in": SIGN_IN})
    return _page(holder)


@router.get("/me/{token}", response_class=HTMLResponse)
def my_page(holder: ByLink):
    return _page(holder)


# -- 批量签收 ---------------------------------------------------------------------------------------


class UsedNonces:
    """Confirmations already acted on (this process): a nonce signs once."""

    def __init__(self, limit: int = 20_000):
        self.limit = limit
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def first_use(self, nonce: str, until: float) -> bool:
        key = hashlib.sha256(nonce.encode()).hexdigest()
        with self._lock:
            if key in self._seen:
                return False
            if len(self._seen) >= self.limit:
                now = utcnow().timestamp()
                self._seen = {k: v for k, v in self._seen.items() if v > now}
            self._seen[key] = until
            return True

    def forget(self, nonce: str) -> None:
        """The confirmation was not saved (the store busy): it may be posted again."""
        with self._lock:
            self._seen.pop(hashlib.sha256(nonce.encode()).hexdigest(), None)


USED = UsedNonces()


def _nonce_key(secret: str) -> str:
    return hashlib.sha256(f"duban-batch-ack:{secret}".encode()).hexdigest()


def _nonce(holder: Holder, task_ids: list[int], now: dt.datetime) -> str:
    until = int((now + dt.timedelta(minutes=CONFIRM_MINUTES)).timestamp())
    cookie = hashlib.sha256(holder.cookie.value.encode()).hexdigest()[:16]
    payload = {"l": holder.binding, "a": "ack-many", "e": "9999-12-31", "t": task_ids, "c": cookie, "x": until, "n": secrets.token_hex(8)}
    return sign(_nonce_key(holder.rt.settings.secret_key), payload)


def _nonce_tasks(holder: Holder, nonce: str, now: dt.datetime) -> tuple[list[int], float] | None:
    """The tasks a valid, unexpired confirmation of this holder and browser names, and its end."""
    try:
        p = verify(_nonce_key(holder.rt.settings.secret_key), nonce, today=dt.date.min)
        ids, until, cookie = [int(i) for i in p["t"]], float(p["x"]), str(p["c"])
    except (LinkError, KeyError, TypeError, ValueError):
        return None
    ours = p["a"] == "ack-many" and p["l"] == holder.binding and cookie == hashlib.sha256(holder.cookie.value.encode()).hexdigest()[:16]
    return (ids, until) if ours and until > now.timestamp() and len(ids) <= MAX_TASKS else None


def _chosen(form) -> list[int] | None:
    """The task ids the form chose (None: something that is not a task id)."""
    try:
        ids = [int(v) for v in form.getlist("task")]
    except (TypeError, ValueError):
        return None
    return list(dict.fromkeys(ids)) if len(ids) <= MAX_TASKS and all(0 < i < 2**31 for i in ids) else None


async def _post(holder: Holder) -> Response:
    form = await read_form(holder.request, max_fields=MAX_TASKS + 10)
    if form is None:
        raise Refusal(*UNREADABLE_FORM)
    return await run_in_threadpool(_sign, holder, form)


@router.post("/me/ack", response_class=HTMLResponse)
async def sign_many_signed_in(request: Request):
    holder = _by_session(request)
    if holder is None:
        raise Refusal("请先登录", "您尚未登录或登录已过期，本次签收未被受理。请重新打开“我的督办”后再提交。", 403)
    return await _post(holder)


@router.post("/me/{token}/ack", response_class=HTMLResponse)
async def sign_many(holder: ByLink):
    return await _post(holder)


def _sign(holder: Holder, form) -> Response:
    """The first POST asks to confirm; the second (with the nonce) signs."""
    rt, now = holder.rt, utcnow()
    if not csrf_ok(rt.settings.secret_key, holder.request.cookies.get(ME_COOKIE.name), form.get(CSRF_FIELD), holder.binding):
        raise Refusal(*EXPIRED_FORM, back=holder.base, cookie=holder.cookie)
    nonce = form.get("nonce")
    if not nonce:
        ids = _chosen(form)
        if ids is None:
            raise Refusal(*UNREADABLE_FORM)
        if not ids:
            return _page(holder, error="请至少勾选一项需要签收的任务。", status=400)
        with session_scope(rt.engine, readonly=True) as s:
            rows = s.execute(
                select(Task.id, Task.code, Task.title, Plan.name.label("plan_name"))
                .join(Plan, Plan.id == Task.plan_id)
                .where(Task.id.in_(ids), mine.holds(holder.rows))
                .where(Task.archived_at.is_(None), Task.announced_at.is_not(None), Task.acknowledged_at.is_(None))
                .order_by(Task.plan_id, Task.code)
            ).all()
        if not rows:  # signed meanwhile, or no longer theirs
            return _page(holder, error="所选任务均已签收或已不由您负责，无需再签收。", status=409)
        chosen = [(r.code, mine.shown_title(r.title, r.plan_name, holder.rows)) for r in rows]
        ctx = {"chosen": chosen, "nonce": _nonce(holder, [r.id for r in rows], now), "minutes": CONFIRM_MINUTES}
        return holder.render("my_confirm.html", ctx)
    found = _nonce_tasks(holder, str(nonce), now)
    if found is None:
        raise Refusal(
            "确认已过期", f"签收确认仅在 {CONFIRM_MINUTES} 分钟内有效，本次签收未被受理。请返回“我的督办”重新提交。", 409, back=holder.base
        )
    ids, until = found
    if not USED.first_use(str(nonce), until):
        return _result(holder, mine.Signed(before=_signed_already(holder, ids)), repeated=True)
    origin = Origin(ip=client_ip(holder.request), user_agent=holder.request.headers.get("user-agent", ""), channel=holder.channel)
    maker = rt.links(rt.today())

    def work(s: Session) -> mine.Signed:
        return mine.acknowledge_many(s, holder.rows, ids, origin, maker=maker, now=now)

    try:
        done = store_write(rt, f"批量签收 of person {holder.person_id}", work)
    except Exception:
        USED.forget(str(nonce))  # nothing was signed: the same confirmation may be posted again
        raise
    return _result(holder, done)


def _signed_already(holder: Holder, ids: list[int]) -> list[tuple[str, str]]:
    with session_scope(holder.rt.engine, readonly=True) as s:
        rows = s.execute(
            select(Task.code, Task.title, Plan.name.label("plan_name"))
            .join(Plan, Plan.id == Task.plan_id)
            .where(Task.id.in_(ids), mine.holds(holder.rows), Task.acknowledged_at.is_not(None))
            .order_by(Task.plan_id, Task.code)
        )
        return [(r.code, mine.shown_title(r.title, r.plan_name, holder.rows)) for r in rows]


def _result(holder: Holder, done: mine.Signed, *, repeated: bool = False) -> Response:
    return holder.render("my_result.html", {"done": done, "repeated": repeated})
