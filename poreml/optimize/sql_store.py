"""Campaigns in a database: :class:`SqlStore`, a :class:`CampaignStore` on any SQLAlchemy URL.

One database holds many campaigns, each under a unique **name** (CONTRACT.md §5). Several
people, machines or instruments may run ``suggest`` and ``observe`` on one campaign at the same
time: no observation is lost or duplicated, and two ``suggest`` calls never hand out the same
candidate.

Schema (Alembic migrations shipped in :mod:`poreml.optimize.migrations`; version table
``poreml_campaigns_alembic_version``, so a database shared with MLflow or Optuna keeps both)::

    campaigns(id, name UNIQUE, config_text, state JSON, schema_version, revision,
              created_at, updated_at)

``state`` is exactly :meth:`CampaignState.to_dict` (the content a campaign folder keeps in
``state.json``), ``config_text`` the TOML given to ``init``; ``revision`` and ``schema_version``
repeat the state's fields so that a database tool can see them without parsing the JSON.

Locking design. Every change is one database transaction on the campaign's row
(:meth:`SqlStore.transaction`):

1. open a transaction that takes the campaign's write lock:

   * PostgreSQL (and other servers): ``SELECT … FROM campaigns WHERE name = :name FOR UPDATE``
     locks the row until commit or rollback; ``SET LOCAL lock_timeout`` bounds the wait
     (``lock_timeout`` seconds). Plain reads (``status``, ``export``) are not blocked.
   * SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at the start of the
     transaction (SQLite locks the file, not rows); the driver's busy timeout bounds the wait.
     Readers still read the last committed state. SQLite suits one machine (its locks are not
     reliable on network file systems); a team shares a PostgreSQL server.

2. read the state (the latest committed one: no other writer can commit meanwhile), yield a
   working copy; the proposal or the merge of results runs on it, and new candidate ids come
   from its counter, so concurrent ``suggest`` calls get distinct ids and continue the Sobol
   sequence where the previous one stopped;
3. on a clean exit write the state back when it changed (``UPDATE … WHERE name = :name AND
   revision = :loaded``, a guard that fails loudly should the lock ever not hold) and commit; on
   an error roll back, leaving the stored campaign untouched.

The schema is brought to the newest revision when a store first touches its database
(``alembic upgrade head`` through Alembic's command API, with the config built in code). The
upgrade runs in one transaction under a lock, so concurrent first opens do not race: on
PostgreSQL ``pg_advisory_xact_lock``, on SQLite ``BEGIN IMMEDIATE``; on other databases a failed
upgrade is accepted when the schema turns out current afterwards (another process did it).

A database campaign has no folder: its plots and round tables go to a directory given by the
user (``reports``; ``poreml campaign … --reports DIR``), or nowhere.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from poreml.exceptions import CampaignError
from poreml.optimize.state import SCHEMA_VERSION, STATE_TYPE, CampaignState
from poreml.optimize.store import DEFAULT_LOCK_TIMEOUT, CampaignStore

__all__ = [
    "ADVISORY_LOCK_KEY",
    "MIGRATIONS_DIR",
    "NAME_PATTERN",
    "VERSION_TABLE",
    "SqlStore",
    "campaigns_table",
    "safe_url",
    "schema_revision",
    "upgrade_schema",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
"""The Alembic script directory shipped with the package."""

VERSION_TABLE = "poreml_campaigns_alembic_version"
"""Alembic's version table of the campaign schema (kept in step with ``migrations/env.py``)."""

ADVISORY_LOCK_KEY = 0x706F72656D6C  # "poreml" in ASCII
"""PostgreSQL advisory lock held while the schema is upgraded (one upgrader at a time)."""

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
"""Campaign names: a letter or digit, then letters, digits, ``.``, ``_`` or ``-`` (≤ 200)."""

_LOCK_OPTION = "poreml_write_lock"
"""Execution option asking the SQLite ``begin`` hook for ``BEGIN IMMEDIATE``."""

