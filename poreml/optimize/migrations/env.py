"""Alembic environment of the campaign database (:mod:`poreml.optimize.sql_store`).

:func:`poreml.optimize.sql_store.upgrade_schema` runs the migrations programmatically: it builds
the Alembic config in code and passes an open connection (inside the transaction that holds the
upgrade lock) as ``config.attributes["connection"]``. Run by hand, e.g. ``alembic -x
url=postgresql+psycopg://… upgrade head`` with ``script_location`` pointing here, the URL comes
from ``-x url=`` or the config's ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

VERSION_TABLE = "poreml_campaigns_alembic_version"
"""Alembic's version table; named for poreml so a database shared with MLflow or Optuna (which
keep their own ``alembic_version``) holds both."""

config = context.config


def _run(connection: object) -> None:
    context.configure(connection=connection, version_table=VERSION_TABLE)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations() -> None:
    """Upgrade on the given connection, or on one opened from the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if not url:
        raise RuntimeError(
            "no database to migrate: pass -x url=SQLALCHEMY_URL or set sqlalchemy.url."
        )
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            _run(conn)
    finally:
        engine.dispose()


if context.is_offline_mode():
    raise RuntimeError("the poreml campaign migrations run online only (they need a connection).")
run_migrations()
