"""Week-8 change vs MCID (direction-aware, domain.md B) and adherence/dose/completer status."""

from __future__ import annotations

import datetime as dt

import pytest

from immunorehab.rehab.adherence import arm_adherence, participant_adherence
from immunorehab.rehab.outcome import SessionOutcome, Symptoms
from immunorehab.rehab.outcomes import MCIDS, outcome_changes
from immunorehab.rehab.progression import replay
from unit.rehab.rehab_factories import exercise_outcomes, outcome, plan, programme


def _change(measure: str, before: float, after: float):
    (change,) = outcome_changes({measure: before}, {measure: after})
    return change


@pytest.mark.parametrize(
    ("measure", "before", "after", "reached"),
    [
        ("iswt_distance_m", 300, 350, True),  # +50 m >= 47.5 m (Singh 2008)
        ("iswt_distance_m", 300, 347, False),  # +47 m
        ("iswt_distance_m", 350, 300, False),  # worse
        ("c19yrsm_symptom_severity", 14, 10, True),  # -4: higher is worse, MCID 4 (Smith 2024)
        ("c19yrsm_symptom_severity", 10, 14, False),  # +4 is a deterioration
        ("c19yrsm_functional_disability", 9, 6, False),  # -3 < 4
        ("facit_fatigue", 20, 23, True),  # higher = less fatigue, MCID 3 (Cella 2002)
        ("facit_fatigue", 23, 20, False),
        ("sts_1min_reps", 18, 21, True),  # 3 reps (Vaidya 2016)
        ("sts_5rep_time_s", 14.0, 12.0, True),  # faster is better, 1.7 s
        ("eswt_time_s", 300, 450, False),  # 150 s < 159 s
        ("mwt6_distance_m", 380, 405, True),  # 25 m
    ],
)
def test_mcid_is_direction_aware(measure: str, before: float, after: float, reached: bool) -> None:
    change = _change(measure, before, after)
    assert change.change == pytest.approx(after - before)
    assert change.reached_mcid is reached
    assert (change.improvement > 0) == (
        (after > before) if MCIDS[measure].direction == "higher_better" else (after < before)
    )


def test_measures_without_mcid_and_missing_follow_up() -> None:
    changes = outcome_changes(
        {"eq_vas": 50, "facit_fatigue": 20, "iswt_distance_m": 300}, {"eq_vas": 70, "facit_fatigue": 30}
    )
    assert [c.measure_id for c in changes] == ["eq_vas", "facit_fatigue"]
    assert changes[0].reached_mcid is None and changes[0].mcid is None
    assert MCIDS["c19yrsm_symptom_severity"].direction == "lower_better"
    assert MCIDS["facit_fatigue"].direction == "higher_better"


# -- adherence ----------------------------------------------------------------------------

PLAN = plan()
PROG = programme()
R = dt.date(2026, 3, 1)


def _log(attended: list[bool], *, completion: float = 1.0) -> tuple[list[SessionOutcome], object]:
    outcomes: list[SessionOutcome] = []
    day = R + dt.timedelta(days=1)
    for number, came in enumerate(attended, start=1):
        state = replay(PLAN, PROG, outcomes).state
        if came:
            outcomes.append(outcome(state.doses, number, day, completion=completion))
        else:
            outcomes.append(SessionOutcome(number, day, attended=False))
        day += dt.timedelta(days=3)
    return outcomes, replay(PLAN, PROG, outcomes)


