"""The progression engine: after each session, advance / hold / step back per exercise, with reasons.

Pure: a :class:`~immunorehab.rehab.prescribe.Plan`, the programme, the logged
:class:`~immunorehab.rehab.outcome.SessionOutcome` list and the physio clearances in,
decisions and the next session's prescription out. The whole log is replayed from the
prescription, so a corrected session or a late 24 h follow-up changes every later
decision consistently.

Rules, first match wins (domain.md A7, A8; programme file for every threshold):

1. Session not attended: hold everything.
2. PESE (a crash, or a symptom rising >= ``pem.pese_min_rise`` points at 24 or 48 h):
   step back every exercise (duration by ``pem.pese_minutes_fraction``, intensity one
   step, a set less) and use the pacing mode for ``pem.pese_pacing_sessions`` sessions.
3. A stop criterion (SpO2 below the floor, HR above 85% of 220 - age, chest pain,
   dizziness, ...): step back the exercise during which it happened (every exercise when
   not recorded), hold the others, and flag the session for clinical review.
4. Otherwise each exercise's tolerance decides -- poor (work done below
   ``step_back_below_completion`` of the prescription, Borg >= ``step_back_borg_at_or_above``
   or RPE >= ``step_back_rpe_at_or_above``): step back; completed within the Borg/RPE
   target: advance (after ``advance_after_sessions`` tolerated sessions in a row); else hold.
   An advance becomes a hold while a clinical review is pending, without the 24 h
   follow-up, when the session came too soon after the previous one, or at the caps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from immunorehab.errors import RehabError
from immunorehab.rehab.doses import Dose, describe_dose, work
from immunorehab.rehab.outcome import (
    Clearance,
    ExerciseOutcome,
    PeseFinding,
    SessionOutcome,
    StopFinding,
    pese_finding,
    stop_findings,
)
from immunorehab.rehab.prescribe import ExercisePlan, Plan
from immunorehab.rehab.programme import Mode, Programme
from immunorehab.rehab.steps import StepBack, advance, clamp, step_back

__all__ = [
    "Action",
    "EngineState",
    "ExerciseDecision",
    "NextSession",
    "Progress",
    "Rule",
    "SessionDecision",
    "decide_session",
    "initial_state",
    "next_session",
    "replay",
]

Action = Literal["advance", "hold", "step_back"]
ACTION_ORDER: dict[str, int] = {"step_back": 0, "hold": 1, "advance": 2}


class Rule(StrEnum):
    """The rule that decided an exercise's action."""

    NOT_ATTENDED = "not_attended"
    PESE = "pese"
    STOP_CRITERION = "stop_criterion"
    REVIEW_PENDING = "clinical_review_pending"
    AWAITING_FOLLOWUP = "awaiting_followup"
    SHORT_RECOVERY = "short_recovery"
    NOT_DONE = "not_done"
    NO_RATING = "no_rating"
    POOR_TOLERANCE = "poor_tolerance"
    ABOVE_TARGET = "above_target"
    ON_TARGET = "on_target"
    BELOW_TARGET = "below_target"
    BUILDING = "tolerance_streak"
    AT_CAP = "at_cap"


@dataclass(frozen=True, slots=True)
class ExerciseDecision:
    """One exercise's decision after a session: ``before`` (what was prescribed) -> ``after``."""

    exercise_id: str
    action: Action
    rule: Rule
    reason: str
    before: Dose
    after: Dose
    override: bool = False


@dataclass(frozen=True, slots=True)
class SessionDecision:
    """Every decision taken after one session, with the safety findings behind them."""

    session_no: int
    date: dt.date
    attended: bool
    mode: Mode
    next_mode: Mode
    pese: PeseFinding | None
    stops: tuple[StopFinding, ...]
    review_pending: tuple[int, ...]
    exercises: tuple[ExerciseDecision, ...]
    notes: tuple[str, ...] = ()

    def exercise(self, exercise_id: str) -> ExerciseDecision:
        for item in self.exercises:
            if item.exercise_id == exercise_id:
                return item
        raise RehabError(f"session {self.session_no} has no decision for {exercise_id!r}")


@dataclass(frozen=True, slots=True)
class EngineState:
    """Where a participant stands between sessions."""

    doses: dict[str, Dose]
    streaks: dict[str, int]
    pacing_permanent: bool
    pacing_left: int = 0
    pending_reviews: tuple[int, ...] = ()
    last_date: dt.date | None = None
    last_session_no: int = 0

    @property
    def mode(self) -> Mode:
        return "pacing" if self.pacing_permanent or self.pacing_left > 0 else "standard"


