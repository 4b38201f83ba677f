"""Alembic environment: runs against the engine handed over by ``duban.db`` (or the settings)."""

from typing import Any

from alembic import context

from duban.models import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from duban.db import make_engine
        from duban.settings import get_settings

        url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
        engine = make_engine(url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        # Batch migrations copy and drop tables; SQLite must not enforce foreign keys meanwhile.
        # The pragma only works outside a transaction, so it goes to the driver connection.
        driver: Any = connection.connection.driver_connection
        if sqlite:
            driver.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                context.configure(
                    connection=connection,
                    target_metadata=target_metadata,
                    render_as_batch=sqlite,
                    compare_type=True,
                )
                context.run_migrations()
        finally:
            if sqlite:
                driver.execute("PRAGMA foreign_keys=ON")


if context.is_offline_mode():  # pragma: no cover
    raise SystemExit("duban migrations run online only")
run_migrations_online()
