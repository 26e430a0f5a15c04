"""``rehab``: programme files, prescription, session log, progression, clearance, adherence, outcomes, cards.

Rehabilitation data reveal a participant's arm: the blinded roles (lab, assessor) are
refused for every command except ``rehab programme`` and ``rehab fields`` (public design).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from immunorehab.cli.common import (
    DbOpt,
    ReasonOpt,
    TodayOpt,
    UserOpt,
    console,
    open_store,
    parse_assignments,
    parse_date,
    require_user,
)
from immunorehab.errors import ConfigError

if TYPE_CHECKING:
    from immunorehab.rehab.programme import Programme
    from immunorehab.rehab.service import ParticipantProgress, PrescriptionView

__all__ = ["register", "rehab_app"]

rehab_app = typer.Typer(
    name="rehab",
    help="Rehabilitation: prescription, session log, PEM-safe progression, adherence, outcomes.",
    no_args_is_help=True,
)
Pid = Annotated[str, typer.Argument(help="Participant ID, e.g. LEI-0007.")]
SessionArg = Annotated[int, typer.Argument(help="Session number (1 = first session).")]
ValueOpt = Annotated[
    list[str] | None, typer.Option("--value", help="FIELD=VALUE, repeatable (see `rehab fields`).")
]


def _day(value: str | None, option: str) -> dt.date:
    return parse_date(value, option=option) or dt.date.today()


# -- programme -------------------------------------------------------------------------------


def _programme_table(p: Programme) -> Table:
    table = Table(
        "section",
        "setting",
        title=f"{p.programme.title} ({p.id} v{p.programme.version}, {p.programme.delivery})",
    )
    w, s = p.aerobic.walking, p.schedule
    table.add_row(
        "schedule",
        f"{s.weeks} weeks x {s.sessions_per_week} sessions; completer >= {s.completer_min_fraction:.0%}",
    )
    table.add_row("session", " -> ".join(b.block for b in p.session))
    table.add_row(
        "walking",
        f"{w.method}: {w.standard.start_fraction:.0%} (pacing {w.pacing.start_fraction:.0%}) of VO2peak = "
        f"{w.vo2peak_equation.intercept:g} + {w.vo2peak_equation.slope:g} x ISWT m; "
        f"{w.standard.start_minutes:g} -> {w.target_minutes:g} min; Borg "
        f"{w.borg_dyspnoea_target.low:g}-{w.borg_dyspnoea_target.high:g}",
    )
    if p.aerobic.cycling:
        c = p.aerobic.cycling
        table.add_row(
            "cycling",
            f"start {c.standard.start_watts:g} W, +{c.standard.watts_step:g} W to Borg "
            f"{c.borg_dyspnoea_target.low:g}-{c.borg_dyspnoea_target.high:g}; <= {c.max_watts:g} W",
        )
    for ex in p.resistance.exercises:
        t = p.resistance.training(ex.training)
        table.add_row(
            ex.id,
            f"{ex.training}: {t.start_fraction_1rm:.0%} 1RM, {t.sets.low:g}-{t.sets.high:g} x "
            f"{t.reps.low:g}-{t.reps.high:g}, RPE {t.rpe_target.low:g}-{t.rpe_target.high:g}",
        )
    table.add_row(
        "safety",
        f"SpO2 < {p.safety.spo2_floor_pct:g}%, HR > {p.safety.hr_limit_fraction_of_max:.0%} of 220-age, "
        + ", ".join(c for c in p.safety.stop_on if c not in ("spo2_below_floor", "hr_above_limit")),
    )
    table.add_row(
        "PEM",
        f"DSQ-PEM freq >= {p.pem.dsq_min_frequency} and severity >= {p.pem.dsq_min_severity}; PESE = rise "
        f">= {p.pem.pese_min_rise} at 24/48 h -> step back, pacing {p.pem.pese_pacing_sessions} sessions",
    )
    for topic in p.education:
        table.add_row(f"education wk {topic.week}", topic.topic)
    return table


@rehab_app.command("programme")
def programme_command(
    file: Annotated[
        Path | None, typer.Argument(help="Programme YAML (default: the shipped programmes).")
    ] = None,
) -> None:
    """Validate a programme file and show its settings (every problem is listed at once)."""
    from immunorehab.rehab.programme import default_programme_paths, load_programme

    for path in [file] if file else default_programme_paths():
        console.print(_programme_table(load_programme(path)))
        console.print(f"{path}: valid")


@rehab_app.command("fields")
def fields_command(
    programme: Annotated[
        Path | None, typer.Option("--programme", help="Programme YAML (default: face-to-face).")
    ] = None,
) -> None:
    """List the session-log fields (CLI --value names and CSV columns) with their allowed ranges."""
    from immunorehab.rehab.programme import default_programme_paths, load_programme
    from immunorehab.rehab.sessionlog import all_fields

    prog = load_programme(programme or default_programme_paths()[0])
    table = Table("field", "type", "allowed", "meaning", title=f"Session-log fields of {prog.id}")
    for f in all_fields(prog).values():
        allowed = (
            f"{f.minimum:g}-{f.maximum:g}{f.unit}"
            if f.minimum is not None and f.maximum is not None
            else ", ".join(f.choices)
        )
        table.add_row(f.name, f.type, allowed, f.label)
    console.print(table)


# -- prescription ----------------------------------------------------------------------------


def _print_prescription(view: PrescriptionView) -> None:
    from immunorehab.rehab.doses import describe_dose

    plan, prog = view.plan, view.programme
    console.print(
        f"Prescription of {view.participant_id} (version {view.version}, {view.prescribed_on}, by "
        f"{view.prescribed_by}): "
        f"programme {prog.id} v{prog.programme.version} ({prog.programme.delivery}), {prog.sessions_total} "
        "sessions",
        soft_wrap=True,
    )
    console.print(f"Mode: [bold]{plan.mode}[/] -- {plan.pem.describe()}", soft_wrap=True)
    table = Table("exercise", "start", "derivation", title="Starting prescription")
    for ex in plan.exercises:
        table.add_row(ex.label, describe_dose(ex.start), ex.basis)
    console.print(table)
    hr = plan.heart_rate.describe() if plan.heart_rate else "no HR band in this programme"
    console.print(
        f"Heart rate: {hr}. Stop if HR > {plan.hr_stop_bpm:.0f} bpm "
        f"({prog.safety.hr_limit_fraction_of_max:.0%} of 220 - {plan.age_years}) or SpO2 < "
        f"{plan.spo2_floor_pct:g}%.",
        soft_wrap=True,
    )
    console.print(f"Walking speed method: {plan.walking_speed.method}", soft_wrap=True)


@rehab_app.command("prescribe")
def prescribe_command(
    participant_id: Pid,
    programme: Annotated[
        Path | None,
        typer.Option("--programme", help="Programme YAML (default: the shipped one for the arm)."),
    ] = None,
    date: Annotated[
        str | None, typer.Option("--date", help="Prescription date (YYYY-MM-DD); default today.")
    ] = None,
    pacing: Annotated[
        bool, typer.Option("--pacing", help="Use the pacing mode even if the DSQ-PEM screen is negative.")
    ] = False,
    reason: ReasonOpt = None,
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Prescribe the programme from the baseline assessment (ISWT, 1RM, HR, DSQ items); physio only."""
    from immunorehab.rehab.service import prescribe

    view = prescribe(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        programme_path=programme,
        on=parse_date(date, option="--date"),
        force_pacing=pacing,
        reason=reason,
        today=_day(today, "--today"),
    )
    _print_prescription(view)


