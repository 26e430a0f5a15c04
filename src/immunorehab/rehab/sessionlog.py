"""Session-log fields and their validation: raw values (CLI ``FIELD=VALUE`` or a CSV row) to typed entries.

One session is one row. Session fields are fixed (:data:`SESSION_FIELDS`); exercise
fields come from the programme: ``walking_minutes``, ``walking_speed_kmh``,
``walking_incline_pct``, ``cycling_minutes``, ``cycling_watts``, ``<exercise>_sets``,
``<exercise>_reps``, ``<exercise>_kg`` for what was done, the same with
``_prescribed_`` after the exercise id for a physio's override (default: the engine's
prescription), and ``<aerobic>_borg_dyspnoea`` / ``_borg_fatigue`` / ``<exercise>_rpe``.

:func:`parse_session_values` checks every value against its range (SpO2 0-100 % --
a value of 120 is impossible --, Borg CR10 0-10, RPE 6-20, symptoms 0-10, nothing
negative) and returns ALL problems, each naming the field, the value and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from immunorehab.errors import Problem
from immunorehab.rehab.doses import CyclingDose, Dose, ResistanceDose, WalkingDose
from immunorehab.rehab.outcome import SYMPTOMS, Symptoms
from immunorehab.rehab.programme import STOP_CRITERIA, Programme
from immunorehab.study import coerce

__all__ = [
    "AE_RELATEDNESS",
    "AE_SEVERITY",
    "FOLLOWUP_FIELDS",
    "SESSION_FIELDS",
    "AdverseEventEntry",
    "ExerciseEntry",
    "LogField",
    "SessionEntry",
    "all_fields",
    "exercise_fields",
    "parse_session_values",
    "typed_value",
]

FieldType = Literal["integer", "number", "boolean", "date", "choice", "text", "flags"]
AE_SEVERITY: tuple[str, ...] = ("mild", "moderate", "severe")
AE_RELATEDNESS: tuple[str, ...] = ("unrelated", "unlikely", "possible", "probable", "definite")


@dataclass(frozen=True, slots=True)
class LogField:
    """One loggable value: name, type, allowed range and unit, and a label for messages."""

    name: str
    type: FieldType
    label: str
    minimum: float | None = None
    maximum: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()


def _f(
    name: str,
    kind: FieldType,
    label: str,
    lo: float | None = None,
    hi: float | None = None,
    unit: str = "",
    choices: tuple[str, ...] = (),
) -> LogField:
    return LogField(name, kind, label, lo, hi, unit, choices)


_SYMPTOM_FIELDS = tuple(
    _f(f"symptoms_{when}_{name}", "integer", f"{name} {label} (0-10)", 0, 10)
    for when, label in (("pre", "before the session"), ("24h", "24 h after"), ("48h", "48 h after"))
    for name in SYMPTOMS
)
SESSION_FIELDS: tuple[LogField, ...] = (
    _f("session_no", "integer", "session number", 1, 200),
    _f("session_date", "date", "session date"),
    _f("attended", "boolean", "attended"),
    _f("delivery", "choice", "delivery", choices=("supervised", "remote")),
    _f("education_attended", "boolean", "education attended"),
    _f("hr_pre_bpm", "number", "heart rate before", 30, 250, " bpm"),
    _f("hr_peak_bpm", "number", "peak heart rate", 30, 250, " bpm"),
    _f("hr_post_bpm", "number", "heart rate after", 30, 250, " bpm"),
    _f("spo2_pre_pct", "number", "SpO2 before", 50, 100, " %"),
    _f("spo2_lowest_pct", "number", "lowest SpO2", 50, 100, " %"),
    _f("borg_dyspnoea", "number", "Borg CR10 dyspnoea", 0, 10),
    _f("borg_fatigue", "number", "Borg CR10 fatigue", 0, 10),
    _f("rpe", "integer", "RPE (Borg 6-20)", 6, 20),
    *_SYMPTOM_FIELDS,
    _f("crash_reported", "boolean", "crash (PEM) reported"),
    _f("stop_criteria", "flags", "stop criteria (separated by ';')", choices=STOP_CRITERIA),
    _f("stopped_during", "text", "exercise during which the session was stopped"),
    _f("ae_term", "text", "adverse event"),
    _f("ae_serious", "boolean", "adverse event serious"),
    _f("ae_severity", "choice", "adverse event severity", choices=AE_SEVERITY),
    _f("ae_related", "choice", "adverse event relatedness", choices=AE_RELATEDNESS),
)
#: Values that may be added after the session (24/48 h follow-up).
FOLLOWUP_FIELDS: tuple[str, ...] = tuple(
    f.name for f in _SYMPTOM_FIELDS if not f.name.startswith("symptoms_pre")
) + ("crash_reported",)

_DOSE_FIELDS: dict[str, tuple[tuple[str, FieldType, str, float, float, str], ...]] = {
    "walking": (
        ("minutes", "number", "minutes", 0, 180, " min"),
        ("speed_kmh", "number", "speed", 0, 12, " km/h"),
        ("incline_pct", "number", "incline", 0, 25, " %"),
    ),
    "cycling": (
        ("minutes", "number", "minutes", 0, 180, " min"),
        ("watts", "number", "workload", 0, 600, " W"),
    ),
    "resistance": (
        ("sets", "integer", "sets", 0, 10, ""),
        ("reps", "integer", "repetitions per set", 0, 100, ""),
        ("kg", "number", "load", 0, 500, " kg"),
    ),
}


def exercise_fields(programme: Programme) -> tuple[LogField, ...]:
    """The exercise fields of a programme's session log (done, prescribed, ratings)."""
    out: list[LogField] = []
    for eid in programme.exercise_ids():
        kind = programme.kind_of(eid)
        for prefix in (f"{eid}_", f"{eid}_prescribed_"):
            what = "prescribed " if "prescribed" in prefix else ""
            for key, typ, label, lo, hi, unit in _DOSE_FIELDS[kind]:
                out.append(_f(prefix + key, typ, f"{eid} {what}{label}", lo, hi, unit))
        if kind == "resistance":
            out.append(_f(f"{eid}_rpe", "integer", f"{eid} RPE (6-20)", 6, 20))
        else:
            out.append(_f(f"{eid}_borg_dyspnoea", "number", f"{eid} Borg CR10 dyspnoea", 0, 10))
            out.append(_f(f"{eid}_borg_fatigue", "number", f"{eid} Borg CR10 fatigue", 0, 10))
    return tuple(out)


