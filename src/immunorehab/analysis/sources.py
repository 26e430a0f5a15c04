"""Reading what a study analysis needs from the store: one query per source, tidy frames out.

This is the analysis' only I/O. Each reader runs a single SELECT (restricted to the measures,
gates and analytes the plan declares) and returns a long :class:`pandas.DataFrame`; nothing
statistical happens here. A blinded read never selects the allocated arm, and rehabilitation
adherence (which only exists for exercise arms, so it reveals the arm) is read only for
unblinded analyses, through the rehab capability's own adherence report.

==============  ================================================================================
participants    ``participant_id, eligible, withdrawn_on, randomised_on, <covariate fields>,
                factor:<name>`` (+ ``arm`` when unblinded)
visits          ``participant_id, visit, measure, value, text``
cytometry       ``participant_id, visit, gate, tube, pct_parent, pct_total, per_ul, file_id``
cytokines       ``participant_id, visit, analyte, concentration, flag, dilution, lloq, unit,
                plate_id, run_order``
rehab           ``participant_id, arm, status, <adherence quantities>``
==============  ================================================================================
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import Select, and_, select
from sqlalchemy.orm import Session

from immunorehab.cytokines.tables import CytokineCurve, CytokinePlate, CytokineResult
from immunorehab.cytometry.tables import CytometryFile, GateResultRow
from immunorehab.study.fields import COVARIATES
from immunorehab.study.models import Allocation, Measurement, Participant
from immunorehab.study.protocol import Protocol
from immunorehab.study.store import Store

__all__ = ["COVARIATE_FIELDS", "StudyData", "read_rehab", "read_study"]

#: Participant fields usable as covariates (dates are not).
COVARIATE_FIELDS: tuple[str, ...] = tuple(n for n, c in COVARIATES.items() if c.type != "date")
VISIT_COLUMNS = ["participant_id", "visit", "measure", "value", "text"]
CYTOMETRY_COLUMNS = [
    "participant_id",
    "visit",
    "gate",
    "tube",
    "pct_parent",
    "pct_total",
    "per_ul",
    "file_id",
]
CYTOKINE_COLUMNS = [
    "participant_id",
    "visit",
    "analyte",
    "concentration",
    "flag",
    "dilution",
    "lloq",
    "unit",
    "plate_id",
    "run_order",
]


@dataclass(frozen=True, slots=True)
class StudyData:
    """Everything one analysis reads, as long frames (see the module docstring)."""

    participants: pd.DataFrame
    visits: pd.DataFrame
    cytometry: pd.DataFrame
    cytokines: pd.DataFrame
    rehab: pd.DataFrame | None
    protocol_sha256: str
    study: str
    rows: dict[str, int] = field(default_factory=dict)
    _parts: dict[tuple[str, str], dict[Any, pd.DataFrame]] = field(default_factory=dict, repr=False)

    def part(self, source: str, column: str, value: object) -> pd.DataFrame:
        """Rows of frame ``source`` whose ``column`` equals ``value`` (split once, then looked up)."""
        key = (source, column)
        frame: pd.DataFrame = getattr(self, source)
        if key not in self._parts:
            self._parts[key] = dict(tuple(frame.groupby(column, sort=False))) if not frame.empty else {}
        return self._parts[key].get(value, frame.iloc[0:0])


def _frame(session: Session, query: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    rows = [tuple(row) for row in session.execute(query).tuples()]
    return pd.DataFrame.from_records(rows, columns=list(columns))


def _bulk_frame(session: Session, query: Select[Any], columns: Sequence[str]) -> pd.DataFrame:
    """A large read of text and number columns straight from the DB-API cursor.

    The statement is compiled by SQLAlchemy for the session's dialect (bound values included)
    and run on the driver's cursor, skipping per-row result processing: about 3x faster for
    the millions of gate results of a large study. Only for columns the driver already returns
    as Python ``str``/``int``/``float`` (no dates, no booleans).
    """
    conn = session.connection()
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.params
    if compiled.positional and compiled.positiontup is not None:
        params = tuple(params[name] for name in compiled.positiontup)
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), params)
        rows = cursor.fetchall()
    finally:
        cursor.close()
    return pd.DataFrame.from_records(rows, columns=list(columns))


def _factor_levels(protocol: Protocol, frame: pd.DataFrame, stored: pd.Series) -> pd.DataFrame:
    """``factor:<name>`` columns: the level at randomisation, else the level of the covariates now."""
    out = pd.DataFrame(index=frame.index)
    levels = [json.loads(text) if isinstance(text, str) else {} for text in stored]
    for factor in protocol.stratification:
        at_randomisation = [lv.get(factor.name) for lv in levels]
        computed = [factor.level_or_none(v) for v in frame[factor.field]]
        out[f"factor:{factor.name}"] = [
            a if a is not None else c for a, c in zip(at_randomisation, computed, strict=True)
        ]
    return out


def read_participants(session: Session, protocol: Protocol, *, blinded: bool) -> pd.DataFrame:
    """Every enrolled participant with covariates, stratification levels and (unblinded) arm."""
    fields = [getattr(Participant, name) for name in COVARIATE_FIELDS]
    columns = [
        Participant.participant_id,
        Participant.eligible,
        Participant.withdrawn_on,
        Allocation.allocated_on,
        Allocation.levels_json,
        *fields,
    ]
    names = ["participant_id", "eligible", "withdrawn_on", "randomised_on", "levels_json", *COVARIATE_FIELDS]
    if not blinded:
        columns.append(Allocation.arm)
        names.append("arm")
    query = (
        select(*columns)
        .outerjoin(Allocation, Allocation.participant_pk == Participant.id)
        .order_by(Participant.participant_id)
    )
    frame = _frame(session, query, names)
    levels = _factor_levels(protocol, frame, frame.pop("levels_json"))
    for name in COVARIATE_FIELDS:
        if COVARIATES[name].type == "integer":
            frame[name] = pd.to_numeric(frame[name], errors="coerce").astype(float)
    return pd.concat([frame, levels], axis=1)


def read_visit_values(session: Session, measures: Sequence[str]) -> pd.DataFrame:
    """Recorded values of ``measures`` at every visit (numbers in ``value``, text in ``text``)."""
    if not measures:
        return pd.DataFrame(columns=VISIT_COLUMNS)
    query = select(
        Measurement.participant_id,
        Measurement.visit_id,
        Measurement.measure_id,
        Measurement.value_num,
        Measurement.value_text,
    ).where(Measurement.measure_id.in_(sorted(set(measures))))
    frame = _bulk_frame(session, query, VISIT_COLUMNS)
    frame["value"] = frame["value"].astype(float)
    return frame


def read_cytometry(session: Session, gates: Sequence[str]) -> pd.DataFrame:
    """Stored gate results of ``gates`` with the file's tube (one row per file and gate)."""
    if not gates:
        return pd.DataFrame(columns=CYTOMETRY_COLUMNS)
    query = (
        select(
            GateResultRow.participant_id,
            GateResultRow.visit_id,
            GateResultRow.gate,
            CytometryFile.tube,
            GateResultRow.pct_parent,
            GateResultRow.pct_total,
            GateResultRow.cells_per_ul,
            GateResultRow.file_id,
        )
        .join(CytometryFile, GateResultRow.file_id == CytometryFile.id)
        .where(GateResultRow.gate.in_(sorted(set(gates))))
    )
    frame = _bulk_frame(session, query, CYTOMETRY_COLUMNS)
    for col in ("pct_parent", "pct_total", "per_ul"):
        frame[col] = frame[col].astype(float)
    return frame


