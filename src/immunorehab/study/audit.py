"""The audit trail: who changed what, when and why, hash-chained.

Every insert, update and delete of an :class:`~immunorehab.study.models.Audited` row
made through a write session leaves one :class:`AuditEvent` (recorded in the same
transaction, from a ``before_flush`` hook, so no code path can forget it). Changing
existing data requires a reason. Audit rows are never updated or deleted (database
triggers refuse it) and each row's hash covers the previous row's hash, so
:func:`verify_audit_chain` names the first row that was altered or removed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import InstanceState, Session
from sqlalchemy.orm.attributes import instance_state

from immunorehab.errors import StudyError
from immunorehab.study.hashing import GENESIS, chain_hash, jsonable
from immunorehab.study.models import Audited, AuditEvent

__all__ = ["CONCEALED", "AuditRow", "attach", "audit_rows", "verify_audit_chain"]

#: What blinded users see in place of allocation details.
CONCEALED = "<concealed>"
_CONCEALED_FIELDS = frozenset({"arm", "detail_json", "hash", "prev_hash"})
#: Entities whose mere existence reveals a participant's arm (only exercise arms have
#: rehabilitation records): left out of the trail shown to blinded roles.
_ARM_REVEALING_PREFIXES = ("rehab_",)


def attach(session: Session) -> None:
    """Record audit events for every flush of ``session``."""
    if not event.contains(session, "before_flush", _before_flush):
        event.listen(session, "before_flush", _before_flush)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _column_values(obj: Audited) -> dict[str, Any]:
    state: InstanceState[Any] = instance_state(obj)
    exclude = type(obj).__audit_exclude__
    return {
        attr.key: jsonable(getattr(obj, attr.key))
        for attr in state.mapper.column_attrs
        if attr.key not in exclude
    }


def _changed_values(obj: Audited) -> dict[str, list[Any]]:
    state: InstanceState[Any] = instance_state(obj)
    exclude = type(obj).__audit_exclude__
    changes: dict[str, list[Any]] = {}
    for attr in state.mapper.column_attrs:
        if attr.key in exclude:
            continue
        hist = state.attrs[attr.key].history
        if not hist.has_changes():
            continue
        old = hist.deleted[0] if hist.deleted else None
        new = hist.added[0] if hist.added else None
        if jsonable(old) != jsonable(new):
            changes[attr.key] = [jsonable(old), jsonable(new)]
    return changes


def _before_flush(session: Session, _context: Any, _instances: Any) -> None:
    user = session.info.get("user")
    reason = session.info.get("reason")
    pending: list[tuple[str, Audited, dict[str, list[Any]]]] = []
    for obj in session.new:
        if isinstance(obj, Audited):
            pending.append(("create", obj, {k: [None, v] for k, v in _column_values(obj).items()}))
    for obj in session.dirty:
        if isinstance(obj, Audited) and session.is_modified(obj, include_collections=False):
            changes = _changed_values(obj)
            if changes:
                pending.append(("update", obj, changes))
    for obj in session.deleted:
        if isinstance(obj, Audited):
            pending.append(("delete", obj, {k: [v, None] for k, v in _column_values(obj).items()}))
    if not pending:
        return
    if not user:
        raise StudyError("internal: a write session must name its user for the audit trail")
    if not reason and any(action != "create" for action, _, _ in pending):
        keys = ", ".join(f"{o.__audit_entity__} {o.audit_key()}" for a, o, _ in pending if a != "create")
        raise StudyError(f"a reason is required to change existing data ({keys}): pass --reason TEXT")
    prev = session.info.get("audit_last_hash")
    if prev is None:
        with session.no_autoflush:
            prev = session.scalar(select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)) or GENESIS
    for action, obj, changes in pending:
        row = AuditEvent(
            at=_now(),
            username=user,
            action=action,
            entity=obj.__audit_entity__,
            entity_key=obj.audit_key(),
            participant_id=obj.audit_participant(),
            changes_json=json.dumps(changes, sort_keys=True),
            reason=reason,
            prev_hash=prev,
            hash="",
        )
        row.hash = chain_hash(prev, _payload(row))
        prev = row.hash
        session.add(row)
    session.info["audit_last_hash"] = prev


def _payload(row: AuditEvent) -> dict[str, Any]:
    return {
        "at": row.at,
        "user": row.username,
        "action": row.action,
        "entity": row.entity,
        "entity_key": row.entity_key,
        "participant_id": row.participant_id,
        "changes": json.loads(row.changes_json),
        "reason": row.reason,
    }


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One audit event as shown to a user (allocation details concealed for blinded roles)."""

    id: int
    at: dt.datetime
    user: str
    action: str
    entity: str
    entity_key: str
    participant_id: str | None
    changes: dict[str, list[Any]]
    reason: str | None


def audit_rows(session: Session, *, participant_id: str | None = None, blinded: bool) -> list[AuditRow]:
    """The audit trail in order, optionally for one participant."""
    query = select(AuditEvent).order_by(AuditEvent.id)
    if participant_id is not None:
        query = query.where(AuditEvent.participant_id == participant_id)
    rows = []
    for ev in session.scalars(query):
        if blinded and ev.entity.startswith(_ARM_REVEALING_PREFIXES):
            continue
        changes: dict[str, list[Any]] = json.loads(ev.changes_json)
        if blinded and ev.entity == "allocation":
            changes = {
                k: ([CONCEALED, CONCEALED] if k in _CONCEALED_FIELDS else v) for k, v in changes.items()
            }
        rows.append(
            AuditRow(
                ev.id,
                ev.at,
                ev.username,
                ev.action,
                ev.entity,
                ev.entity_key,
                ev.participant_id,
                changes,
                ev.reason,
            )
        )
    return rows


@dataclass(frozen=True, slots=True)
class ChainReport:
    """Result of verifying a hash chain: ``broken_at`` is None when intact."""

    checked: int
    broken_at: int | None = None
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.broken_at is None


def verify_audit_chain(session: Session) -> ChainReport:
    """Recompute every audit row's hash; report the first row whose content or link is wrong."""
    return _verify(session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


def _verify(rows: Iterable[AuditEvent]) -> ChainReport:
    prev = GENESIS
    n = 0
    for n, row in enumerate(rows, start=1):
        if row.prev_hash != prev:
            return ChainReport(
                n, row.id, f"audit row {row.id} does not link to the row before it (a row was removed)"
            )
        if chain_hash(prev, _payload(row)) != row.hash:
            return ChainReport(n, row.id, f"audit row {row.id} ({row.entity} {row.entity_key}) was altered")
        prev = row.hash
    return ChainReport(n)


def format_changes(changes: dict[str, list[Any]], *, keys: Sequence[str] | None = None) -> str:
    """``field: old -> new`` pairs on one line."""
    parts = []
    for key in keys or sorted(changes):
        old, new = changes[key]
        parts.append(f"{key}: {old} -> {new}" if old is not None else f"{key}={new}")
    return "; ".join(parts)