def initial_state(plan: Plan) -> EngineState:
    """The state before session 1: the prescription's starting doses."""
    return EngineState(
        doses=plan.start_doses(),
        streaks={e.exercise_id: 0 for e in plan.exercises},
        pacing_permanent=plan.mode == "pacing",
    )


@dataclass(frozen=True, slots=True)
class _Context:
    programme: Programme
    plan: Plan
    outcome: SessionOutcome
    mode: Mode
    pese: PeseFinding | None
    stops: tuple[StopFinding, ...]
    stopped: frozenset[str]
    holds: tuple[tuple[Rule, str], ...]  # reasons turning an advance into a hold


def _rating(
    ex: ExercisePlan, out: ExerciseOutcome, ctx: _Context
) -> tuple[float, str, float, float, float] | None:
    """(effort, text, target low, target high, step-back level) or None when not rated.

    Aerobic effort is the worse of the Borg CR10 dyspnoea and fatigue ratings (the
    exercise's own, else the session's); resistance effort is the RPE (6-20).
    """
    rules = ctx.programme.progression
    if ex.kind == "resistance":
        rpe = out.rpe if out.rpe is not None else ctx.outcome.rpe
        if rpe is None:
            return None
        band = ctx.programme.resistance.training(ctx.programme.exercise(ex.exercise_id).training).rpe_target
        text = f"RPE {rpe:g} (target {band.low:g}-{band.high:g})"
        return float(rpe), text, band.low, band.high, float(rules.step_back_rpe_at_or_above)
    spec = ctx.programme.aerobic.walking if ex.kind == "walking" else ctx.programme.aerobic.cycling
    if spec is None:
        raise RehabError(f"the programme defines no {ex.kind}")
    borg = out.borg_dyspnoea if out.borg_dyspnoea is not None else ctx.outcome.borg_dyspnoea
    fatigue = out.borg_fatigue if out.borg_fatigue is not None else ctx.outcome.borg_fatigue
    if borg is None:
        return None
    band = spec.borg_dyspnoea_target
    text = f"Borg dyspnoea {borg:g}" + (f", fatigue {fatigue:g}" if fatigue is not None else "")
    text += f" (target {band.low:g}-{band.high:g})"
    effort = max(borg, fatigue) if fatigue is not None else borg
    return effort, text, band.low, band.high, rules.step_back_borg_at_or_above


_Verdict = tuple[Action, Rule, str, StepBack, bool]


def _classify(ex: ExercisePlan, out: ExerciseOutcome | None, base: Dose, ctx: _Context) -> _Verdict:
    """Tolerance of one exercise: (action, rule, reason, what to lower, effort below target)."""
    if out is None or out.done is None:
        return "hold", Rule.NOT_DONE, "not done this session", StepBack(), False
    threshold = ctx.programme.progression.step_back_below_completion
    planned = work(base)
    completion = work(out.done) / planned if planned > 0 else 1.0
    did = f"did {describe_dose(out.done)} ({completion:.0%} of the prescribed work)"
    incomplete = completion < threshold
    rated = _rating(ex, out, ctx)
    if rated is None:
        if incomplete:
            return (
                "step_back",
                Rule.POOR_TOLERANCE,
                f"{did}: below {threshold:.0%}",
                StepBack(duration=True),
                False,
            )
        return "hold", Rule.NO_RATING, f"{did}; no effort rating recorded", StepBack(), False
    effort, rating, low, high, limit = rated
    too_hard = effort >= limit
    if too_hard or incomplete:
        why = [f"work below {threshold:.0%} of the prescription"] if incomplete else []
        why += [f"rating at or above the step-back level {limit:g}"] if too_hard else []
        how = StepBack(intensity=too_hard, duration=incomplete)
        return "step_back", Rule.POOR_TOLERANCE, f"{did}, {rating}: {' and '.join(why)}", how, False
    if completion < 1 - 1e-9:
        return "hold", Rule.ABOVE_TARGET, f"{did}, {rating}: prescription not completed", StepBack(), False
    if effort > high:
        return "hold", Rule.ABOVE_TARGET, f"{did}, {rating}: above target", StepBack(), False
    easy = effort < low
    rule = Rule.BELOW_TARGET if easy else Rule.ON_TARGET
    return "advance", rule, f"{did}, {rating}: {'below' if easy else 'within'} target", StepBack(), easy


