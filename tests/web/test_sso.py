"""The institution's sign-in (duban/web/sso.py) against the local fake providers (tests/idp.py):
CAS, OIDC, WeCom and DingTalk OAuth, to the dashboard or to the person's own page; the refusals."""

from __future__ import annotations

import datetime as dt
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select
from starlette.requests import Request

from duban import accounts, dashboard_access, person_sessions
from duban.db import session_scope
from duban.models import Account, Person, PersonSession
from duban.web import logs, person_signin
from duban.web.signin import form_token
from tests.web_helpers import SECRET, person_id, small_plan_app

pytestmark = pytest.mark.usefixtures("clock")  # the app reads the clock: pinned
PASSWORD = "Dubanban-2026!"
CALLBACK = "http://testserver/sso/cas/callback"


@pytest.fixture
def web(use_database, engine, tmp_path, monkeypatch, idp):
    """The app with CAS, OIDC, WeCom and DingTalk configured against the fake providers; the
    person 督办员 has 工号 20061234, WeCom userid dubanyuan and DingTalk userid ding-dby, and the
    office account "dby" is linked to them."""
    idp.env(monkeypatch, "cas", "oidc", "wecom", "dingtalk")
    with small_plan_app(engine, tmp_path, monkeypatch) as client:
        set_person(engine, "督办员", staff_no="20061234", wecom_userid="dubanyuan", dingtalk_userid="ding-dby")
        with session_scope(engine) as s:
            accounts.create_account(s, "dby", PASSWORD, role="office", person="督办员")
        yield client


def set_person(engine, name: str, **values) -> None:
    with session_scope(engine) as s:
        person = s.get(Person, person_id(engine, name))
        for key, value in values.items():
            setattr(person, key, value)


def reconfigure(client, monkeypatch, **env: str) -> None:
    """Change ``DUBAN_*`` settings of the running app (its runtime reads them once)."""
    from duban.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(f"DUBAN_{name}", value)
    get_settings.cache_clear()
    client.app.state.rt.settings = get_settings()


def signed_in_person(client, engine) -> tuple[int, int, str] | None:
    """What ``person_signin.current_person`` says of the client's cookies."""
    cookie = client.cookies.get(person_sessions.PERSON_COOKIE)
    headers = [(b"cookie", f"{person_sessions.PERSON_COOKIE}={cookie}".encode())] if cookie else []
    request = Request({"type": "http", "app": client.app, "headers": headers, "method": "GET", "path": "/me", "query_string": b""})
    return person_signin.current_person(request)


def start(client, method: str, next_url: str | None = "/dashboard") -> str:
    """Start a sign-in: the provider's address duban sends the browser to."""
    resp = client.get(f"/sso/{method}/login", params={"next": next_url} if next_url else {}, follow_redirects=False)
    assert resp.status_code == 303, resp.text
    return resp.headers["location"]


def at_provider(location: str) -> str:
    """The provider (a session already open there) sends the browser back: the callback address."""
    resp = httpx.get(location, follow_redirects=False)
    assert resp.status_code in (302, 303), resp.text
    return resp.headers["location"]


def sign_in(client, method: str, next_url: str | None = "/dashboard"):
    return client.get(at_provider(start(client, method, next_url)), follow_redirects=False)


# -- CAS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "attribute", "user", "attrs", "path"),
    [
        (3, None, "20061234", {}, "/cas/p3/serviceValidate"),
        (3, "employeeNumber", "dby@campus", {"employeeNumber": "20061234", "cn": "督办员"}, "/cas/p3/serviceValidate"),
        (2, None, "20061234", {}, "/cas/serviceValidate"),
    ],
)
def test_cas_sign_in_opens_the_dashboard_of_the_persons_account(web, engine, idp, monkeypatch, version, attribute, user, attrs, path):
    idp.cas_user, idp.cas_attributes = user, {user: attrs}
    reconfigure(web, monkeypatch, CAS_VERSION=str(version), **({"CAS_ATTRIBUTE": attribute} if attribute else {}))
    location = start(web, "cas", "/dashboard?plan=demo")
    assert location == f"{idp.cas_url}/login?service=http%3A%2F%2Ftestserver%2Fsso%2Fcas%2Fcallback"
    resp = web.get(at_provider(location), follow_redirects=False)
    assert resp.status_code == 303, resp.text
    assert resp.headers["location"] == "/dashboard?plan=demo"
    [validation] = [c for c in idp.calls if c.path.endswith("serviceValidate")]
    assert (validation.path, validation.query["service"]) == (path, CALLBACK)
    page = web.get("/dashboard")
    assert page.status_code == 200
    assert "督办员" in page.text
    with session_scope(engine, readonly=True) as s:
        assert s.scalar(select(Account.last_login_at).where(Account.login == "dby")) is not None
        assert s.scalars(select(PersonSession)).all() == []  # the dashboard only


