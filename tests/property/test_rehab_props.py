"""Invariants of the rehabilitation rules and the progression engine (hypothesis).

* never advances after a PEM flag (PESE) or a stop criterion, nor while a review is pending;
* never prescribes outside the caps, whatever the sequence of sessions;
* monotone in tolerance: from the same state, a better-tolerated session never yields a
  lower action or a lower dose than a worse-tolerated one;
* ISWT and 1RM identities.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from functools import cache

from hypothesis import given, settings
from hypothesis import strategies as st

from immunorehab.rehab import (
    estimate_1rm,
    iswt_completed_level,
    iswt_cumulative_distance,
    iswt_level_at_distance,
    iswt_level_speed,
    predicted_vo2peak,
)
from immunorehab.rehab.doses import (
    CyclingCaps,
    CyclingDose,
    Dose,
    ResistanceCaps,
    ResistanceDose,
    WalkingCaps,
    WalkingDose,
    dose_at_least,
    dose_within_caps,
)
from immunorehab.rehab.outcome import ExerciseOutcome, SessionOutcome, Symptoms
from immunorehab.rehab.prescribe import Plan, build_plan, plan_from_json
from immunorehab.rehab.programme import Programme
from immunorehab.rehab.progression import ACTION_ORDER, EngineState, decide_session, initial_state, replay
from unit.rehab.rehab_factories import F2F, REMOTE, assessment, programme

D0 = dt.date(2026, 3, 2)
FLAGS = ("chest_pain", "dizziness", "palpitations")


@cache
def _programme(remote: bool) -> Programme:
    return programme(REMOTE if remote else F2F)


@st.composite
def plans(draw: st.DrawFn) -> tuple[Plan, Programme]:
    prog = _programme(draw(st.booleans()))
    distance = draw(st.integers(0, 150)) * 10
    overrides = {
        "iswt_distance_m": distance,
        "iswt_last_level": iswt_completed_level(distance, levels=15),
        "hr_rest_bpm": draw(st.integers(50, 100)),
        "pem_positive": draw(st.booleans()),
    }
    for ex in ("leg_press", "knee_extension", "chest_press", "biceps_curl"):
        method = draw(st.sampled_from(["measured", "brzycki", "epley"]))
        overrides |= {
            f"rm_{ex}_load_kg": draw(st.integers(10, 150)),
            f"rm_{ex}_reps": 1 if method == "measured" else draw(st.integers(2, 10)),
            f"rm_{ex}_method": method,
        }
    age = draw(st.integers(25, 85))
    return build_plan(assessment(prog=prog, age=age, **overrides), prog), prog


def _grid(draw: st.DrawFn, low: float, high: float, step: float) -> float:
    n = int(round((high - low) / step))
    return round(low + step * draw(st.integers(0, max(n, 0))), 6)


def _dose_within(draw: st.DrawFn, caps: object) -> Dose:
    if isinstance(caps, WalkingCaps):
        return WalkingDose(
            _grid(draw, caps.min_minutes, caps.max_minutes, 1),
            _grid(draw, caps.min_speed_kmh, caps.max_speed_kmh, 0.1),
            _grid(draw, 0, caps.max_incline_pct, 1),
        )
    if isinstance(caps, CyclingCaps):
        return CyclingDose(
            _grid(draw, caps.min_minutes, caps.max_minutes, 1), _grid(draw, caps.min_watts, caps.max_watts, 5)
        )
    assert isinstance(caps, ResistanceCaps)
    return ResistanceDose(
        _grid(draw, caps.min_load_kg, caps.max_load_kg, caps.increment_kg),
        draw(st.integers(caps.min_sets, caps.max_sets)),
        draw(st.integers(caps.min_reps, caps.max_reps)),
    )


@st.composite
def states(draw: st.DrawFn, plan: Plan) -> EngineState:
    state = initial_state(plan)
    doses = {e.exercise_id: _dose_within(draw, e.caps) for e in plan.exercises}
    streaks = {e.exercise_id: draw(st.integers(0, 2)) for e in plan.exercises}
    return replace(state, doses=doses, streaks=streaks, pacing_left=draw(st.integers(0, 3)))


@dataclass(frozen=True)
class Tolerance:
    """How a session went; each field is 'better' when smaller, except completion and SpO2."""

    borg: float
    fatigue: float
    rpe: int
    completion: tuple[float, ...]
    after: tuple[int, int, int, int]
    crash: bool
    spo2: int
    hr: int
    flags: tuple[str, ...]
    stopped_during: str | None


RATINGS = st.one_of(
    st.sampled_from([1.5, 2.5, 3.0, 3.5, 4.0, 5.0, 6.0, 7.0, 8.0]), st.integers(0, 20).map(lambda x: x / 2)
)
COMPLETION = st.one_of(st.sampled_from([1.0, 1.0, 1.0, 0.8, 0.5]), st.integers(0, 12).map(lambda x: x / 10))


@st.composite
def tolerances(draw: st.DrawFn, n_exercises: int) -> Tolerance:
    """Half the sessions free of safety events (so the tolerance rules are reached), half with any."""
    calm = draw(st.booleans())
    completion = tuple(draw(COMPLETION) for _ in range(n_exercises))
    borg, fatigue, rpe = draw(RATINGS), draw(RATINGS), draw(st.integers(6, 20))
    if calm:
        return Tolerance(borg, fatigue, rpe, completion, (3, 3, 3, 3), False, 95, 100, (), None)
    return Tolerance(
        borg=borg,
        fatigue=fatigue,
        rpe=rpe,
        completion=completion,
        after=tuple(3 + draw(st.integers(-3, 3)) for _ in range(4)),  # type: ignore[arg-type]
        crash=draw(st.sampled_from([False, False, False, True])),
        spo2=draw(st.one_of(st.integers(90, 99), st.integers(80, 100))),
        hr=draw(st.one_of(st.integers(60, 130), st.integers(60, 200))),
        flags=draw(st.sampled_from([(), (), (), ("chest_pain",), ("dizziness", "palpitations")])),
        stopped_during=draw(st.sampled_from([None, "walking", "leg_press", "knee_extension"])),
    )


@st.composite
def better(draw: st.DrawFn, worse: Tolerance) -> Tolerance:
    """A tolerance at least as good as ``worse`` in every respect."""
    return Tolerance(
        borg=max(0.0, worse.borg - draw(st.sampled_from([0, 0, 1, 2, 3, 6])) / 2),
        fatigue=max(0.0, worse.fatigue - draw(st.sampled_from([0, 0, 1, 2, 3, 6])) / 2),
        rpe=max(6, worse.rpe - draw(st.integers(0, 6))),
        completion=tuple(c + draw(st.integers(0, 5)) / 10 for c in worse.completion),
        after=tuple(max(0, a - draw(st.integers(0, 4))) for a in worse.after),  # type: ignore[arg-type]
        crash=worse.crash and draw(st.booleans()),
        spo2=min(100, worse.spo2 + draw(st.integers(0, 8))),
        hr=max(60, worse.hr - draw(st.integers(0, 40))),
        flags=tuple(f for f in worse.flags if draw(st.booleans())),
        stopped_during=worse.stopped_during,
    )


def _done(dose: Dose, completion: float) -> Dose:
    if isinstance(dose, WalkingDose):
        return WalkingDose(dose.minutes * completion, dose.speed_kmh, dose.incline_pct)
    if isinstance(dose, CyclingDose):
        return CyclingDose(dose.minutes * completion, dose.watts)
    assert isinstance(dose, ResistanceDose)
    return ResistanceDose(dose.load_kg, dose.sets, int(dose.reps * completion))


def _session(plan: Plan, state: EngineState, t: Tolerance, number: int, day: dt.date) -> SessionOutcome:
    exercises = tuple(
        ExerciseOutcome(
            e.exercise_id,
            _done(state.doses[e.exercise_id], c),
            borg_dyspnoea=t.borg if e.kind != "resistance" else None,
            borg_fatigue=t.fatigue if e.kind != "resistance" else None,
            rpe=t.rpe if e.kind == "resistance" else None,
        )
        for e, c in zip(plan.exercises, t.completion, strict=False)
    )
    ids = {e.exercise_id for e in plan.exercises}
    return SessionOutcome(
        number,
        day,
        exercises=exercises,
        hr_peak_bpm=t.hr,
        spo2_lowest_pct=t.spo2,
        borg_dyspnoea=t.borg,
        rpe=t.rpe,
        symptoms_pre=Symptoms(3, 3, 3, 3),
        symptoms_24h=Symptoms(*t.after),
        crash_reported=t.crash,
        red_flags=t.flags,
        stopped_during=t.stopped_during if t.stopped_during in ids else None,
    )


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Plan, Programme, EngineState, Tolerance, Tolerance]:
    plan, prog = draw(plans())
    state = draw(states(plan))
    worse = draw(tolerances(len(plan.exercises)))
    return plan, prog, state, worse, draw(better(worse))


@settings(max_examples=500, deadline=None)
@given(scenario())
def test_monotone_in_tolerance(case: tuple[Plan, Programme, EngineState, Tolerance, Tolerance]) -> None:
    plan, prog, state, worse, good = case
    bad_decision, _ = decide_session(state, _session(plan, state, worse, 1, D0), plan=plan, programme=prog)
    good_decision, _ = decide_session(state, _session(plan, state, good, 1, D0), plan=plan, programme=prog)
    for b, g in zip(bad_decision.exercises, good_decision.exercises, strict=True):
        assert ACTION_ORDER[g.action] >= ACTION_ORDER[b.action], (g.exercise_id, b.reason, g.reason)
        assert dose_at_least(g.after, b.after), (g.exercise_id, b.after, g.after, b.reason, g.reason)


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_never_advances_after_a_pem_flag_or_a_stop_criterion(
    case: tuple[Plan, Programme, EngineState, Tolerance, Tolerance],
) -> None:
    plan, prog, state, worse, _ = case
    session = _session(plan, state, worse, 1, D0)
    decision, new = decide_session(state, session, plan=plan, programme=prog)
    if decision.pese is not None:
        assert {e.action for e in decision.exercises} == {"step_back"}
        assert new.mode == "pacing"
    if decision.stops:
        assert "advance" not in {e.action for e in decision.exercises}
        assert session.session_no in new.pending_reviews
        # and the block holds at the next session, however well it goes
        follow = _session(
            plan,
            new,
            Tolerance(3, 3, 13, (1.0,) * 9, (3, 3, 3, 3), False, 97, 90, (), None),
            2,
            D0 + dt.timedelta(days=4),
        )
        nxt, _ = decide_session(new, follow, plan=plan, programme=prog)
        assert "advance" not in {e.action for e in nxt.exercises}


@settings(max_examples=60, deadline=None)
@given(
    plans(),
    st.lists(tolerances(6), min_size=1, max_size=10),
    st.lists(st.integers(1, 5), min_size=10, max_size=10),
)
def test_never_outside_the_caps(
    case: tuple[Plan, Programme], sessions: list[Tolerance], gaps: list[int]
) -> None:
    plan, prog = case
    for ex in plan.exercises:
        assert dose_within_caps(ex.start, ex.caps) == []
    outcomes, state, day = [], initial_state(plan), D0
    for number, (t, gap) in enumerate(zip(sessions, gaps, strict=False), start=1):
        outcomes.append(_session(plan, state, t, number, day))
        state = replay(plan, prog, outcomes).state
        day += dt.timedelta(days=gap)
    for decision in replay(plan, prog, outcomes).decisions:
        for e in decision.exercises:
            caps = plan.exercise(e.exercise_id).caps
            assert dose_within_caps(e.after, caps) == [], (e.exercise_id, e.after)
            if isinstance(e.after, WalkingDose) and isinstance(caps, WalkingCaps):
                assert e.after.minutes >= caps.min_minutes and e.after.speed_kmh >= caps.min_speed_kmh
            if isinstance(e.after, ResistanceDose) and isinstance(caps, ResistanceCaps):
                assert e.after.load_kg >= caps.min_load_kg and e.after.sets >= 1 and e.after.reps >= 1


@settings(max_examples=100, deadline=None)
@given(plans())
def test_plan_round_trips_through_json(case: tuple[Plan, Programme]) -> None:
    plan, _ = case
    assert plan_from_json(plan.to_json()) == plan


@given(st.integers(1, 15))
def test_iswt_level_identities(level: int) -> None:
    end = iswt_cumulative_distance(level, levels=15)
    assert iswt_level_at_distance(end, levels=15) == level
    assert iswt_completed_level(end, levels=15) == level
    assert iswt_level_at_distance(end - 1, levels=15) == level if level > 1 else True
    if level > 1:
        gained = iswt_cumulative_distance(level, levels=15) - iswt_cumulative_distance(level - 1, levels=15)
        assert gained == 10 * (level + 2)
        speed_step = iswt_level_speed(level, levels=15) - iswt_level_speed(level - 1, levels=15)
        assert abs(speed_step - 0.17) < 1e-9


@given(st.floats(0, 1500))
def test_singh_is_linear_with_slope_0_025(distance: float) -> None:
    assert abs(predicted_vo2peak(distance + 40) - predicted_vo2peak(distance) - 1.0) < 1e-9


@given(st.floats(1, 300), st.integers(2, 10))
def test_1rm_estimates_grow_with_reps_and_coincide_at_ten(load: float, reps: int) -> None:
    for method in ("brzycki", "epley"):
        assert estimate_1rm(load, reps, method=method) > estimate_1rm(load, reps - 1, method=method)  # type: ignore[arg-type]
        assert estimate_1rm(load, reps, method=method) > load  # type: ignore[arg-type]
    ten = (estimate_1rm(load, 10, method="brzycki"), estimate_1rm(load, 10, method="epley"))
    assert abs(ten[0] - ten[1]) < 1e-9 * load
