"""Logging sessions: one session (CLI), a whole CSV file (all-or-nothing), 24/48 h follow-ups, adverse events.

Every value is validated (:mod:`immunorehab.rehab.sessionlog`) and checked against the
participant's record: randomised to an arm with a programme, prescribed, session dated
on/after randomisation and the prescription, not in the future, within the programme
(weeks + grace days), in order with the other sessions, prescribed doses within the
caps. Any problem refuses the whole write -- nothing is partly saved -- and every
problem is reported with its row and field.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from immunorehab.errors import Problem, RehabError, SessionLogError
from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose, dose_within_caps
from immunorehab.rehab.outcome import SYMPTOMS, SessionOutcome
from immunorehab.rehab.progression import decide_session, initial_state
from immunorehab.rehab.service import RehabContext, load_context, require_unblinded, session_outcome
from immunorehab.rehab.sessionlog import (
    AE_RELATEDNESS,
    AE_SEVERITY,
    FOLLOWUP_FIELDS,
    SessionEntry,
    all_fields,
    parse_session_values,
    typed_value,
)
from immunorehab.rehab.tables import RehabAdverseEvent, RehabExercise, RehabSession
from immunorehab.study import coerce
from immunorehab.study.participants import read_table
from immunorehab.study.service import now_utc
from immunorehab.study.store import Store

__all__ = [
    "LOGGERS",
    "LoggedSession",
    "add_adverse_event",
    "import_sessions",
    "log_session",
    "record_followup",
]

LOGGERS = ("admin", "coordinator", "physio")
FOLLOWUP_REASON = "post-session symptom follow-up (24/48 h)"


@dataclass(frozen=True, slots=True)
class LoggedSession:
    participant_id: str
    session_no: int
    session_date: dt.date
    attended: bool
    replaced: bool


def _engine_doses(ctx: RehabContext, before: int, extra: Sequence[SessionOutcome] = ()) -> dict[str, Dose]:
    """The engine's doses for session ``before`` from the sessions logged before it."""
    outcomes = [o for o in ctx.outcomes() if o.session_no < before]
    outcomes += [o for o in extra if o.session_no < before]
    state = initial_state(ctx.plan)
    for outcome in sorted(outcomes, key=lambda o: o.session_no):
        _, state = decide_session(
            state, outcome, plan=ctx.plan, programme=ctx.programme, clearances=ctx.clearances
        )
    return dict(state.doses)


def _context_problems(
    ctx: RehabContext,
    entry: SessionEntry,
    number: int,
    where: str,
    today: dt.date,
    others: Mapping[int, dt.date],
) -> list[Problem]:
    problems: list[Problem] = []
    day, p = entry.session_date, ctx.programme
    end = ctx.randomised_on + dt.timedelta(days=7 * p.schedule.weeks)
    checks = (
        (day > today, f"{day} is in the future (today is {today})"),
        (day < ctx.randomised_on, f"{day} is before randomisation on {ctx.randomised_on}"),
        (
            day >= ctx.randomised_on and day < ctx.prescription.prescribed_on,
            f"{day} is before the prescription of {ctx.prescription.prescribed_on}",
        ),
        (
            day > end + dt.timedelta(days=p.schedule.grace_days),
            f"{day} is after the {p.schedule.weeks}-week programme ended on {end} "
            f"(+{p.schedule.grace_days} days grace)",
        ),
        (
            ctx.person.withdrawn_on is not None and day > ctx.person.withdrawn_on,
            f"{day} is after the participant's withdrawal on {ctx.person.withdrawn_on}",
        ),
    )
    problems += [Problem(f"{where}, field session_date", msg) for bad, msg in checks if bad]
    if number > p.sessions_total:
        problems.append(
            Problem(
                f"{where}, field session_no",
                f"session {number} is beyond the programme's {p.sessions_total} sessions",
            )
        )
    for other, other_day in others.items():
        if (other < number and other_day > day) or (other > number and other_day < day):
            order = "before" if other < number else "after"
            problems.append(
                Problem(
                    f"{where}, field session_date",
                    f"{day} is out of order: session {other} ({order} it) is dated {other_day}",
                )
            )
    for ex in entry.exercises:
        if ex.prescribed is not None:
            over = dose_within_caps(ex.prescribed, ctx.plan.exercise(ex.exercise_id).caps)
            if over:
                problems.append(
                    Problem(
                        f"{where}, field {ex.exercise_id}_prescribed",
                        "never prescribe above the programme's caps: " + "; ".join(over),
                    )
                )
    return problems


