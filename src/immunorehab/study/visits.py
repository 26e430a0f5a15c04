"""Visit schedule, due/overdue status and recording visit data against the protocol.

The schedule runs from the randomisation date: each visit has a target day and a
window ``[target - before, target + after]``. Baseline may be recorded before
randomisation; later visits need an allocation. Recording validates every value
against the visit's measures and stores nothing unless all are valid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from immunorehab.errors import DataValidationError, Problem, StudyError
from immunorehab.study import coerce
from immunorehab.study.models import Measurement, Participant, VisitRecord
from immunorehab.study.participants import get_participant
from immunorehab.study.protocol import Measure, Protocol, Visit
from immunorehab.study.service import actor_of, get_protocol, now_utc
from immunorehab.study.store import Store

__all__ = ["VisitStatus", "record_visit", "validate_measures", "visit_statuses", "window"]

Status = Literal["upcoming", "due", "overdue", "completed", "out_of_window", "withdrawn", "not_randomised"]
RECORDERS = ("admin", "coordinator", "physio", "lab", "assessor")


def window(visit: Visit, randomised_on: dt.date) -> tuple[dt.date, dt.date, dt.date]:
    """(target, first day, last day) of ``visit`` for a participant randomised on ``randomised_on``."""
    target = randomised_on + dt.timedelta(days=visit.day)
    return (
        target,
        target - dt.timedelta(days=visit.window_before_days),
        target + dt.timedelta(days=visit.window_after_days),
    )


@dataclass(frozen=True, slots=True)
class VisitStatus:
    participant_id: str
    visit_id: str
    visit_label: str
    target: dt.date | None
    window_start: dt.date | None
    window_end: dt.date | None
    status: Status
    visit_date: dt.date | None


def _anchor(protocol: Protocol, person: Participant, baseline_on: dt.date | None) -> dt.date | None:
    """Day 0 of a participant's schedule: randomisation (trial) or baseline visit / consent (cohort)."""
    if protocol.randomised:
        return person.allocation.allocated_on if person.allocation is not None else None
    return baseline_on or person.consent_date


def _status(
    visit: Visit, person: Participant, recorded: dt.date | None, today: dt.date, anchor: dt.date | None
) -> VisitStatus:
    base: dict[str, Any] = {
        "participant_id": person.participant_id,
        "visit_id": visit.id,
        "visit_label": visit.label,
        "visit_date": recorded,
    }
    if anchor is None:
        return VisitStatus(
            **base,
            target=None,
            window_start=None,
            window_end=None,
            status="completed" if recorded else "not_randomised",
        )
    target, start, end = window(visit, anchor)
    status: Status
    if recorded is not None:
        status = "completed" if start <= recorded <= end else "out_of_window"
    elif person.withdrawn_on is not None:
        status = "withdrawn"
    elif today < start:
        status = "upcoming"
    elif today <= end:
        status = "due"
    else:
        status = "overdue"
    return VisitStatus(**base, target=target, window_start=start, window_end=end, status=status)


def visit_statuses(
    store: Store, *, by: str, today: dt.date | None = None, participant_id: str | None = None
) -> list[VisitStatus]:
    """Every participant-visit with its status on ``today``."""
    today = today or dt.date.today()
    with store.read(by) as session:
        protocol = get_protocol(session)
        if participant_id is not None:
            people = [get_participant(session, participant_id)]
        else:
            # Screen failures never get visits; everyone else does (baseline before randomisation).
            people = [
                p
                for p in session.scalars(select(Participant).order_by(Participant.site, Participant.site_seq))
                if p.allocation is not None or p.eligible
            ]
        recorded = {
            (r.participant_id, r.visit_id): r.visit_date for r in session.scalars(select(VisitRecord))
        }
        day0 = protocol.baseline_visit().id
        anchors = {
            p.participant_id: _anchor(protocol, p, recorded.get((p.participant_id, day0))) for p in people
        }
        return [
            _status(v, p, recorded.get((p.participant_id, v.id)), today, anchors[p.participant_id])
            for p in people
            for v in protocol.visits
        ]


def _typed(measure: Measure, raw: Any) -> tuple[str, float | None]:
    if measure.type in ("number", "integer"):
        number: float = coerce.to_int(raw) if measure.type == "integer" else coerce.to_float(raw)
        if (
            measure.min is not None
            and number < measure.min
            or measure.max is not None
            and number > measure.max
        ):
            unit = f" {measure.unit}" if measure.unit else ""
            raise ValueError(f"expected {measure.min} to {measure.max}{unit}, got {number}")
        return (str(number), float(number))
    if measure.type == "boolean":
        flag = coerce.to_bool(raw)
        return ("true" if flag else "false", 1.0 if flag else 0.0)
    if measure.type == "date":
        return (coerce.to_date(raw).isoformat(), None)
    if measure.type == "choice":
        return (coerce.to_choice(raw, measure.choices), None)
    return (str(raw).strip(), None)


