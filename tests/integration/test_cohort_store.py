"""Cohort studies in the store: no randomisation, follow-up visits recorded directly (both backends)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

import factories
from factories import person
from immunorehab.errors import StudyError
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant
from immunorehab.study.visits import record_visit, visit_statuses
from testpaths import PHOSP, PROTOCOLS

FONG = PROTOCOLS / "fong_cohort.yaml"
TODAY = dt.date(2026, 1, 10)


def _cohort_person(**overrides: Any) -> dict[str, Any]:
    values = person(site="SGP", consent_date="2024-01-03", **overrides)
    return values


def test_cohort_refuses_randomisation_and_records_follow_up(make_study: Callable[..., Any]) -> None:
    handle = make_study(FONG)
    store = handle.store
    p = add_participant(store, by="coord", values=_cohort_person(), today=TODAY)
    with pytest.raises(StudyError, match="is a cohort .*nobody is randomised"):
        randomise(store, by="coord", participant_id=p.participant_id, on=dt.date(2024, 1, 4))
    enrolled = dt.date(2024, 1, 4)
    record_visit(
        store,
        by="coord",
        participant_id=p.participant_id,
        visit_id="baseline",
        visit_date=enrolled,
        values={"blood_drawn": True},
        today=TODAY,
    )
    status = record_visit(
        store,
        by="coord",
        participant_id=p.participant_id,
        visit_id="month12",
        visit_date=enrolled + dt.timedelta(days=370),
        values={"symptoms_present": True, "symptom_count": 3, "blood_drawn": True},
        today=TODAY,
    )
    assert status.status == "completed"
    assert status.target == enrolled + dt.timedelta(days=365)  # the schedule runs from the baseline visit
    statuses = {s.visit_id: s for s in visit_statuses(store, by="coord", today=TODAY)}
    assert statuses["month6"].status == "overdue"
    assert statuses["month24"].status == "due"  # window 730 +/- 60 days from 2024-01-04
    assert statuses["month24"].window_start == enrolled + dt.timedelta(days=670)


def test_cohort_refuses_visits_of_ineligible_people(make_study: Callable[..., Any]) -> None:
    store = make_study(FONG).store
    p = add_participant(store, by="coord", values=_cohort_person(hospitalised="no"), today=TODAY)
    with pytest.raises(StudyError, match="not eligible .*hospitalised"):
        record_visit(
            store,
            by="coord",
            participant_id=p.participant_id,
            visit_id="baseline",
            visit_date=dt.date(2024, 1, 4),
            values={"blood_drawn": True},
            today=TODAY,
        )


def test_trial_still_needs_randomisation_for_follow_up(make_study: Callable[..., Any]) -> None:
    store = make_study(PHOSP).store
    p = add_participant(store, by="coord", values=person(), today=factories.TODAY)
    with pytest.raises(StudyError, match="not randomised yet"):
        record_visit(
            store,
            by="coord",
            participant_id=p.participant_id,
            visit_id="month3",
            visit_date=dt.date(2026, 5, 1),
            values={},
            today=factories.TODAY,
        )
