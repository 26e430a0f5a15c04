"""Figures: a participant's dose trajectory with PESE/stop markers; adherence per arm (matplotlib, Agg)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from immunorehab.errors import RehabError
from immunorehab.rehab.adherence import ParticipantAdherence
from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.service import ParticipantProgress
from immunorehab.study.export import atomic_write

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["adherence_figure", "progression_figure", "save_figure"]


def _figure(rows: int, height: float) -> tuple[Figure, list[Axes]]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, height * rows), layout="constrained")
    axes = list(fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0])
    return fig, axes


def _aerobic_minutes(dose: Dose) -> float:
    return dose.minutes if isinstance(dose, WalkingDose | CyclingDose) else 0.0


def progression_figure(p: ParticipantProgress) -> Figure:
    """Prescribed (lines) and done (dots) per session: aerobic minutes, walking speed, cycling watts, loads.

    Sessions followed by a PESE are shaded orange, stop-criterion sessions red, missed sessions grey.
    """
    fig, axes = _figure(3, 2.3)
    aerobic, intensity, loads = axes
    decisions = p.progress.decisions
    done_by = {(o.session_no, e.exercise_id): e.done for o in p.outcomes for e in o.exercises}
    numbers = [d.session_no for d in decisions]
    for ex in p.plan.exercises:
        before = [d.exercise(ex.exercise_id).before for d in decisions]
        done = [done_by.get((n, ex.exercise_id)) for n in numbers]
        if ex.kind == "resistance":
            loads.plot(numbers, [b.load_kg for b in before if isinstance(b, ResistanceDose)], label=ex.label)
            continue
        line = aerobic.plot(numbers, [_aerobic_minutes(b) for b in before], label=f"{ex.label}: minutes")
        points = [(n, _aerobic_minutes(d)) for n, d in zip(numbers, done, strict=True) if d is not None]
        if points:
            xs, ys = [n for n, _ in points], [m for _, m in points]
            aerobic.scatter(xs, ys, color=line[0].get_color(), s=14)
        if ex.kind == "walking":
            intensity.plot(
                numbers, [b.speed_kmh for b in before if isinstance(b, WalkingDose)], label="walking km/h"
            )
        else:
            intensity.plot(
                numbers, [b.watts / 10 for b in before if isinstance(b, CyclingDose)], label="cycling W / 10"
            )
    for d in decisions:
        colour = "red" if d.stops else "orange" if d.pese else "0.85" if not d.attended else None
        if colour:
            for ax in axes:
                ax.axvspan(d.session_no - 0.4, d.session_no + 0.4, color=colour, alpha=0.3, lw=0)
    aerobic.set_ylabel("minutes")
    intensity.set_ylabel("intensity")
    loads.set_ylabel("load (kg)")
    loads.set_xlabel("session (orange: PESE, red: stop criterion, grey: missed)")
    for ax in axes:
        ax.legend(fontsize=7, loc="upper left")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{p.participant_id}: prescription by session ({p.programme.id}, {p.plan.mode} start)")
    return fig


def adherence_figure(rows: Sequence[ParticipantAdherence], *, completer_pct: float) -> Figure:
    """Attendance (% of offered sessions) per participant, by arm, with the completer threshold."""
    if not rows:
        raise RehabError("no prescribed participants: nothing to plot")
    fig, (ax,) = _figure(1, 3.2)
    arms = list(dict.fromkeys(r.arm for r in rows))
    colours = {"completer": "tab:green", "non_completer": "tab:red", "in_progress": "tab:grey"}
    for i, arm in enumerate(arms):
        mine = sorted((r for r in rows if r.arm == arm), key=lambda r: r.attendance_pct)
        for j, r in enumerate(mine):
            x = i + (j - len(mine) / 2) * 0.6 / max(len(mine), 1)
            ax.scatter([x], [r.attendance_pct], color=colours[r.status], s=18)
    ax.axhline(completer_pct, color="k", ls="--", lw=1, label=f"completer threshold ({completer_pct:.0f}%)")
    ax.set_xticks(range(len(arms)), arms)
    ax.set_ylabel("sessions attended (% of offered)")
    ax.set_ylim(-5, 105)
    for status, colour in colours.items():
        ax.scatter([], [], color=colour, label=status.replace("_", " "))
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Adherence by arm")
    return fig


def save_figure(fig: Figure, path: str | Path, *, overwrite: bool = False) -> Path:
    """Write ``fig`` as PNG or SVG (by suffix), atomically; never overwrite without ``overwrite``."""
    path = Path(path)
    kind = path.suffix.lower().lstrip(".")
    if kind not in ("png", "svg"):
        raise RehabError(f"cannot tell the figure format of {path}: use a .png or .svg name")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=kind, dpi=130), overwrite=overwrite)
