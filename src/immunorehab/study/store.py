"""Opening the study database and running writes as single, serialised transactions.

SQLite (default, a file) and PostgreSQL go through the same code. Every write runs in
one transaction that is serialised against all other writers (SQLite ``BEGIN
IMMEDIATE``; PostgreSQL transaction-level advisory lock), so sequence numbers and hash
chains stay gap-free under concurrent processes, and a failure leaves the database
exactly as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, ProgrammingError
from sqlalchemy.orm import Session

from immunorehab.errors import ConfigError, NotFoundError, PermissionDenied, StoreError
from immunorehab.study import audit
from immunorehab.study.models import AppUser, Study

__all__ = ["DEFAULT_URL", "ENV_URL", "Actor", "Store", "resolve_url"]

ENV_URL = "IMMUNOREHAB_DATABASE_URL"
DEFAULT_URL = "sqlite:///immunorehab.db"
_PG_WRITE_LOCK = 720_2611  # advisory lock key serialising immunorehab writers
_MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration; the store migrates when the database is behind it (checked in tests).
SCHEMA_HEAD = "0004"


@dataclass(frozen=True, slots=True)
class Actor:
    """The user on whose behalf a command runs."""

    username: str
    role: str

    @property
    def blinded(self) -> bool:
        from immunorehab.study.models import BLINDED_ROLES

        return self.role in BLINDED_ROLES

    def require(self, *roles: str, action: str) -> None:
        """Raise :class:`PermissionDenied` unless the actor has one of ``roles``."""
        if self.role not in roles:
            raise PermissionDenied(
                f"user '{self.username}' (role {self.role}) may not {action}; "
                f"allowed roles: {', '.join(roles)}"
            )


def resolve_url(url: str | None) -> str:
    """The database URL: the argument, else $IMMUNOREHAB_DATABASE_URL, else ./immunorehab.db."""
    return url or os.environ.get(ENV_URL) or DEFAULT_URL


def _sqlite_path(url: str) -> Path | None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


class Store:
    """A study database. Use :meth:`open`; then :meth:`write` / :meth:`read` sessions."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name

    # -- opening -----------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, *, create: bool = False) -> Store:
        """Open (and, with ``create``, create) the database and migrate it to the latest schema.

        Raises
        ------
        StoreError
            The URL is malformed, the server unreachable, or the SQLite file missing
            (without ``create``).
        """
        url = resolve_url(url)
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise StoreError(f"database URL {url!r} is not valid: expected e.g. sqlite:///study.db") from exc
        path = _sqlite_path(url)
        if path is not None:
            if not create and not path.exists():
                raise StoreError(
                    f"no study database at {path}: create one with "
                    "`immunorehab study create PROTOCOL --admin NAME`, or pass --db / set "
                    f"{ENV_URL}"
                )
            if not path.parent.exists():
                raise StoreError(f"folder {path.parent} does not exist (database {path})")
        try:
            engine = cls._engine(parsed.render_as_string(hide_password=False))
        except NoSuchModuleError as exc:
            raise StoreError(
                f"unsupported database URL {parsed!r}: use sqlite:/// or postgresql+psycopg://"
            ) from exc
        store = cls(engine)
        try:
            store._migrate()
        except BaseException:
            engine.dispose()
            raise
        return store

    @staticmethod
    def _engine(url: str) -> Engine:
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
            url = parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 60})
            event.listen(engine, "connect", _sqlite_on_connect)
            event.listen(engine, "begin", _sqlite_on_begin)
            return engine
        return create_engine(url, pool_pre_ping=True)

    def _migrate(self) -> None:
        try:
            if self._schema_version() == SCHEMA_HEAD:
                return
            from alembic import command  # imported only when a migration is due (start-up time)
            from alembic.config import Config

            with self._locked_connection() as conn:
                cfg = Config()
                cfg.set_main_option("script_location", str(_MIGRATIONS))
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except DBAPIError as exc:
            raise StoreError(f"cannot open database {self.engine.url!r}: {exc.orig}") from exc

    def _schema_version(self) -> str | None:
        with self.engine.connect() as conn:
            try:
                version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            except (ProgrammingError, DBAPIError):
                version = None
            conn.rollback()
        return version

    # -- transactions ------------------------------------------------------------
    @contextmanager
    def _locked_connection(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn = conn.execution_options(immunorehab_write=True)
            with conn.begin():
                if self.dialect == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})")
                yield conn

    @contextmanager
    def write(
        self, user: str | None, *, reason: str | None = None, bootstrap: bool = False
    ) -> Iterator[Session]:
        """One serialised write transaction on behalf of ``user``; rolled back on any error.

        Every change made through the session is written to the audit trail with
        ``user`` and ``reason`` (a reason is required to change existing rows).
        ``bootstrap`` skips the user lookup (study creation, before any user exists).
        """
        with self._locked_connection() as conn:
            session = Session(bind=conn, expire_on_commit=False, autoflush=True)
            try:
                if not bootstrap:
                    actor = self._actor(session, user)
                    session.info["actor"] = actor
                session.info["user"] = user
                session.info["reason"] = reason
                audit.attach(session)
                yield session
                session.flush()
            except DBAPIError as exc:
                raise StoreError(f"the database refused the change: {exc.orig}") from exc
            finally:
                session.close()

    @contextmanager
    def read(self, user: str | None) -> Iterator[Session]:
        """A read-only session on behalf of ``user`` (``session.info['actor']``)."""
        with Session(self.engine, expire_on_commit=False) as session:
            session.info["actor"] = self._actor(session, user)
            try:
                yield session
            finally:
                session.rollback()

    @staticmethod
    def _actor(session: Session, user: str | None) -> Actor:
        if not user:
            raise ConfigError("no user given: pass --user NAME or set IMMUNOREHAB_USER")
        if session.scalar(select(Study.id).limit(1)) is None:
            raise NotFoundError(
                "this database holds no study yet: create one with "
                "`immunorehab study create PROTOCOL --admin NAME`"
            )
        row = session.scalar(select(AppUser).where(AppUser.username == user))
        if row is None or not row.active:
            raise PermissionDenied(
                f"unknown or inactive user '{user}': an admin adds users with "
                "`immunorehab user add NAME --role ROLE`"
            )
        return Actor(row.username, row.role)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # We issue BEGIN ourselves (pysqlite's implicit transactions are off).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("immunorehab_write", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
