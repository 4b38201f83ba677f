"""One Settings class reads DUBAN_* and refuses an unsafe secret outside demo mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from duban.settings import ConfigurationError, Settings


def test_defaults_in_demo_mode(tmp_path):
    s = Settings()
    assert s.database_url == f"sqlite:///{Path.cwd() / '.duban' / 'duban.db'}"
    assert (s.base_url, s.timezone, s.demo) == ("http://127.0.0.1:8000", "Asia/Shanghai", True)
    assert len(s.secret_key) >= 32  # a throw-away secret for the demo
    assert s.data_dir == Path.cwd() / ".duban"


def test_environment_overrides(monkeypatch):
    monkeypatch.setenv("DUBAN_DATABASE_URL", "postgresql+psycopg://u@h/db")
    monkeypatch.setenv("DUBAN_BASE_URL", "https://duban.example.edu.cn")
    monkeypatch.setenv("DUBAN_TIMEZONE", "Asia/Urumqi")
    s = Settings()
    assert (s.database_url, s.base_url, s.timezone) == ("postgresql+psycopg://u@h/db", "https://duban.example.edu.cn", "Asia/Urumqi")


@pytest.mark.parametrize("secret", [None, "", "secret", "x" * 31, "ab" * 20])
def test_unsafe_secret_outside_demo(monkeypatch, secret):
    monkeypatch.delenv("DUBAN_DEMO")
    if secret is not None:
        monkeypatch.setenv("DUBAN_SECRET_KEY", secret)
    with pytest.raises(ConfigurationError, match="DUBAN_SECRET_KEY"):
        Settings()


def test_safe_secret_outside_demo(monkeypatch):
    monkeypatch.delenv("DUBAN_DEMO")
    monkeypatch.setenv("DUBAN_SECRET_KEY", "Zq8-vT3p_Lw9xR2mK7nB4cY6hJ1sD5fG0aE")
    assert Settings().secret_key == "Zq8-vT3p_Lw9xR2mK7nB4cY6hJ1sD5fG0aE"