def all_fields(programme: Programme) -> dict[str, LogField]:
    return {f.name: f for f in (*SESSION_FIELDS, *exercise_fields(programme))}


@dataclass(frozen=True, slots=True)
class AdverseEventEntry:
    term: str
    serious: bool
    severity: str
    relatedness: str


@dataclass(frozen=True, slots=True)
class ExerciseEntry:
    exercise_id: str
    kind: str
    done: Dose | None
    prescribed: Dose | None
    borg_dyspnoea: float | None
    borg_fatigue: float | None
    rpe: int | None


@dataclass(frozen=True, slots=True)
class SessionEntry:
    """A validated session log (values as logged; ``None`` = not recorded)."""

    session_no: int | None
    session_date: dt.date
    attended: bool
    supervised: bool | None
    education_attended: bool | None
    vitals: dict[str, float | None]
    rpe: int | None
    symptoms_pre: Symptoms
    symptoms_24h: Symptoms
    symptoms_48h: Symptoms
    crash_reported: bool
    red_flags: tuple[str, ...]
    stopped_during: str | None
    exercises: tuple[ExerciseEntry, ...]
    adverse_events: tuple[AdverseEventEntry, ...]


def typed_value(field: LogField, raw: Any) -> Any:
    """``raw`` typed and range-checked for ``field``; ``ValueError`` says what is allowed."""
    if field.type in ("integer", "number"):
        value: float = coerce.to_int(raw) if field.type == "integer" else coerce.to_float(raw)
        low, high = field.minimum, field.maximum
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{field.label} must be {low:g} to {high:g}{field.unit}, got {raw!r}")
        return value
    if field.type == "boolean":
        return coerce.to_bool(raw)
    if field.type == "date":
        return coerce.to_date(raw)
    if field.type == "choice":
        return coerce.to_choice(raw, field.choices)
    if field.type == "flags":
        flags = tuple(part.strip().lower() for part in str(raw).replace(",", ";").split(";") if part.strip())
        unknown = [f for f in flags if f not in field.choices]
        if unknown:
            raise ValueError(
                f"unknown stop criterion {', '.join(unknown)}; expected any of {', '.join(field.choices)}"
            )
        return flags
    return str(raw).strip()