def _dose_columns(prefix: str, dose: Dose | None) -> dict[str, Any]:
    keys = ("minutes", "speed_kmh", "incline_pct", "watts", "sets", "reps", "load_kg")
    values: dict[str, Any] = dict.fromkeys(keys)
    if isinstance(dose, WalkingDose):
        values.update(minutes=dose.minutes, speed_kmh=dose.speed_kmh, incline_pct=dose.incline_pct)
    elif isinstance(dose, CyclingDose):
        values.update(minutes=dose.minutes, watts=dose.watts)
    elif isinstance(dose, ResistanceDose):
        values.update(sets=dose.sets, reps=dose.reps, load_kg=dose.load_kg)
    return {f"{prefix}_{k}": v for k, v in values.items()}


def _apply(row: RehabSession, entry: SessionEntry, ctx: RehabContext, engine: Mapping[str, Dose]) -> None:
    row.session_date = entry.session_date
    row.attended = entry.attended
    row.supervised = (
        entry.supervised if entry.supervised is not None else ctx.programme.programme.delivery == "supervised"
    )
    row.education_attended = entry.education_attended
    for key, value in entry.vitals.items():
        setattr(row, key, value)
    row.rpe = entry.rpe
    for when, symptoms in (
        ("pre", entry.symptoms_pre),
        ("24h", entry.symptoms_24h),
        ("48h", entry.symptoms_48h),
    ):
        for name in SYMPTOMS:
            setattr(row, f"sym_{when}_{name}", getattr(symptoms, name))
    row.crash_reported = entry.crash_reported
    row.red_flags = ";".join(entry.red_flags)
    row.stopped_during = entry.stopped_during
    existing = {e.exercise_id: e for e in row.exercises}
    for ex in entry.exercises:
        prescribed = ex.prescribed if ex.prescribed is not None else engine[ex.exercise_id]
        columns = {
            "kind": ex.kind,
            "prescribed_by": "physio"
            if ex.prescribed is not None and ex.prescribed != engine[ex.exercise_id]
            else "engine",
            **_dose_columns("prescribed", prescribed),
            "done": ex.done is not None,
            **_dose_columns("done", ex.done),
            "borg_dyspnoea": ex.borg_dyspnoea,
            "borg_fatigue": ex.borg_fatigue,
            "rpe": ex.rpe,
        }
        target = existing.get(ex.exercise_id)
        if target is None:
            target = RehabExercise(
                participant_id=row.participant_id, session_no=row.session_no, exercise_id=ex.exercise_id
            )
            row.exercises.append(target)
        for key, value in columns.items():
            setattr(target, key, value)
    known = {ae.term for ae in row.adverse_events}
    for ae in entry.adverse_events:
        if ae.term in known:
            continue
        row.adverse_events.append(
            RehabAdverseEvent(
                participant_id=row.participant_id,
                session_no=row.session_no,
                term=ae.term,
                serious=ae.serious,
                severity=ae.severity,
                relatedness=ae.relatedness,
            )
        )


def _store(
    session: Session, ctx: RehabContext, entry: SessionEntry, number: int, by: str, engine: Mapping[str, Dose]
) -> tuple[RehabSession, bool]:
    row = next((s for s in ctx.sessions if s.session_no == number), None)
    replaced = row is not None
    if row is None:
        row = RehabSession(
            participant_pk=ctx.person.id,
            participant_id=ctx.person.participant_id,
            prescription_version=ctx.prescription.version,
            session_no=number,
            recorded_at=now_utc(),
            recorded_by=by,
            exercises=[],
            adverse_events=[],
        )
        session.add(row)
        ctx.sessions.append(row)
    _apply(row, entry, ctx, engine)
    return row, replaced


def log_session(
    store: Store,
    *,
    by: str,
    participant_id: str,
    values: Mapping[str, Any],
    reason: str | None = None,
    today: dt.date | None = None,
) -> LoggedSession:
    """Log one session (``values``: :mod:`~immunorehab.rehab.sessionlog` fields); nothing stored on a problem.

    Without ``session_no`` the next number is used. Re-logging an existing session
    replaces it and needs a ``reason`` (kept in the audit trail).
    """
    today = today or dt.date.today()
    with store.write(by, reason=reason) as session:
        require_unblinded(session, "log rehabilitation sessions", LOGGERS)
        ctx = load_context(session, participant_id)
        pid = ctx.person.participant_id
        entry, problems = parse_session_values(values, ctx.programme, where=pid)
        if entry is None:
            given = values.get("session_no") or values.get("session_date")
            label = f"session {given}" if values.get("session_no") else f"session of {given}"
            raise SessionLogError(f"{pid} {label} not logged: nothing stored", problems)
        number = entry.session_no or (max((s.session_no for s in ctx.sessions), default=0) + 1)
        where = f"{pid} session {number}"
        existing = next((s for s in ctx.sessions if s.session_no == number), None)
        if existing is not None and not reason:
            raise SessionLogError(
                f"{where} not logged: nothing stored",
                [
                    Problem(
                        f"{where}",
                        f"was already logged on {existing.session_date}: pass --reason TEXT to correct it",
                    )
                ],
            )
        others = {s.session_no: s.session_date for s in ctx.sessions if s.session_no != number}
        problems = _context_problems(ctx, entry, number, where, today, others)
        if problems:
            raise SessionLogError(f"{where} not logged: nothing stored", problems)
        _, replaced = _store(session, ctx, entry, number, by, _engine_doses(ctx, number))
        return LoggedSession(pid, number, entry.session_date, entry.attended, replaced)


