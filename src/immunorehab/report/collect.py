"""Store facts the report shows: participants, visits, rehabilitation, raw files and chain checks.

Everything is read through the capabilities' own functions and permission checks, as the
acting user. A *blinded* report never receives allocation: the participant frame has no
``arm`` column, the arms are not listed (only their number and ratio), per-participant
rehabilitation rows lose their arm and programme, and facts only unblinded readers may see
(programme files, by-arm adverse events) are left out. The ``lab`` and ``assessor`` roles
cannot read rehabilitation records at all (their mere existence reveals the arm), so their
report says adherence and safety are withheld.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Literal

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from immunorehab import __version__
from immunorehab.errors import PrescriptionError, ReportError
from immunorehab.report.blinding import redact_arms
from immunorehab.study.allocation import verify_allocations
from immunorehab.study.audit import verify_audit_chain
from immunorehab.study.export import participants_frame
from immunorehab.study.protocol import Protocol
from immunorehab.study.service import actor_of, get_protocol, get_study
from immunorehab.study.store import Store
from immunorehab.study.visits import visit_statuses

__all__ = ["ArmInfo", "ChainStatus", "StudyFacts", "collect_facts"]

Design = Literal["trial", "cohort"]


@dataclass(frozen=True, slots=True)
class ArmInfo:
    """A trial arm as the unblinded report shows it; ``has_programme`` if it has a rehab programme."""

    id: str
    label: str
    ratio: int
    has_programme: bool


@dataclass(frozen=True, slots=True)
class ChainStatus:
    """Result of re-verifying a hash chain when the report was built."""

    name: str
    ok: bool
    checked: int
    problem: str | None


@dataclass(frozen=True, slots=True)
class StudyFacts:
    """What the store says, as the acting user may see it (see the module docstring for blinding).

    Frames
    ------
    participants
        One row per enrolled participant: covariates, ``eligible``, ``failed_criteria``,
        ``withdrawn_on``, ``withdrawal_reason``, ``randomised_on`` and (unblinded only) ``arm``.
    visits
        One row per participant and scheduled visit: ``participant_id, visit_id, status,
        visit_date`` (status on ``today``: completed, out_of_window, due, overdue, ...).
    adherence
        One row per prescribed participant (:class:`~immunorehab.rehab.adherence.ParticipantAdherence`
        fields; no ``arm``/``programme_id`` when blinded); ``None`` when the role may not read
        rehabilitation records.
    adverse_events
        ``participant_id, session_no, term, serious, severity, relatedness`` (+ ``arm``
        unblinded); ``None`` as for ``adherence``.
    fcs_files, plates, programmes
        Provenance of raw files: see :func:`_fcs_files`, :func:`_plates`, :func:`_programmes`.
    """

    slug: str
    title: str
    registry: str | None
    protocol_version: str
    protocol_sha256: str
    protocol: Protocol
    design: Design
    blinded: bool
    user: str
    role: str
    today: dt.date
    generated_at: dt.datetime
    software_version: str
    arms: tuple[ArmInfo, ...]
    n_arms: int
    ratio: str
    participants: pd.DataFrame
    visits: pd.DataFrame
    baseline_visit: str
    adherence: pd.DataFrame | None
    adverse_events: pd.DataFrame | None
    fcs_files: pd.DataFrame
    plates: pd.DataFrame
    programmes: pd.DataFrame | None
    chains: tuple[ChainStatus, ...]

    @property
    def randomised(self) -> pd.DataFrame:
        """Participants with an allocation."""
        return self.participants[self.participants["randomised_on"].notna()]

    def arm_terms(self) -> tuple[str, ...]:
        """Every arm id and label of the protocol (what a blinded report must never contain)."""
        return tuple(t for a in self.protocol.arms for t in (a.id, a.label))


def _has_programme(arm: str) -> bool:
    from immunorehab.rehab.service import programme_for_arm

    try:
        programme_for_arm(arm)
    except PrescriptionError:
        return False
    return True


def collect_facts(
    store: Store, *, by: str, blinded: bool, today: dt.date | None = None, now: dt.datetime | None = None
) -> StudyFacts:
    """Read every store fact the report needs, as user ``by``.

    Raises
    ------
    ReportError
        The study has no participants yet (nothing to report).
    PermissionDenied, NotFoundError, ConfigError
        From the store: unknown user, no study.
    """
    today = today or dt.date.today()
    with store.read(by) as session:
        actor = actor_of(session)
        study = get_study(session)
        protocol = get_protocol(session)
        audit = _audit_status(session)
        fcs, plates = _fcs_files(session), _plates(session)
        slug, title, sha = study.slug, study.title, study.protocol_sha256
    participants = participants_frame(store, by=by)
    if participants.empty:
        raise ReportError(
            f"nothing to report yet: study '{slug}' has no participants "
            "(enrol with `immunorehab participant add` or `participant import`)"
        )
    if blinded:
        participants = participants.drop(columns=["arm", "stratum"], errors="ignore")
        participants["withdrawal_reason"] = _redacted(participants["withdrawal_reason"], protocol)
    alloc = verify_allocations(store, by=by)
    chains = (audit, ChainStatus("allocation chain", alloc.ok, alloc.checked, alloc.problem))
    adherence, aes, programmes = _rehab_facts(
        store, by=by, role=actor.role, blinded=blinded, today=today, protocol=protocol
    )
    arms = tuple(ArmInfo(a.id, a.label, a.ratio, _has_programme(a.id)) for a in protocol.arms)
    return StudyFacts(
        slug=slug,
        title=title,
        registry=protocol.study.registry,
        protocol_version=protocol.study.version,
        protocol_sha256=sha,
        protocol=protocol,
        design=protocol.design,
        blinded=blinded,
        user=by,
        role=actor.role,
        today=today,
        generated_at=now or dt.datetime.now(dt.UTC),
        software_version=__version__,
        arms=() if blinded else arms,
        n_arms=len(arms),
        ratio=":".join(str(a.ratio) for a in arms),
        participants=participants,
        visits=_visits(store, by=by, today=today),
        baseline_visit=protocol.baseline_visit().id,
        adherence=adherence,
        adverse_events=aes,
        fcs_files=fcs,
        plates=plates,
        programmes=programmes,
        chains=chains,
    )


def _visits(store: Store, *, by: str, today: dt.date) -> pd.DataFrame:
    rows = [
        {
            "participant_id": s.participant_id,
            "visit_id": s.visit_id,
            "status": s.status,
            "visit_date": s.visit_date,
        }
        for s in visit_statuses(store, by=by, today=today)
    ]
    return pd.DataFrame(rows, columns=["participant_id", "visit_id", "status", "visit_date"])


def _audit_status(session: Session) -> ChainStatus:
    report = verify_audit_chain(session)
    return ChainStatus("audit trail", report.ok, report.checked, report.problem)


_ADHERENCE_HIDDEN = ("arm", "programme_id", "attended_supervised", "attended_remote")


def _redacted(values: pd.Series, protocol: Protocol) -> pd.Series:
    """Free text with arm names concealed (blinded reports; see :func:`.blinding.redact_arms`)."""
    return values.map(lambda v: redact_arms(v, protocol) if isinstance(v, str) else v)


def _rehab_facts(
    store: Store, *, by: str, role: str, blinded: bool, today: dt.date, protocol: Protocol
) -> tuple[pd.DataFrame | None, pd.DataFrame | None, pd.DataFrame | None]:
    from immunorehab.rehab.reports import adherence_report
    from immunorehab.rehab.service import READERS

    if role not in READERS:
        return None, None, None
    rows, _ = adherence_report(store, by=by, today=today)
    adherence = pd.DataFrame([asdict(r) for r in rows], columns=list(_adherence_columns()))
    with store.read(by) as session:
        aes = _adverse_events(session)
        programmes = None if blinded else _programmes(session)
    if blinded:
        adherence = adherence.drop(columns=list(_ADHERENCE_HIDDEN))
        aes = aes.drop(columns=["arm"]).assign(term=lambda f: _redacted(f["term"], protocol))
    return adherence, aes, programmes


def _adherence_columns() -> tuple[str, ...]:
    from immunorehab.rehab.adherence import ParticipantAdherence

    return tuple(ParticipantAdherence.__dataclass_fields__)


def _adverse_events(session: Session) -> pd.DataFrame:
    from immunorehab.rehab.tables import RehabAdverseEvent
    from immunorehab.study.models import Allocation, Participant

    query = (
        select(RehabAdverseEvent, Allocation.arm)
        .join(Participant, Participant.participant_id == RehabAdverseEvent.participant_id)
        .outerjoin(Allocation, Allocation.participant_pk == Participant.id)
        .order_by(RehabAdverseEvent.participant_id, RehabAdverseEvent.session_no, RehabAdverseEvent.id)
    )
    rows = [
        {
            "participant_id": ae.participant_id,
            "arm": arm,
            "session_no": ae.session_no,
            "term": ae.term,
            "serious": bool(ae.serious),
            "severity": ae.severity,
            "relatedness": ae.relatedness,
        }
        for ae, arm in session.execute(query).tuples()
    ]
    cols = ["participant_id", "arm", "session_no", "term", "serious", "severity", "relatedness"]
    return pd.DataFrame(rows, columns=cols)


def _programmes(session: Session) -> pd.DataFrame:
    """Programme files used for prescriptions: id, version, SHA-256, participants (unblinded only)."""
    from immunorehab.rehab.tables import RehabPrescription

    query = (
        select(
            RehabPrescription.programme_id,
            RehabPrescription.programme_version,
            RehabPrescription.programme_sha256,
            func.count(func.distinct(RehabPrescription.participant_id)),
        )
        .group_by(
            RehabPrescription.programme_id,
            RehabPrescription.programme_version,
            RehabPrescription.programme_sha256,
        )
        .order_by(RehabPrescription.programme_id, RehabPrescription.programme_version)
    )
    cols = ["programme_id", "programme_version", "programme_sha256", "participants"]
    return pd.DataFrame(list(session.execute(query).tuples()), columns=cols)


def _fcs_files(session: Session) -> pd.DataFrame:
    """One row per gated FCS file: participant, visit, tube, name, SHA-256 of the file, gating
    strategy (template and placed), panel, events, populations derived and QC flags."""
    from immunorehab.cytometry.tables import CytometryFile, GateResultRow, QcFlagRow

    n_results = (
        select(GateResultRow.file_id, func.count(GateResultRow.id).label("n"))
        .group_by(GateResultRow.file_id)
        .subquery()
    )
    query = (
        select(CytometryFile, n_results.c.n)
        .outerjoin(n_results, n_results.c.file_id == CytometryFile.id)
        .order_by(CytometryFile.participant_id, CytometryFile.visit_id, CytometryFile.tube, CytometryFile.id)
    )
    flags: dict[int, list[str]] = {}
    for file_id, code in session.execute(select(QcFlagRow.file_id, QcFlagRow.code)).tuples():
        flags.setdefault(file_id, []).append(code)
    rows = [
        {
            "participant_id": f.participant_id,
            "visit_id": f.visit_id,
            "tube": f.tube,
            "file_name": f.file_name,
            "file_sha256": f.file_sha256,
            "template": f.template,
            "strategy_sha256": f.strategy_sha256,
            "placed_strategy_sha256": f.placed_strategy_sha256,
            "panel_sha256": f.panel_sha256,
            "n_events": f.n_events,
            "populations": int(n or 0),
            "absolute_method": f.absolute_method,
            "qc_flags": ";".join(sorted(set(flags.get(f.id, [])))),
        }
        for f, n in session.execute(query).tuples()
    ]
    return pd.DataFrame(rows, columns=_FCS_COLUMNS)


_FCS_COLUMNS = [
    "participant_id",
    "visit_id",
    "tube",
    "file_name",
    "file_sha256",
    "template",
    "strategy_sha256",
    "placed_strategy_sha256",
    "panel_sha256",
    "n_events",
    "populations",
    "absolute_method",
    "qc_flags",
]


def _plates(session: Session) -> pd.DataFrame:
    """One row per cytokine plate: files and hashes, assay and its hash, curves and results derived."""
    from immunorehab.cytokines.tables import CytokineCurve, CytokinePlate, CytokineResult

    curves: dict[int, list[str]] = {}
    for plate_pk, status in session.execute(select(CytokineCurve.plate_pk, CytokineCurve.status)).tuples():
        curves.setdefault(plate_pk, []).append(status)
    samples: dict[int, tuple[int, int]] = {}
    query = (
        select(
            CytokineResult.plate_pk,
            func.count(CytokineResult.id),
            func.count(func.distinct(CytokineResult.replicate_group)),
        )
        .where(CytokineResult.role == "sample")
        .group_by(CytokineResult.plate_pk)
    )
    for plate_pk, n_results, n_groups in session.execute(query).tuples():
        samples[plate_pk] = (int(n_results), int(n_groups))
    rows = []
    for p in session.scalars(select(CytokinePlate).order_by(CytokinePlate.run_order)):
        statuses = curves.get(p.id, [])
        n_results, n_groups = samples.get(p.id, (0, 0))
        rows.append(
            {
                "plate_id": p.plate_id,
                "run_order": p.run_order,
                "assay_id": p.assay_id,
                "assay_sha256": p.assay_sha256,
                "readings_file": p.readings_file,
                "readings_sha256": p.readings_sha256,
                "plate_map_file": p.plate_map_file,
                "plate_map_sha256": p.plate_map_sha256,
                "curves": len(statuses),
                "curves_ok": sum(s == "ok" for s in statuses),
                "sample_results": n_results,
                "samples": n_groups,
            }
        )
    return pd.DataFrame(rows, columns=_PLATE_COLUMNS)


_PLATE_COLUMNS = [
    "plate_id",
    "run_order",
    "assay_id",
    "assay_sha256",
    "readings_file",
    "readings_sha256",
    "plate_map_file",
    "plate_map_sha256",
    "curves",
    "curves_ok",
    "sample_results",
    "samples",
]