def validate_measures(
    protocol: Protocol, visit_id: str, values: Mapping[str, Any]
) -> tuple[dict[str, tuple[str, float | None]], list[Problem]]:
    """Check every value against the visit's measures; return (typed values, problems)."""
    visit = protocol.visit(visit_id)
    measures = {m.id: m for m in visit.measures}
    problems: list[Problem] = []
    typed: dict[str, tuple[str, float | None]] = {}
    for name in values:
        if name not in measures:
            problems.append(
                Problem(
                    f"visit {visit_id}, field {name}",
                    f"is not a measure of this visit; expected one of {', '.join(measures)}",
                )
            )
    for name, measure in measures.items():
        raw = values.get(name)
        if coerce.is_missing(raw):
            if measure.required:
                problems.append(Problem(f"visit {visit_id}, field {name}", f"is required ({measure.label})"))
            continue
        try:
            typed[name] = _typed(measure, raw)
        except ValueError as exc:
            problems.append(Problem(f"visit {visit_id}, field {name}", str(exc)))
    return typed, problems


def record_visit(
    store: Store,
    *,
    by: str,
    participant_id: str,
    visit_id: str,
    visit_date: dt.date,
    values: Mapping[str, Any],
    reason: str | None = None,
    today: dt.date | None = None,
) -> VisitStatus:
    """Store a visit's data (all values valid, or nothing). Re-recording needs a reason."""
    today = today or dt.date.today()
    with store.write(by, reason=reason) as session:
        actor_of(session).require(*RECORDERS, action="record visit data")
        protocol = get_protocol(session)
        person = get_participant(session, participant_id)
        visit = protocol.visit(visit_id)
        if visit_date > today:
            raise DataValidationError(
                f"{person.participant_id} {visit_id} not recorded",
                [Problem("visit date", f"{visit_date} is in the future (today is {today})")],
            )
        if person.allocation is None and visit.day != 0 and protocol.randomised:
            raise StudyError(
                f"{person.participant_id} is not randomised yet: only the baseline visit can be recorded"
            )
        if not protocol.randomised and not person.eligible:
            raise StudyError(
                f"{person.participant_id} is not eligible ({person.failed_criteria}): "
                "a cohort follows eligible participants only"
            )
        typed, problems = validate_measures(protocol, visit_id, values)
        if problems:
            raise DataValidationError(
                f"{person.participant_id} {visit_id} not recorded: nothing stored", problems
            )
        _store_values(session, person, visit_id, visit_date, typed, by, reason)
        baseline_on = session.scalar(
            select(VisitRecord.visit_date).where(
                VisitRecord.participant_pk == person.id, VisitRecord.visit_id == protocol.baseline_visit().id
            )
        )
        return _status(visit, person, visit_date, today, _anchor(protocol, person, baseline_on))


def _store_values(
    session: Session,
    person: Participant,
    visit_id: str,
    visit_date: dt.date,
    typed: Mapping[str, tuple[str, float | None]],
    by: str,
    reason: str | None,
) -> None:
    record = session.scalar(
        select(VisitRecord).where(VisitRecord.participant_pk == person.id, VisitRecord.visit_id == visit_id)
    )
    if record is not None and not reason:
        raise StudyError(
            f"{person.participant_id} {visit_id} was already recorded on {record.visit_date}: "
            "pass --reason TEXT to correct it"
        )
    if record is None:
        record = VisitRecord(
            participant_pk=person.id,
            participant_id=person.participant_id,
            visit_id=visit_id,
            visit_date=visit_date,
            recorded_at=now_utc(),
            recorded_by=by,
        )
        session.add(record)
        session.flush()
    else:
        record.visit_date = visit_date
    existing = {m.measure_id: m for m in record.measurements}
    for name, (text, number) in typed.items():
        if name in existing:
            existing[name].value_text, existing[name].value_num = text, number
        else:
            record.measurements.append(
                Measurement(
                    participant_id=person.participant_id,
                    visit_id=visit_id,
                    measure_id=name,
                    value_text=text,
                    value_num=number,
                )
            )
    for name, row in existing.items():
        if name not in typed:
            session.delete(row)
