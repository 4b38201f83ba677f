"""The one place that reads configuration (environment variables prefixed ``DUBAN_``)."""

from __future__ import annotations

import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from duban.vocabulary import SsoAccountMatch, SsoMatch

# Values that must never protect real links: placeholders from docs and examples.
UNSAFE_SECRETS = frozenset({"changethis", "change-me", "changeme", "secret", "duban", "demo", "password", "test", "dev"})
MIN_SECRET_LENGTH = 32
DEFAULT_DATA_DIR = ".duban"


class ConfigurationError(Exception):
    """Raised when the configuration is unusable; the message is shown to the operator as is."""


def _default_database_url() -> str:
    return f"sqlite:///{Path.cwd() / DEFAULT_DATA_DIR / 'duban.db'}"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DUBAN_", extra="ignore")

    database_url: str = Field(default_factory=_default_database_url)
    secret_key: str | None = None
    base_url: str = "http://127.0.0.1:8000"
    timezone: str = "Asia/Shanghai"
    demo: bool = False  # a throw-away secret; every message goes to the local outbox only, at any hour
    calendar_file: Path | None = None  # the institution's own calendar (holidays, 调休, semesters)
    template_dir: Path | None = None  # an institution's own message templates (override ours)
    outbox_dir: Path | None = None  # where the local outbox channel writes (default: <data>/outbox)
    # notifications (docs/notifications.md)
    smtp_url: str | None = None  # the institution's mail relay: an apprise mailto:// or mailtos:// URL without recipients
    send_hours: str = "08:00-18:00"  # messages go out on working days within these hours (or "always")
    unreachable_after: int = Field(3, ge=1)  # failed attempts of one digest before the office is told
    deliver_workers: int = Field(8, ge=1, le=64)  # messages sent at the same time
    smtp_timeout: float = Field(15.0, gt=0)  # seconds to wait for the mail relay to connect and to answer each command
    smtp_final_timeout: float = Field(600.0, gt=0)  # seconds to wait for its answer to the end of a message (RFC 5321 4.5.3.2.6: 10 min)
    # institutions per child flow run of the daily sweep on workers; None: one batch per online
    # worker of the pool, the daily sweep's own worker's swept by it (docs/production.md)
    sweep_batch: int | None = Field(None, ge=1, le=1000)
    deliver_lease: float = Field(120.0, ge=5)  # seconds a claim on a message lasts unless renewed (a dead sender's claims return after it)
    db_connect_timeout: int = Field(10, ge=2)  # seconds to wait for PostgreSQL to answer a new connection
    outbox_copy: bool = False  # also write every message to the local outbox (demo mode writes only there)
    # web app: action links and uploads (docs/web.md)
    link_days_after_due: int = 60  # an action link works until this many days after the due date
    upload_max_mb: int = 20  # per file
    upload_max_files: int = 5  # per submission
    rate_limit_per_minute: int = 120  # link requests per client address
    rate_limit_link_per_minute: int = 30  # requests per link
    relink_per_hour: int = 3  # "send me a fresh link" per link
    web_send_now: bool = True  # deliver what an action caused (approval requests, decisions) at once
    web_send_delay: float = 3.0  # seconds to gather such messages into one digest per person
    web_busy_patience: float = Field(30.0, gt=0)  # seconds an action waits for the store while another task writes, then "系统正忙" (503)
    # the reverse proxies (addresses or networks, comma-separated) whose X-Forwarded-For is believed by
    # `duban serve`/`run`; empty: none, every client is the address it connects from (docs/deploy.md)
    trusted_proxies: str = ""
    # dashboard sign-in (docs/web.md, "Dashboard")
    session_hours: float = Field(12.0, gt=0)  # a dashboard session lasts this long, then sign in again
    login_max_failures: int = Field(5, ge=1)  # wrong passwords in a row from one address before that address is locked out of the account
    login_lock_minutes: int = Field(15, ge=1)  # how long
    dashboard_link_days: int = Field(30, ge=1)  # default lifetime of a read-only dashboard link
    # failures from all addresses since the last success before the account is locked for addresses it was not used from
    login_account_max_failures: int = Field(50, ge=1)
    # personal app messages (docs/notifications.md, "Personal app messages"): each vendor's app, once per
    # installation; a secret as its value or as the name of a Prefect Secret block (…_SECRET_BLOCK)
    wecom_corp_id: str | None = None  # 企业微信 企业ID
    wecom_agent_id: int | None = None  # the app's AgentId
    wecom_secret: SecretStr | None = None
    wecom_secret_block: str | None = None
    wecom_api_base: str = "https://qyapi.weixin.qq.com"
    # (the DingTalk app also keeps 待办 for each open milestone: duban/chat_todos.py)
    dingtalk_app_key: str | None = None  # 钉钉 AppKey (Client ID)
    dingtalk_app_secret: SecretStr | None = None
    dingtalk_app_secret_block: str | None = None
    dingtalk_agent_id: int | None = None  # the app's AgentId
    dingtalk_oapi_base: str = "https://oapi.dingtalk.com"  # the old-style API (gettoken, topapi: 工作通知)
    dingtalk_api_base: str = "https://api.dingtalk.com"  # the new-style API (v1.0: 待办, OAuth)
    feishu_app_id: str | None = None  # 飞书 App ID (cli_…)
    feishu_app_secret: SecretStr | None = None
    feishu_app_secret_block: str | None = None
    feishu_lark: bool = False  # the app is a Lark app (open.larksuite.com)
    feishu_api_base: str | None = None  # default: https://open.feishu.cn, or https://open.larksuite.com with DUBAN_FEISHU_LARK=1
    app_timeout: float = Field(10.0, gt=0)  # seconds to wait for a vendor's API
    # issue 17
    relink_per_address_per_hour: int = Field(60, ge=1)  # "send me a fresh link" per client address, over all links (a campus NAT)

    # the institution's sign-in (docs/web.md, "统一身份认证 / Sign-in the institution already has")
    cas_url: str | None = None  # the CAS server's base URL (…/cas): /login and /p3/serviceValidate under it
    cas_version: int = Field(3, ge=2, le=3)  # CAS protocol 3 (/p3/serviceValidate, attributes) or 2 (/serviceValidate)
    cas_attribute: str | None = None  # the attribute that holds the account (工号); empty: cas:user
    oidc_issuer: str | None = None  # discovery at {issuer}/.well-known/openid-configuration
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_claim: str = "preferred_username"  # the id_token (or userinfo) claim that holds the account
    oidc_scope: str = "openid profile"
    sso_match: SsoMatch = SsoMatch.STAFF_NO  # the 人员 sheet's column the account is matched with
    sso_account_match: SsoAccountMatch = SsoAccountMatch.PERSON  # the dashboard account of a signed-in person
    sso_timeout: float = Field(10.0, gt=0)  # seconds to wait for the institution's servers
    # sign-in inside the WeCom and DingTalk apps: the apps configured above for messages (one app
    # per vendor), and where each vendor's OAuth page is
    wecom_authorize_url: str = "https://open.weixin.qq.com/connect/oauth2/authorize"
    dingtalk_authorize_url: str = "https://login.dingtalk.com/oauth2/auth"

    @model_validator(mode="after")
    def _check_channels(self) -> Settings:
        from duban.rules.quiet import SendHoursError, parse_send_hours

        try:
            parse_send_hours(self.send_hours)
        except SendHoursError as err:
            raise ConfigurationError(f"DUBAN_SEND_HOURS：{err}") from None
        if self.smtp_url:
            from notifications.addresses import relay_problem

            problem = relay_problem(self.smtp_url)
            if problem:
                raise ConfigurationError(f"DUBAN_SMTP_URL {problem}")
        return self

    @model_validator(mode="after")
    def _check_apps(self) -> Settings:
        """A vendor's app is configured completely or not at all (the missing variables named)."""
        groups: dict[str, dict[str, object]] = {
            "企业微信应用": {
                "DUBAN_WECOM_CORP_ID": self.wecom_corp_id,
                "DUBAN_WECOM_AGENT_ID": self.wecom_agent_id,
                "DUBAN_WECOM_SECRET": self.wecom_secret or self.wecom_secret_block,
            },
            "钉钉应用": {
                "DUBAN_DINGTALK_APP_KEY": self.dingtalk_app_key,
                "DUBAN_DINGTALK_AGENT_ID": self.dingtalk_agent_id,
                "DUBAN_DINGTALK_APP_SECRET": self.dingtalk_app_secret or self.dingtalk_app_secret_block,
            },
            "飞书应用": {
                "DUBAN_FEISHU_APP_ID": self.feishu_app_id,
                "DUBAN_FEISHU_APP_SECRET": self.feishu_app_secret or self.feishu_app_secret_block,
            },
        }
        for what, values in groups.items():
            missing = [name for name, value in values.items() if value is None or value == ""]
            if missing and len(missing) < len(values):
                raise ConfigurationError(
                    f"{what}的配置不完整：缺少 {'、'.join(missing)}"
                    "（密钥也可写成 Prefect Secret 块的名称：…_SECRET_BLOCK）。请补全，或删去该应用的全部配置。"
                )
        return self

    @model_validator(mode="after")
    def _check_secret(self) -> Settings:
        if self.demo:
            if not self.secret_key:
                # Demo mode: a throw-away secret, so links work but never outlive the process.
                self.secret_key = secrets.token_urlsafe(32)
            return self
        problem = secret_problem(self.secret_key)
        if problem:
            raise ConfigurationError(
                f"DUBAN_SECRET_KEY {problem}。请设置至少 {MIN_SECRET_LENGTH} 个字符的随机字符串"
                "（可用 `duban secret` 生成一个），或设置 DUBAN_DEMO=1 以演示模式运行。"
            )
        return self

    @property
    def evidence_path(self) -> Path:
        """Uploaded evidence files, named by their SHA-256 (never by the uploaded name)."""
        return self.data_dir / "evidence"

    @property
    def outbox_path(self) -> Path:
        return self.outbox_dir or self.data_dir / "outbox"

    @property
    def data_dir(self) -> Path:
        """Folder for local files (SQLite database, outbox, uploads) next to a SQLite database."""
        if self.database_url.startswith("sqlite:///") and ":memory:" not in self.database_url:
            return Path(self.database_url.removeprefix("sqlite:///")).parent
        return Path.cwd() / DEFAULT_DATA_DIR

    # evidence caps (docs/web.md, "Evidence"): what one link, and one plan in one local day, may store
    upload_link_max_mb: int = Field(100, ge=1)  # all files recorded through one link (a 督查 answer link can be posted again)
    upload_plan_day_max_mb: int = Field(1000, ge=1)  # all files of one plan recorded in one day


def secret_problem(secret: str | None) -> str | None:
    """Why a secret is unsafe (in Chinese, for the operator), or None when it is fine."""
    if not secret:
        return "未设置"
    if secret.strip().lower() in UNSAFE_SECRETS:
        return "是示例占位值，不安全"
    if len(secret) < MIN_SECRET_LENGTH:
        return f"太短（{len(secret)} 个字符）"
    if len(set(secret)) < 8:
        return "过于简单（重复字符太多）"
    return None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