def _symptoms(values: Mapping[str, Any], when: str) -> Symptoms:
    return Symptoms(**{name: values.get(f"symptoms_{when}_{name}") for name in SYMPTOMS})


def _dose(
    kind: str, values: Mapping[str, Any], prefix: str, where: str, problems: list[Problem], bad: set[str]
) -> Dose | None:
    keys = [key for key, *_ in _DOSE_FIELDS[kind]]
    given = {key: values.get(prefix + key) for key in keys}
    if all(v is None for v in given.values()) or any(prefix + key in bad for key in keys):
        return None  # nothing logged, or a value already reported as invalid
    required = [k for k in keys if k != "incline_pct"]
    missing = [prefix + k for k in required if given[k] is None]
    if missing:
        have = ", ".join(prefix + k for k, v in given.items() if v is not None)
        problems.append(
            Problem(
                f"{where}, field {missing[0]}",
                f"is required with {have}"
                + (f"; also missing: {', '.join(missing[1:])}" if missing[1:] else ""),
            )
        )
        return None
    got: dict[str, Any] = {k: v for k, v in given.items() if v is not None}
    if kind == "walking":
        return WalkingDose(got["minutes"], got["speed_kmh"], got.get("incline_pct", 0.0))
    if kind == "cycling":
        return CyclingDose(got["minutes"], got["watts"])
    return ResistanceDose(got["kg"], int(got["sets"]), int(got["reps"]))


def _exercises(
    values: Mapping[str, Any], programme: Programme, where: str, problems: list[Problem], bad: set[str]
) -> tuple[ExerciseEntry, ...]:
    entries = []
    for eid in programme.exercise_ids():
        kind = programme.kind_of(eid)
        done = _dose(kind, values, f"{eid}_", where, problems, bad)
        prescribed = _dose(kind, values, f"{eid}_prescribed_", where, problems, bad)
        entries.append(
            ExerciseEntry(
                eid,
                kind,
                done,
                prescribed,
                values.get(f"{eid}_borg_dyspnoea"),
                values.get(f"{eid}_borg_fatigue"),
                values.get(f"{eid}_rpe"),
            )
        )
    return tuple(entries)


def _adverse(values: Mapping[str, Any], where: str, problems: list[Problem]) -> tuple[AdverseEventEntry, ...]:
    term = values.get("ae_term")
    details = [k for k in ("ae_serious", "ae_severity", "ae_related") if values.get(k) is not None]
    if not term:
        if details:
            problems.append(Problem(f"{where}, field ae_term", f"is required with {', '.join(details)}"))
        return ()
    missing = [k for k in ("ae_serious", "ae_severity", "ae_related") if values.get(k) is None]
    if missing:
        problems.append(
            Problem(
                f"{where}, field {missing[0]}",
                f"is required for adverse event {term!r} (missing: {', '.join(missing)})",
            )
        )
        return ()
    return (AdverseEventEntry(term, values["ae_serious"], values["ae_severity"], values["ae_related"]),)