def _decide(ex: ExercisePlan, state: EngineState, ctx: _Context) -> tuple[ExerciseDecision, Dose, int]:
    eid = ex.exercise_id
    out = ctx.outcome.exercise(eid)
    engine_dose = state.doses[eid]
    base = clamp(out.prescribed, ex.caps) if out is not None and out.prescribed is not None else engine_dose
    override = out is not None and out.override
    streak = state.streaks.get(eid, 0)
    prog = ctx.programme

    def decision(action: Action, rule: Rule, reason: str, after: Dose) -> ExerciseDecision:
        return ExerciseDecision(eid, action, rule, reason, base, after, override)

    def lowered(how: StepBack) -> Dose:
        return clamp(step_back(base, ex.caps, prog, ctx.mode, exercise_id=eid, how=how), ex.caps)

    if not ctx.outcome.attended:
        return decision("hold", Rule.NOT_ATTENDED, "session not attended", base), base, streak
    if ctx.pese is not None:
        how = StepBack(
            intensity=True, duration=True, duration_fraction=prog.pem.pese_minutes_fraction, drop_set=True
        )
        after = lowered(how)
        return decision("step_back", Rule.PESE, ctx.pese.describe(), after), after, 0
    if ctx.stops and (not ctx.stopped or eid in ctx.stopped):
        after = lowered(StepBack(intensity=True, duration=True, drop_set=True))
        text = "; ".join(s.detail for s in ctx.stops)
        return decision("step_back", Rule.STOP_CRITERION, f"session ended: {text}", after), after, 0
    action, rule, reason, how, easy = _classify(ex, out, base, ctx)
    if action == "step_back":
        after = lowered(how)
        return decision(action, rule, reason, after), after, 0
    if action == "hold":
        return decision(action, rule, reason, base), base, 0
    if ctx.holds:
        hold_rule, why = ctx.holds[0]
        return decision("hold", hold_rule, f"{reason}; held: {why}", base), base, streak
    needed = prog.progression.mode(ctx.mode).advance_after_sessions
    if streak + 1 < needed:
        why = f"{reason}; tolerated {streak + 1} of {needed} sessions needed to advance in {ctx.mode} mode"
        return decision("hold", Rule.BUILDING, why, base), base, streak + 1
    after, changed = advance(base, ex.caps, prog, ctx.mode, exercise_id=eid, easy=easy)
    after = clamp(after, ex.caps)
    if not changed or after == base:
        cap_text = "on the Borg target; workload kept" if ex.kind == "cycling" else "at the programme's caps"
        return (
            decision("hold", Rule.AT_CAP if ex.kind != "cycling" else rule, f"{reason}; {cap_text}", base),
            base,
            0,
        )
    return decision("advance", rule, f"{reason}; {changed} up", after), after, 0


def _holds(
    state: EngineState, outcome: SessionOutcome, programme: Programme, blocked: tuple[int, ...]
) -> list[tuple[Rule, str]]:
    holds: list[tuple[Rule, str]] = []
    if blocked:
        sessions = ", ".join(str(n) for n in blocked)
        holds.append(
            (Rule.REVIEW_PENDING, f"clinical review of session {sessions} pending (a physio must clear it)")
        )
    if (
        programme.progression.require_24h_followup
        and not outcome.has_followup()
        and not outcome.crash_reported
    ):
        holds.append((Rule.AWAITING_FOLLOWUP, "24/48 h symptom follow-up not recorded yet"))
    elif outcome.has_followup() and (outcome.symptoms_pre is None or outcome.symptoms_pre.is_empty()):
        holds.append(
            (Rule.AWAITING_FOLLOWUP, "pre-session symptoms not recorded, so a PESE cannot be ruled out")
        )
    gap = programme.progression.mode(state.mode).min_days_between_sessions
    if state.last_date is not None and (outcome.date - state.last_date).days < gap:
        days = (outcome.date - state.last_date).days
        holds.append(
            (
                Rule.SHORT_RECOVERY,
                f"only {days} day(s) after session {state.last_session_no}; {state.mode} mode asks for >= "
                f"{gap}",
            )
        )
    return holds