def import_sessions(
    store: Store, *, by: str, path: str | Path, today: dt.date | None = None
) -> list[LoggedSession]:
    """Import every row of a session CSV/Parquet (column ``participant_id`` + session fields), or none.

    Rows are grouped by participant and taken in session order; a row without
    ``session_no`` gets the next free number. Sessions already logged are refused (log
    them one by one with a reason to correct them). All problems of all rows are reported.
    """
    today = today or dt.date.today()
    path = Path(path)
    rows = read_table(path)
    if not rows:
        raise SessionLogError(f"{path}: no rows to import")
    offset = 2 if path.suffix.lower() == ".csv" else 1
    with store.write(by) as session:
        require_unblinded(session, "import rehabilitation sessions", LOGGERS)
        problems: list[Problem] = []
        grouped: dict[str, list[tuple[str, SessionEntry]]] = defaultdict(list)
        contexts: dict[str, RehabContext] = {}
        for index, raw in enumerate(rows):
            where = f"{path.name} row {index + offset}"
            pid = str(raw.get("participant_id") or "").strip().upper()
            if not pid:
                problems.append(Problem(f"{where}, field participant_id", "is required (e.g. LEI-0007)"))
                continue
            try:
                ctx = contexts.get(pid) or load_context(session, pid)
            except RehabError as exc:
                problems.append(Problem(f"{where}, field participant_id", str(exc)))
                continue
            contexts[pid] = ctx
            entry, row_problems = parse_session_values(raw, ctx.programme, where=where)
            problems += row_problems
            if entry is not None:
                grouped[pid].append((where, entry))
        known = {"participant_id"}.union(*(all_fields(c.programme) for c in contexts.values()))
        problems += [
            Problem(f"{path.name}, column {col!r}", "is not a session-log field of any programme in the file")
            for col in rows[0]
            if col not in known and contexts
        ]
        planned = {pid: _number(contexts[pid], entries, problems) for pid, entries in grouped.items()}
        for pid, numbered in planned.items():
            ctx = contexts[pid]
            dates = {s.session_no: s.session_date for s in ctx.sessions}
            dates.update({n: e.session_date for _, n, e in numbered})
            for where, number, entry in numbered:
                others = {k: v for k, v in dates.items() if k != number}
                problems += _context_problems(ctx, entry, number, where, today, others)
        if problems:
            raise SessionLogError(f"{path}: nothing imported; {len(problems)} problem(s)", problems)
        return [
            log
            for pid, numbered in planned.items()
            for log in _store_all(session, contexts[pid], numbered, by)
        ]


def _number(
    ctx: RehabContext, entries: list[tuple[str, SessionEntry]], problems: list[Problem]
) -> list[tuple[str, int, SessionEntry]]:
    taken = {s.session_no: s.session_date for s in ctx.sessions}
    next_free = max(taken, default=0) + 1
    out: list[tuple[str, int, SessionEntry]] = []
    seen: dict[int, str] = {}
    by_date = {day: n for n, day in taken.items()}
    for where, entry in entries:
        number = entry.session_no
        if number is None and entry.session_date in by_date:
            problems.append(
                Problem(
                    f"{where}, field session_date",
                    f"{ctx.person.participant_id} already has session {by_date[entry.session_date]} on "
                    f"{entry.session_date} (a duplicate row?); give session_no to log another session that "
                    "day",
                )
            )
            continue
        if number is None:
            while next_free in seen:
                next_free += 1
            number = next_free
            next_free += 1
        if number in taken:
            problems.append(
                Problem(
                    f"{where}, field session_no",
                    f"{ctx.person.participant_id} session {number} is already logged ({taken[number]})",
                )
            )
        elif number in seen:
            problems.append(
                Problem(
                    f"{where}, field session_no",
                    f"session {number} of {ctx.person.participant_id} also on {seen[number]}",
                )
            )
        seen[number] = where
        out.append((where, number, entry))
    return sorted(out, key=lambda item: item[1])