def read_cytokines(session: Session, analytes: Sequence[str]) -> pd.DataFrame:
    """Sample results of ``analytes`` with flag, dilution, the plate's LLOQ and run order."""
    if not analytes:
        return pd.DataFrame(columns=CYTOKINE_COLUMNS)
    curve = and_(
        CytokineCurve.plate_pk == CytokineResult.plate_pk, CytokineCurve.analyte == CytokineResult.analyte
    )
    query = (
        select(
            CytokineResult.participant_id,
            CytokineResult.visit_id,
            CytokineResult.analyte,
            CytokineResult.concentration,
            CytokineResult.flag,
            CytokineResult.dilution,
            CytokineCurve.lloq,
            CytokineResult.unit,
            CytokineResult.plate_id,
            CytokinePlate.run_order,
        )
        .join(CytokinePlate, CytokineResult.plate_pk == CytokinePlate.id)
        .outerjoin(CytokineCurve, curve)
        .where(CytokineResult.role == "sample", CytokineResult.analyte.in_(sorted(set(analytes))))
    )
    frame = _bulk_frame(session, query, CYTOKINE_COLUMNS)
    for col in ("concentration", "dilution", "lloq"):
        frame[col] = frame[col].astype(float)
    return frame


def read_rehab(store: Store, *, by: str, today: dt.date) -> pd.DataFrame:
    """Adherence and completer status per prescribed participant (unblinded roles only).

    Uses the rehab capability's own report, so the completer definition is the programme's.
    """
    from immunorehab.rehab.reports import adherence_report  # rehab is optional for cohorts

    rows, _ = adherence_report(store, by=by, today=today)
    records = [asdict(r) for r in rows]
    columns = ["participant_id", "arm", "status", "attendance_pct", "attended", "aerobic_pct"]
    frame = pd.DataFrame.from_records(records) if records else pd.DataFrame(columns=columns)
    return frame


def read_study(
    store: Store,
    *,
    by: str,
    protocol: Protocol,
    protocol_sha256: str,
    study: str,
    measures: Sequence[str],
    gates: Sequence[str],
    analytes: Sequence[str],
    blinded: bool,
) -> StudyData:
    """Read every source the plan needs in one read session (one query per source)."""
    with store.read(by) as session:
        participants = read_participants(session, protocol, blinded=blinded)
        visits = read_visit_values(session, measures)
        cytometry = read_cytometry(session, gates)
        cytokines = read_cytokines(session, analytes)
    rows = {
        "participants": len(participants),
        "visit_values": len(visits),
        "cytometry_gate_results": len(cytometry),
        "cytokine_results": len(cytokines),
    }
    return StudyData(participants, visits, cytometry, cytokines, None, protocol_sha256, study, rows)