def decide_session(
    state: EngineState,
    outcome: SessionOutcome,
    *,
    plan: Plan,
    programme: Programme,
    clearances: Sequence[Clearance] = (),
) -> tuple[SessionDecision, EngineState]:
    """Decide every exercise after one session; return the decision and the new state."""
    cleared = {c.session_no for c in clearances if c.cleared_on <= outcome.date}
    blocked = tuple(n for n in state.pending_reviews if n not in cleared)
    stops: tuple[StopFinding, ...] = ()
    pese = None
    if outcome.attended:
        stops = stop_findings(
            outcome,
            spo2_floor_pct=plan.spo2_floor_pct,
            hr_stop_bpm=plan.hr_stop_bpm,
            stop_on=tuple(programme.safety.stop_on),
        )
        pese = pese_finding(outcome, min_rise=programme.pem.pese_min_rise)
    holds = tuple(_holds(state, outcome, programme, blocked)) if outcome.attended else ()
    if stops:
        holds = (
            (
                Rule.STOP_CRITERION,
                "session ended by a stop criterion: progression blocked until clinical review",
            ),
        ) + holds
    stopped = frozenset({outcome.stopped_during} if outcome.stopped_during else set())
    ctx = _Context(programme, plan, outcome, state.mode, pese, stops, stopped, holds)
    decisions, doses, streaks = [], dict(state.doses), dict(state.streaks)
    for ex in plan.exercises:
        decision, doses[ex.exercise_id], streaks[ex.exercise_id] = _decide(ex, state, ctx)
        decisions.append(decision)
    pending = blocked + ((outcome.session_no,) if stops else ())
    pacing_left = state.pacing_left
    notes: list[str] = []
    if pese is not None:
        pacing_left = programme.pem.pese_pacing_sessions
        notes.append(f"pacing mode for the next {pacing_left} sessions after a PESE")
    elif outcome.attended and pacing_left > 0:
        pacing_left -= 1
    if stops:
        notes.append(
            f"session {outcome.session_no} flagged for clinical review: progression blocked until a physio "
            "clears it"
        )
    new = EngineState(
        doses=doses,
        streaks=streaks,
        pacing_permanent=state.pacing_permanent,
        pacing_left=pacing_left,
        pending_reviews=pending,
        last_date=outcome.date if outcome.attended else state.last_date,
        last_session_no=outcome.session_no if outcome.attended else state.last_session_no,
    )
    result = SessionDecision(
        outcome.session_no,
        outcome.date,
        outcome.attended,
        state.mode,
        new.mode,
        pese,
        stops,
        pending,
        tuple(decisions),
        tuple(notes),
    )
    return result, new


@dataclass(frozen=True, slots=True)
class Progress:
    """Every session's decision in order, and the state after the last one."""

    decisions: tuple[SessionDecision, ...]
    state: EngineState
    outcomes: tuple[SessionOutcome, ...] = field(default=())

    def decision(self, session_no: int) -> SessionDecision:
        for item in self.decisions:
            if item.session_no == session_no:
                return item
        logged = ", ".join(str(d.session_no) for d in self.decisions) or "none"
        raise RehabError(f"session {session_no} is not logged (logged sessions: {logged})")


def replay(
    plan: Plan, programme: Programme, outcomes: Sequence[SessionOutcome], clearances: Sequence[Clearance] = ()
) -> Progress:
    """Run the engine over the whole log (sorted by session number)."""
    ordered = sorted(outcomes, key=lambda o: o.session_no)
    state = initial_state(plan)
    decisions = []
    for outcome in ordered:
        decision, state = decide_session(
            state, outcome, plan=plan, programme=programme, clearances=clearances
        )
        decisions.append(decision)
    return Progress(tuple(decisions), state, tuple(ordered))


@dataclass(frozen=True, slots=True)
class NextSession:
    """The prescription for the next session."""

    session_no: int | None
    mode: Mode
    doses: dict[str, Dose]
    earliest_date: dt.date | None
    blocked_by: tuple[int, ...]
    pacing_sessions_left: int | None
    notes: tuple[str, ...]


def next_session(
    progress: Progress,
    plan: Plan,
    programme: Programme,
    clearances: Sequence[Clearance] = (),
    *,
    last_logged: int | None = None,
) -> NextSession:
    """What to prescribe next: doses, mode, the earliest date and any clinical-review block.

    ``last_logged`` is the participant's highest session number when sessions of an earlier
    prescription are not in ``progress`` (session numbers continue across prescriptions).
    """
    state = progress.state
    cleared = {c.session_no for c in clearances}
    blocked = tuple(n for n in state.pending_reviews if n not in cleared)
    logged = max((d.session_no for d in progress.decisions), default=0)
    logged = max(logged, last_logged or 0)
    number = logged + 1 if logged < programme.sessions_total else None
    gap = programme.progression.mode(state.mode).min_days_between_sessions
    earliest = state.last_date + dt.timedelta(days=gap) if state.last_date is not None else None
    notes: list[str] = []
    if blocked:
        notes.append(
            "BLOCKED: clinical review pending for session "
            + ", ".join(map(str, blocked))
            + " -- no progression until a physio clears it (`immunorehab rehab clear`)"
        )
    if number is None:
        notes.append(f"all {programme.sessions_total} sessions of the programme are logged")
    left = None if state.pacing_permanent else state.pacing_left
    if state.mode == "pacing":
        notes.append(
            "pacing mode (positive DSQ-PEM screen)"
            if state.pacing_permanent
            else f"pacing mode for {left} more session(s) after a PESE"
        )
    return NextSession(number, state.mode, dict(state.doses), earliest, blocked, left, tuple(notes))
