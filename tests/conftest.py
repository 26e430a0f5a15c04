"""Shared fixtures: fresh study stores on SQLite and on a real PostgreSQL server.

PostgreSQL comes from IMMUNOREHAB_TEST_PG_URL (set by .ci/run) or a local server on
127.0.0.1:5432. Outside CI the PostgreSQL variants are skipped, with the reason shown,
when no server is reachable; in CI (CI=true) a missing server fails the run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa

from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from testpaths import PHOSP, REPO, ROLE_USERS, TWO_ARM  # noqa: F401  (re-exported for fixtures)

DEFAULT_PG = "postgresql+psycopg://immunorehab:immunorehab@127.0.0.1:5432/postgres"


def _pg_admin_url() -> str | None:
    url = os.environ.get("IMMUNOREHAB_TEST_PG_URL", DEFAULT_PG)
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return url
    except sa.exc.OperationalError:
        return None


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    url = _pg_admin_url()
    if url is None:
        if os.environ.get("CI"):
            pytest.fail("CI: no PostgreSQL server reachable (.ci/run should have started one)")
        pytest.skip(
            "no PostgreSQL server reachable on 127.0.0.1:5432 (set IMMUNOREHAB_TEST_PG_URL); "
            "run .ci/postgres.sh to start one"
        )
    return url


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database; dropped afterwards."""
    name = f"immunorehab_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(pg_admin_url).set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for a new, empty study database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return str(request.getfixturevalue("pg_url"))


@dataclass
class StudyHandle:
    store: Store
    url: str


@pytest.fixture
def make_study(db_url: str) -> Iterator[Callable[..., StudyHandle]]:
    """Factory: create the study (PHOSP-R protocol by default) with one user per role."""
    stores: list[Store] = []

    def make(protocol: Path = PHOSP, seed: int = 12345) -> StudyHandle:
        store, _ = create_study(db_url, protocol, admin="admin", seed=seed)
        for name, role in ROLE_USERS.items():
            add_user(store, by="admin", username=name, role=role)
        stores.append(store)
        return StudyHandle(store, db_url)

    yield make
    for store in stores:
        store.dispose()


@pytest.fixture
def study(make_study: Callable[..., StudyHandle]) -> StudyHandle:
    return make_study()
