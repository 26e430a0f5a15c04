"""The printable prescription card (HTML, and PDF through WeasyPrint) for physio and participant.

Page 1 is for the physiotherapist (starting and next doses, caps, derivations, targets,
HR band, stop limits, progression rules); page 2 for the participant in plain words
(what to do, how it should feel, when to stop, symptom follow-up, education topics and a
session diary). Files are written atomically and never overwrite without ``overwrite``.
"""

from __future__ import annotations

import warnings
from importlib import resources
from pathlib import Path
from typing import Literal

from jinja2 import Environment, StrictUndefined, select_autoescape

from immunorehab.errors import RehabError
from immunorehab.rehab.doses import (
    Caps,
    CyclingCaps,
    CyclingDose,
    Dose,
    ResistanceCaps,
    ResistanceDose,
    WalkingCaps,
    WalkingDose,
    describe_dose,
)
from immunorehab.rehab.service import ParticipantProgress
from immunorehab.study.export import atomic_write

__all__ = ["CardFormat", "render_card_html", "write_card"]

CardFormat = Literal["html", "pdf"]


def _caps(caps: Caps) -> str:
    if isinstance(caps, WalkingCaps):
        incline = f", incline <= {caps.max_incline_pct:g}%" if caps.max_incline_pct else ""
        minutes = f"{caps.min_minutes:g}-{caps.max_minutes:g} min (goal {caps.target_minutes:g})"
        return f"{minutes}, <= {caps.max_speed_kmh:.1f} km/h{incline}"
    if isinstance(caps, CyclingCaps):
        minutes = f"{caps.min_minutes:g}-{caps.max_minutes:g} min (goal {caps.target_minutes:g})"
        return f"{minutes}, {caps.min_watts:g}-{caps.max_watts:g} W"
    if isinstance(caps, ResistanceCaps):
        steps = f"({caps.increment_kg:g} kg steps)"
        return f"<= {caps.max_load_kg:g} kg, <= {caps.max_sets} sets, <= {caps.max_reps} reps {steps}"
    raise RehabError("unknown caps")


def _plain(dose: Dose) -> str:
    if isinstance(dose, WalkingDose):
        incline = f" on a {dose.incline_pct:g}% slope" if dose.incline_pct else ""
        return f"Walk for {dose.minutes:g} minutes at {dose.speed_kmh:.1f} km/h{incline}"
    if isinstance(dose, CyclingDose):
        return f"Cycle for {dose.minutes:g} minutes at {dose.watts:g} watts"
    if isinstance(dose, ResistanceDose):
        return f"{dose.sets} set{'s' if dose.sets != 1 else ''} of {dose.reps} with {dose.load_kg:g} kg"
    raise RehabError("unknown dose")


def render_card_html(progress: ParticipantProgress, *, prescribed_by: str = "") -> str:
    """The card as a standalone HTML document (CSS inlined)."""
    folder = resources.files("immunorehab.rehab") / "templates"
    env = Environment(autoescape=select_autoescape(["html"]), undefined=StrictUndefined, trim_blocks=True)
    template = env.from_string((folder / "card.html").read_text(encoding="utf-8"))
    plan, programme = progress.plan, progress.programme
    show_next = bool(progress.outcomes)
    red_flags = ", ".join(
        c.replace("_", " ")
        for c in programme.safety.stop_on
        if c not in ("spo2_below_floor", "hr_above_limit")
    )
    return template.render(
        css=(folder / "card.css").read_text(encoding="utf-8"),
        participant_id=progress.participant_id,
        version=progress.prescription_version,
        prescribed_on=progress.prescribed_on,
        prescribed_by=prescribed_by or "physiotherapist",
        programme=programme,
        walking=programme.aerobic.walking,
        plan=plan,
        show_next=show_next,
        next_no=progress.next.session_no,
        next_doses=progress.next.doses,
        blocked=", ".join(map(str, progress.next.blocked_by)),
        red_flags=red_flags,
        describe=describe_dose,
        caps=_caps,
        plain=_plain,
    )


def write_card(
    progress: ParticipantProgress,
    path: str | Path,
    *,
    fmt: CardFormat | None = None,
    overwrite: bool = False,
    prescribed_by: str = "",
) -> Path:
    """Write the card to ``path`` as HTML or PDF (format from the suffix unless given)."""
    path = Path(path)
    kind = fmt or path.suffix.lower().lstrip(".")
    if kind not in ("html", "pdf"):
        raise RehabError(
            f"cannot tell the card format of {path}: use a .html or .pdf name (or --format html|pdf)"
        )
    html = render_card_html(progress, prescribed_by=prescribed_by)

    def writer(tmp: Path) -> None:
        if kind == "html":
            tmp.write_text(html, encoding="utf-8")
        else:
            with warnings.catch_warnings():
                # WeasyPrint notes at import when the system lacks libharfbuzz-subset (fonts are then
                # embedded whole): a packaging notice for the installer, not a problem with the card.
                warnings.filterwarnings("ignore", message="HarfBuzz-Subset", category=DeprecationWarning)
                from weasyprint import HTML

                HTML(string=html).write_pdf(str(tmp))

    return atomic_write(path, writer, overwrite=overwrite)
