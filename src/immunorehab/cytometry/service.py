"""Storing and reading gated cytometry results in the study store.

Results are stored against participant and visit, one transaction per file (the file
row, every population's result, the placement record and the QC flags, or nothing), with
the file's SHA-256 and the strategy hash, which together make a file's result unique: a
batch skips a file already stored with the same strategy.

Roles: ``admin`` and ``lab`` store results; every role reads them. Nothing stored here
refers to allocation. The exercise QC flag stored with a result uses only data every arm
has (the visit measure ``hours_since_exercise`` or the manifest's value). Logged rehab
sessions exist only for intervention arms, so a flag derived from them would reveal the
arm: :func:`logged_sessions_near_draw` is computed on reading, for unblinded roles only.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from immunorehab.errors import DataValidationError, Problem, StudyError
from immunorehab.study.models import Measurement, Participant
from immunorehab.study.service import actor_of, get_protocol, now_utc
from immunorehab.study.store import Store

from .absolute import AbsoluteCounts, DualPlatform, SinglePlatform
from .tables import CytometryFile, GateMoveRow, GateResultRow, QcFlagRow

if TYPE_CHECKING:
    from .manifest import ManifestRow
    from .pipeline import GateOptions

__all__ = [
    "WRITERS",
    "StoredOutcome",
    "check_manifest_rows",
    "hours_since_exercise",
    "logged_sessions_near_draw",
    "processed_keys",
    "require_writer",
    "results_frame",
    "store_outcome",
]

WRITERS = ("admin", "lab")


def require_writer(store: Store, *, by: str) -> None:
    """Raise :class:`PermissionDenied` unless ``by`` may store cytometry results (admin, lab)."""
    with store.read(by) as session:
        actor_of(session).require(*WRITERS, action="store cytometry results")


def check_manifest_rows(store: Store, *, by: str, rows: Sequence[ManifestRow]) -> list[Problem]:
    """Problems of manifest rows against the study: unknown participants, visits not in the protocol."""
    with store.read(by) as session:
        protocol = get_protocol(session)
        visits = [v.id for v in protocol.visits]
        known = set(session.scalars(select(Participant.participant_id)))
    problems: list[Problem] = []
    for row in rows:
        if row.participant_id not in known:
            problems.append(
                Problem(
                    f"row {row.row}, field participant_id",
                    f"{row.participant_id} is not a participant of the study",
                )
            )
        if row.visit_id not in visits:
            problems.append(
                Problem(
                    f"row {row.row}, field visit_id",
                    f"{row.visit_id!r} is not a protocol visit ({', '.join(visits)})",
                )
            )
    return problems


def processed_keys(store: Store, *, by: str) -> set[tuple[str, str]]:
    """``(file_sha256, strategy_sha256)`` of every stored result."""
    with store.read(by) as session:
        return {
            (f, s)
            for f, s in session.execute(select(CytometryFile.file_sha256, CytometryFile.strategy_sha256))
        }


def hours_since_exercise(session: Session, participant_id: str, visit_id: str) -> float | None:
    """The visit measure ``hours_since_exercise`` recorded for this participant's visit (None if absent).

    This is the arm-neutral source of the exercise QC flag: every participant is asked it.
    """
    value = session.scalar(
        select(Measurement.value_num).where(
            Measurement.participant_id == participant_id,
            Measurement.visit_id == visit_id,
            Measurement.measure_id == "hours_since_exercise",
        )
    )
    return None if value is None or math.isnan(value) else float(value)


def logged_sessions_near_draw(
    session: Session, participant_id: str, draw_time: dt.datetime | None, *, window_h: float = 24.0
) -> list[dt.date]:
    """Dates of attended rehab sessions that may lie within ``window_h`` hours before the draw.

    Sessions are logged by date only, so a session on the draw day or within the window's
    days before it counts. Unblinded roles only (sessions exist for intervention arms).

    Raises
    ------
    PermissionDenied
        For blinded roles.
    """
    actor = actor_of(session)
    if actor.blinded:
        from immunorehab.errors import PermissionDenied

        raise PermissionDenied(
            f"user '{actor.username}' (role {actor.role}) may not see logged rehab sessions: "
            "they reveal the arm"
        )
    if draw_time is None:
        return []
    from immunorehab.rehab.tables import RehabSession

    draw_day = draw_time.date()
    first = draw_day - dt.timedelta(days=math.ceil(window_h / 24.0))
    dates = session.scalars(
        select(RehabSession.session_date).where(
            RehabSession.participant_id == participant_id,
            RehabSession.attended.is_(True),
            RehabSession.session_date >= first,
            RehabSession.session_date <= draw_day,
        )
    )
    return sorted(set(dates))


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """What one file's store write did: ``file_id`` of the new row, or why nothing was written."""

    file_id: int | None
    skipped: str | None = None


