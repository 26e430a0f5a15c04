"""Options, consoles and helpers shared by the CLI command modules."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import typer
from rich.console import Console

from immunorehab.errors import ConfigError
from immunorehab.study.store import Store

__all__ = [
    "DbOpt",
    "ReasonOpt",
    "TodayOpt",
    "UserOpt",
    "console",
    "err_console",
    "close_stores",
    "open_store",
    "parse_assignments",
    "parse_date",
    "require_user",
]

# Piped output (files, CI logs, tests) is not truncated to 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True)

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="IMMUNOREHAB_DATABASE_URL",
        show_envvar=True,
        help="Database URL (sqlite:///study.db or postgresql://user@host/db). Default ./immunorehab.db.",
    ),
]
UserOpt = Annotated[
    str | None,
    typer.Option(
        "--user",
        envvar="IMMUNOREHAB_USER",
        show_envvar=True,
        help="Your user name (login, not your real name).",
    ),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why existing data is changed (kept in the audit trail).")
]
TodayOpt = Annotated[
    str | None, typer.Option("--today", help="Evaluate as of this date (YYYY-MM-DD); default today.")
]


def require_user(user: str | None) -> str:
    if not user:
        raise ConfigError("no user given: pass --user NAME or set IMMUNOREHAB_USER")
    return user


_OPENED: list[Store] = []


def open_store(db: str | None) -> Store:
    """Open the study database; closed by :func:`close_stores` when the command ends."""
    store = Store.open(db)
    _OPENED.append(store)
    return store


def close_stores() -> None:
    while _OPENED:
        _OPENED.pop().dispose()


def parse_date(value: str | None, *, option: str) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"{option} must be a date as YYYY-MM-DD, got {value!r}") from None


def parse_assignments(items: list[str] | None, *, option: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``."""
    out: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{option} takes FIELD=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out
