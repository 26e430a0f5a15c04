"""Participants: pseudonymous enrolment, eligibility, import, updates and withdrawal.

A participant is known only by a pseudonymous ID made of the site code and a
per-site sequence number (``LEI-0007``). No names, contact details or other direct
identifiers are accepted: an import with any column other than the covariates in
:data:`~immunorehab.study.fields.COVARIATES` (and ``participant_id``) is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunorehab.errors import DataValidationError, NotFoundError, Problem, StudyError
from immunorehab.study import coerce
from immunorehab.study.fields import COVARIATES, Covariate
from immunorehab.study.models import Participant
from immunorehab.study.protocol import Protocol
from immunorehab.study.service import actor_of, get_protocol, now_utc
from immunorehab.study.store import Store

__all__ = [
    "ParticipantView",
    "add_participant",
    "get_participant",
    "import_participants",
    "list_participants",
    "read_table",
    "update_participant",
    "validate_covariates",
    "withdraw_participant",
]

_ENROLLERS = ("admin", "coordinator")
_PID = re.compile(r"^(?P<site>[A-Z]{3})-(?P<seq>\d{4,6})$")


def _coerce(cov: Covariate, value: Any) -> Any:
    if cov.type == "integer":
        number = coerce.to_int(value)
        if (cov.minimum is not None and number < cov.minimum) or (
            cov.maximum is not None and number > cov.maximum
        ):
            raise ValueError(f"expected a whole number from {cov.minimum} to {cov.maximum}, got {number}")
        return number
    if cov.type == "boolean":
        return coerce.to_bool(value)
    if cov.type == "choice":
        return coerce.to_choice(value, cov.choices)
    if cov.type == "date":
        return coerce.to_date(value)
    return str(value).strip()


def validate_covariates(
    raw: Mapping[str, Any],
    protocol: Protocol,
    *,
    where: str,
    partial: bool = False,
    today: dt.date | None = None,
) -> tuple[dict[str, Any], list[Problem]]:
    """Check and type one participant's covariates; return (values, problems).

    ``where`` prefixes each problem's location (e.g. ``"people.csv row 7"``).
    With ``partial`` only the given fields are checked (updates).
    """
    today = today or dt.date.today()
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    sites = [s.code for s in protocol.sites]
    for name, cov in COVARIATES.items():
        if partial and name not in raw:
            continue
        value = raw.get(name)
        if coerce.is_missing(value):
            if cov.required:
                problems.append(Problem(f"{where}, field {name}", f"is required ({cov.description})"))
            values[name] = None
            continue
        try:
            typed = _coerce(cov, value)
        except ValueError as exc:
            problems.append(Problem(f"{where}, field {name}", str(exc)))
            continue
        if name == "site" and typed.upper() not in sites:
            problems.append(
                Problem(
                    f"{where}, field site", f"expected one of the protocol's sites {sites}, got {value!r}"
                )
            )
            continue
        if name == "site":
            typed = typed.upper()
        if name == "consent_date" and typed > today:
            problems.append(
                Problem(f"{where}, field consent_date", f"is in the future ({typed}); today is {today}")
            )
            continue
        values[name] = typed
    if (
        values.get("invasive_ventilation")
        and values.get("who_severity") is not None
        and values["who_severity"] < 7
    ):
        problems.append(
            Problem(
                f"{where}, field who_severity",
                f"invasive ventilation means WHO scale >= 7, got {values['who_severity']}",
            )
        )
    return values, problems


def _next_seq(session: Session, site: str) -> int:
    current = session.scalar(select(func.max(Participant.site_seq)).where(Participant.site == site))
    return (current or 0) + 1


def _eligibility(protocol: Protocol, values: Mapping[str, Any]) -> tuple[bool, str]:
    failed = protocol.failed_criteria(values)
    return not failed, ",".join(c.id for c in failed)


def _new_participant(
    session: Session,
    protocol: Protocol,
    values: Mapping[str, Any],
    by: str,
    participant_id: str | None,
    *,
    seq: int | None = None,
) -> Participant:
    """Add one participant to the session (flushed with the rest of the transaction)."""
    site = values["site"]
    if participant_id is None:
        seq = seq if seq is not None else _next_seq(session, site)
        participant_id = f"{site}-{seq:04d}"
    else:
        seq = int(participant_id.split("-")[1])
    eligible, failed = _eligibility(protocol, values)
    row = Participant(
        participant_id=participant_id,
        site_seq=seq,
        eligible=eligible,
        failed_criteria=failed,
        created_at=now_utc(),
        created_by=by,
        **{k: values.get(k) for k in COVARIATES},
    )
    session.add(row)
    return row


def add_participant(
    store: Store, *, by: str, values: Mapping[str, Any], today: dt.date | None = None
) -> Participant:
    """Enrol one participant; the pseudonymous ID is assigned from the site's sequence."""
    with store.write(by) as session:
        actor_of(session).require(*_ENROLLERS, action="enrol participants")
        protocol = get_protocol(session)
        typed, problems = validate_covariates(values, protocol, where="participant", today=today)
        if problems:
            raise DataValidationError("participant not added: fix these values", problems)
        return _new_participant(session, protocol, typed, by, None)


