"""Study creation, users and roles: the entry points every other capability builds on."""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunorehab.errors import ConfigError, NotFoundError, StudyError
from immunorehab.study.models import ROLES, AppUser, Study
from immunorehab.study.protocol import Protocol, load_protocol, parse_protocol
from immunorehab.study.store import Actor, Store

__all__ = ["StudyInfo", "add_user", "create_study", "get_protocol", "get_study", "list_users", "now_utc"]

_USERNAME = re.compile(r"^[a-z][a-z0-9_.\-]{1,63}$")
_PROTOCOL_CACHE: dict[str, Protocol] = {}


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class StudyInfo:
    slug: str
    title: str
    protocol_sha256: str
    created_at: dt.datetime
    created_by: str


def _check_username(name: str) -> None:
    if not _USERNAME.match(name):
        raise ConfigError(
            f"user name {name!r} is not valid: use a login name of 2-64 lowercase letters, digits, "
            "'.', '_' or '-' "
            "starting with a letter (never a person's full name or e-mail)"
        )


def create_study(
    url: str | None, protocol_path: str | Path, *, admin: str, seed: int | None = None
) -> tuple[Store, StudyInfo]:
    """Create the study in a new (or empty) database from a protocol file.

    The randomisation seed is drawn from the operating system's CSPRNG unless given,
    stored with the study and never shown except to the ``admin`` role.
    """
    protocol = load_protocol(protocol_path)
    _check_username(admin)
    text = Path(protocol_path).read_text(encoding="utf-8")
    store = Store.open(url, create=True)
    try:
        info = _create(store, protocol, text, admin, seed)
    except BaseException:
        store.dispose()
        raise
    return store, info


def _create(store: Store, protocol: Protocol, text: str, admin: str, seed: int | None) -> StudyInfo:
    with store.write(admin, bootstrap=True) as session:
        existing = session.scalar(select(Study))
        if existing is not None:
            raise StudyError(
                f"this database already holds study '{existing.slug}': use a new --db for another study"
            )
        now = now_utc()
        study = Study(
            slug=protocol.study.id,
            title=protocol.study.title,
            protocol_yaml=text,
            protocol_sha256=protocol.sha256(),
            seed=seed if seed is not None else secrets.randbits(62),
            created_at=now,
            created_by=admin,
        )
        session.add(study)
        session.add(AppUser(username=admin, role="admin", active=True, created_at=now))
        return StudyInfo(study.slug, study.title, study.protocol_sha256, now, admin)


def get_study(session: Session) -> Study:
    study = session.scalar(select(Study))
    if study is None:
        raise NotFoundError("this database holds no study: create one with `immunorehab study create`")
    return study


def get_protocol(session: Session) -> Protocol:
    """The protocol the study was created with (parsed once per process)."""
    study = get_study(session)
    cached = _PROTOCOL_CACHE.get(study.protocol_sha256)
    if cached is None:
        cached = parse_protocol(study.protocol_yaml, source=f"study {study.slug} protocol")
        _PROTOCOL_CACHE[study.protocol_sha256] = cached
    return cached


def actor_of(session: Session) -> Actor:
    actor = session.info.get("actor")
    if not isinstance(actor, Actor):
        raise StudyError("internal: session has no acting user")
    return actor


def add_user(store: Store, *, by: str, username: str, role: str) -> None:
    """Add a user with a role (admin only)."""
    _check_username(username)
    if role not in ROLES:
        raise ConfigError(f"role {role!r} is not valid: expected one of {', '.join(ROLES)}")
    with store.write(by) as session:
        actor_of(session).require("admin", action="add users")
        if session.scalar(select(AppUser).where(AppUser.username == username)) is not None:
            raise StudyError(f"user '{username}' already exists")
        session.add(AppUser(username=username, role=role, active=True, created_at=now_utc()))


def list_users(store: Store, *, by: str) -> list[tuple[str, str, bool]]:
    """Every user with role and active flag (admin only: roles reveal who is unblinded)."""
    with store.read(by) as session:
        session.info["actor"].require("admin", action="list users")
        return [(u.username, u.role, u.active) for u in session.scalars(select(AppUser).order_by(AppUser.id))]
