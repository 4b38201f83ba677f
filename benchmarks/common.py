"""Small helpers shared by the benchmarks."""

from __future__ import annotations

import os
from typing import Any


def load_average() -> str:
    """The machine's load average, to print beside wall-clock figures."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def safe_url(url: str) -> str:
    """A database URL with its password masked, for printing."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        cred, host = rest.rsplit("@", 1)
        if ":" in cred:
            return f"{scheme}://{cred.split(':', 1)[0]}:***@{host}"
    return url


def reset_postgres_schema(spec: dict[str, Any]) -> dict[str, Any]:
    """Drop and recreate schema public of the PostgreSQL database ``spec["database_url"]``."""
    from sqlalchemy import create_engine, text

    url = spec["database_url"]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    return {}