def test_completer_needs_75_percent_of_16_sessions() -> None:
    outcomes, progress = _log([True] * 12 + [False] * 4)
    row = participant_adherence(
        participant_id="LEI-0001",
        arm="face_to_face",
        programme=PROG,
        progress=progress,
        outcomes=outcomes,
        randomised_on=R,
        today=R + dt.timedelta(days=120),
    )
    assert (row.attended, row.sessions_offered, row.completer_threshold) == (12, 16, 12)
    assert row.status == "completer" and row.attendance_pct == pytest.approx(75.0)
    assert row.attended_supervised == 12 and row.attended_remote == 0
    assert row.aerobic_pct == pytest.approx(100.0) and row.resistance_pct == pytest.approx(100.0)
    # training load: walking 10, 12, ..., 32 -> capped at 30 min; cycling 5, 7, ... -> capped at 15
    walking = sum(min(10 + 2 * k, 30) for k in range(12))
    cycling = sum(min(5 + 2 * k, 15) for k in range(12))
    assert row.aerobic_minutes_done == pytest.approx(walking + cycling)

    outcomes, progress = _log([True] * 11 + [False] * 5)
    row = participant_adherence(
        participant_id="LEI-0001",
        arm="face_to_face",
        programme=PROG,
        progress=progress,
        outcomes=outcomes,
        randomised_on=R,
        today=R + dt.timedelta(days=120),
    )
    assert row.status == "non_completer"


def test_in_progress_until_the_threshold_is_out_of_reach() -> None:
    outcomes, progress = _log([True, False, True])
    kwargs = {
        "participant_id": "P",
        "arm": "face_to_face",
        "programme": PROG,
        "progress": progress,
        "outcomes": outcomes,
        "randomised_on": R,
    }
    row = participant_adherence(**kwargs, today=R + dt.timedelta(days=10))
    assert row.status == "in_progress" and row.sessions_due == 2
    outcomes, progress = _log([False] * 5)
    row = participant_adherence(
        **{**kwargs, "progress": progress, "outcomes": outcomes}, today=R + dt.timedelta(days=20)
    )
    assert row.status == "non_completer"  # 11 sessions left cannot reach 12


def test_dose_achieved_is_capped_per_session() -> None:
    outcomes, progress = _log([True, True], completion=0.8)
    row = participant_adherence(
        participant_id="P",
        arm="face_to_face",
        programme=PROG,
        progress=progress,
        outcomes=outcomes,
        randomised_on=R,
        today=R + dt.timedelta(days=10),
    )
    assert row.aerobic_pct == pytest.approx(80.0)
    assert row.resistance_pct == pytest.approx(100 * (6 / 8), abs=1.0)  # int(8 x 0.8) = 6 reps of 8
    extra = [
        SessionOutcome(
            1,
            R + dt.timedelta(days=1),
            exercises=exercise_outcomes(PLAN.start_doses(), completion=1.5),
            borg_dyspnoea=3.5,
            rpe=13,
            symptoms_pre=Symptoms(3, 3, 3, 3),
            symptoms_24h=Symptoms(3, 3, 3, 3),
        )
    ]
    row = participant_adherence(
        participant_id="P",
        arm="face_to_face",
        programme=PROG,
        progress=replay(PLAN, PROG, extra),
        outcomes=extra,
        randomised_on=R,
        today=R + dt.timedelta(days=10),
    )
    assert row.aerobic_pct == pytest.approx(100.0)


def test_pese_and_stop_events_are_counted_and_summarised_per_arm() -> None:
    state = replay(PLAN, PROG, []).state
    outcomes = [
        outcome(state.doses, 1, R + dt.timedelta(days=1), after=Symptoms(6, 3, 3, 3)),
        outcome(state.doses, 2, R + dt.timedelta(days=5), spo2_lowest_pct=85),
    ]
    progress = replay(PLAN, PROG, outcomes)
    row = participant_adherence(
        participant_id="P",
        arm="face_to_face",
        programme=PROG,
        progress=progress,
        outcomes=outcomes,
        randomised_on=R,
        today=R + dt.timedelta(days=10),
        adverse_events=2,
        serious_adverse_events=1,
    )
    assert (row.pese_events, row.stop_events) == (1, 1)
    other = participant_adherence(
        participant_id="Q",
        arm="remote",
        programme=PROG,
        progress=replay(PLAN, PROG, []),
        outcomes=[],
        randomised_on=R,
        today=R + dt.timedelta(days=10),
    )
    arms = {a.arm: a for a in arm_adherence([row, other, row])}
    assert arms["face_to_face"].participants == 2 and arms["face_to_face"].pese_events == 2
    assert arms["face_to_face"].serious_adverse_events == 2
    assert arms["remote"].mean_aerobic_pct is None and arms["remote"].median_attendance_pct == 0