def test_cas_sign_in_without_a_dashboard_address_opens_the_persons_own_page(web, engine, idp):
    idp.cas_user = "20061234"
    resp = sign_in(web, "cas", next_url=None)
    assert (resp.status_code, resp.headers["location"]) == (303, "/me")
    assert signed_in_person(web, engine)[2] == "督办员"
    dby = person_id(engine, "督办员")
    with session_scope(engine, readonly=True) as s:
        [row] = s.scalars(select(PersonSession)).all()
        assert (row.method, row.subject, row.person_id) == ("cas", "20061234", dby)
    assert web.get("/dashboard", follow_redirects=False).headers["location"].startswith("/login")  # no dashboard session


def test_a_person_without_a_dashboard_account_is_told_and_gets_their_own_page(web, engine, idp):
    set_person(engine, "教务处处长", staff_no="19990001")
    idp.cas_user = "19990001"
    resp = sign_in(web, "cas")
    assert resp.status_code == 403
    assert "您已通过身份认证，但尚未开通督办看板账户。" in resp.text
    assert 'href="/me"' in resp.text
    assert signed_in_person(web, engine)[2] == "教务处处长"


@pytest.mark.parametrize(
    ("staff_nos", "status", "message"),
    [
        (
            {},
            403,
            "您已通过身份认证（工号：20069999），但督办系统的人员名单中没有登记这个工号。请联系领导小组办公室，在人员表中为您登记工号后再登录。",
        ),
        (
            {"教务处处长": "20069999", "宣传部部长": "20069999"},
            409,
            "督办系统的人员名单中有多位人员登记了同一工号（20069999），无法确定您的身份。请联系领导小组办公室核对人员表中的工号。",
        ),
    ],
)
@pytest.mark.parametrize("next_url", [None, "/dashboard"])
def test_an_unknown_or_ambiguous_account_is_refused_politely_with_no_data(web, engine, idp, staff_nos, status, message, next_url):
    for name, number in staff_nos.items():
        set_person(engine, name, staff_no=number)
    idp.cas_user = "20069999"
    resp = sign_in(web, "cas", next_url)
    assert resp.status_code == status
    assert message in resp.text
    assert "教务处处长" not in resp.text and "任务" not in resp.text
    assert signed_in_person(web, engine) is None
    assert dashboard_access.SESSION_COOKIE not in web.cookies
    with session_scope(engine, readonly=True) as s:
        assert s.scalars(select(PersonSession)).all() == []


@pytest.mark.parametrize(
    ("match", "column", "stored", "account"),
    [
        ("staff_no", "staff_no", "20061234", "20061234"),
        ("email", "email", "db@example.org", "DB@Example.org"),
        ("mobile", "mobile", "13800000000", "13800000000"),
    ],
)
def test_the_account_is_matched_with_the_configured_column(web, engine, idp, monkeypatch, match, column, stored, account):
    reconfigure(web, monkeypatch, SSO_MATCH=match)
    set_person(engine, "督办员", **{column: stored})
    idp.cas_user = account
    assert sign_in(web, "cas", None).headers["location"] == "/me"
    assert signed_in_person(web, engine)[2] == "督办员"


def test_a_missing_cas_attribute_names_what_to_check(web, engine, idp, monkeypatch):
    reconfigure(web, monkeypatch, CAS_ATTRIBUTE="employeeNumber")
    idp.cas_user, idp.cas_attributes = "20061234", {"20061234": {"cn": "督办员"}}
    resp = sign_in(web, "cas", None)
    assert resp.status_code == 400
    assert (
        "统一身份认证服务没有提供本系统所需的账号信息（属性 employeeNumber）。请联系领导小组办公室，由其与信息化部门核对配置。" in resp.text
    )
    assert signed_in_person(web, engine) is None


def test_an_inactive_person_is_not_matched(web, engine, idp):
    set_person(engine, "督办员", active=False)
    idp.cas_user = "20061234"
    resp = sign_in(web, "cas", None)
    assert resp.status_code == 403
    assert "没有登记这个工号" in resp.text