_metadata = sa.MetaData()
campaigns_table = sa.Table(
    "campaigns",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("config_text", sa.Text, nullable=False),
    sa.Column("state", sa.JSON, nullable=False),
    sa.Column("schema_version", sa.Integer, nullable=False),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
"""The ``campaigns`` table as revision 0001 of the migrations creates it."""


def safe_url(url: str | URL) -> str:
    """``url`` as text with its password replaced by ``***`` (for messages)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class SqlStore(CampaignStore):
    """The campaign ``name`` in the database at ``url`` (module doc).

    Nothing is connected when the store is built; the first call that needs the database
    connects and brings its schema to the newest revision.

    Args:
        url: any SQLAlchemy URL, e.g. ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/DB`` or
            ``sqlite:///PATH``.
        name: the campaign's name in that database (:data:`NAME_PATTERN`).
        reports: folder for the plots (``reports/``) and round tables (``reports/rounds/``) made
            for people; None makes none.
        lock_timeout: seconds to wait for another command holding the campaign's lock.

    Raises:
        CampaignError: the URL cannot be parsed, or the name is not a valid campaign name.
    """

    def __init__(
        self,
        url: str | URL,
        name: str,
        *,
        reports: str | Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        try:
            self._url = make_url(url)
        except ArgumentError:
            raise CampaignError(
                f"campaign storage {safe_url(str(url))!r}: not a database URL. Fix: give a "
                "SQLAlchemy URL such as postgresql+psycopg://USER:PASSWORD@HOST:5432/DB or "
                "sqlite:///PATH/campaigns.db (--storage or POREML_CAMPAIGN_STORAGE)."
            ) from None
        if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
            raise CampaignError(
                f"campaign name {name!r}: expected 1-200 characters, letters, digits, '.', '_' "
                "or '-', starting with a letter or digit. Fix: e.g. td-vs-buffering-2026."
            )
        self.name = name
        self.lock_timeout = float(lock_timeout)
        self._reports = Path(reports) if reports is not None else None
        self._engine: Engine | None = None

    # -- where ------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The database URL, password hidden."""
        return safe_url(self._url)

    @property
    def location(self) -> str:
        """``campaign 'NAME' in URL`` (password hidden)."""
        return f"campaign {self.name!r} in {self.url}"

    @property
    def short_name(self) -> str:
        """The campaign's name in the database."""
        return self.name

    @property
    def directory(self) -> None:
        """None: a database campaign has no folder."""
        return None

    @property
    def reports_dir(self) -> Path | None:
        """The ``reports`` folder given by the user, or None."""
        return self._reports

    @property
    def rounds_dir(self) -> Path | None:
        """``<reports>/rounds``, or None without a reports folder."""
        return self._reports / "rounds" if self._reports is not None else None

    # -- engine -----------------------------------------------------------------------------
    @property
    def engine(self) -> Engine:
        """The connected engine, its schema at the newest revision (made on first use).

        Raises:
            CampaignError: the database cannot be reached or its schema is newer than this
                poreml.
        """
        if self._engine is None:
            engine = _make_engine(self._url, self.lock_timeout)
            try:
                with self._errors():
                    upgrade_schema(engine)
            except BaseException:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def close(self) -> None:
        """Close the store's database connections (it reconnects when used again)."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Turn database failures into :class:`CampaignError` naming the URL and the fix."""
        try:
            yield
        except (NoSuchModuleError, ModuleNotFoundError) as err:
            raise CampaignError(
                f"campaign storage {self.url}: the database driver is not installed ({err}). "
                "Fix: for PostgreSQL install psycopg 3 (pip install 'psycopg[binary]>=3.1') and "
                "use a postgresql+psycopg:// URL."
            ) from None
        except DBAPIError as err:
            if _is_lock_timeout(err):
                raise CampaignError(
                    f"{self.location}: another poreml command is working on this campaign (its "
                    f"lock stayed taken for {self.lock_timeout:g} s). Fix: wait for that "
                    "command to finish, then run this one again (or raise --lock-timeout)."
                ) from None
            if isinstance(err, IntegrityError):
                raise
            if self._url.get_backend_name() == "sqlite":
                check = "that the folder of the database file exists and is writable"
            else:
                check = (
                    "that the database server is running and reachable at that host and port, "
                    "the user name and password, that the database exists (e.g. `createdb "
                    "DB`) and that the user may create tables in it"
                )
            raise CampaignError(
                f"cannot use the campaign database {self.url}: {self._driver_message(err)}. "
                f"Check {check}. The URL comes from --storage or POREML_CAMPAIGN_STORAGE."
            ) from None

    def _driver_message(self, err: DBAPIError) -> str:
        lines = str(err.orig).strip().splitlines()
        text = lines[0] if lines else type(err.orig).__name__
        if self._url.password:
            text = text.replace(str(self._url.password), "***")
        return text

    # -- campaign ---------------------------------------------------------------------------
    def list_names(self) -> list[str]:
        """Names of every campaign in the database, sorted."""
        with self._errors(), self.engine.connect() as conn:
            rows = conn.execute(sa.select(campaigns_table.c.name).order_by(campaigns_table.c.name))
            return [r[0] for r in rows]

    def exists(self) -> bool:
        """Whether the database holds a campaign of this name."""
        query = sa.select(campaigns_table.c.id).where(campaigns_table.c.name == self.name)
        with self._errors(), self.engine.connect() as conn:
            return conn.execute(query).first() is not None

    def _exists_error(self) -> CampaignError:
        return CampaignError(
            f"{self.location}: a campaign of this name already exists; it is never "
            "overwritten. Fix: choose a new name, or continue this campaign with `poreml "
            f"campaign suggest {self.name} --storage URL`."
        )

    def _missing_error(self) -> CampaignError:
        names = self.list_names()
        there = ", ".join(names[:20]) + (" …" if len(names) > 20 else "") if names else "none"
        return CampaignError(
            f"{self.location}: no campaign of this name (campaigns in this database: {there}). "
            f"Fix: create it with `poreml campaign init {self.name} --config FILE.toml "
            "--storage URL`, or give the name of an existing campaign."
        )

    @contextmanager
    def create(self, config_text: str, state: CampaignState) -> Iterator[CampaignState]:
        """Yield ``state``, then insert the campaign row (see :meth:`CampaignStore.create`).

        Raises:
            CampaignError: a campaign of this name exists (checked before the block, and by the
                unique name when inserting, should another command create it meanwhile).
        """
        if self.exists():
            raise self._exists_error()
        yield state
        stamp = datetime.now(UTC)
        row = {
            "name": self.name,
            "config_text": config_text,
            "state": state.to_dict(),
            "schema_version": SCHEMA_VERSION,
            "revision": state.revision,
            "created_at": stamp,
            "updated_at": stamp,
        }
        try:
            with self._errors(), self.engine.begin() as conn:
                conn.execute(sa.insert(campaigns_table).values(**row))
        except IntegrityError:
            raise self._exists_error() from None

    def load_config_text(self) -> str:
        """The config text the campaign was created with."""
        query = sa.select(campaigns_table.c.config_text).where(campaigns_table.c.name == self.name)
        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise self._missing_error()
        return str(row[0])

    def load_state(self) -> CampaignState:
        """The latest committed state (no lock).

        Raises:
            CampaignError: no campaign of this name, or a state this poreml cannot read.
        """
        query = sa.select(campaigns_table.c.state).where(campaigns_table.c.name == self.name)
        with self._errors(), self.engine.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise self._missing_error()
        return self._state_of(row[0])

    def _state_of(self, data: Any) -> CampaignState:
        if isinstance(data, str):  # a database without a JSON type hands back the text
            data = json.loads(data)
        if not isinstance(data, dict) or data.get("type") != STATE_TYPE:
            raise CampaignError(
                f'{self.location}: expected a poreml campaign state ("type": "{STATE_TYPE}"), '
                f"got {type(data).__name__}. Fix: the row was not written by poreml; restore it "
                "from a backup."
            )
        if data.get("schema_version") != SCHEMA_VERSION:
            raise CampaignError(
                f"{self.location}: state schema version {data.get('schema_version')!r}, this "
                f"poreml reads version {SCHEMA_VERSION}. Fix: open the campaign with the poreml "
                "version that wrote it."
            )
        try:
            return CampaignState.from_dict(data)
        except CampaignError as err:
            raise CampaignError(f"{self.location}: {err}") from None

    @contextmanager
    def transaction(self) -> Iterator[CampaignState]:
        """Lock the campaign's row, yield its state, write it back on a clean exit (module doc).

        Raises:
            CampaignError: no campaign of this name, or its lock stayed taken for longer than
                :attr:`lock_timeout` seconds.
        """
        table = campaigns_table
        with self._errors(), self.engine.connect() as conn:
            conn.execution_options(**{_LOCK_OPTION: True})
            with conn.begin():
                _set_lock_timeout(conn, self.lock_timeout)
                row = conn.execute(
                    sa.select(table.c.state).where(table.c.name == self.name).with_for_update()
                ).first()
                if row is None:
                    raise self._missing_error()
                loaded = self._state_of(row[0])
                work = loaded.copy()
                yield work
                if work == loaded:
                    return
                work.touch()
                result = conn.execute(
                    sa.update(table)
                    .where(table.c.name == self.name, table.c.revision == loaded.revision)
                    .values(
                        state=work.to_dict(),
                        revision=work.revision,
                        updated_at=datetime.now(UTC),
                    )
                )
                if result.rowcount != 1:
                    raise CampaignError(
                        f"{self.location}: the campaign changed under this command although it "
                        f"held the lock (revision {loaded.revision} no longer stored); nothing "
                        "was written. Fix: run the command again; if this repeats, the "
                        "database does not honour SELECT … FOR UPDATE."
                    )


# -- engine and schema -----------------------------------------------------------------------------
def _make_engine(url: URL, lock_timeout: float) -> Engine:
    """An engine for ``url``: strict JSON, bounded waits, SQLite write transactions IMMEDIATE."""
    serializer = functools.partial(json.dumps, allow_nan=False)
    kwargs: dict[str, Any] = {"json_serializer": serializer}
    backend = url.get_backend_name()
    if backend == "sqlite":
        # the driver's busy timeout is how long BEGIN IMMEDIATE waits for the write lock
        kwargs["connect_args"] = {"timeout": max(lock_timeout, 0.001)}
    elif backend == "postgresql":
        kwargs["connect_args"] = {"connect_timeout": 10}
        kwargs["pool_pre_ping"] = True
    try:
        engine = sa.create_engine(url, **kwargs)
    except (NoSuchModuleError, ModuleNotFoundError) as err:
        raise CampaignError(
            f"campaign storage {safe_url(url)}: the database driver is not installed ({err}). "
            "Fix: for PostgreSQL install psycopg 3 (pip install 'psycopg[binary]>=3.1') and use "
            "a postgresql+psycopg:// URL."
        ) from None
    except (ArgumentError, SQLAlchemyError, TypeError) as err:
        raise CampaignError(
            f"campaign storage {safe_url(url)}: cannot build a database engine ({err}). Fix: "
            "check the URL (--storage or POREML_CAMPAIGN_STORAGE)."
        ) from None
    if backend == "sqlite":
        _sqlite_transactions(engine)
    return engine


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the sqlite3 module, begin transactions; writers ``BEGIN IMMEDIATE``.

    The sqlite3 module would otherwise open transactions lazily at the first write, after the
    campaign was read: two commands could then read the same state and the second would fail
    to upgrade its lock (SQLite's recipe in the SQLAlchemy docs, "Serializable isolation").
    """

    @event.listens_for(engine, "connect")
    def _no_driver_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get(_LOCK_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _set_lock_timeout(conn: Connection, seconds: float) -> None:
    """Bound the wait for a row lock on PostgreSQL (0 would mean forever there)."""
    if conn.dialect.name == "postgresql":
        ms = max(int(seconds * 1000), 1)
        conn.exec_driver_sql(f"SET LOCAL lock_timeout = {ms}")


def _is_lock_timeout(err: DBAPIError) -> bool:
    """Whether a driver error says a lock wait ran out (SQLite busy, PostgreSQL 55P03)."""
    if getattr(err.orig, "sqlstate", None) == "55P03":
        return True
    return "database is locked" in str(err.orig)


def _alembic_config() -> Any:
    """Alembic's config built in code (no alembic.ini): the shipped script directory."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    return config


def schema_revision(engine: Engine) -> str | None:
    """The schema revision recorded in the database (None: no poreml campaign schema yet)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()


def upgrade_schema(engine: Engine) -> None:
    """Bring the campaign schema to the newest revision (``alembic upgrade head``).

    Does nothing when it is current. Otherwise runs the migrations in one transaction under a
    lock (PostgreSQL advisory lock, SQLite ``BEGIN IMMEDIATE``), so concurrent first opens wait
    for each other instead of failing; elsewhere a failed upgrade is accepted when the schema is
    current afterwards.

    Raises:
        CampaignError: the database is at a revision this poreml does not know (written by a
            newer poreml).
        sqlalchemy.exc.DBAPIError: the database cannot be reached or changed.
    """
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = _alembic_config()
    script = ScriptDirectory.from_config(config)
    head = script.get_current_head()
    current = schema_revision(engine)
    if current == head:
        return
    if current is not None:
        try:
            script.get_revision(current)
        except CommandError:
            raise CampaignError(
                f"campaign database {safe_url(engine.url)}: schema revision {current!r} is "
                f"newer than this poreml knows (newest {head!r}). Fix: upgrade poreml."
            ) from None
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_LOCK_OPTION: True})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                    )
                config.attributes["connection"] = conn
                command.upgrade(config, "head")
    except DBAPIError:
        if schema_revision(engine) != head:
            raise