def read_table(path: str | Path) -> list[dict[str, Any]]:
    """Rows of a CSV or Parquet file as dicts of raw values (CSV cells stay text)."""
    import pandas as pd
    import pyarrow as pa

    path = Path(path)
    if not path.exists():
        raise DataValidationError(f"{path}: file not found")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raise DataValidationError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")
    except (
        pd.errors.ParserError,
        pd.errors.EmptyDataError,
        UnicodeDecodeError,
        pa.ArrowException,
        OSError,
    ) as exc:
        raise DataValidationError(f"{path}: cannot be read as {suffix[1:]}: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    return [{str(k): v for k, v in r.items()} for r in frame.to_dict(orient="records")]


def import_participants(
    store: Store,
    *,
    by: str,
    path: str | Path,
    ignore_columns: Iterable[str] = (),
    value_maps: Mapping[str, Mapping[str, Any]] | None = None,
    today: dt.date | None = None,
) -> list[str]:
    """Import every row of a CSV/Parquet file, or none: all problems are reported together.

    ``participant_id`` may be given (e.g. a REDCap record ID re-imported); otherwise it is
    assigned. ``value_maps`` translate coded values (REDCap raw exports) per column.
    """
    path = Path(path)
    rows = read_table(path)
    ignored = set(ignore_columns)
    allowed = set(COVARIATES) | {"participant_id"}
    problems: list[Problem] = []
    columns = list(rows[0]) if rows else []
    for col in columns:
        if col not in allowed and col not in ignored:
            problems.append(
                Problem(
                    f"{path.name}, column {col!r}",
                    f"is not a participant field (no names or contact details are stored); "
                    f"expected columns: participant_id, {', '.join(COVARIATES)}",
                )
            )
    if not rows:
        raise DataValidationError(f"{path}: no rows to import")
    with store.write(by) as session:
        actor_of(session).require(*_ENROLLERS, action="import participants")
        protocol = get_protocol(session)
        prepared: list[tuple[dict[str, Any], str | None]] = []
        seen_ids: set[str] = set()
        for index, raw in enumerate(rows, start=1):
            where = f"{path.name} row {index + (1 if path.suffix.lower() == '.csv' else 0)}"
            raw = _apply_maps(raw, value_maps or {})
            values, row_problems = validate_covariates(raw, protocol, where=where, today=today)
            problems.extend(row_problems)
            pid = _check_pid(
                session, raw.get("participant_id"), values.get("site"), where, seen_ids, problems
            )
            prepared.append((values, pid))
        if problems:
            raise DataValidationError(f"{path}: nothing imported; {len(problems)} problem(s)", problems)
        # Assigned IDs continue after both the stored and the file's given IDs of each site.
        next_seq = {s.code: _next_seq(session, s.code) for s in protocol.sites}
        for pid in seen_ids:
            site, given = pid.split("-")
            next_seq[site] = max(next_seq.get(site, 1), int(given) + 1)
        ids = []
        for values, pid in prepared:
            assigned: int | None = None
            if pid is None:
                assigned = next_seq[values["site"]]
                next_seq[values["site"]] = assigned + 1
            ids.append(_new_participant(session, protocol, values, by, pid, seq=assigned).participant_id)
        return ids


def _apply_maps(raw: dict[str, Any], maps: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    out = dict(raw)
    for col, mapping in maps.items():
        value = out.get(col)
        if not coerce.is_missing(value) and str(value).strip() in mapping:
            out[col] = mapping[str(value).strip()]
    return out


def _check_pid(
    session: Session, raw: Any, site: str | None, where: str, seen: set[str], problems: list[Problem]
) -> str | None:
    if coerce.is_missing(raw):
        return None
    pid = str(raw).strip().upper()
    match = _PID.match(pid)
    if match is None:
        problems.append(
            Problem(f"{where}, field participant_id", f"expected SITE-NNNN (e.g. LEI-0007), got {raw!r}")
        )
        return None
    if site is not None and match["site"] != site:
        problems.append(
            Problem(f"{where}, field participant_id", f"prefix {match['site']} differs from site {site}")
        )
    if pid in seen or session.scalar(select(Participant.id).where(Participant.participant_id == pid)):
        problems.append(Problem(f"{where}, field participant_id", f"{pid} already exists"))
    seen.add(pid)
    return pid


def get_participant(session: Session, participant_id: str) -> Participant:
    row = session.scalar(select(Participant).where(Participant.participant_id == participant_id.upper()))
    if row is None:
        raise NotFoundError(
            f"no participant {participant_id!r} (IDs look like LEI-0007; see `participant list`)"
        )
    return row


@dataclass(frozen=True, slots=True)
class ParticipantView:
    """A participant as a user may see it (``arm`` is None for blinded roles)."""

    participant_id: str
    covariates: dict[str, Any]
    eligible: bool
    failed_criteria: tuple[str, ...]
    withdrawn_on: dt.date | None
    withdrawal_reason: str | None
    randomised_on: dt.date | None
    arm: str | None


def list_participants(store: Store, *, by: str, site: str | None = None) -> list[ParticipantView]:
    with store.read(by) as session:
        blinded = actor_of(session).blinded
        query = select(Participant).order_by(Participant.site, Participant.site_seq)
        if site:
            query = query.where(Participant.site == site.upper())
        return [_view(p, blinded) for p in session.scalars(query)]


def _view(p: Participant, blinded: bool) -> ParticipantView:
    alloc = p.allocation
    return ParticipantView(
        participant_id=p.participant_id,
        covariates=p.covariates(),
        eligible=p.eligible,
        failed_criteria=tuple(c for c in p.failed_criteria.split(",") if c),
        withdrawn_on=p.withdrawn_on,
        withdrawal_reason=p.withdrawal_reason,
        randomised_on=alloc.allocated_on if alloc else None,
        arm=None if blinded or alloc is None else alloc.arm,
    )


def update_participant(
    store: Store, *, by: str, participant_id: str, changes: Mapping[str, Any], reason: str
) -> dict[str, tuple[Any, Any]]:
    """Correct baseline covariates (reason required); eligibility is re-evaluated."""
    unknown = sorted(set(changes) - set(COVARIATES))
    if unknown:
        raise DataValidationError(
            "participant not changed",
            [
                Problem(f"field {u}", f"is not a participant field; expected one of {', '.join(COVARIATES)}")
                for u in unknown
            ],
        )
    if "site" in changes:
        raise StudyError(
            "the site is part of the participant ID and cannot be changed; withdraw and re-enrol instead"
        )
    with store.write(by, reason=reason) as session:
        actor_of(session).require(*_ENROLLERS, action="change participant data")
        protocol = get_protocol(session)
        row = get_participant(session, participant_id)
        typed, problems = validate_covariates(changes, protocol, where=row.participant_id, partial=True)
        if problems:
            raise DataValidationError(f"{row.participant_id} not changed", problems)
        done: dict[str, tuple[Any, Any]] = {}
        for key, value in typed.items():
            old = getattr(row, key)
            if old != value:
                setattr(row, key, value)
                done[key] = (old, value)
        row.eligible, row.failed_criteria = _eligibility(protocol, row.covariates())
        return done


def withdraw_participant(
    store: Store, *, by: str, participant_id: str, reason: str, on: dt.date | None = None
) -> None:
    """Flag a participant as withdrawn (data kept; no further visits are due)."""
    if not reason or not reason.strip():
        raise StudyError("a withdrawal reason is required: pass --reason TEXT")
    with store.write(by, reason=reason) as session:
        actor_of(session).require(*_ENROLLERS, action="withdraw participants")
        row = get_participant(session, participant_id)
        if row.withdrawn_on is not None:
            raise StudyError(f"{row.participant_id} was already withdrawn on {row.withdrawn_on}")
        row.withdrawn_on = on or dt.date.today()
        row.withdrawal_reason = reason.strip()


def participants_by_id(session: Session, ids: Sequence[str]) -> list[Participant]:
    return [get_participant(session, i) for i in ids]