def test_a_replayed_ticket_is_refused(web, engine, idp):
    idp.cas_user = "20061234"
    callback = at_provider(start(web, "cas", None))
    assert web.get(callback, follow_redirects=False).headers["location"] == "/me"
    web.cookies.clear()
    start(web, "cas", None)  # a fresh sign-in's cookie, the old ticket
    resp = web.get(callback, follow_redirects=False)
    assert resp.status_code == 400
    assert "统一身份认证服务未能确认本次登录（票据无效、已过期或已被使用）。请返回登录页重新登录。" in resp.text
    assert signed_in_person(web, engine) is None


def test_a_callback_this_browser_did_not_start_is_refused(web, engine, idp):
    idp.cas_user = "20061234"
    callback = at_provider(start(web, "cas", None))
    web.cookies.clear()
    resp = web.get(callback, follow_redirects=False)
    assert resp.status_code == 400
    assert "本次登录已过期，或不是从本浏览器发起的。请返回登录页重新登录。" in resp.text
    assert "serviceValidate" not in " ".join(idp.paths())  # not even asked
    assert signed_in_person(web, engine) is None


def test_an_unreachable_cas_server_gives_a_clear_page(web, monkeypatch):
    from tests.servers import free_port

    reconfigure(web, monkeypatch, CAS_URL=f"http://127.0.0.1:{free_port()}/cas")
    start(web, "cas", None)
    resp = web.get("/sso/cas/callback?ticket=ST-1", follow_redirects=False)
    assert resp.status_code == 502
    assert "暂时无法连接学校的统一身份认证服务，请稍后再试。" in resp.text


# -- OIDC --------------------------------------------------------------------------------------------