def _store_all(
    session: Session, ctx: RehabContext, numbered: list[tuple[str, int, SessionEntry]], by: str
) -> list[LoggedSession]:
    """Store a participant's new sessions in order, each prescribed from the engine's state."""
    state = initial_state(ctx.plan)
    stored = {o.session_no: o for o in ctx.outcomes()}
    new = {number: entry for _, number, entry in numbered}
    logged = []
    for number in sorted(set(stored) | set(new)):
        if number in new:
            row, _ = _store(session, ctx, new[number], number, by, state.doses)
            outcome = session_outcome(row)
            logged.append(
                LoggedSession(ctx.person.participant_id, number, row.session_date, row.attended, False)
            )
        else:
            outcome = stored[number]
        _, state = decide_session(
            state, outcome, plan=ctx.plan, programme=ctx.programme, clearances=ctx.clearances
        )
    return logged


def record_followup(
    store: Store,
    *,
    by: str,
    participant_id: str,
    session_no: int,
    values: Mapping[str, Any],
    reason: str | None = None,
) -> dict[str, tuple[Any, Any]]:
    """Add the 24/48 h symptom follow-up (or a crash report) to a logged session.

    Filling empty values needs no reason; changing a recorded value does.
    """
    unknown = sorted(set(values) - set(FOLLOWUP_FIELDS))
    if unknown:
        raise SessionLogError(
            "follow-up not recorded",
            [
                Problem(f"field {u}", f"is not a follow-up field; expected {', '.join(FOLLOWUP_FIELDS)}")
                for u in unknown
            ],
        )
    with store.write(by, reason=reason or FOLLOWUP_REASON) as session:
        require_unblinded(session, "record session follow-ups", LOGGERS)
        ctx = load_context(session, participant_id)
        where = f"{ctx.person.participant_id} session {session_no}"
        row = next((s for s in ctx.sessions if s.session_no == session_no), None)
        if row is None:
            raise SessionLogError(
                f"{where}: not logged yet", [Problem(where, "log the session first (`rehab log`)")]
            )
        fields = all_fields(ctx.programme)
        problems: list[Problem] = []
        changes: dict[str, tuple[Any, Any]] = {}
        for name, raw in values.items():
            if coerce.is_missing(raw):
                problems.append(Problem(f"{where}, field {name}", "is empty"))
                continue
            try:
                new = typed_value(fields[name], raw)
            except ValueError as exc:
                problems.append(Problem(f"{where}, field {name}", str(exc)))
                continue
            old = getattr(row, _column(name))
            if old not in (None, False) and old != new and not reason:
                problems.append(
                    Problem(f"{where}, field {name}", f"is already {old}: pass --reason TEXT to change it")
                )
            changes[name] = (old, new)
        if problems:
            raise SessionLogError(f"{where}: follow-up not recorded; nothing stored", problems)
        for name, (_, new) in changes.items():
            setattr(row, _column(name), new)
        return changes


def _column(field: str) -> str:
    return field if field == "crash_reported" else "sym_" + field.removeprefix("symptoms_")


def add_adverse_event(
    store: Store,
    *,
    by: str,
    participant_id: str,
    session_no: int,
    term: str,
    serious: bool,
    severity: str,
    relatedness: str,
) -> None:
    """Add an adverse event reported at (or after) a logged session."""
    problems = []
    if not term.strip():
        problems.append(Problem("field term", "is required"))
    if severity not in AE_SEVERITY:
        problems.append(
            Problem("field severity", f"expected one of {', '.join(AE_SEVERITY)}, got {severity!r}")
        )
    if relatedness not in AE_RELATEDNESS:
        problems.append(
            Problem("field relatedness", f"expected one of {', '.join(AE_RELATEDNESS)}, got {relatedness!r}")
        )
    if problems:
        raise SessionLogError("adverse event not recorded", problems)
    with store.write(by) as session:
        require_unblinded(session, "record adverse events", LOGGERS)
        ctx = load_context(session, participant_id)
        row = next((s for s in ctx.sessions if s.session_no == session_no), None)
        if row is None:
            raise SessionLogError(f"{ctx.person.participant_id} session {session_no} is not logged")
        row.adverse_events.append(
            RehabAdverseEvent(
                participant_id=row.participant_id,
                session_no=session_no,
                term=term.strip(),
                serious=serious,
                severity=severity,
                relatedness=relatedness,
            )
        )
