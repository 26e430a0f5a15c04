"""Storing plate results against participants and visits, with file hashes for provenance.

An import is one transaction: the plate, its curves and every result, or nothing. Every sample
must name an enrolled participant and a visit of the protocol; all problems are listed at once.
The same readings file (by SHA-256) cannot be imported twice; re-importing a plate id replaces
it only with a reason (kept in the audit trail). Only ``admin`` and ``lab`` users import;
reading results never reveals allocation (blinded lab staff use these commands).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunorehab.cytokines.process import PlateResult
from immunorehab.cytokines.tables import CytokineCurve, CytokinePlate, CytokineResult
from immunorehab.errors import DataValidationError, Problem, StudyError
from immunorehab.study.models import Participant, VisitRecord
from immunorehab.study.service import actor_of, get_protocol, now_utc
from immunorehab.study.store import Store

__all__ = ["ImportSummary", "import_plate", "stored_controls", "stored_curves", "stored_results"]

IMPORTERS = ("admin", "lab")
READERS = ("admin", "coordinator", "physio", "lab", "statistician", "assessor")


@dataclass(frozen=True, slots=True)
class ImportSummary:
    plate_id: str
    run_order: int
    curves_ok: int
    curves_failed: int
    results: int
    flagged: int
    replaced: bool


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _participants(session: Session, result: PlateResult) -> tuple[dict[str, int], list[Problem]]:
    samples = result.results[result.results["role"] == "sample"]
    wanted = sorted(set(samples["participant"].dropna()))
    rows = session.execute(
        select(Participant.participant_id, Participant.id).where(Participant.participant_id.in_(wanted))
    )
    found: dict[str, int] = {str(pid): int(pk) for pid, pk in rows}  # noqa: C416
    visits = {v.id for v in get_protocol(session).visits}
    problems: list[Problem] = []
    for rec in samples.drop_duplicates("replicate_group").itertuples(index=False):
        where = f"plate {result.plate_id} wells {rec.wells}"
        if rec.participant not in found:
            problems.append(Problem(where, f"participant {rec.participant} is not enrolled in this study"))
        if rec.visit not in visits:
            problems.append(
                Problem(where, f"visit {rec.visit!r} is not in the protocol ({', '.join(sorted(visits))})")
            )
    return found, problems


def import_plate(
    store: Store,
    *,
    by: str,
    result: PlateResult,
    readings_file: str,
    plate_map_file: str,
    assay_name: str,
    assay_sha256: str,
    metadata: dict[str, str] | None = None,
    reason: str | None = None,
) -> ImportSummary:
    """Store a processed plate (all or nothing).

    Raises
    ------
    DataValidationError
        Unknown participants or visits (every one listed); nothing is stored.
    StudyError
        The readings file was already imported, or the plate id exists and no reason is given.
    """
    with store.write(by, reason=reason) as session:
        actor_of(session).require(*IMPORTERS, action="import cytokine plates")
        pks, problems = _participants(session, result)
        if problems:
            raise DataValidationError(f"plate {result.plate_id} not imported: nothing stored", problems)
        sha = result.provenance.get("readings_sha256", "")
        dup = session.scalar(select(CytokinePlate).where(CytokinePlate.readings_sha256 == sha))
        old = session.scalar(select(CytokinePlate).where(CytokinePlate.plate_id == result.plate_id))
        if dup is not None and (old is None or dup.id != old.id):
            raise StudyError(
                f"{readings_file} (sha256 {sha[:12]}...) was already imported as plate {dup.plate_id}"
            )
        replaced = old is not None
        if old is not None:
            if not reason:
                raise StudyError(
                    f"plate {result.plate_id} is already stored: pass --reason TEXT to replace it"
                )
            run_order = old.run_order
            session.delete(old)
            session.flush()
        else:
            run_order = (
                int(session.scalar(select(func.coalesce(func.max(CytokinePlate.run_order), 0))) or 0) + 1
            )
        plate = CytokinePlate(
            plate_id=result.plate_id,
            run_order=run_order,
            assay_id=result.assay_id,
            assay_name=assay_name,
            reading_format=result.provenance.get("format", ""),
            readings_file=readings_file,
            readings_sha256=sha,
            plate_map_file=plate_map_file,
            plate_map_sha256=result.provenance.get("plate_map_sha256", ""),
            assay_sha256=assay_sha256,
            metadata_json=json.dumps(metadata or {}, sort_keys=True),
            imported_at=now_utc(),
            imported_by=by,
        )
        session.add(plate)
        session.flush()
        _add_curves(plate, result)
        _add_results(plate, result, pks)
        flagged = int((result.results["flag"] != "ok").sum())
        ok = sum(c.ok for c in result.curves.values())
        return ImportSummary(
            result.plate_id, run_order, ok, len(result.curves) - ok, len(result.results), flagged, replaced
        )


def _add_curves(plate: CytokinePlate, result: PlateResult) -> None:
    for name, curve in result.curves.items():
        lim = result.limits[name]
        plate.curves.append(
            CytokineCurve(
                plate_id=plate.plate_id,
                analyte=name,
                unit=lim.unit,
                model=curve.model,
                status=curve.status.value,
                reason=curve.reason or curve.note,
                params_json=json.dumps({k: _num(v) for k, v in curve.params.items()}),
                se_json=json.dumps({k: _num(v) for k, v in curve.se.items()}),
                rse=_num(curve.rse),
                r_squared=_num(curve.r_squared),
                lloq=_num(lim.lloq),
                uloq=_num(lim.uloq),
                lod=_num(lim.lod),
            )
        )


def _add_results(plate: CytokinePlate, result: PlateResult, pks: dict[str, int]) -> None:
    for rec in result.results.itertuples(index=False):
        participant = rec.participant if isinstance(rec.participant, str) else None
        plate.results.append(
            CytokineResult(
                plate_id=plate.plate_id,
                role=rec.role,
                participant_pk=pks.get(participant) if participant else None,
                participant_id=participant,
                visit_id=rec.visit if isinstance(rec.visit, str) else None,
                control=rec.control if isinstance(rec.control, str) else None,
                replicate_group=rec.replicate_group,
                wells=rec.wells,
                analyte=rec.analyte,
                concentration=_num(rec.concentration),
                unit=rec.unit,
                flag=rec.flag,
                cv=_num(rec.cv),
                dilution=float(str(rec.dilution)),
                signal=_num(rec.signal),
            )
        )


def stored_results(store: Store, *, by: str, role: str = "sample") -> pd.DataFrame:
    """Stored results: ``plate_id, run_order, participant, visit, control, analyte, concentration,
    unit, flag, cv``; ``visit_recorded`` says whether the visit record exists."""
    with store.read(by) as session:
        session.info["actor"].require(*READERS, action="read cytokine results")
        recorded = set(session.execute(select(VisitRecord.participant_id, VisitRecord.visit_id)).tuples())
        rows = session.execute(
            select(CytokineResult, CytokinePlate.run_order)
            .join(CytokinePlate)
            .where(CytokineResult.role == role)
            .order_by(CytokinePlate.run_order, CytokineResult.id)
        ).all()
        out = [
            {
                "plate_id": r.plate_id,
                "run_order": order,
                "participant": r.participant_id,
                "visit": r.visit_id,
                "control": r.control,
                "analyte": r.analyte,
                "concentration": r.concentration,
                "unit": r.unit,
                "flag": r.flag,
                "cv": r.cv,
                "visit_recorded": (r.participant_id, r.visit_id) in recorded,
            }
            for r, order in rows
        ]
    cols = ["plate_id", "run_order", "participant", "visit", "control", "analyte", "concentration", "unit"]
    return pd.DataFrame(out, columns=[*cols, "flag", "cv", "visit_recorded"]).astype({"concentration": float})


def stored_controls(store: Store, *, by: str) -> pd.DataFrame:
    """Control results in run order: ``plate_id, order, control, analyte, concentration``."""
    frame = stored_results(store, by=by, role="control")
    return frame.rename(columns={"run_order": "order"})[
        ["plate_id", "order", "control", "analyte", "concentration"]
    ]


def stored_curves(store: Store, *, by: str) -> pd.DataFrame:
    """Every stored curve: plate, analyte, status, reason, R^2 and limits."""
    with store.read(by) as session:
        session.info["actor"].require(*READERS, action="read cytokine curves")
        rows = session.scalars(select(CytokineCurve).order_by(CytokineCurve.id)).all()
        return pd.DataFrame(
            [
                {
                    "plate_id": c.plate_id,
                    "analyte": c.analyte,
                    "status": c.status,
                    "reason": c.reason,
                    "r_squared": c.r_squared,
                    "lloq": c.lloq,
                    "uloq": c.uloq,
                    "lod": c.lod,
                    "unit": c.unit,
                }
                for c in rows
            ],
            columns=["plate_id", "analyte", "status", "reason", "r_squared", "lloq", "uloq", "lod", "unit"],
        )