def _consistency(
    entry_values: Mapping[str, Any], exercises: Sequence[ExerciseEntry], programme: Programme, where: str
) -> list[Problem]:
    problems = []
    attended = entry_values.get("attended", True)
    if not attended:
        logged = [e.exercise_id for e in exercises if e.done is not None]
        if logged:
            problems.append(
                Problem(
                    f"{where}, field attended",
                    f"is no, but exercise values are given for {', '.join(logged)}",
                )
            )
    stopped = entry_values.get("stopped_during")
    if stopped and stopped not in programme.exercise_ids():
        problems.append(
            Problem(
                f"{where}, field stopped_during",
                f"{stopped!r} is not an exercise of the programme; expected one of "
                f"{', '.join(programme.exercise_ids())}",
            )
        )
    if stopped and not entry_values.get("stop_criteria") and not _derived_stop_possible(entry_values):
        problems.append(
            Problem(
                f"{where}, field stopped_during", "is given but no stop criterion is recorded (stop_criteria)"
            )
        )
    return problems


def _derived_stop_possible(values: Mapping[str, Any]) -> bool:
    return values.get("spo2_lowest_pct") is not None or values.get("hr_peak_bpm") is not None


def parse_session_values(
    raw: Mapping[str, Any], programme: Programme, *, where: str, require_date: bool = True
) -> tuple[SessionEntry | None, list[Problem]]:
    """Validate one session's raw values; return (entry, problems) -- entry is None if any problem.

    Parameters
    ----------
    raw
        Field name -> raw value (text from a CSV cell or the command line, or typed).
        Empty cells are "not recorded". ``participant_id`` is ignored (the caller uses it).
    programme
        The participant's programme (exercise fields depend on it).
    where
        Prefix of every problem's location, e.g. ``"sessions.csv row 4"`` or ``"LEI-0001"``.
    """
    fields = all_fields(programme)
    problems: list[Problem] = []
    values: dict[str, Any] = {}
    bad: set[str] = set()
    for name, value in raw.items():
        if name == "participant_id":
            continue
        field = fields.get(name)
        if field is None and coerce.is_missing(value):
            continue  # a column of another programme's exercises (checked per file by the importer)
        if field is None:
            problems.append(
                Problem(
                    f"{where}, field {name}",
                    f"is not a session-log field of programme {programme.id!r}; see `immunorehab rehab "
                    "fields`",
                )
            )
            continue
        if coerce.is_missing(value):
            continue
        try:
            values[name] = typed_value(field, value)
        except ValueError as exc:
            bad.add(name)
            message = str(exc)
            if not message.startswith(field.label):
                message = f"{field.label}: {message}"
            problems.append(Problem(f"{where}, field {name}", message))
    if (
        require_date
        and "session_date" not in values
        and not any(p.location.endswith("session_date") for p in problems)
    ):
        problems.append(Problem(f"{where}, field session_date", "is required (YYYY-MM-DD)"))
    exercises = _exercises(values, programme, where, problems, bad)
    adverse = _adverse(values, where, problems)
    problems += _consistency(values, exercises, programme, where)
    if problems:
        return None, problems
    delivery = values.get("delivery")
    entry = SessionEntry(
        session_no=values.get("session_no"),
        session_date=values.get("session_date", dt.date.min),
        attended=values.get("attended", True),
        supervised=None if delivery is None else delivery == "supervised",
        education_attended=values.get("education_attended"),
        vitals={
            k: values.get(k)
            for k in (
                "hr_pre_bpm",
                "hr_peak_bpm",
                "hr_post_bpm",
                "spo2_pre_pct",
                "spo2_lowest_pct",
                "borg_dyspnoea",
                "borg_fatigue",
            )
        },
        rpe=values.get("rpe"),
        symptoms_pre=_symptoms(values, "pre"),
        symptoms_24h=_symptoms(values, "24h"),
        symptoms_48h=_symptoms(values, "48h"),
        crash_reported=values.get("crash_reported", False),
        red_flags=values.get("stop_criteria", ()),
        stopped_during=values.get("stopped_during"),
        exercises=exercises,
        adverse_events=adverse,
    )
    return entry, problems
