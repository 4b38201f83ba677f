"""An app secret kept in a Prefect Secret block (DUBAN_WECOM_SECRET_BLOCK): read through
duban.orchestration when the first message is sent, against the local Prefect server and the fake WeCom."""

from __future__ import annotations

import datetime as dt

from duban.runtime import configured_apps
from duban.settings import get_settings
from notifications.channel import Outgoing


def test_the_secret_comes_from_the_named_block(prefect_server, app_vendors, monkeypatch):
    from prefect.blocks.system import Secret

    Secret(value=app_vendors.wecom.secret).save("duban-wecom-secret", overwrite=True)
    monkeypatch.delenv("DUBAN_WECOM_SECRET")
    monkeypatch.setenv("DUBAN_WECOM_SECRET_BLOCK", "duban-wecom-secret")
    get_settings.cache_clear()
    client = configured_apps(get_settings()).clients["wecom"]
    out = Outgoing(
        1, 1, "教务处处长", None, dt.date(2026, 11, 23), "【督办系统】通知渠道测试", {"kind": "test", "recipient": "教务处处长"}, 0
    )
    answer = client.send("zhangsan", out)
    assert (answer.ok, answer.shown) == (True, "errcode=0 errmsg=ok")
    assert app_vendors.wecom.calls[0].query["corpsecret"] == app_vendors.wecom.secret

    monkeypatch.setenv("DUBAN_WECOM_SECRET_BLOCK", "no-such-block")
    get_settings.cache_clear()
    app_vendors.wecom.calls.clear()
    from notifications.apps.base import TOKENS

    TOKENS.clear()
    attempt = configured_apps(get_settings()).clients["wecom"].attempt("zhangsan", out)
    assert not attempt.ok and attempt.error is not None
    assert attempt.error.startswith("企业微信未能发送：无法读取 Prefect Secret 块“no-such-block”（")
    assert app_vendors.wecom.calls == []  # nothing asked of WeCom without a secret
