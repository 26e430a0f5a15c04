"""Rehabilitation in the store (SQLite and PostgreSQL): prescribe, log, import, follow up, clear, report.

Every refused write must leave the database exactly as it was (rows and audit trail).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import sqlalchemy as sa

from immunorehab.errors import (
    AssessmentError,
    ClearanceError,
    PermissionDenied,
    PrescriptionError,
    SessionLogError,
    StoreError,
)
from immunorehab.rehab.logbook import add_adverse_event, import_sessions, log_session, record_followup
from immunorehab.rehab.progression import Rule
from immunorehab.rehab.reports import adherence_report, outcomes_report, sessions_frame
from immunorehab.rehab.service import clear_review, participant_progress, prescribe
from immunorehab.rehab.tables import RehabSession
from immunorehab.study.audit import audit_rows
from immunorehab.study.visits import record_visit
from unit.rehab.rehab_factories import TODAY, R, randomised_to

S1 = R + dt.timedelta(days=2)


def _session(day: dt.date = S1, **extra: Any) -> dict[str, Any]:
    """A well-tolerated face-to-face session at the starting prescription (with its 24 h follow-up)."""
    values: dict[str, Any] = {
        "session_date": day.isoformat(),
        "hr_pre_bpm": 76,
        "hr_peak_bpm": 112,
        "spo2_lowest_pct": 95,
        "borg_dyspnoea": 3.5,
        "rpe": 13,
        "walking_minutes": 10,
        "walking_speed_kmh": 4.2,
        "cycling_minutes": 5,
        "cycling_watts": 20,
        **{
            f"{ex}_{k}": v
            for ex in ("leg_press", "knee_extension", "chest_press")
            for k, v in (("sets", 2), ("reps", 8), ("kg", 27))
        },
        "biceps_curl_sets": 1,
        "biceps_curl_reps": 15,
        "biceps_curl_kg": 18,
        **{f"symptoms_pre_{s}": 3 for s in ("fatigue", "breathlessness", "pain", "cognition")},
        **{f"symptoms_24h_{s}": 3 for s in ("fatigue", "breathlessness", "pain", "cognition")},
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def _counts(study) -> tuple[int, int]:
    engine = sa.create_engine(study.url)
    with engine.connect() as conn:
        sessions = conn.execute(sa.text("SELECT count(*) FROM rehab_session")).scalar_one()
        audit = conn.execute(sa.text("SELECT count(*) FROM audit_event")).scalar_one()
    engine.dispose()
    return sessions, audit


@pytest.fixture
def f2f(study) -> str:
    pid = randomised_to(study.store, "face_to_face")
    prescribe(study.store, by="physio1", participant_id=pid, on=R, today=TODAY)
    return pid


def test_prescription_is_stored_versioned_and_audited(study) -> None:
    pid = randomised_to(study.store, "face_to_face")
    view = prescribe(study.store, by="physio1", participant_id=pid, on=R, today=TODAY)
    assert view.version == 1 and view.plan.programme_id == "phosp-r-face-to-face"
    assert (
        str(view.plan.exercise("walking").start)
        == "WalkingDose(minutes=10.0, speed_kmh=4.2, incline_pct=0.0)"
    )
    assert view.assessment["iswt_distance_m"] == 300
    with pytest.raises(PrescriptionError, match="pass --reason TEXT to re-prescribe"):
        prescribe(study.store, by="physio1", participant_id=pid, today=TODAY)
    again = prescribe(
        study.store, by="physio1", participant_id=pid, today=TODAY, force_pacing=True, reason="PEM symptoms"
    )
    assert again.version == 2 and again.plan.mode == "pacing"
    with study.store.read("admin") as session:
        events = [
            r
            for r in audit_rows(session, participant_id=pid, blinded=False)
            if r.entity == "rehab_prescription"
        ]
    assert [e.action for e in events] == ["create", "create"] and events[1].reason == "PEM symptoms"
    assert events[0].changes["mode"] == [None, "standard"] and "plan_json" not in events[0].changes


def test_prescription_refusals(study) -> None:
    usual = randomised_to(study.store, "usual_care")
    with pytest.raises(PrescriptionError, match="arm 'usual_care' has no rehabilitation programme"):
        prescribe(study.store, by="physio1", participant_id=usual, today=TODAY)
    remote = randomised_to(study.store, "remote", baseline=False)
    with pytest.raises(AssessmentError) as info:
        prescribe(study.store, by="physio1", participant_id=remote, today=TODAY)
    assert "iswt_distance_m: is required" in str(info.value)
    f2f = randomised_to(study.store, "face_to_face")
    for user, message in (
        ("coord", "role coordinator"),
        ("lab1", "reveal the allocated arm"),
        ("assessor1", "role assessor"),
    ):
        with pytest.raises(PermissionDenied, match=message):
            prescribe(study.store, by=user, participant_id=f2f, today=TODAY)
    with pytest.raises(PrescriptionError, match="must be between the randomisation date"):
        prescribe(study.store, by="physio1", participant_id=f2f, on=R - dt.timedelta(days=1), today=TODAY)


def test_remote_arm_gets_the_remote_programme(study) -> None:
    pid = randomised_to(study.store, "remote")
    view = prescribe(study.store, by="physio1", participant_id=pid, on=R, today=TODAY)
    assert view.programme.id == "phosp-r-remote" and view.plan.heart_rate is None
    log_session(
        study.store,
        by="coord",
        participant_id=pid,
        today=TODAY,
        values={
            "session_date": S1.isoformat(),
            "walking_minutes": 10,
            "walking_speed_kmh": 3.6,
            "borg_dyspnoea": 3,
        },
    )
    with study.store.read("admin") as session:
        row = session.scalar(sa.select(RehabSession))
        assert row.supervised is False  # remote programme: self-logged by default


def test_log_next_and_audit(study, f2f: str) -> None:
    logged = log_session(study.store, by="physio1", participant_id=f2f, values=_session(), today=TODAY)
    assert (logged.session_no, logged.attended, logged.replaced) == (1, True, False)
    progress = participant_progress(study.store, by="stats1", participant_id=f2f)
    decision = progress.progress.decision(1)
    assert decision.exercise("walking").action == "advance"
    assert str(progress.next.doses["walking"]) == "WalkingDose(minutes=12.0, speed_kmh=4.2, incline_pct=0.0)"
    assert progress.next.session_no == 2 and progress.next.earliest_date == S1 + dt.timedelta(days=2)
    with study.store.read("admin") as session:
        entities = {r.entity for r in audit_rows(session, participant_id=f2f, blinded=False)}
    assert {"rehab_session", "rehab_exercise"} <= entities
    # the next session is prescribed from the engine: 12 min walking is what "prescribed" holds
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        today=TODAY,
        values=_session(S1 + dt.timedelta(days=3), walking_minutes=12),
    )
    frame = sessions_frame(study.store, by="stats1")
    walk = frame[(frame["session_no"] == 2) & (frame["ex_exercise_id"] == "walking")].iloc[0]
    assert (walk["ex_prescribed_minutes"], walk["ex_prescribed_by"], walk["arm"]) == (
        12.0,
        "engine",
        "face_to_face",
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"spo2_lowest_pct": 120}, "field spo2_lowest_pct: lowest SpO2 must be 50 to 100 %, got 120"),
        ({"borg_dyspnoea": 11}, "field borg_dyspnoea: Borg CR10 dyspnoea must be 0 to 10, got 11"),
        ({"rpe": 25}, "field rpe: RPE (Borg 6-20) must be 6 to 20, got 25"),
        ({"walking_minutes": -3}, "field walking_minutes: walking minutes must be 0 to 180 min, got -3"),
        ({"session_date": (R - dt.timedelta(days=1)).isoformat()}, f"is before randomisation on {R}"),
        ({"session_date": (TODAY + dt.timedelta(days=1)).isoformat()}, "is in the future"),
        ({"session_date": (R + dt.timedelta(days=80)).isoformat()}, "after the 8-week programme ended"),
        ({"session_no": 17}, "beyond the programme's 16 sessions"),
        (
            {"walking_prescribed_minutes": 40, "walking_prescribed_speed_kmh": 4.2},
            "minutes 40 min is above the cap of 30 min",
        ),
        (
            {"leg_press_prescribed_sets": 2, "leg_press_prescribed_reps": 8, "leg_press_prescribed_kg": 45},
            "load 45 kg is above the cap of 37 kg",
        ),
    ],
)
def test_impossible_sessions_are_refused_and_nothing_is_saved(
    study, f2f: str, changes: dict[str, Any], message: str
) -> None:
    before = _counts(study)
    with pytest.raises(SessionLogError) as info:
        log_session(study.store, by="physio1", participant_id=f2f, values=_session(**changes), today=TODAY)
    assert "nothing stored" in str(info.value) and message in str(info.value), str(info.value)
    assert _counts(study) == before


def test_usual_care_and_blinded_users_cannot_log(study, f2f: str) -> None:
    usual = randomised_to(study.store, "usual_care")
    with pytest.raises(PrescriptionError, match="usual_care"):
        log_session(study.store, by="physio1", participant_id=usual, values=_session(), today=TODAY)
    for user in ("lab1", "assessor1", "stats1"):
        with pytest.raises(PermissionDenied):
            log_session(study.store, by=user, participant_id=f2f, values=_session(), today=TODAY)


def test_relogging_needs_a_reason_and_is_an_audited_update(study, f2f: str) -> None:
    log_session(study.store, by="physio1", participant_id=f2f, values=_session(), today=TODAY)
    with pytest.raises(SessionLogError, match="already logged on .* pass --reason TEXT"):
        log_session(
            study.store,
            by="physio1",
            participant_id=f2f,
            values=_session(session_no=1, borg_dyspnoea=5),
            today=TODAY,
        )
    done = log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        values=_session(session_no=1, borg_dyspnoea=5),
        reason="Borg misread",
        today=TODAY,
    )
    assert done.replaced
    with study.store.read("admin") as session:
        updates = [r for r in audit_rows(session, participant_id=f2f, blinded=False) if r.action == "update"]
    assert (
        updates and updates[0].reason == "Borg misread" and updates[0].changes["borg_dyspnoea"] == [3.5, 5.0]
    )
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    assert progress.progress.decision(1).exercise("walking").rule == Rule.ABOVE_TARGET


def test_csv_import_is_all_or_nothing_and_names_every_bad_row(study, f2f: str, tmp_path: Path) -> None:
    usual = randomised_to(study.store, "usual_care")
    rows = [
        {"participant_id": f2f, **_session()},
        {"participant_id": f2f, **_session(S1 + dt.timedelta(days=3), spo2_lowest_pct=120, rpe=25)},
        {"participant_id": usual, **_session()},
        {"participant_id": "", **_session()},
    ]
    path = tmp_path / "sessions.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    before = _counts(study)
    with pytest.raises(SessionLogError) as info:
        import_sessions(study.store, by="physio1", path=path, today=TODAY)
    text = str(info.value)
    assert "nothing imported; 4 problem(s)" in text
    assert "sessions.csv row 3, field spo2_lowest_pct: lowest SpO2 must be 50 to 100 %, got '120'" in text
    assert "sessions.csv row 3, field rpe" in text
    assert "sessions.csv row 4, field participant_id" in text and "usual_care" in text
    assert "sessions.csv row 5, field participant_id: is required" in text
    assert _counts(study) == before
    pd.DataFrame(
        rows[:1] + [{"participant_id": f2f, **_session(S1 + dt.timedelta(days=3), walking_minutes=12)}]
    ).to_csv(path, index=False)
    logged = import_sessions(study.store, by="physio1", path=path, today=TODAY)
    assert [(s.participant_id, s.session_no) for s in logged] == [(f2f, 1), (f2f, 2)]
    with pytest.raises(
        SessionLogError, match=f"{f2f} already has session 1 on {S1} \\(a duplicate row\\?\\)"
    ):
        import_sessions(study.store, by="physio1", path=path, today=TODAY)
    numbered = pd.read_csv(path).assign(session_no=[1, 2])
    numbered.to_csv(path, index=False)
    with pytest.raises(SessionLogError, match="session 1 is already logged"):
        import_sessions(study.store, by="physio1", path=path, today=TODAY)


def test_late_follow_up_turns_into_pese_and_pacing(study, f2f: str) -> None:
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        today=TODAY,
        values=_session(
            **{f"symptoms_24h_{s}": None for s in ("fatigue", "breathlessness", "pain", "cognition")}
        ),
    )
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    assert progress.progress.decision(1).exercise("walking").rule == Rule.AWAITING_FOLLOWUP
    changes = record_followup(
        study.store, by="physio1", participant_id=f2f, session_no=1, values={"symptoms_24h_fatigue": "6"}
    )
    assert changes == {"symptoms_24h_fatigue": (None, 6)}
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    decision = progress.progress.decision(1)
    assert decision.pese is not None and decision.exercise("walking").rule == Rule.PESE
    assert progress.next.mode == "pacing"
    with pytest.raises(SessionLogError, match="is already 6: pass --reason"):
        record_followup(
            study.store, by="physio1", participant_id=f2f, session_no=1, values={"symptoms_24h_fatigue": 4}
        )
    with pytest.raises(SessionLogError, match="not a follow-up field"):
        record_followup(study.store, by="physio1", participant_id=f2f, session_no=1, values={"rpe": 12})
    record_followup(
        study.store,
        by="physio1",
        participant_id=f2f,
        session_no=1,
        values={"symptoms_24h_fatigue": 4},
        reason="typo",
    )
    assert (
        participant_progress(study.store, by="physio1", participant_id=f2f).progress.decision(1).pese is None
    )


def test_stop_criterion_blocks_until_a_physio_clears_it(study, f2f: str) -> None:
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        today=TODAY,
        values=_session(spo2_lowest_pct=85, stop_criteria="dizziness", stopped_during="walking"),
    )
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        today=TODAY,
        values=_session(S1 + dt.timedelta(days=3), walking_minutes=8, walking_speed_kmh=4.0),
    )
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    assert progress.next.blocked_by == (1,)
    assert {e.rule for e in progress.progress.decision(2).exercises} == {Rule.REVIEW_PENDING}
    with pytest.raises(PrescriptionError, match="clinical review of session 1 is pending"):
        prescribe(study.store, by="physio1", participant_id=f2f, today=TODAY, reason="re-assessment")
    with pytest.raises(PermissionDenied, match="role coordinator"):
        clear_review(study.store, by="coord", participant_id=f2f, session_no=1, reason="ok", today=TODAY)
    with pytest.raises(ClearanceError, match="needs a clinical reason"):
        clear_review(study.store, by="physio1", participant_id=f2f, session_no=1, reason=" ", today=TODAY)
    with pytest.raises(ClearanceError, match="met no stop criterion"):
        clear_review(study.store, by="physio1", participant_id=f2f, session_no=2, reason="ok", today=TODAY)
    cleared_on = S1 + dt.timedelta(days=3)
    clear_review(
        study.store,
        by="physio1",
        participant_id=f2f,
        session_no=1,
        reason="desaturation resolved at rest",
        on=cleared_on,
        today=TODAY,
    )
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    assert (
        progress.next.blocked_by == ()
        and progress.progress.decision(2).exercise("leg_press").action == "advance"
    )
    with pytest.raises(ClearanceError, match="already cleared"):
        clear_review(study.store, by="physio1", participant_id=f2f, session_no=1, reason="again", today=TODAY)
    with study.store.read("admin") as session:
        event = next(
            r for r in audit_rows(session, participant_id=f2f, blinded=False) if r.entity == "rehab_clearance"
        )
    assert event.user == "physio1" and event.reason == "desaturation resolved at rest"


def test_reports_and_adverse_events(study, f2f: str) -> None:
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        values=_session(ae_term="knee pain", ae_serious="no", ae_severity="mild", ae_related="possible"),
        today=TODAY,
    )
    add_adverse_event(
        study.store,
        by="physio1",
        participant_id=f2f,
        session_no=1,
        term="syncope at home",
        serious=True,
        severity="severe",
        relatedness="possible",
    )
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        values={"session_date": (S1 + dt.timedelta(days=3)).isoformat(), "attended": "no"},
        today=TODAY,
    )
    rows, arms = adherence_report(study.store, by="stats1", today=TODAY)
    (row,) = rows
    assert (row.participant_id, row.attended, row.adverse_events, row.serious_adverse_events) == (
        f2f,
        1,
        2,
        1,
    )
    assert row.status == "non_completer"  # TODAY is past the programme + grace: 1 of 16 attended
    assert arms[0].arm == "face_to_face" and arms[0].participants == 1
    week8 = {
        "iswt_distance_m": 360,
        "eswt_time_s": 500,
        "sts_1min_reps": 25,
        "eq5d5l_index": 0.8,
        "eq_vas": 70,
        "facit_fatigue": 35,
        "c19yrsm_symptom_severity": 8,
        "c19yrsm_functional_disability": 5,
        "c19yrsm_overall_health": 6,
        "dsq_pem_present": "no",
        "blood_drawn": "yes",
        "mwt6_distance_m": 420,
    }
    record_visit(
        study.store,
        by="assessor1",
        participant_id=f2f,
        visit_id="week8",
        visit_date=R + dt.timedelta(days=56),
        values=week8,
        today=TODAY,
    )
    (outcome_row,) = outcomes_report(study.store, by="stats1", participant_id=f2f)
    changes = {c.measure_id: c for c in outcome_row.changes}
    assert outcome_row.arm == "face_to_face"
    assert changes["iswt_distance_m"].change == 60 and changes["iswt_distance_m"].reached_mcid
    assert (
        changes["c19yrsm_symptom_severity"].change == -4 and changes["c19yrsm_symptom_severity"].reached_mcid
    )
    assert changes["mwt6_distance_m"].change == 40 and changes["mwt6_distance_m"].reached_mcid
    for user in ("lab1", "assessor1"):
        with pytest.raises(PermissionDenied):
            adherence_report(study.store, by=user, today=TODAY)
        with pytest.raises(PermissionDenied):
            outcomes_report(study.store, by=user)


def test_database_refuses_impossible_values_even_without_validation(study, f2f: str) -> None:
    log_session(study.store, by="physio1", participant_id=f2f, values=_session(), today=TODAY)
    with pytest.raises(StoreError, match="refused"):
        with study.store.write("physio1", reason="direct write") as session:
            row = session.scalar(sa.select(RehabSession))
            row.spo2_lowest_pct = 150


def test_session_numbers_and_history_continue_across_prescriptions(study, f2f: str) -> None:
    log_session(study.store, by="physio1", participant_id=f2f, values=_session(), today=TODAY)
    log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        values=_session(S1 + dt.timedelta(days=3), walking_minutes=12),
        today=TODAY,
    )
    view = prescribe(
        study.store,
        by="physio1",
        participant_id=f2f,
        on=S1 + dt.timedelta(days=4),
        today=TODAY,
        force_pacing=True,
        reason="re-assessed: PEM",
    )
    progress = participant_progress(study.store, by="physio1", participant_id=f2f)
    assert progress.prescription_version == 2 and progress.next.session_no == 3
    assert (
        progress.next.doses["walking"] == view.plan.exercise("walking").start
    )  # the new prescription's start
    assert progress.progress.decision(1).exercise("walking").action == "advance"  # history is kept
    logged = log_session(
        study.store,
        by="physio1",
        participant_id=f2f,
        values=_session(S1 + dt.timedelta(days=8), walking_minutes=5, walking_speed_kmh=3.0),
        today=TODAY,
    )
    assert logged.session_no == 3
    frame = sessions_frame(study.store, by="stats1")
    assert sorted(set(zip(frame["session_no"], frame["prescription_version"], strict=True))) == [
        (1, 1),
        (2, 1),
        (3, 2),
    ]
