"""``audit``: show and verify the audit trail."""

from __future__ import annotations

from typing import Annotated

import typer

from immunorehab.cli.common import DbOpt, UserOpt, console, open_store, require_user
from immunorehab.errors import IntegrityError
from immunorehab.study.audit import AuditRow, audit_rows, format_changes, verify_audit_chain
from immunorehab.study.participants import get_participant
from immunorehab.study.service import actor_of


def audit_command(
    participant_id: Annotated[str | None, typer.Argument(help="Only this participant's events.")] = None,
    verify: Annotated[bool, typer.Option("--verify", help="Check the audit hash chain.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Show who changed what, when and why; --verify checks the hash chain."""
    store = open_store(db)
    with store.read(require_user(user)) as session:
        if verify:
            report = verify_audit_chain(session)
            if not report.ok:
                raise IntegrityError(f"audit chain BROKEN: {report.problem}")
            console.print(f"Audit chain intact: {report.checked} events verified.")
            if participant_id is None:
                return
        pid = get_participant(session, participant_id).participant_id if participant_id else None
        rows = audit_rows(session, participant_id=pid, blinded=actor_of(session).blinded)
    console.print(f"Audit trail{' of ' + pid if pid else ''}: {len(rows)} events", style="bold")
    for row in rows:
        _print_event(row)


def _print_event(r: AuditRow) -> None:
    reason = f"  reason: {r.reason}" if r.reason else ""
    head = f"#{r.id:<5} {r.at:%Y-%m-%d %H:%M:%S} UTC  {r.user:<12} {r.action:<6} {r.entity} {r.entity_key}"
    console.print(head + reason, markup=False, highlight=False, soft_wrap=True)
    console.print(f"       {format_changes(r.changes)}", markup=False, highlight=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("audit")(audit_command)
