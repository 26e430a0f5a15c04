"""Participant flow: CONSORT 2025 counts for trials, a STROBE-like flow for cohorts (pure).

Trial flow (Hopewell et al., CONSORT 2025 flow diagram; domain.md E3), from store facts:

* **assessed for eligibility**: every enrolled (screened) participant;
* **excluded**: not randomised, with reasons: failing eligibility criteria (one count per
  criterion; a person can fail several), withdrew before randomisation (their reasons), no
  consent recorded, or eligible and awaiting randomisation;
* **allocated** per arm; **received the allocated intervention**: for an arm with a
  rehabilitation programme, prescribed and attended at least one session (reasons otherwise);
  an arm without a programme (usual care) has no study intervention to deliver;
* **discontinued intervention**: did not reach the programme's completer threshold;
  **withdrew**: withdrawn after randomisation, with reasons; **lost to follow-up**: the
  primary endpoint visit was missed and its window has closed; **follow-up not yet due**;
* **analysed** per analysis population (counts from the study analysis).

A blinded flow pools all arms into one column and leaves out the intervention counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from immunorehab.report.collect import ArmInfo

__all__ = ["ArmFlow", "CohortFlow", "ConsortFlow", "Reason", "VisitFlow", "cohort_flow", "consort_flow"]

POOLED = "all"


@dataclass(frozen=True, slots=True)
class Reason:
    """A count with its label and, optionally, the counts that make it up."""

    label: str
    n: int
    sub: tuple[Reason, ...] = ()


@dataclass(frozen=True, slots=True)
class ArmFlow:
    """One column of the CONSORT diagram (an arm, or all arms pooled in a blinded report).

    ``received``/``not_received``/``discontinued`` are ``None`` when the report cannot know
    them (blinded report, or an arm without a programme: see ``intervention_note``).
    """

    key: str
    label: str
    allocated: int
    received: int | None
    not_received: tuple[Reason, ...] | None
    intervention_note: str
    discontinued: Reason | None
    withdrawn: Reason
    lost: Reason
    pending: int
    analysed: tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class ConsortFlow:
    assessed: int
    excluded: Reason
    randomised: int
    arms: tuple[ArmFlow, ...]
    primary_visit: str
    primary_visit_label: str
    blinded: bool


def _reasons(values: Sequence[str], label: str) -> Reason:
    counts = Counter(v or "reason not recorded" for v in values)
    sub = tuple(Reason(k, v) for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return Reason(label, len(values), sub)


def _excluded(people: pd.DataFrame, criteria: Mapping[str, str]) -> Reason:
    """Not randomised, with reasons (see the module docstring)."""
    out = people[people["randomised_on"].isna()]
    ineligible = out[~out["eligible"].astype(bool)]
    failed = Counter(c for text in ineligible["failed_criteria"] for c in str(text or "").split(",") if c)
    fail_sub = tuple(
        Reason(f"not met: {criteria.get(c, c)}", n)
        for c, n in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))
    )
    eligible = out[out["eligible"].astype(bool)]
    declined = eligible[eligible["withdrawn_on"].notna()]
    remaining = eligible[eligible["withdrawn_on"].isna()]
    no_consent = remaining[remaining["consent_date"].isna()]
    waiting = remaining[remaining["consent_date"].notna()]
    items = [
        Reason("Not meeting eligibility criteria", len(ineligible), fail_sub),
        _reasons(
            [str(r) for r in declined["withdrawal_reason"].fillna("")],
            "Declined or withdrew before randomisation",
        ),
        Reason("No consent recorded", len(no_consent)),
        Reason("Eligible, awaiting randomisation", len(waiting)),
    ]
    return Reason("Excluded", len(out), tuple(r for r in items if r.n))


def _status(visits: pd.DataFrame, visit_id: str) -> dict[str, str]:
    chosen = visits[visits["visit_id"] == visit_id]
    return dict(zip(chosen["participant_id"], chosen["status"], strict=True))


def _follow_up(
    members: pd.DataFrame, status: Mapping[str, str], visit_label: str
) -> tuple[Reason, Reason, int]:
    withdrawn = members[members["withdrawn_on"].notna()]
    active = members[members["withdrawn_on"].isna()]
    states = [status.get(pid, "overdue") for pid in active["participant_id"]]
    missed = sum(s == "overdue" for s in states)
    sub = (Reason(f"{visit_label} missed, window closed", missed),) if missed else ()
    lost = Reason("Lost to follow-up", missed, sub)
    pending = sum(s in ("upcoming", "due") for s in states)
    reasons = [str(r) for r in withdrawn["withdrawal_reason"].fillna("")]
    return _reasons(reasons, "Withdrew"), lost, pending


def _intervention(
    arm: ArmInfo, members: pd.DataFrame, adherence: pd.DataFrame | None
) -> tuple[int | None, tuple[Reason, ...] | None, str, Reason | None]:
    if not arm.has_programme:
        return None, None, "No study intervention to deliver (no rehabilitation programme)", None
    if adherence is None:
        return None, None, "Rehabilitation records not available to this report", None
    if adherence.empty:
        return None, None, "Intervention delivery not recorded (no rehabilitation log in the store)", None
    ids = set(members["participant_id"])
    mine = adherence[adherence["participant_id"].isin(ids)]
    attended = mine[mine["attended"] > 0]
    not_prescribed = len(ids - set(mine["participant_id"]))
    no_session = len(mine) - len(attended)
    not_received = tuple(
        r
        for r in (
            Reason("Not prescribed a programme", not_prescribed),
            Reason("Attended no session", no_session),
        )
        if r.n
    )
    thresholds = "/".join(str(v) for v in sorted({int(t) for t in mine["completer_threshold"]}))
    stopped = int((attended["status"] == "non_completer").sum())
    sub = (Reason(f"attended fewer than {thresholds} of the offered sessions", stopped),) if stopped else ()
    discontinued = Reason("Discontinued intervention", stopped, sub)
    return len(attended), not_received, "", discontinued


def consort_flow(
    participants: pd.DataFrame,
    visits: pd.DataFrame,
    *,
    arms: Sequence[ArmInfo],
    criteria: Mapping[str, str],
    primary_visit: str,
    primary_visit_label: str,
    adherence: pd.DataFrame | None,
    analysed: Mapping[str, Mapping[str, int]],
) -> ConsortFlow:
    """CONSORT counts from store facts.

    Parameters
    ----------
    participants
        :attr:`StudyFacts.participants` (``arm`` present unless blinded).
    visits
        Visit statuses (``participant_id, visit_id, status``).
    arms
        The arms (empty for a blinded flow: one pooled column).
    criteria
        Eligibility criterion id -> description (for the exclusion reasons).
    primary_visit, primary_visit_label
        The primary endpoint visit (lost to follow-up = missed it, window closed).
    adherence
        Per-participant adherence (with ``arm`` unblinded) or ``None``.
    analysed
        Population -> group key (arm id, or ``"all"`` when blinded) -> n analysed.
    """
    randomised = participants[participants["randomised_on"].notna()]
    status = _status(visits, primary_visit)
    columns: list[tuple[ArmInfo | None, pd.DataFrame]]
    if arms:
        columns = [(a, randomised[randomised["arm"] == a.id]) for a in arms]
    else:
        columns = [(None, randomised)]
    flows = []
    for arm, members in columns:
        withdrawn, lost, pending = _follow_up(members, status, primary_visit_label)
        key = arm.id if arm else POOLED
        if arm is None:
            received, not_received, note, discontinued = None, None, "", None
            label = "All randomised (arms pooled: blinded report)"
        else:
            received, not_received, note, discontinued = _intervention(arm, members, adherence)
            label = arm.label
        flows.append(
            ArmFlow(
                key=key,
                label=label,
                allocated=len(members),
                received=received,
                not_received=not_received,
                intervention_note=note,
                discontinued=discontinued,
                withdrawn=withdrawn,
                lost=lost,
                pending=pending,
                analysed=tuple((pop, int(groups.get(key, 0))) for pop, groups in analysed.items()),
            )
        )
    return ConsortFlow(
        assessed=len(participants),
        excluded=_excluded(participants, criteria),
        randomised=len(randomised),
        arms=tuple(flows),
        primary_visit=primary_visit,
        primary_visit_label=primary_visit_label,
        blinded=not arms,
    )


# -- cohorts -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VisitFlow:
    """Follow-up at one visit of a cohort: attended, missed, not yet due, withdrawn by then."""

    visit_id: str
    label: str
    attended: int
    missed: int
    pending: int
    withdrawn: int
    analysed: int | None


@dataclass(frozen=True, slots=True)
class CohortFlow:
    assessed: int
    excluded: Reason
    included: int
    visits: tuple[VisitFlow, ...]


def cohort_flow(
    participants: pd.DataFrame,
    visits: pd.DataFrame,
    *,
    criteria: Mapping[str, str],
    visit_labels: Mapping[str, str],
    analysed: Mapping[str, int],
) -> CohortFlow:
    """STROBE-like flow: screened, excluded (reasons), included, then follow-up per visit.

    ``participants`` counts as included when eligible and consented (and, where the cohort is
    also randomised, when randomised); ``analysed`` maps visit id -> n with data analysed.
    """
    consented = participants["consent_date"].notna() & participants["eligible"].astype(bool)
    included = participants[consented]
    excluded = _excluded(participants.assign(randomised_on=consented.where(consented)), criteria)
    ids = set(included["participant_id"])
    flows = []
    for visit_id, label in visit_labels.items():
        chosen = visits[(visits["visit_id"] == visit_id) & visits["participant_id"].isin(ids)]
        states = Counter(chosen["status"])
        flows.append(
            VisitFlow(
                visit_id=visit_id,
                label=label,
                attended=states["completed"] + states["out_of_window"],
                missed=states["overdue"],
                pending=states["upcoming"] + states["due"] + states["not_randomised"],
                withdrawn=states["withdrawn"],
                analysed=analysed.get(visit_id),
            )
        )
    return CohortFlow(len(participants), excluded, len(included), tuple(flows))