@rehab_app.command("prescription")
def prescription_command(participant_id: Pid, db: DbOpt = None, user: UserOpt = None) -> None:
    """Show the participant's current prescription and how each dose was derived."""
    from immunorehab.rehab.service import current_prescription

    _print_prescription(
        current_prescription(open_store(db), by=require_user(user), participant_id=participant_id)
    )


# -- session log -----------------------------------------------------------------------------


@rehab_app.command("log")
def log_command(
    participant_id: Pid,
    date: Annotated[str, typer.Option("--date", help="Session date (YYYY-MM-DD).")],
    session: Annotated[
        int | None, typer.Option("--session", help="Session number (default: the next).")
    ] = None,
    missed: Annotated[
        bool, typer.Option("--missed", help="The participant did not attend this session.")
    ] = False,
    value: ValueOpt = None,
    reason: ReasonOpt = None,
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Log one session: prescribed vs done, HR, SpO2, Borg, RPE, symptoms, AEs (all validated)."""
    from immunorehab.rehab.logbook import log_session

    values: dict[str, object] = {**parse_assignments(value, option="--value"), "session_date": date}
    if session is not None:
        values["session_no"] = session
    if missed:
        values["attended"] = "no"
    logged = log_session(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        values=values,
        reason=reason,
        today=_day(today, "--today"),
    )
    verb = "Replaced" if logged.replaced else "Logged"
    state = "attended" if logged.attended else "not attended"
    console.print(
        f"{verb} {logged.participant_id} session {logged.session_no} on {logged.session_date} ({state})."
    )


@rehab_app.command("import")
def import_command(
    file: Annotated[
        Path, typer.Argument(help="Session log CSV/Parquet: participant_id + session-log fields.")
    ],
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Import a session-log file: every row valid, or nothing is stored (all problems listed)."""
    from immunorehab.rehab.logbook import import_sessions

    logged = import_sessions(open_store(db), by=require_user(user), path=file, today=_day(today, "--today"))
    people = len({s.participant_id for s in logged})
    console.print(f"Imported {len(logged)} sessions of {people} participants from {file}.")


@rehab_app.command("followup")
def followup_command(
    participant_id: Pid,
    session: SessionArg,
    value: ValueOpt = None,
    reason: ReasonOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Record the 24/48 h symptom follow-up (symptoms_24h_fatigue=5, ..., crash_reported=yes)."""
    from immunorehab.rehab.logbook import record_followup

    values = parse_assignments(value, option="--value")
    if not values:
        raise ConfigError("give at least one --value FIELD=VALUE (e.g. symptoms_24h_fatigue=4)")
    changes = record_followup(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        session_no=session,
        values=values,
        reason=reason,
    )
    console.print(
        f"Recorded follow-up of session {session}: " + ", ".join(f"{k}={v[1]}" for k, v in changes.items())
    )


@rehab_app.command("ae")
def ae_command(
    participant_id: Pid,
    session: SessionArg,
    term: Annotated[str, typer.Option("--term", help="What happened (no names or identifiers).")],
    serious: Annotated[bool, typer.Option("--serious/--not-serious", help="Serious adverse event?")],
    severity: Annotated[str, typer.Option("--severity", help="mild, moderate or severe.")] = "mild",
    related: Annotated[
        str, typer.Option("--related", help="unrelated, unlikely, possible, probable, definite.")
    ] = "possible",
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Record an adverse event at a logged session."""
    from immunorehab.rehab.logbook import add_adverse_event

    add_adverse_event(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        session_no=session,
        term=term,
        serious=serious,
        severity=severity,
        relatedness=related,
    )
    console.print(f"Recorded {'SERIOUS ' if serious else ''}adverse event at session {session}: {term}")


# -- progression -----------------------------------------------------------------------------


def _progress(db: str | None, user: str | None, participant_id: str) -> ParticipantProgress:
    from immunorehab.rehab.service import participant_progress

    return participant_progress(open_store(db), by=require_user(user), participant_id=participant_id)


@rehab_app.command("next")
def next_command(participant_id: Pid, db: DbOpt = None, user: UserOpt = None) -> None:
    """The next session's prescription per exercise, with the decision and rule that led to it."""
    from immunorehab.rehab.doses import describe_dose

    p = _progress(db, user, participant_id)
    nxt = p.next
    number = (
        f"session {nxt.session_no} of {p.programme.sessions_total}"
        if nxt.session_no
        else "programme complete"
    )
    earliest = f", not before {nxt.earliest_date}" if nxt.earliest_date and nxt.session_no else ""
    console.print(
        f"Next for {p.participant_id}: {number}{earliest}; mode [bold]{nxt.mode}[/]", soft_wrap=True
    )
    for note in nxt.notes:
        console.print(f"[bold red]{note}[/]" if note.startswith("BLOCKED") else note, soft_wrap=True)
    last = p.progress.decisions[-1] if p.progress.decisions else None
    title = (
        f"after session {last.session_no} ({last.date})"
        if last
        else "no session logged yet: starting prescription"
    )
    table = Table("exercise", "last prescribed", "decision", "rule", "next", title=title)
    for ex in p.plan.exercises:
        decision = last.exercise(ex.exercise_id) if last else None
        table.add_row(
            ex.label,
            describe_dose(decision.before) if decision else "-",
            decision.action.replace("_", " ") if decision else "start",
            decision.rule.value if decision else "prescription",
            describe_dose(nxt.doses[ex.exercise_id]),
        )
    console.print(table)
    if p.plan.heart_rate:
        console.print(
            f"Target HR {p.plan.heart_rate.low_bpm:.0f}-{p.plan.heart_rate.high_bpm:.0f} bpm; stop above "
            f"{p.plan.hr_stop_bpm:.0f} bpm or SpO2 < {p.plan.spo2_floor_pct:g}%."
        )
    if last:
        console.print(f"Why: immunorehab rehab explain {p.participant_id} {last.session_no}", soft_wrap=True)


@rehab_app.command("explain")
def explain_command(participant_id: Pid, session: SessionArg, db: DbOpt = None, user: UserOpt = None) -> None:
    """Why each exercise advanced, held or stepped back after a session (rules and values)."""
    from immunorehab.rehab.explain import explain_session

    p = _progress(db, user, participant_id)
    decision = p.progress.decision(session)
    outcome = next(o for o in p.outcomes if o.session_no == session)
    text = explain_session(decision, outcome, plan=p.plan, programme=p.programme, clearances=p.clearances)
    console.print(text.header, style="bold", soft_wrap=True)
    for line in text.safety:
        console.print(f"  {line}", soft_wrap=True, highlight=False)
    table = Table("exercise", "prescribed", "done", "decision", "rule", "next", "why", title="Decisions")
    for e in text.exercises:
        table.add_row(
            e.exercise_id + ("*" if e.override else ""),
            e.prescribed,
            e.done,
            e.action,
            e.rule,
            e.next_dose,
            e.reason,
        )
    console.print(table)
    for note in text.notes:
        console.print(note, soft_wrap=True)


@rehab_app.command("clear")
def clear_command(
    participant_id: Pid,
    session: SessionArg,
    reason: Annotated[str, typer.Option("--reason", help="Clinical reason for the clearance (audited).")],
    date: Annotated[str | None, typer.Option("--date", help="Date of the review (default today).")] = None,
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Physio clearance of a session flagged by a stop criterion; progression resumes afterwards."""
    from immunorehab.rehab.service import clear_review

    done = clear_review(
        open_store(db),
        by=require_user(user),
        participant_id=participant_id,
        session_no=session,
        reason=reason,
        on=parse_date(date, option="--date"),
        today=_day(today, "--today"),
    )
    console.print(
        f"Cleared the clinical review of {participant_id.upper()} session {done.session_no} on "
        f"{done.cleared_on} ({done.cleared_by})."
    )


# -- reports ---------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}%"


@rehab_app.command("adherence")
def adherence_command(
    arms_only: Annotated[bool, typer.Option("--arms", help="Only the per-arm summary.")] = False,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Also write a .png/.svg of attendance by arm.")
    ] = None,
    today: TodayOpt = None,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Attendance, % of prescribed aerobic minutes and resistance volume, PEM events; per arm."""
    from immunorehab.rehab.reports import adherence_report

    rows, arms = adherence_report(open_store(db), by=require_user(user), today=_day(today, "--today"))
    if not arms_only:
        table = Table(
            "participant",
            "arm",
            "attended",
            "aerobic",
            "resistance",
            "aerobic min",
            "volume kg",
            "PESE",
            "stops",
            "AEs",
            "status",
            title="Adherence and dose per participant",
        )
        for r in rows:
            table.add_row(
                r.participant_id,
                r.arm,
                f"{r.attended}/{r.sessions_offered}",
                _pct(r.aerobic_pct),
                _pct(r.resistance_pct),
                f"{r.aerobic_minutes_done:.0f}",
                f"{r.resistance_volume_done_kg:.0f}",
                str(r.pese_events),
                str(r.stop_events),
                f"{r.adverse_events} ({r.serious_adverse_events} serious)",
                r.status,
            )
        console.print(table)
    table = Table(
        "arm",
        "prescribed",
        "completers",
        "not",
        "in progress",
        "median attendance",
        "aerobic",
        "resistance",
        "PESE",
        "stops",
        "AEs (serious)",
        title="Per arm (completer: attended >= the programme's threshold)",
    )
    for a in arms:
        table.add_row(
            a.arm,
            str(a.participants),
            str(a.completers),
            str(a.non_completers),
            str(a.in_progress),
            _pct(a.median_attendance_pct),
            _pct(a.mean_aerobic_pct),
            _pct(a.mean_resistance_pct),
            str(a.pese_events),
            str(a.stop_events),
            f"{a.adverse_events} ({a.serious_adverse_events})",
        )
    console.print(table)
    if plot is not None:
        from immunorehab.rehab.plots import adherence_figure, save_figure

        threshold = 100 * min((r.completer_threshold / r.sessions_offered for r in rows), default=0.75)
        console.print(f"Wrote {save_figure(adherence_figure(rows, completer_pct=threshold), plot)}")


@rehab_app.command("outcomes")
def outcomes_command(
    participant_id: Annotated[
        str | None, typer.Argument(help="One participant (default: all randomised).")
    ] = None,
    visit: Annotated[str, typer.Option("--visit", help="Follow-up visit id.")] = "week8",
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Week-8 change from baseline per measure and whether it reaches the MCID (direction-aware)."""
    from immunorehab.rehab.reports import outcomes_report

    rows = outcomes_report(
        open_store(db), by=require_user(user), participant_id=participant_id, visit_id=visit
    )
    table = Table(
        "participant",
        "arm",
        "measure",
        "baseline",
        visit,
        "change",
        "MCID",
        "reached",
        title=f"Change from baseline to {visit}",
    )
    reached: dict[tuple[str, str], list[bool]] = {}
    for row in rows:
        for c in row.changes:
            flag = "-" if c.reached_mcid is None else ("yes" if c.reached_mcid else "no")
            better = (
                ""
                if c.direction is None
                else (" (higher better)" if c.direction == "higher_better" else " (lower better)")
            )
            table.add_row(
                row.participant_id,
                row.arm,
                c.label + better,
                f"{c.baseline:g}",
                f"{c.followup:g}",
                f"{c.change:+g}",
                "-" if c.mcid is None else f"{c.mcid:g} {c.unit}",
                flag,
            )
            if c.reached_mcid is not None:
                reached.setdefault((row.arm, c.label), []).append(c.reached_mcid)
    console.print(table)
    if participant_id is None and reached:
        summary = Table("arm", "measure", "reached MCID", title="Proportion reaching the MCID")
        for (arm, label), flags in sorted(reached.items()):
            summary.add_row(arm, label, f"{sum(flags)}/{len(flags)} ({100 * sum(flags) / len(flags):.0f}%)")
        console.print(summary)


@rehab_app.command("plot")
def plot_command(
    participant_id: Pid,
    out: Annotated[Path, typer.Argument(help="Output .png or .svg.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Plot the participant's prescription by session with PESE, stop and missed sessions marked."""
    from immunorehab.rehab.plots import progression_figure, save_figure

    path = save_figure(progression_figure(_progress(db, user, participant_id)), out, overwrite=overwrite)
    console.print(f"Wrote the progression plot of {participant_id.upper()} to {path}")


@rehab_app.command("card")
def card_command(
    participant_id: Pid,
    out: Annotated[Path, typer.Argument(help="Output file: .html or .pdf.")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Printable prescription card (physio page + participant page) as HTML or PDF."""
    from immunorehab.rehab.card import write_card

    path = write_card(_progress(db, user, participant_id), out, overwrite=overwrite)
    console.print(f"Wrote the prescription card of {participant_id.upper()} to {path}")


@rehab_app.command("export")
def export_command(
    out: Annotated[Path, typer.Argument(help="Output .csv or .parquet (one row per session and exercise).")],
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    db: DbOpt = None,
    user: UserOpt = None,
) -> None:
    """Export every logged session (prescribed vs done per exercise, vitals, symptoms) as a tidy table."""
    from immunorehab.rehab.reports import sessions_frame
    from immunorehab.study.export import write_frame

    frame = sessions_frame(open_store(db), by=require_user(user))
    path = write_frame(frame, out, overwrite=overwrite)
    console.print(f"Wrote {len(frame)} session-exercise rows to {path}")


def register(app: typer.Typer) -> None:
    app.add_typer(rehab_app, name="rehab")
