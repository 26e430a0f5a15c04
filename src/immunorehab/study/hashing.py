"""Canonical JSON and SHA-256 hash chains shared by allocations and the audit trail."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

__all__ = ["GENESIS", "canonical_json", "chain_hash", "iso_utc", "jsonable"]

#: ``prev_hash`` of the first link of every chain.
GENESIS = "0" * 64


def iso_utc(value: dt.datetime) -> str:
    """ISO 8601 in UTC with microseconds; naive values (SQLite) are taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def jsonable(value: Any) -> Any:
    """A value as JSON can hold it, the same whichever database returned it."""
    if isinstance(value, dt.datetime):
        return iso_utc(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def canonical_json(payload: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, dates as ISO strings."""
    return json.dumps(jsonable(payload), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def chain_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """SHA-256 of the previous link's hash and this link's canonical content."""
    return hashlib.sha256((prev_hash + "\n" + canonical_json(payload)).encode("utf-8")).hexdigest()
