"""Security of the link pages: tampering, another person's link, expiry, replay, reassignment,
scanners (GET changes nothing), CSRF, uploads (size, type, path traversal), escaping, rate limits."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from duban.db import session_scope
from duban.link_tokens import link_token
from duban.models import Evidence, Link
from duban.settings import get_settings
from tests.conftest import PINNED_DAY
from tests.factories import task_of
from tests.web_helpers import (
    PDF,
    SECRET,
    csrf_of,
    import_small,
    make_link,
    milestone_id,
    plan_definition,
    requests,
    snapshot,
)

pytestmark = pytest.mark.usefixtures("clock")  # the web app reads the clock: pinned (tests/conftest.py)


def client_for(engine, tmp_path, monkeypatch, **env) -> TestClient:
    monkeypatch.setenv("DUBAN_SECRET_KEY", SECRET)
    monkeypatch.setenv("DUBAN_WEB_SEND_NOW", "0")
    for k, v in env.items():
        monkeypatch.setenv(f"DUBAN_{k.upper()}", str(v))
    get_settings.cache_clear()
    from duban.web.app import create_app

    return TestClient(create_app())


@pytest.fixture
def setup(use_database, engine, tmp_path, monkeypatch):
    import_small(engine, tmp_path)
    return engine, tmp_path, monkeypatch


@pytest.fixture
def web(setup):
    engine, tmp_path, monkeypatch = setup
    with client_for(engine, tmp_path, monkeypatch) as c:
        yield c


def done_link(engine) -> str:
    return make_link(engine, "教务处处长", "done", "1", milestone=milestone_id(engine, "1", 1))


def submit(web, tok, **data):
    page = web.get(f"/l/{tok}")
    return web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成", **data})


def test_tampered_signature_and_payload(web, setup):
    engine = setup[0]
    tok = done_link(engine)
    body, sig = tok.split(".")
    forged_sig = body + "." + ("A" if sig[0] != "A" else "B") + sig[1:]
    other_id = link_token("not-the-secret-" * 3, 1, "done", dt.date(2030, 1, 1))  # right shape, wrong key
    before = snapshot(engine)
    for bad in (forged_sig, other_id, "abc", tok + "x", body):
        resp = web.get(f"/l/{bad}")
        assert resp.status_code == 404, bad
        assert "<h1>链接无效</h1>" in resp.text and "链接无效或已被修改" in resp.text
        assert "给我发送新链接" not in resp.text and "Traceback" not in resp.text
        assert web.post(f"/l/{bad}", data={"csrf": "x", "note": "n"}).status_code == 404
        assert web.post(f"/l/{bad}/renew", data={"csrf": "x"}).status_code == 404
    assert snapshot(engine) == before


def test_another_persons_link_cannot_act_on_a_task_not_theirs(web, setup):
    engine = setup[0]
    # a link issued to someone who does not own task 1 (e.g. forwarded, or from an old list)
    tok = make_link(engine, "宣传部部长", "done", "1", milestone=milestone_id(engine, "1", 1))
    queue = make_link(engine, "教务处处长", "queue", None)
    before = snapshot(engine)
    page = web.get(f"/l/{tok}")
    assert page.status_code == 403 and "该任务目前不由您负责" in page.text and "给我发送新链接" not in page.text
    assert web.post(f"/l/{tok}", data={"csrf": "x", "note": "n"}).status_code == 403
    # an owner's link reaches only its own task's files; a non-reviewer's queue link shows nothing
    assert web.get(f"/l/{queue}").status_code == 403
    assert snapshot(engine) == before


def test_evidence_only_through_a_link_of_that_task(web, setup):
    engine = setup[0]
    prog = make_link(engine, "教务处处长", "progress", "1")
    page = web.get(f"/l/{prog}")
    web.post(f"/l/{prog}", data={"csrf": csrf_of(page.text), "text": "进展"}, files=[("files", ("a.pdf", PDF, "application/pdf"))])
    with session_scope(engine) as s:
        eid = s.scalar(select(Evidence.id))
    other_task = make_link(engine, "教务处副处长", "progress", "2")
    assert web.get(f"/l/{other_task}/files/{eid}").status_code == 404
    view = make_link(engine, "教务处处长", "view", "1")
    assert web.get(f"/l/{view}/files/{eid}").content == PDF
    assert web.get(f"/l/{view}/files/999999").status_code == 404


def test_expired_link_changes_nothing(web, setup):
    engine = setup[0]
    tok = make_link(engine, "教务处处长", "done", "1", milestone=milestone_id(engine, "1", 1), expires=PINNED_DAY - dt.timedelta(days=1))
    before = snapshot(engine)
    page = web.get(f"/l/{tok}")
    assert page.status_code == 410 and "现已过期" in page.text
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "迟到的提交"})
    assert resp.status_code == 410 and "<h1>链接已过期</h1>" in resp.text
    assert snapshot(engine) == before


def test_replayed_submission_is_applied_once(web, setup):
    engine = setup[0]
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    form = {"csrf": csrf_of(page.text), "note": "完成"}
    assert web.post(f"/l/{tok}", data=form).status_code == 200
    after_first = snapshot(engine)
    replay = web.post(f"/l/{tok}", data=form)
    assert replay.status_code == 410 and "<h1>链接已使用</h1>" in replay.text and "每个链接只能使用一次" in replay.text
    assert "给我发送新链接" in replay.text
    assert snapshot(engine) == after_first
    assert len(requests(engine)) == 1


def test_reassigned_task_voids_the_old_owners_link(web, setup):
    engine, tmp_path, _ = setup
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    data = plan_definition()
    task_of(data, "1")["owner"] = "教务处副处长"
    import_small(engine, tmp_path, data=data)
    before = snapshot(engine)
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"})
    assert resp.status_code == 403 and "该任务目前不由您负责" in resp.text
    assert web.get(f"/l/{tok}").status_code == 403
    assert snapshot(engine) == before
    with session_scope(engine) as s:
        assert s.scalar(select(Link.void_reason).where(Link.action == "done")) == "任务已改由他人负责"


def test_get_only_fetches_change_nothing(web, setup):
    """What a mail scanner or a chat preview does: GET (and HEAD) every link, with no cookie."""
    engine = setup[0]
    m1 = milestone_id(engine, "1", 1)
    tokens = [
        make_link(engine, "教务处处长", a, "1", milestone=m1 if a in ("done", "extend") else None)
        for a in ("ack", "progress", "done", "extend", "view")
    ]
    page = web.get(f"/l/{tokens[2]}")
    web.post(f"/l/{tokens[2]}", data={"csrf": csrf_of(page.text), "note": "完成"})
    [req] = requests(engine)
    tokens += [make_link(engine, "督办员", "review", "1", milestone=m1, request=req.id), make_link(engine, "督办员", "queue", None)]
    before = snapshot(engine)
    scanner = TestClient(web.app)
    for tok in tokens:
        for _ in range(2):
            scanner.cookies.clear()
            assert scanner.get(f"/l/{tok}").status_code in (200, 410)
            scanner.head(f"/l/{tok}")
        assert scanner.get(f"/l/{tok}/renew").status_code == 405
    assert snapshot(engine) == before


def test_missing_or_mismatched_csrf_is_refused(web, setup):
    engine = setup[0]
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    tok2 = make_link(engine, "教务处处长", "progress", "1")
    before = snapshot(engine)
    no_field = web.post(f"/l/{tok}", data={"note": "完成"})
    assert no_field.status_code == 403 and "页面已过期，请重新打开链接" in no_field.text
    other = TestClient(web.app)  # another browser: its own cookie, a field copied from the first page
    other.get(f"/l/{tok}")
    assert other.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}).status_code == 403
    no_cookie = TestClient(web.app)
    assert no_cookie.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}).status_code == 403
    # a field of another link (same browser) does not fit this one
    assert web.post(f"/l/{tok2}", data={"csrf": csrf_of(page.text), "text": "x"}).status_code == 403
    assert snapshot(engine) == before


def test_oversized_upload_is_refused_with_a_message(setup):
    engine, tmp_path, monkeypatch = setup
    with client_for(engine, tmp_path, monkeypatch, upload_max_mb=1, upload_max_files=2) as web:
        tok = done_link(engine)
        page = web.get(f"/l/{tok}")
        before = snapshot(engine)
        big = PDF + b"0" * (1024 * 1024 + 10)
        resp = web.post(
            f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=[("files", ("大文件.pdf", big, "application/pdf"))]
        )
        assert resp.status_code == 413 and "文件「大文件.pdf」超过 1 MB 的大小限制" in resp.text
        assert 'name="note"' in resp.text and ">完成</textarea>" in resp.text  # the form again, input kept
        # a body larger than all files together is refused before it is read
        huge = b"0" * (3 * 1024 * 1024 + 10)
        resp = web.post(
            f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=[("files", ("a.pdf", huge, "application/pdf"))]
        )
        assert resp.status_code == 413 and "上传内容过大" in resp.text
        three = [("files", (f"{i}.pdf", PDF, "application/pdf")) for i in range(3)]
        resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=three)
        assert resp.status_code == 400 and "每次最多上传 2 个文件" in resp.text
        assert snapshot(engine) == before
    assert not list((get_settings().evidence_path).rglob("*")) or all(p.is_dir() for p in get_settings().evidence_path.rglob("*"))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("setup.exe", b"MZ\x90\x00", "不接收 .exe 类型的文件"),
        ("page.html", b"<html><script>alert(1)</script></html>", "不接收 .html 类型的文件"),
        ("logo.svg", b"<svg onload=alert(1)>", "不接收 .svg 类型的文件"),
        ("report.pdf", b"MZ\x90\x00 renamed program", "文件内容与扩展名 .pdf 不符"),
        ("notes.txt", b"<script>alert(1)</script>", "文本文件中含有网页或脚本内容"),
        ("archive.rar", b"Rar!\x1a\x07\x00", "不支持 .rar 文件"),
        ("noext", b"hello", "不支持无扩展名的文件"),
    ],
)
def test_dangerous_file_types_are_refused(web, setup, name, content, message):
    engine = setup[0]
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    before = snapshot(engine)
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=[("files", (name, content, "application/pdf"))])
    assert resp.status_code == 400 and message in resp.text
    assert snapshot(engine) == before


def test_zip_with_a_program_inside_is_refused(web, setup):
    engine = setup[0]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("材料/说明.txt", "ok")
        zf.writestr("材料/run.bat", "del *")
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    resp = web.post(
        f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=[("files", ("材料.zip", buf.getvalue(), "application/zip"))]
    )
    assert resp.status_code == 400
    assert (
        "压缩包「材料.zip」中的「材料/run.bat」：不接收 .bat 类型的文件（可执行文件、脚本、快捷方式或网页）。请从压缩包中移除后重新上传。"
        in resp.text
    )


@pytest.mark.parametrize("name", ["../../../../etc/passwd.pdf", "..\\..\\windows\\win.ini.pdf", "/abs/path/证明.pdf"])
def test_path_traversal_in_a_filename_stores_by_hash(web, setup, name):
    engine = setup[0]
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": "完成"}, files=[("files", (name, PDF, "application/pdf"))])
    assert resp.status_code == 200
    with session_scope(engine) as s:
        ev = s.scalar(select(Evidence))
    assert ev.filename == name.replace("\\", "/").rsplit("/", 1)[-1]
    folder = get_settings().evidence_path
    assert ev.stored_name == f"{ev.sha256[:2]}/{ev.sha256}"
    stored = [p for p in folder.rglob("*") if p.is_file()]
    assert stored == [folder / ev.stored_name]
    assert not any(p.name.endswith(".pdf") for p in folder.parent.rglob("*.pdf"))


def test_html_in_evidence_text_is_escaped_on_every_page_and_message(web, setup):
    engine = setup[0]
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    tok = done_link(engine)
    page = web.get(f"/l/{tok}")
    resp = web.post(f"/l/{tok}", data={"csrf": csrf_of(page.text), "note": evil, "urls": "javascript:alert(1)"})
    assert resp.status_code == 400 and "不是有效的网址" in resp.text  # a javascript: URL is refused
    assert "<script>alert" not in resp.text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in resp.text
    resp = web.post(
        f"/l/{tok}",
        data={"csrf": csrf_of(page.text), "note": evil},
        files=[("files", ("<img src=x onerror=alert(2)>.pdf", PDF, "application/pdf"))],
    )
    assert resp.status_code == 200
    [req] = requests(engine)
    pages = [
        resp.text,
        web.get(f"/l/{make_link(engine, '督办员', 'review', '1', milestone=req.milestone_id, request=req.id)}").text,
        web.get(f"/l/{make_link(engine, '督办员', 'queue', None)}/r/{req.id}").text,
        web.get(f"/l/{make_link(engine, '教务处处长', 'view', '1')}").text,
    ]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;.pdf" in pages[1]
    # the coordinator's message: the e-mail's HTML part escapes it too
    from tests.web.test_link_pages import deliver_now

    [msg] = [m for m in deliver_now(engine) if m.recipient == "督办员"]
    assert evil in msg.body  # plain text is shown as text
    from notifications.render import render_message

    html = render_message(msg).html
    assert "<script>alert" not in html and "&lt;script&gt;" in html


def test_rate_limit_answers_429_in_chinese(setup):
    engine, tmp_path, monkeypatch = setup
    with client_for(engine, tmp_path, monkeypatch, rate_limit_link_per_minute=3) as web:
        tok = done_link(engine)
        codes = [web.get(f"/l/{tok}").status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        resp = web.get(f"/l/{tok}")
        assert "您的操作过于频繁" in resp.text and int(resp.headers["retry-after"]) >= 1
        assert web.get(f"/l/{make_link(engine, '教务处处长', 'ack', '1')}").status_code == 200  # another link is fine
    with client_for(engine, tmp_path, monkeypatch, rate_limit_per_minute=2) as web:
        codes = [web.get(f"/l/{make_link(engine, '教务处处长', 'view', '1')}").status_code for _ in range(3)]
        assert codes == [200, 200, 429]


def test_security_headers_and_error_pages(web, setup):
    engine = setup[0]
    resp = web.get(f"/l/{done_link(engine)}")
    h = resp.headers
    assert "default-src 'self'" in h["content-security-policy"] and "frame-ancestors 'none'" in h["content-security-policy"]
    assert h["referrer-policy"] == "no-referrer" and h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
    assert h["cache-control"] == "no-store"
    cookie = h["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/l/" in cookie
    assert "<script" not in resp.text and "style=" not in resp.text  # nothing inline: the CSP allows none
    missing = web.get("/nothing-here")
    assert missing.status_code == 404 and "页面不存在" in missing.text
    assert web.get("/static/app.css").status_code == 200
