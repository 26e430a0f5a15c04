"""Visit schedule from the randomisation date, status on a given day, validated recording."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from factories import person
from immunorehab.errors import DataValidationError, StudyError
from immunorehab.study.allocation import randomise
from immunorehab.study.participants import add_participant, withdraw_participant
from immunorehab.study.visits import record_visit, visit_statuses

R = dt.date(2026, 2, 2)  # randomisation date
WEEK8 = {
    "iswt_distance_m": 420,
    "eswt_time_s": 300,
    "sts_1min_reps": 20,
    "eq5d5l_index": 0.71,
    "eq_vas": 70,
    "facit_fatigue": 30,
    "c19yrsm_symptom_severity": 12,
    "c19yrsm_functional_disability": 5,
    "c19yrsm_overall_health": 6,
    "dsq_pem_present": "no",
    "blood_drawn": "yes",
}


@pytest.fixture
def pid(study) -> str:
    p = add_participant(study.store, by="coord", values=person()).participant_id
    randomise(study.store, by="coord", participant_id=p, on=R)
    return p


def _status(study, pid: str, today: dt.date) -> dict[str, tuple[str, dt.date | None, dt.date | None]]:
    return {
        s.visit_id: (s.status, s.window_start, s.window_end)
        for s in visit_statuses(study.store, by="coord", today=today, participant_id=pid)
    }


def test_schedule_windows_follow_the_protocol(study, pid: str) -> None:
    status = _status(study, pid, R)
    # week 8 = day 56, window +-7; month 3 = day 91 +-14; month 24 = day 730 +-30
    assert status["week8"][1:] == (R + dt.timedelta(days=49), R + dt.timedelta(days=63))
    assert status["month3"][1:] == (R + dt.timedelta(days=77), R + dt.timedelta(days=105))
    assert status["month24"][1:] == (R + dt.timedelta(days=700), R + dt.timedelta(days=760))
    assert status["week8"][0] == "upcoming"


@pytest.mark.parametrize(
    ("offset", "expected"), [(48, "upcoming"), (49, "due"), (63, "due"), (64, "overdue")]
)
def test_due_and_overdue_at_window_edges(study, pid: str, offset: int, expected: str) -> None:
    assert _status(study, pid, R + dt.timedelta(days=offset))["week8"][0] == expected


def test_recording_in_and_out_of_window(study, pid: str) -> None:
    today = R + dt.timedelta(days=120)
    record_visit(
        study.store,
        by="assessor1",
        participant_id=pid,
        visit_id="week8",
        visit_date=R + dt.timedelta(days=58),
        values=WEEK8,
        today=today,
    )
    s = record_visit(
        study.store,
        by="assessor1",
        participant_id=pid,
        visit_id="month3",
        visit_date=R + dt.timedelta(days=110),
        values=_month3(),
        today=today,
    )
    assert s.status == "out_of_window"
    status = _status(study, pid, today)
    assert status["week8"][0] == "completed" and status["month3"][0] == "out_of_window"


def _month3() -> dict[str, object]:
    from immunorehab.study.protocol import load_protocol
    from testpaths import PHOSP

    visit = load_protocol(PHOSP).visit("month3")
    return {k: v for k, v in WEEK8.items() if k in {m.id for m in visit.measures}}


def test_withdrawn_participants_have_nothing_due(study, pid: str) -> None:
    withdraw_participant(
        study.store, by="coord", participant_id=pid, reason="moved", on=R + dt.timedelta(days=10)
    )
    assert _status(study, pid, R + dt.timedelta(days=70))["week8"][0] == "withdrawn"


def test_invalid_values_are_all_reported_and_nothing_is_stored(study, pid: str) -> None:
    bad = {
        **WEEK8,
        "iswt_distance_m": 5000,
        "eq5d5l_index": "good",
        "blood_drawn": "perhaps",
        "colour": "red",
    }
    del bad["facit_fatigue"]
    with pytest.raises(DataValidationError) as info:
        record_visit(
            study.store,
            by="physio1",
            participant_id=pid,
            visit_id="week8",
            visit_date=R + dt.timedelta(days=56),
            values=bad,
            today=R + dt.timedelta(days=60),
        )
    fields = sorted(p.location.rsplit("field ", 1)[1] for p in info.value.problems)
    assert fields == ["blood_drawn", "colour", "eq5d5l_index", "facit_fatigue", "iswt_distance_m"]
    assert "expected 0" in str(info.value) and "1500" in str(info.value)
    with study.store.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM visit_record")).scalar_one() == 0
        assert conn.execute(sa.text("SELECT count(*) FROM measurement")).scalar_one() == 0


def test_correction_needs_a_reason_and_is_audited(study, pid: str) -> None:
    day = R + dt.timedelta(days=56)
    record_visit(
        study.store,
        by="physio1",
        participant_id=pid,
        visit_id="week8",
        visit_date=day,
        values=WEEK8,
        today=day,
    )
    with pytest.raises(StudyError, match="already recorded"):
        record_visit(
            study.store,
            by="physio1",
            participant_id=pid,
            visit_id="week8",
            visit_date=day,
            values={**WEEK8, "iswt_distance_m": 430},
            today=day,
        )
    record_visit(
        study.store,
        by="physio1",
        participant_id=pid,
        visit_id="week8",
        visit_date=day,
        values={**WEEK8, "iswt_distance_m": 430},
        reason="misread stopwatch",
        today=day,
    )
    with study.store.engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT value_num FROM measurement WHERE measure_id='iswt_distance_m'")
        ).scalar()
        audit = conn.execute(
            sa.text("SELECT changes_json, reason FROM audit_event WHERE action='update'")
        ).all()
    assert value == 430
    assert audit == [('{"value_num": [420.0, 430.0], "value_text": ["420", "430"]}', "misread stopwatch")]


def test_only_baseline_before_randomisation_and_no_future_dates(study) -> None:
    p = add_participant(study.store, by="coord", values=person()).participant_id
    with pytest.raises(StudyError, match="only the baseline visit"):
        record_visit(
            study.store, by="physio1", participant_id=p, visit_id="week8", visit_date=R, values=WEEK8, today=R
        )
    with pytest.raises(DataValidationError, match="in the future"):
        record_visit(
            study.store,
            by="physio1",
            participant_id=p,
            visit_id="baseline",
            visit_date=R + dt.timedelta(days=1),
            values=WEEK8,
            today=R,
        )