def test_oidc_sign_in_with_pkce_state_and_nonce(web, engine, idp):
    idp.oidc_claims = {"sub": "a1b2", "preferred_username": "20061234"}
    location = start(web, "oidc", None)
    q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert location.startswith(f"{idp.issuer}/authorize?")
    assert (q["redirect_uri"], q["client_id"], q["code_challenge_method"], q["response_type"]) == (
        "http://testserver/sso/oidc/callback",
        "duban-oidc",
        "S256",
        "code",
    )
    assert len(q["state"]) >= 20 and len(q["nonce"]) >= 20 and len(q["code_challenge"]) == 43
    resp = web.get(at_provider(location), follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/me")
    assert signed_in_person(web, engine)[2] == "督办员"
    [token_call] = [c for c in idp.calls if c.path == "/oidc/token"]
    assert "code_verifier" in token_call.form and "client_secret" not in token_call.form


@pytest.mark.parametrize(
    ("audience", "lifetime", "signed_by_other_key"),
    [("another-client", 300, False), (None, -120, False), (None, 300, True)],
    ids=["wrong-audience", "expired", "foreign-signature"],
)
def test_an_id_token_that_fails_its_checks_is_refused(web, engine, idp, audience, lifetime, signed_by_other_key):
    from joserfc.jwk import RSAKey

    idp.oidc_claims = {"sub": "a1b2", "preferred_username": "20061234"}
    idp.oidc_audience, idp.oidc_lifetime = audience, lifetime
    if signed_by_other_key:  # the JWKS publishes another key under the same id
        idp.published_key = RSAKey.generate_key(2048, parameters={"kid": "idp-1"})
    resp = sign_in(web, "oidc", None)
    assert resp.status_code == 400
    assert "统一身份认证服务返回的身份凭证未通过校验（签名、签发方、适用对象或有效期不符）。" in resp.text
    assert signed_in_person(web, engine) is None


def test_a_wrong_state_or_a_replayed_code_is_refused(web, engine, idp):
    idp.oidc_claims = {"sub": "a1b2", "preferred_username": "20061234"}
    callback = at_provider(start(web, "oidc", None))
    forged = callback.replace("state=", "state=x")
    resp = web.get(forged, follow_redirects=False)
    assert resp.status_code == 400 and "本次登录已过期，或不是从本浏览器发起的。" in resp.text
    assert "/oidc/token" not in idp.paths()  # the code was not even exchanged
    assert web.get(callback, follow_redirects=False).status_code == 400  # the sign-in is over: start again
    callback = at_provider(start(web, "oidc", None))
    assert web.get(callback, follow_redirects=False).headers["location"] == "/me"
    web.cookies.clear()
    location = start(web, "oidc", None)
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = parse_qs(urlsplit(callback).query)["code"][0]
    resp = web.get("/sso/oidc/callback", params={"code": code, "state": state}, follow_redirects=False)
    assert resp.status_code == 400
    assert "统一身份认证服务未能确认本次登录（授权码无效、已过期或已被使用）。" in resp.text


def test_a_missing_claim_names_what_to_ask(web, idp, monkeypatch):
    idp.oidc_claims = {"sub": "a1b2"}
    resp = sign_in(web, "oidc", None)
    assert resp.status_code == 400
    assert "统一身份认证服务没有提供本系统所需的账号信息（preferred_username）。请联系领导小组办公室" in resp.text


# -- WeCom and DingTalk ------------------------------------------------------------------------------------


def asked(location: str, *names: str) -> tuple[str, ...]:
    """The values of ``names`` in the query of an authorize address."""
    q = parse_qs(urlsplit(location.removesuffix("#wechat_redirect")).query)
    return tuple(q[name][0] for name in names)


def test_wecom_sign_in_inside_the_app(web, engine, idp):
    idp.wecom_user = "dubanyuan"
    location = start(web, "wecom", None)
    assert location.endswith("#wechat_redirect")
    assert asked(location, "appid", "scope", "agentid", "redirect_uri") == (
        "ww0123456789abcdef", "snsapi_base", "1000002", "http://testserver/sso/wecom/callback",
    )  # fmt: skip
    callback = at_provider(location.removesuffix("#wechat_redirect"))
    resp = web.get(callback, follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/me")
    assert signed_in_person(web, engine)[2] == "督办员"
    web.cookies.clear()
    start(web, "wecom", None)
    state = parse_qs(urlsplit(web.get("/sso/wecom/login", follow_redirects=False).headers["location"]).query)["state"][0]
    replay = web.get(
        "/sso/wecom/callback", params={"code": parse_qs(urlsplit(callback).query)["code"][0], "state": state}, follow_redirects=False
    )
    assert replay.status_code == 400
    assert "企业微信未能确认本次登录（授权码无效、已过期或已被使用）。请在企业微信中重新打开督办应用。" in replay.text


@pytest.mark.parametrize(
    ("method", "setup", "status", "message"),
    [
        ("wecom", {"wecom_user": None}, 403, "企业微信确认您不是本单位通讯录中的成员，无法登录督办系统。"),
        (
            "wecom",
            {"wecom_user": "someone-else"},
            403,
            "您已通过身份认证（企业微信账号：someone-else），但督办系统的人员名单中没有登记这个企业微信账号。",
        ),
        ("dingtalk", {}, 403, "钉钉确认您不是本单位通讯录中的成员，无法登录督办系统。"),  # not in DingTalk's directory
    ],
)
def test_chat_app_outsiders_are_refused(web, engine, idp, method, setup, status, message):
    for key, value in setup.items():
        setattr(idp, key, value)
    resp = sign_in(web, method, None)
    assert resp.status_code == status
    assert message in resp.text
    assert signed_in_person(web, engine) is None


def test_dingtalk_sign_in_inside_the_app_to_the_dashboard(web, engine, idp):
    idp.dingtalk.add_user("ding-dby", "union-0001")
    location = start(web, "dingtalk")
    assert asked(location, "client_id", "scope", "prompt", "redirect_uri") == (
        "dingappkey0123", "openid", "consent", "http://testserver/sso/dingtalk/callback",
    )  # fmt: skip
    resp = web.get(at_provider(location), follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/dashboard")
    assert web.get("/dashboard").status_code == 200
    [lookup] = [c for c in idp.dingtalk.calls if c.path.endswith("getbyunionid")]
    assert lookup.json == {"unionid": "union-0001"}


# -- where it leads, and the way out ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("next_url", "lands"),
    [
        ("https://evil.example/steal", "/me"),
        ("//evil.example/steal", "/me"),
        ("/\\evil.example", "/me"),
        ("/dashboard\\@evil.example", "/dashboard"),
        ("javascript:alert(1)", "/me"),
        ("/dashboard/reviews", "/dashboard/reviews"),
    ],
)
def test_no_open_redirect(web, idp, next_url, lands):
    idp.cas_user = "20061234"
    location = start(web, "cas", next_url)
    assert location.startswith(idp.cas_url) and "evil" not in location
    resp = web.get(at_provider(location), follow_redirects=False)
    assert resp.headers["location"] == lands


def test_login_mode_finds_the_account_by_its_login(web, engine, idp, monkeypatch):
    reconfigure(web, monkeypatch, SSO_ACCOUNT_MATCH="login")
    with session_scope(engine) as s:
        accounts.create_account(s, "T0042", PASSWORD, role="leader")  # not a person of the 人员 sheet
    idp.cas_user = "T0042"
    resp = sign_in(web, "cas")
    assert (resp.status_code, resp.headers["location"]) == (303, "/dashboard")
    assert "T0042" in web.get("/dashboard").text


def test_logout_ends_both_sessions(web, engine, idp):
    idp.cas_user = "20061234"
    assert sign_in(web, "cas", None).headers["location"] == "/me"
    assert sign_in(web, "cas", "/dashboard").headers["location"] == "/dashboard"
    assert web.get("/dashboard").status_code == 200  # the page with the sign-out form (and its cookie)
    copied = dict(web.cookies)
    refused = web.post("/sso/logout", data={"csrf": "forged"}, follow_redirects=False)
    assert refused.status_code == 403
    assert signed_in_person(web, engine) is not None
    csrf = form_token(SECRET, web.cookies.get("duban_form") or "", "logout")
    resp = web.post("/sso/logout", data={"csrf": csrf}, follow_redirects=False)
    assert (resp.status_code, resp.headers["location"]) == (303, "/login?out=1")
    with session_scope(engine, readonly=True) as s:
        assert all(row.ended_at is not None for row in s.scalars(select(PersonSession)))
    web.cookies.clear()
    web.cookies.update(copied)  # a copied cookie stops working too
    assert signed_in_person(web, engine) is None
    assert web.get("/dashboard", follow_redirects=False).headers["location"].startswith("/login")


def test_the_login_page_offers_the_configured_methods(web):
    page = web.get("/login?next=/dashboard").text
    assert page.count("统一身份认证登录") == 2  # CAS and OIDC
    assert 'href="/sso/cas/login?next=/dashboard"' in page
    assert "企业微信登录" in page and "钉钉登录" in page
    assert 'name="password"' in page  # the local accounts stay


def test_the_login_page_without_sso_and_a_method_not_configured(use_database, engine, tmp_path, monkeypatch):
    with small_plan_app(engine, tmp_path, monkeypatch) as client:
        assert "统一身份认证登录" not in client.get("/login").text
        resp = client.get("/sso/login", follow_redirects=False)
        assert resp.status_code == 404
        assert "本系统未启用统一身份认证。请使用领导小组办公室开通的账户登录。" in resp.text
        assert "本系统未启用该登录方式。" in client.get("/sso/cas/login", follow_redirects=False).text


@pytest.mark.parametrize(
    ("line", "logged"),
    [
        ('"GET /sso/cas/callback?ticket=ST-12345-secret HTTP/1.1" 303', '"GET /sso/cas/callback?ticket=… HTTP/1.1" 303'),
        ("/sso/oidc/callback?state=s1&code=abc.def", "/sso/oidc/callback?state=s1&code=…"),
        ("/sso/dingtalk/callback?authCode=xyz&state=s2", "/sso/dingtalk/callback?authCode=…&state=s2"),
        ("POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=wk-1", "POST https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=…"),
        ("POST https://open.feishu.cn/open-apis/bot/v2/hook/fs-1 ", "POST https://open.feishu.cn/open-apis/bot/v2/hook/… "),
    ],
)
def test_tickets_and_codes_never_reach_a_log(line, logged):
    assert logs.redact(line) == logged


def test_no_secret_code_or_token_reaches_a_log(web, idp, caplog):
    import logging

    caplog.set_level(logging.INFO)  # (httpcore's DEBUG lines show the test browser's own redirects)
    idp.cas_user, idp.wecom_user = "20061234", "dubanyuan"
    idp.dingtalk.add_user("ding-dby", "union-0001")
    for method in ("cas", "wecom", "dingtalk"):
        assert sign_in(web, method, None).headers["location"] == "/me"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "HTTP Request: GET" in logged  # httpx logs each call, redacted
    vendors = (idp.wecom, idp.dingtalk)
    calls = [*idp.calls, *idp.wecom.calls, *idp.dingtalk.calls]
    secrets_seen = (
        [v.secret for v in vendors] + [t for v in vendors for t in v.issued] + [c.query.get("ticket") or c.query.get("code") for c in calls]
    )
    assert [s for s in secrets_seen if s and s in logged] == []


def test_the_flow_cookie_expires(web, idp):
    from duban.sso import flow
    from duban.vocabulary import SignInMethod

    started = flow.Flow.start(SignInMethod.CAS, "/me")
    now = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC)
    value = started.cookie(SECRET, now=now)
    assert flow.read(SECRET, value, method=SignInMethod.CAS, now=now + dt.timedelta(minutes=9)) == started
    assert flow.read(SECRET, value, method=SignInMethod.CAS, now=now + dt.timedelta(minutes=10)) is None
    assert flow.read(SECRET, value, method=SignInMethod.OIDC, now=now) is None