def _none_if_nan(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _medians(record: Mapping[Hashable, Any]) -> str:
    medians = {
        str(k).removeprefix("median_"): _none_if_nan(v)
        for k, v in record.items()
        if str(k).startswith("median_")
    }
    return json.dumps(medians, sort_keys=True)


def store_outcome(
    store: Store,
    *,
    by: str,
    row: ManifestRow,
    options: GateOptions,
    file_sha256: str,
    strategy_sha256: str,
    placed_gatingml: str,
    placed_sha256: str,
    n_events: int,
    counts: pd.DataFrame,
    moves: pd.DataFrame,
    flags: Iterable[tuple[str, str]],
    replace: bool = False,
    reason: str | None = None,
) -> StoredOutcome:
    """Store one gated file, all or nothing (one transaction).

    An existing result of the same file and strategy is left alone (``skipped``) unless
    ``replace``, which deletes it first and needs a ``reason`` (kept in the audit trail).
    """
    with store.write(by, reason=reason) as session:
        actor_of(session).require(*WRITERS, action="store cytometry results")
        person = session.scalar(select(Participant).where(Participant.participant_id == row.participant_id))
        if person is None:
            raise DataValidationError(
                f"{row.label} not stored", [Problem(f"row {row.row}", f"no participant {row.participant_id}")]
            )
        if row.visit_id not in [v.id for v in get_protocol(session).visits]:
            raise DataValidationError(
                f"{row.label} not stored",
                [Problem(f"row {row.row}", f"{row.visit_id!r} is not a protocol visit")],
            )
        existing = session.scalar(
            select(CytometryFile).where(
                CytometryFile.file_sha256 == file_sha256, CytometryFile.strategy_sha256 == strategy_sha256
            )
        )
        if existing is not None:
            if not replace:
                return StoredOutcome(
                    None, f"already stored for {existing.participant_id}/{existing.visit_id}"
                )
            if not reason:
                raise StudyError(
                    f"replacing the stored result of {row.label} needs a reason: pass --reason TEXT"
                )
            session.delete(existing)
            session.flush()
        absolute = row.absolute()
        record = CytometryFile(
            participant_pk=person.id,
            participant_id=person.participant_id,
            visit_id=row.visit_id,
            tube=row.tube,
            file_name=row.file.name,
            file_sha256=file_sha256,
            strategy_sha256=strategy_sha256,
            placed_strategy_sha256=placed_sha256,
            template=options.template,
            panel_sha256=options.panel.sha256 if options.panel is not None else None,
            auto_placement=options.auto,
            n_events=n_events,
            draw_time=row.draw_time,
            absolute_method=_method(absolute),
            beads_per_tube=row.beads_per_tube,
            volume_ul=row.volume_ul,
            lymphocytes_per_ul=row.lymphocytes_per_ul,
            placed_gatingml=placed_gatingml,
            processed_at=now_utc(),
            processed_by=by,
        )
        session.add(record)
        _add_children(record, counts, moves, flags)
        session.flush()
        return StoredOutcome(record.id)


def _method(absolute: AbsoluteCounts | None) -> str:
    if isinstance(absolute, SinglePlatform):
        return "single_platform"
    if isinstance(absolute, DualPlatform):
        return "dual_platform"
    return "none"


def _add_children(
    record: CytometryFile, counts: pd.DataFrame, moves: pd.DataFrame, flags: Iterable[tuple[str, str]]
) -> None:
    who = {"participant_id": record.participant_id, "visit_id": record.visit_id}
    for rec in counts.to_dict(orient="records"):
        parent = rec.get("parent")
        record.results.append(
            GateResultRow(
                **who,
                gate=str(rec["gate"]),
                parent=None
                if parent is None or (isinstance(parent, float) and math.isnan(parent))
                else str(parent),
                count=int(rec["count"]),
                parent_count=int(rec["parent_count"]),
                pct_parent=_none_if_nan(rec.get("pct_parent")),
                pct_total=_none_if_nan(rec.get("pct_total")),
                cells_per_ul=_none_if_nan(rec.get("cells_per_ul")),
                medians_json=_medians(rec),
            )
        )
    for mv in moves.to_dict(orient="records"):
        record.moves.append(
            GateMoveRow(
                **who,
                rule=str(mv["rule"]),
                gates=str(mv["gates"]),
                dimension=str(mv["dimension"]),
                template_value=_none_if_nan(mv.get("template_value")),
                placed_value=_none_if_nan(mv.get("placed_value")),
                status=str(mv["status"]),
                detail=str(mv["detail"]),
            )
        )
    for code, detail in flags:
        record.flags.append(QcFlagRow(**who, code=code, detail=detail))


def results_frame(store: Store, *, by: str, participant_id: str | None = None) -> pd.DataFrame:
    """Every stored population result with its file's participant, visit, tube, hashes and QC flags.

    Columns: participant_id, visit_id, tube, file_name, file_sha256, strategy_sha256, gate,
    parent, count, parent_count, pct_parent, pct_total, cells_per_ul, qc_flags (codes joined
    by ``;``) and one ``median_<marker>`` column per marker. Unblinded roles also get
    ``logged_session_near_draw`` (dates of attended rehab sessions on or the day before the draw).
    """
    with store.read(by) as session:
        query = select(CytometryFile).order_by(
            CytometryFile.participant_id, CytometryFile.visit_id, CytometryFile.id
        )
        if participant_id is not None:
            query = query.where(CytometryFile.participant_id == participant_id.upper())
        files = list(session.scalars(query))
        blinded = actor_of(session).blinded
        rows: list[dict[str, Any]] = []
        for f in files:
            flags = ";".join(sorted({q.code for q in f.flags}))
            extra: dict[str, Any] = {}
            if not blinded:
                near = logged_sessions_near_draw(session, f.participant_id, f.draw_time)
                extra["logged_session_near_draw"] = ";".join(d.isoformat() for d in near)
            for r in f.results:
                medians = {f"median_{k}": v for k, v in json.loads(r.medians_json).items()}
                rows.append(
                    {
                        "participant_id": f.participant_id,
                        "visit_id": f.visit_id,
                        "tube": f.tube,
                        "file_name": f.file_name,
                        "file_sha256": f.file_sha256,
                        "strategy_sha256": f.strategy_sha256,
                        "gate": r.gate,
                        "parent": r.parent,
                        "count": r.count,
                        "parent_count": r.parent_count,
                        "pct_parent": r.pct_parent,
                        "pct_total": r.pct_total,
                        "cells_per_ul": r.cells_per_ul,
                        "qc_flags": flags,
                        **extra,
                        **medians,
                    }
                )
    return pd.DataFrame(rows)
