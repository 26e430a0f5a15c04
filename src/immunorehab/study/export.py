"""Tidy exports of participants and visit data (CSV / Parquet), written atomically.

Blinded roles get the same files without allocation columns.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import pandas as pd
from sqlalchemy import select

from immunorehab.errors import ConfigError
from immunorehab.study.fields import COVARIATES
from immunorehab.study.models import Measurement, Participant, VisitRecord
from immunorehab.study.service import actor_of, get_protocol
from immunorehab.study.store import Store

__all__ = ["Format", "atomic_write", "participants_frame", "visits_frame", "write_frame"]

Format = Literal["csv", "parquet"]


def atomic_write(path: str | Path, writer: Callable[[Path], None], *, overwrite: bool = False) -> Path:
    """Write via ``writer(tmp)`` to a temp file beside ``path``, then rename over it."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} exists: pass --overwrite to replace it")
    if not path.parent.exists():
        raise ConfigError(f"folder {path.parent} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def format_of(path: str | Path, fmt: str | None = None) -> Format:
    suffix = (fmt or Path(path).suffix.lstrip(".")).lower()
    if suffix == "csv":
        return "csv"
    if suffix in ("parquet", "pq"):
        return "parquet"
    raise ConfigError(
        f"cannot tell the format of {path}: use a .csv or .parquet name, or --format csv|parquet"
    )


def write_frame(
    frame: pd.DataFrame, path: str | Path, *, fmt: str | None = None, overwrite: bool = False
) -> Path:
    kind = format_of(path, fmt)

    def writer(tmp: Path) -> None:
        if kind == "csv":
            frame.to_csv(tmp, index=False)
        else:
            frame.to_parquet(tmp, index=False)

    return atomic_write(path, writer, overwrite=overwrite)


def participants_frame(store: Store, *, by: str) -> pd.DataFrame:
    """One row per participant: covariates, eligibility, withdrawal, allocation (unblinded only)."""
    with store.read(by) as session:
        blinded = actor_of(session).blinded
        rows = []
        for p in session.scalars(select(Participant).order_by(Participant.site, Participant.site_seq)):
            row: dict[str, object] = {"participant_id": p.participant_id, **p.covariates()}
            row.update(
                eligible=p.eligible,
                failed_criteria=p.failed_criteria,
                withdrawn_on=p.withdrawn_on,
                withdrawal_reason=p.withdrawal_reason,
                randomised_on=p.allocation.allocated_on if p.allocation else None,
            )
            if not blinded:
                row["arm"] = p.allocation.arm if p.allocation else None
                row["stratum"] = p.allocation.stratum if p.allocation else None
            rows.append(row)
        columns = [
            "participant_id",
            *COVARIATES,
            "eligible",
            "failed_criteria",
            "withdrawn_on",
            "withdrawal_reason",
            "randomised_on",
        ] + ([] if blinded else ["arm", "stratum"])
        return pd.DataFrame(rows, columns=columns)


def visits_frame(store: Store, *, by: str) -> pd.DataFrame:
    """Tidy visit data: one row per participant-visit-measure."""
    with store.read(by) as session:
        blinded = actor_of(session).blinded
        protocol = get_protocol(session)
        measures = {(v.id, m.id): m for v in protocol.visits for m in v.measures}
        query = (
            select(Measurement, VisitRecord, Participant)
            .join(VisitRecord, Measurement.visit_record_id == VisitRecord.id)
            .join(Participant, VisitRecord.participant_pk == Participant.id)
            .order_by(Participant.site, Participant.site_seq, VisitRecord.visit_date, Measurement.measure_id)
        )
        rows = []
        for m, v, p in session.execute(query).tuples():
            spec = measures.get((v.visit_id, m.measure_id))
            row: dict[str, object] = {
                "participant_id": p.participant_id,
                "visit_id": v.visit_id,
                "visit_date": v.visit_date,
                "measure_id": m.measure_id,
                "type": spec.type if spec else None,
                "unit": spec.unit if spec else None,
                "value": m.value_text,
                "value_num": m.value_num,
            }
            if not blinded:
                row["arm"] = p.allocation.arm if p.allocation else None
            rows.append(row)
        columns = [
            "participant_id",
            "visit_id",
            "visit_date",
            "measure_id",
            "type",
            "unit",
            "value",
            "value_num",
        ]
        return pd.DataFrame(rows, columns=columns + ([] if blinded else ["arm"]))
