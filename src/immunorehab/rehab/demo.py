"""The rehabilitation demo step: prescribe, log 8 weeks of synthetic sessions, clear a review, summarise.

Runs on the demo study after randomisation: every participant of an exercise arm gets a
prescription from their baseline assessment (physio ``physio1``); 8 weeks of sessions are
simulated in lockstep with the progression engine (varied attendance and drop-out, PESE
flares, one stop criterion per arm at most) and imported from a CSV file the way a site's
file is; the physio clears each flagged session; the step prints the adherence per arm.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pandas as pd

from immunorehab.errors import AssessmentError, PrescriptionError
from immunorehab.rehab.adherence import ArmAdherence
from immunorehab.rehab.logbook import import_sessions
from immunorehab.rehab.outcome import Clearance
from immunorehab.rehab.plots import adherence_figure, progression_figure, save_figure
from immunorehab.rehab.reports import adherence_report
from immunorehab.rehab.service import clear_review, participant_progress, prescribe, programme_for_arm
from immunorehab.simulate.sessions import synthetic_sessions
from immunorehab.study.demo import DemoContext
from immunorehab.study.participants import list_participants

__all__ = ["demo_rehab"]


def _import(ctx: DemoContext, rows: list[dict[str, object]], name: str) -> int:
    if not rows:
        return 0
    path = ctx.out / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return len(import_sessions(ctx.store, by="physio1", path=path, today=ctx.today))


def _arm_line(a: ArmAdherence) -> str:
    aer = "-" if a.mean_aerobic_pct is None else f"{a.mean_aerobic_pct:.0f}%"
    res = "-" if a.mean_resistance_pct is None else f"{a.mean_resistance_pct:.0f}%"
    att = "-" if a.median_attendance_pct is None else f"{a.median_attendance_pct:.0f}%"
    return (
        f"  {a.arm}: {a.participants} prescribed, {a.completers} completers / {a.non_completers} not / "
        f"{a.in_progress} in progress; median attendance {att}; aerobic minutes achieved {aer}, "
        f"resistance volume {res}; {a.pese_events} PESE, {a.stop_events} stop events, "
        f"{a.adverse_events} AEs ({a.serious_adverse_events} serious)"
    )


def demo_rehab(ctx: DemoContext) -> list[str]:
    """Prescribe for the exercise arms, simulate and import sessions, clear reviews; return summary lines."""
    rng = np.random.default_rng(ctx.seed + 3)
    views = {v.participant_id: v for v in list_participants(ctx.store, by="physio1")}
    arms: dict[str, list[tuple[str, dt.date]]] = {}
    for pid, day in ctx.randomised:
        arm = views[pid].arm or ""
        try:
            programme_for_arm(arm)
        except PrescriptionError:  # usual care: no programme
            continue
        arms.setdefault(arm, []).append((pid, day))
    rows: list[dict[str, object]] = []
    clearances: list[tuple[Clearance, str]] = []
    modes: Counter[str] = Counter()
    for people in arms.values():
        stop_pid = next((pid for pid, day in people if (ctx.today - day).days > 35), None)
        for index, (pid, day) in enumerate(people):
            withdrawn = views[pid].withdrawn_on
            if withdrawn is not None and withdrawn <= day:
                continue
            try:
                rx = prescribe(ctx.store, by="physio1", participant_id=pid, on=day, today=ctx.today)
            except AssessmentError:
                modes["no baseline assessment"] += 1
                continue
            modes[rx.plan.mode] += 1
            if ctx.on_progress is not None:
                ctx.on_progress("Rehabilitation: prescribing and simulating", index + 1, len(people))
            log = synthetic_sessions(
                rx.plan,
                rx.programme,
                participant_id=pid,
                start=day + dt.timedelta(days=1),
                today=min(ctx.today, views[pid].withdrawn_on or ctx.today),
                rng=rng,
                stop_at_session=6 if pid == stop_pid else None,
            )
            rows += log.rows
            clearances += [(c, pid) for c in log.clearances]
    imported, part = 0, 0
    pending = list(rows)
    for clearance, pid in sorted(clearances, key=lambda item: item[0].cleared_on):
        cut = clearance.cleared_on.isoformat()
        batch = [r for r in pending if str(r["session_date"]) < cut]
        pending = [r for r in pending if str(r["session_date"]) >= cut]
        part += 1
        imported += _import(ctx, batch, f"rehab_sessions_part{part}.csv")
        if clearance.cleared_on <= ctx.today:
            clear_review(
                ctx.store,
                by="physio1",
                participant_id=pid,
                session_no=clearance.session_no,
                reason=clearance.reason,
                on=clearance.cleared_on,
                today=ctx.today,
            )
    imported += _import(ctx, pending, "rehab_sessions.csv")
    participants, per_arm = adherence_report(ctx.store, by="stats1", today=ctx.today)
    lines = [
        f"Prescribed {len(participants)} participants ({modes['standard']} standard, {modes['pacing']} "
        "pacing after a "
        f"positive DSQ-PEM screen; {modes['no baseline assessment']} without a baseline assessment); "
        "imported "
        f"{imported} synthetic sessions; {len(clearances)} stop-criterion session(s) cleared by a physio.",
        "Adherence by arm (completer = attended >= 75% of sessions):",
        *[_arm_line(a) for a in per_arm],
    ]
    threshold = 100 * min((r.completer_threshold / r.sessions_offered for r in participants), default=0.75)
    figure = save_figure(
        adherence_figure(participants, completer_pct=threshold),
        ctx.out / "rehab_adherence.png",
        overwrite=True,
    )
    lines.append(f"Adherence plot: {figure}")
    if clearances:
        clearance, pid = clearances[0]
        progress = participant_progress(ctx.store, by="physio1", participant_id=pid)
        plot = save_figure(
            progression_figure(progress), ctx.out / f"rehab_progression_{pid}.png", overwrite=True
        )
        lines.append(f"Progression plot of {pid}: {plot}")
        decision = progress.progress.decision(clearance.session_no)
        lines.append(
            f"Stop criterion: {pid} session {clearance.session_no}: {decision.stops[0].detail}; "
            f"walking {decision.exercise('walking').action.replace('_', ' ')}; cleared on "
            f"{clearance.cleared_on}."
        )
        lines.append(
            f"Try: immunorehab rehab explain {pid} {clearance.session_no} --db "
            f"sqlite:///{ctx.out / 'demo.db'} --user physio1"
        )
    return lines
