"""Progression engine scenario tables: advance / hold / step back per exercise, with the deciding rule.

Baseline plan (face-to-face programme, standard mode): walking 10 min at 4.2 km/h (cap
4.8 km/h, goal 30 min), cycling 5 min at 20 W, strength exercises 2 x 8 x 27 kg (cap
37 kg), biceps curl (endurance) 1 x 15 x 18 kg.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest

from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.outcome import Clearance, ExerciseOutcome, SessionOutcome, Symptoms
from immunorehab.rehab.progression import (
    EngineState,
    Rule,
    SessionDecision,
    decide_session,
    initial_state,
    next_session,
    replay,
)
from unit.rehab.rehab_factories import outcome, plan, programme, symptoms

PLAN = plan()
PROG = programme()
D1 = dt.date(2026, 3, 2)


def _state(**doses: Dose) -> EngineState:
    state = initial_state(PLAN)
    return replace(state, doses={**state.doses, **doses})


def _decide(
    state: EngineState | None = None, number: int = 1, day: dt.date = D1, **kwargs: Any
) -> tuple[SessionDecision, EngineState]:
    state = state or initial_state(PLAN)
    clearances = kwargs.pop("clearances", ())
    session = outcome(state.doses, number, day, **kwargs)
    return decide_session(state, session, plan=PLAN, programme=PROG, clearances=clearances)


def _actions(decision: SessionDecision) -> dict[str, tuple[str, Rule]]:
    return {e.exercise_id: (e.action, e.rule) for e in decision.exercises}


RESISTANCE = ("leg_press", "knee_extension", "chest_press", "biceps_curl")


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # on target (Borg 3.5, RPE 13, all done): every exercise advances one step
        (
            {},
            {
                "walking": ("advance", Rule.ON_TARGET, WalkingDose(12, 4.2, 0)),
                "cycling": ("advance", Rule.ON_TARGET, CyclingDose(7, 20)),
                "leg_press": ("advance", Rule.ON_TARGET, ResistanceDose(27, 3, 8)),
                "biceps_curl": ("advance", Rule.ON_TARGET, ResistanceDose(18, 2, 15)),
            },
        ),
        # below the Borg target: intensity rises with duration
        (
            {"borg": 2},
            {
                "walking": ("advance", Rule.BELOW_TARGET, WalkingDose(12, 4.4, 0)),
                "cycling": ("advance", Rule.BELOW_TARGET, CyclingDose(7, 25)),
            },
        ),
        # above the target but tolerable: hold
        (
            {"borg": 5},
            {
                "walking": ("hold", Rule.ABOVE_TARGET, WalkingDose(10, 4.2, 0)),
                "cycling": ("hold", Rule.ABOVE_TARGET, CyclingDose(5, 20)),
                "leg_press": ("advance", Rule.ON_TARGET, ResistanceDose(27, 3, 8)),
            },
        ),
        # Borg >= 7: intensity one step down
        (
            {"borg": 7},
            {
                "walking": ("step_back", Rule.POOR_TOLERANCE, WalkingDose(10, 4.0, 0)),
                "cycling": ("step_back", Rule.POOR_TOLERANCE, CyclingDose(5, 15)),
            },
        ),
        # less than 75% of the work done: duration (aerobic) / load (resistance) one step down
        (
            {"completion": 0.5},
            {
                "walking": ("step_back", Rule.POOR_TOLERANCE, WalkingDose(8, 4.2, 0)),
                "cycling": ("step_back", Rule.POOR_TOLERANCE, CyclingDose(3, 20)),
                "leg_press": ("step_back", Rule.POOR_TOLERANCE, ResistanceDose(26, 2, 8)),
            },
        ),
        # RPE >= 17 on resistance: load one step (5%, at least 1 kg) down
        (
            {"rpe": 17},
            {
                "leg_press": ("step_back", Rule.POOR_TOLERANCE, ResistanceDose(26, 2, 8)),
                "biceps_curl": ("step_back", Rule.POOR_TOLERANCE, ResistanceDose(17, 1, 15)),
                "walking": ("advance", Rule.ON_TARGET, WalkingDose(12, 4.2, 0)),
            },
        ),
        # RPE 16: above the 13-15 strength target -> hold; the endurance type (11-13) holds too
        ({"rpe": 16}, {"leg_press": ("hold", Rule.ABOVE_TARGET, ResistanceDose(27, 2, 8))}),
        # fatigue rises 3 -> 5 at 24 h (>= 2 points): PESE, every exercise steps back
        (
            {"after": Symptoms(5, 3, 3, 3)},
            {
                "walking": ("step_back", Rule.PESE, WalkingDose(7, 4.0, 0)),
                "cycling": ("step_back", Rule.PESE, CyclingDose(3, 15)),
                "leg_press": ("step_back", Rule.PESE, ResistanceDose(26, 1, 8)),
                "biceps_curl": ("step_back", Rule.PESE, ResistanceDose(17, 1, 14)),
            },
        ),
        # a rise at 48 h counts as well
        (
            {"symptoms_48h": Symptoms(3, 3, 3, 6)},
            {"walking": ("step_back", Rule.PESE, WalkingDose(7, 4.0, 0))},
        ),
        # a reported crash is a PESE even without symptom ratings
        ({"crash_reported": True}, {"leg_press": ("step_back", Rule.PESE, ResistanceDose(26, 1, 8))}),
        # a rise of 1 point is below the threshold
        ({"after": Symptoms(4, 4, 4, 4)}, {"walking": ("advance", Rule.ON_TARGET, WalkingDose(12, 4.2, 0))}),
        # stop criterion during walking: walking steps back, the others hold
        (
            {"spo2_lowest_pct": 86, "stopped_during": "walking"},
            {
                "walking": ("step_back", Rule.STOP_CRITERION, WalkingDose(8, 4.0, 0)),
                "cycling": ("hold", Rule.STOP_CRITERION, CyclingDose(5, 20)),
                "leg_press": ("hold", Rule.STOP_CRITERION, ResistanceDose(27, 2, 8)),
            },
        ),
        # HR above 85% of 220 - 60 (136 bpm), exercise not recorded: everything steps back
        (
            {"hr_peak_bpm": 141},
            {
                "walking": ("step_back", Rule.STOP_CRITERION, WalkingDose(8, 4.0, 0)),
                "leg_press": ("step_back", Rule.STOP_CRITERION, ResistanceDose(26, 1, 8)),
            },
        ),
        # reported red flag
        (
            {"red_flags": ("chest_pain",), "stopped_during": "cycling"},
            {
                "cycling": ("step_back", Rule.STOP_CRITERION, CyclingDose(3, 15)),
                "walking": ("hold", Rule.STOP_CRITERION, WalkingDose(10, 4.2, 0)),
            },
        ),
        # no 24 h follow-up yet: no advance (poor tolerance still steps back)
        ({"after": Symptoms()}, {"walking": ("hold", Rule.AWAITING_FOLLOWUP, WalkingDose(10, 4.2, 0))}),
        (
            {"after": Symptoms(), "borg": 8},
            {"walking": ("step_back", Rule.POOR_TOLERANCE, WalkingDose(10, 4.0, 0))},
        ),
        # follow-up without the pre-session ratings: a PESE cannot be ruled out
        (
            {"pre": Symptoms(), "after": symptoms(3)},
            {"walking": ("hold", Rule.AWAITING_FOLLOWUP, WalkingDose(10, 4.2, 0))},
        ),
        # not attended: everything holds
        ({"attended": False}, dict.fromkeys(("walking", "leg_press"), ("hold", Rule.NOT_ATTENDED, None))),
    ],
)
def test_single_session_scenarios(
    kwargs: dict[str, Any], expected: dict[str, tuple[str, Rule, Dose | None]]
) -> None:
    decision, _ = _decide(**kwargs)
    for eid, (action, rule, after) in expected.items():
        got = decision.exercise(eid)
        assert (got.action, got.rule) == (action, rule), (eid, got.reason)
        if after is not None:
            assert got.after == after, (eid, got.reason)
        assert got.reason


def test_not_done_and_unrated_exercises_hold() -> None:
    state = initial_state(PLAN)
    session = outcome(state.doses, 1, D1)
    walking = replace(session.exercises[0], borg_dyspnoea=None)
    session = replace(session, exercises=(walking,) + session.exercises[2:], borg_dyspnoea=None)
    decision, _ = decide_session(state, session, plan=PLAN, programme=PROG)
    assert decision.exercise("walking").rule == Rule.NO_RATING
    assert decision.exercise("cycling").rule == Rule.NOT_DONE


def test_pese_switches_to_pacing_for_the_programme_s_sessions() -> None:
    decision, state = _decide(after=Symptoms(6, 3, 3, 3))
    assert decision.pese is not None and decision.next_mode == "pacing"
    assert "fatigue 3 -> 6 at 24h (+3 >= 2)" in decision.pese.describe()
    assert state.pacing_left == PROG.pem.pese_pacing_sessions == 4
    # pacing advances only after 2 tolerated sessions in a row and wants >= 3 days of recovery
    second, state = _decide(state, 2, D1 + dt.timedelta(days=3))
    assert second.mode == "pacing" and second.exercise("walking").rule == Rule.BUILDING
    third, state = _decide(state, 3, D1 + dt.timedelta(days=6))
    assert third.exercise("walking").action == "advance"
    assert third.exercise("walking").after == WalkingDose(8, 4.0, 0)  # pacing: +1 min
    for n in (4, 5):
        _, state = _decide(state, n, D1 + dt.timedelta(days=3 * n))
    assert state.pacing_left == 0 and state.mode == "standard"


def test_never_advances_after_a_pese_in_the_same_session_even_if_on_target() -> None:
    decision, _ = _decide(borg=2, rpe=11, crash_reported=True)
    assert {e.action for e in decision.exercises} == {"step_back"}


def test_stop_criterion_blocks_progression_until_a_physio_clears_it() -> None:
    first, state = _decide(spo2_lowest_pct=85, stopped_during="walking")
    assert first.review_pending == (1,) and "lowest SpO2 85% < floor 88%" in first.stops[0].detail
    assert any("clinical review" in n for n in first.notes)
    second, state2 = _decide(state, 2, D1 + dt.timedelta(days=3))
    assert {e.rule for e in second.exercises} == {Rule.REVIEW_PENDING}
    assert {e.action for e in second.exercises} == {"hold"}
    assert state2.pending_reviews == (1,)
    # a clearance dated on or before the next session lifts the block
    cleared = Clearance(1, D1 + dt.timedelta(days=2), "physio1", "reviewed")
    third, state3 = _decide(state, 2, D1 + dt.timedelta(days=3), clearances=(cleared,))
    assert third.exercise("leg_press").action == "advance" and state3.pending_reviews == ()
    # a clearance dated after the session does not count for it
    late = Clearance(1, D1 + dt.timedelta(days=5), "physio1", "reviewed")
    fourth, _ = _decide(state, 2, D1 + dt.timedelta(days=3), clearances=(late,))
    assert fourth.exercise("leg_press").rule == Rule.REVIEW_PENDING


def test_short_recovery_holds() -> None:
    _, state = _decide()
    decision, _ = _decide(state, 2, D1 + dt.timedelta(days=1))
    assert decision.exercise("walking").rule == Rule.SHORT_RECOVERY
    assert "only 1 day(s) after session 1" in decision.exercise("walking").reason


def test_caps_are_never_exceeded() -> None:
    state = _state(
        walking=WalkingDose(30, 4.8, 5),
        cycling=CyclingDose(15, 150),
        leg_press=ResistanceDose(37, 4, 12),
    )
    decision, _ = _decide(state, borg=1)
    assert decision.exercise("walking").rule == Rule.AT_CAP
    assert decision.exercise("walking").after == WalkingDose(30, 4.8, 5)
    assert decision.exercise("cycling").after == CyclingDose(15, 150)
    assert decision.exercise("leg_press").rule == Rule.AT_CAP  # 37 + 1 kg would pass the 80% cap


@pytest.mark.parametrize(
    ("before", "after"),
    [
        (ResistanceDose(27, 3, 8), ResistanceDose(27, 4, 8)),  # sets first
        (ResistanceDose(27, 4, 8), ResistanceDose(27, 4, 10)),  # then repetitions
        (ResistanceDose(27, 4, 12), ResistanceDose(28, 4, 8)),  # then load, repetitions reset
        (ResistanceDose(36.5, 4, 12), ResistanceDose(36.5, 4, 12)),  # 36.5 + 1 > 37 kg cap
    ],
)
def test_resistance_progresses_sets_then_reps_then_load(
    before: ResistanceDose, after: ResistanceDose
) -> None:
    decision, _ = _decide(_state(leg_press=before))
    assert decision.exercise("leg_press").after == after


def test_walking_builds_duration_then_speed_then_incline() -> None:
    assert _decide(_state(walking=WalkingDose(29, 4.2, 0)))[0].exercise("walking").after == WalkingDose(
        30, 4.2, 0
    )
    assert _decide(_state(walking=WalkingDose(30, 4.2, 0)))[0].exercise("walking").after == WalkingDose(
        30, 4.4, 0
    )
    assert _decide(_state(walking=WalkingDose(30, 4.8, 0)))[0].exercise("walking").after == WalkingDose(
        30, 4.8, 1
    )


def test_cycling_is_titrated_to_the_borg_target() -> None:
    at_goal = _state(cycling=CyclingDose(15, 40))
    on_target, _ = _decide(at_goal, borg=3.5)
    assert (
        on_target.exercise("cycling").action == "hold"
        and "workload kept" in on_target.exercise("cycling").reason
    )
    easy, _ = _decide(at_goal, borg=2)
    assert easy.exercise("cycling").after == CyclingDose(15, 45)


def test_a_physio_override_is_the_base_of_the_decision() -> None:
    state = initial_state(PLAN)
    session = outcome(state.doses, 1, D1)
    walking = ExerciseOutcome(
        "walking", WalkingDose(12, 4.0, 0), WalkingDose(12, 4.0, 0), borg_dyspnoea=3.5, override=True
    )
    session = replace(session, exercises=(walking,) + session.exercises[1:])
    decision, _ = decide_session(state, session, plan=PLAN, programme=PROG)
    got = decision.exercise("walking")
    assert got.override and got.before == WalkingDose(12, 4.0, 0) and got.after == WalkingDose(14, 4.0, 0)


def test_baseline_pacing_is_permanent() -> None:
    pacing = plan(pem_positive=True)
    state = initial_state(pacing)
    assert state.mode == "pacing" and state.pacing_permanent
    outcomes = [outcome(state.doses, 1, D1)]
    progress = replay(pacing, PROG, outcomes)
    assert progress.decisions[0].exercise("walking").rule == Rule.BUILDING
    outcomes.append(outcome(progress.state.doses, 2, D1 + dt.timedelta(days=3)))
    progress = replay(pacing, PROG, outcomes)
    assert progress.decisions[1].exercise("walking").after == WalkingDose(6, 3.0, 0)
    assert progress.state.mode == "pacing"
    nxt = next_session(progress, pacing, PROG)
    assert nxt.pacing_sessions_left is None and any("positive DSQ-PEM" in n for n in nxt.notes)


def test_next_session_reports_block_date_and_completion() -> None:
    outcomes: list[SessionOutcome] = []
    state = initial_state(PLAN)
    day = D1
    for number in range(1, 17):
        kwargs: dict[str, Any] = {"spo2_lowest_pct": 86, "stopped_during": "walking"} if number == 16 else {}
        outcomes.append(outcome(state.doses, number, day, **kwargs))
        state = replay(PLAN, PROG, outcomes).state
        day += dt.timedelta(days=3)
    progress = replay(PLAN, PROG, outcomes)
    nxt = next_session(progress, PLAN, PROG)
    assert nxt.session_no is None and nxt.blocked_by == (16,)
    assert nxt.earliest_date == outcomes[-1].date + dt.timedelta(days=2)
    assert any(n.startswith("BLOCKED") for n in nxt.notes)
    assert any("all 16 sessions" in n for n in nxt.notes)
    cleared = next_session(progress, PLAN, PROG, [Clearance(16, day, "physio1", "ok")])
    assert cleared.blocked_by == ()
    # 15 tolerated sessions: 10 build walking from 10 to 30 min (2 min each), 3 raise the speed
    # to the 4.8 km/h cap (0.2 km/h each), 2 add 1% incline each
    walking = [d.exercise("walking").after for d in progress.decisions[:15]]
    assert walking[9] == WalkingDose(30, 4.2, 0) and walking[12] == WalkingDose(30, 4.8, 0)
    assert walking[14] == WalkingDose(30, 4.8, 2)


def test_replay_orders_by_session_number_and_explains_unknown_sessions() -> None:
    state = initial_state(PLAN)
    first = outcome(state.doses, 1, D1)
    second = outcome(replay(PLAN, PROG, [first]).state.doses, 2, D1 + dt.timedelta(days=3))
    progress = replay(PLAN, PROG, [second, first])
    assert [d.session_no for d in progress.decisions] == [1, 2]
    with pytest.raises(Exception, match="session 7 is not logged"):
        progress.decision(7)
