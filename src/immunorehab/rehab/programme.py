"""The rehabilitation programme as a YAML file, validated into frozen pydantic models.

A programme declares the schedule (weeks, supervised sessions per week, completer
definition), the session structure, the prescription rules and their constants
(walking from the ISWT, cycling titrated to Borg CR10, resistance from 1RM, HR band),
the progression rules of the standard and the symptom-titrated pacing mode, the PEM/PESE
rules, the safety limits and the education curriculum. Every model forbids unknown keys
and is strict (``minutes: "10"`` is an error, not 10).

:func:`load_programme` / :func:`parse_programme` report *every* problem of a file in one
:class:`~immunorehab.errors.ProgrammeError`, each located as ``"<file>: <key path>"``
(e.g. ``aerobic.walking.standard.start_fraction``), like the protocol loader.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from immunorehab.errors import NotFoundError, Problem, ProgrammeError
from immunorehab.rehab import _programme_checks as checks
from immunorehab.rehab.rules import HrMethod, IswtLevels, WalkingMethod
from immunorehab.study import _protocol_checks as pchecks

__all__ = [
    "STOP_CRITERIA",
    "Band",
    "CyclingMode",
    "CyclingSpec",
    "EducationTopic",
    "ExerciseKind",
    "HeartRateSpec",
    "Mode",
    "ModeRules",
    "PemRules",
    "Programme",
    "ProgressionRules",
    "ResistanceExercise",
    "ResistanceSpec",
    "SafetyLimits",
    "Schedule",
    "SessionBlock",
    "StopCriterion",
    "TrainingType",
    "WalkingMode",
    "WalkingSpec",
    "default_programme_paths",
    "load_programme",
    "parse_programme",
]

Mode = Literal["standard", "pacing"]
ExerciseKind = Literal["walking", "cycling", "resistance"]
Training = Literal["strength", "endurance"]
#: In-session stop criteria (domain.md A7). The first two are derived from the logged
#: values (SpO2 below the floor, HR above the limit); the others are reported red flags.
StopCriterion = Literal[
    "spo2_below_floor",
    "hr_above_limit",
    "chest_pain",
    "dizziness",
    "syncope",
    "palpitations",
    "pallor_cyanosis",
    "marked_dyspnoea",
    "participant_request",
    "other_red_flag",
]
STOP_CRITERIA: tuple[str, ...] = StopCriterion.__args__  # type: ignore[attr-defined]
Slug = Annotated[str, Field(pattern=pchecks.SLUG_PATTERN)]
Positive = Annotated[float, Field(gt=0)]
NonNegative = Annotated[float, Field(ge=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]


class _Model(BaseModel):
    """Base of the programme models: immutable, strict, unknown keys rejected."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Band(_Model):
    """An inclusive target range ``low..high`` (Borg CR10, RPE 6-20, sets, reps or fractions)."""

    low: float
    high: float

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high


class ProgrammeInfo(_Model):
    """Identity: slug id, title, version, delivery and the protocol arms that receive it."""

    id: Slug
    title: str
    version: str
    delivery: Literal["supervised", "remote"]
    arms: list[Slug] = Field(min_length=1)
    description: str | None = None


class Schedule(_Model):
    """Length, frequency, completer definition; sessions up to ``grace_days`` after week N count."""

    weeks: Annotated[int, Field(ge=1, le=52)]
    sessions_per_week: Annotated[int, Field(ge=1, le=7)]
    completer_min_fraction: Fraction
    grace_days: Annotated[int, Field(ge=0, le=56)] = 14


class SessionBlock(_Model):
    """One block of a session, in order."""

    block: Literal["warm_up", "aerobic", "resistance", "cool_down", "education"]
    minutes: Annotated[int, Field(ge=1, le=180)] | None = None
    description: str


class AssessmentRules(_Model):
    """Baseline-test conventions: default ISWT version, most repetitions a 1RM estimate may use."""

    iswt_levels: IswtLevels = 15
    one_rm_max_reps: Annotated[int, Field(ge=1, le=12)] = 10


class LinearEquation(_Model):
    """``VO2peak = intercept + slope * ISWT distance`` (Singh 1994: 4.19, 0.025)."""

    intercept: float
    slope: Positive


class WalkingMode(_Model):
    """Starting dose and step sizes of treadmill walking in one mode."""

    start_fraction: Fraction
    start_minutes: Positive
    minutes_step: Positive
    speed_step_kmh: Positive
    incline_step_pct: NonNegative = 0.0


class WalkingSpec(_Model):
    """Walking prescribed from the ISWT (domain.md A3)."""

    method: WalkingMethod
    vo2peak_equation: LinearEquation
    target_minutes: Positive
    borg_dyspnoea_target: Band
    min_minutes: Positive
    max_minutes: Positive
    min_speed_kmh: Positive
    max_speed_kmh: Positive
    max_speed_fraction_of_iswt_peak: Annotated[float, Field(gt=0, le=1.5)] = 1.0
    max_incline_pct: NonNegative = 0.0
    standard: WalkingMode
    pacing: WalkingMode

    def mode(self, mode: Mode) -> WalkingMode:
        return self.standard if mode == "standard" else self.pacing


class CyclingMode(_Model):
    """Starting dose and step sizes of cycling in one mode."""

    start_watts: NonNegative
    start_minutes: Positive
    minutes_step: Positive
    watts_step: Positive


class CyclingSpec(_Model):
    """Cycle ergometer work titrated to the Borg CR10 dyspnoea target (Patel 2021; domain.md A3)."""

    target_minutes: Positive
    borg_dyspnoea_target: Band
    min_minutes: Positive
    max_minutes: Positive
    min_watts: NonNegative
    max_watts: Positive
    standard: CyclingMode
    pacing: CyclingMode

    def mode(self, mode: Mode) -> CyclingMode:
        return self.standard if mode == "standard" else self.pacing


class TrainingType(_Model):
    """Strength or endurance resistance training (Harefield; domain.md A5)."""

    start_fraction_1rm: Fraction
    sets: Band
    reps: Band
    reps_step: Annotated[int, Field(ge=1)]
    load_step_fraction: Fraction
    rpe_target: Band


class ResistanceExercise(_Model):
    """One resistance exercise; its 1RM comes from baseline measures ``rm_<id>_*``."""

    id: Slug
    label: str
    training: Training
    equipment: str | None = None


class ResistanceSpec(_Model):
    """Resistance block: loads from 1RM, smallest load change, caps, pacing start scale."""

    load_increment_kg: Positive
    max_fraction_1rm: Fraction
    pacing_start_scale: Fraction
    strength: TrainingType
    endurance: TrainingType
    exercises: list[ResistanceExercise] = Field(min_length=1)

    def training(self, kind: Training) -> TrainingType:
        return self.strength if kind == "strength" else self.endurance


class Aerobic(_Model):
    walking: WalkingSpec
    cycling: CyclingSpec | None = None


class ModeRules(_Model):
    """How fast a mode progresses and how long recovery between sessions must be."""

    advance_after_sessions: Annotated[int, Field(ge=1, le=10)]
    min_days_between_sessions: Annotated[int, Field(ge=0, le=14)]


class ProgressionRules(_Model):
    """Thresholds deciding advance / hold / step back."""

    standard: ModeRules
    pacing: ModeRules
    step_back_below_completion: Fraction
    step_back_borg_at_or_above: Annotated[float, Field(ge=0, le=10)]
    step_back_rpe_at_or_above: Annotated[int, Field(ge=6, le=20)]
    require_24h_followup: bool = True

    def mode(self, mode: Mode) -> ModeRules:
        return self.standard if mode == "standard" else self.pacing


class PemRules(_Model):
    """DSQ-PEM screen thresholds and the PESE rule (domain.md A8)."""

    dsq_min_frequency: Annotated[int, Field(ge=0, le=4)] = 2
    dsq_min_severity: Annotated[int, Field(ge=0, le=4)] = 2
    pese_min_rise: Annotated[int, Field(ge=1, le=10)]
    pese_pacing_sessions: Annotated[int, Field(ge=1, le=40)]
    pese_minutes_fraction: Annotated[float, Field(gt=0, lt=1)]


class SafetyLimits(_Model):
    """In-session stop rules (domain.md A7)."""

    spo2_floor_pct: Annotated[float, Field(ge=70, le=100)]
    hr_limit_fraction_of_max: Fraction
    stop_on: list[StopCriterion] = Field(min_length=1)


class HeartRateSpec(_Model):
    """Target HR band (fractions of HR reserve for Karvonen, of HRmax otherwise)."""

    method: HrMethod
    band: Band


class EducationTopic(_Model):
    week: Annotated[int, Field(ge=1)]
    topic: str
    source: str | None = None


class Programme(_Model):
    """A validated rehabilitation programme. Build it with :func:`load_programme`."""

    programme: ProgrammeInfo
    schedule: Schedule
    session: list[SessionBlock] = Field(min_length=1)
    assessment: AssessmentRules = AssessmentRules()
    aerobic: Aerobic
    resistance: ResistanceSpec
    progression: ProgressionRules
    pem: PemRules
    safety: SafetyLimits
    heart_rate: HeartRateSpec | None = None
    education: list[EducationTopic] = Field(default_factory=list)

    @property
    def id(self) -> str:
        return self.programme.id

    @property
    def sessions_total(self) -> int:
        return self.schedule.weeks * self.schedule.sessions_per_week

    def exercise_ids(self) -> list[str]:
        """Every exercise in session order: walking, cycling (if any), then resistance."""
        ids = ["walking"] + (["cycling"] if self.aerobic.cycling is not None else [])
        return ids + [e.id for e in self.resistance.exercises]

    def kind_of(self, exercise_id: str) -> ExerciseKind:
        if exercise_id in ("walking", "cycling") and exercise_id in self.exercise_ids():
            return exercise_id  # type: ignore[return-value]
        if any(e.id == exercise_id for e in self.resistance.exercises):
            return "resistance"
        raise NotFoundError(
            f"programme {self.id!r} has no exercise {exercise_id!r} (exercises: "
            f"{', '.join(self.exercise_ids())})"
        )

    def exercise(self, exercise_id: str) -> ResistanceExercise:
        for e in self.resistance.exercises:
            if e.id == exercise_id:
                return e
        raise NotFoundError(f"programme {self.id!r} has no resistance exercise {exercise_id!r}")

    def topic_of_week(self, week: int) -> str | None:
        return next((t.topic for t in self.education if t.week == week), None)

    def canonical_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))

    def sha256(self) -> str:
        """Hex SHA-256 of the canonical JSON (independent of YAML layout)."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


# -- loading -----------------------------------------------------------------------------


def _section_checks() -> dict[str, tuple[type[BaseModel] | None, Callable[[Any], pchecks.Found]]]:
    return {
        "schedule": (Schedule, lambda m: []),
        "session": (None, checks.session_problems),
        "aerobic": (Aerobic, checks.aerobic_problems),
        "resistance": (ResistanceSpec, checks.resistance_problems),
        "progression": (ProgressionRules, checks.progression_problems),
        "safety": (SafetyLimits, checks.safety_problems),
        "heart_rate": (HeartRateSpec, checks.heart_rate_problems),
    }


def _read_yaml(text: str, source: str) -> object:
    import yaml

    from immunorehab.study.protocol import _UniqueKeyLoader

    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}: line {mark.line + 1}, column {mark.column + 1}" if mark else source
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        raise ProgrammeError(f"{source} is not valid YAML", [Problem(where, what)]) from exc
    except yaml.YAMLError as exc:
        raise ProgrammeError(f"{source} is not valid YAML", [Problem(source, str(exc))]) from exc


def _semantic(raw: dict[str, Any]) -> pchecks.Found:
    """Cross-field checks of every section that is itself valid (so all are reported at once)."""
    found: pchecks.Found = []
    for key, (model, check) in _section_checks().items():
        node = raw.get(key)
        if node is None:
            continue
        try:
            value: object
            if model is None:
                value = [SessionBlock.model_validate(item) for item in node]
            else:
                value = model.model_validate(node)
        except (ValidationError, TypeError):
            continue  # field errors are reported by the whole-model validation
        found += [(pchecks.join(key, path), message) for path, message in check(value)]
    found += _education(raw)
    return found


def _education(raw: dict[str, Any]) -> pchecks.Found:
    schedule = raw.get("schedule")
    weeks = schedule.get("weeks") if isinstance(schedule, dict) else None
    if not isinstance(weeks, int) or isinstance(weeks, bool) or weeks < 1:
        return []  # the schedule's own error is reported
    try:
        topics = [EducationTopic.model_validate(t) for t in raw.get("education") or []]
    except (ValidationError, TypeError):
        return []
    return [(pchecks.join("education", path), msg) for path, msg in checks.education_problems(topics, weeks)]


def parse_programme(text: str, source: str = "<programme>") -> Programme:
    """Parse and validate programme YAML.

    Parameters
    ----------
    text
        The YAML document.
    source
        Name used in problem locations (usually the file path).

    Returns
    -------
    Programme
        The validated programme.

    Raises
    ------
    ProgrammeError
        Invalid YAML (line and column) or an invalid programme; ``problems`` lists every
        problem found, each located as ``"<source>: <key path>"``.
    """
    raw = _read_yaml(text, source)
    if not isinstance(raw, dict):
        got = "an empty document" if raw is None else pchecks.show(raw)
        expected = ", ".join(Programme.model_fields)
        raise ProgrammeError(
            f"{source} is not a programme",
            [Problem(source, f"must be a YAML mapping with keys {expected}, got {got}")],
        )
    found: dict[tuple[str, str], None] = {}
    programme: Programme | None = None
    try:
        programme = Programme.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            found[pchecks.translate(error, raw, Programme)] = None
    found.update(dict.fromkeys(_semantic(raw)))
    if programme is not None:
        found.update(dict.fromkeys(checks.programme_problems(programme)))
    if found or programme is None:
        problems = [Problem(f"{source}: {path}" if path else source, msg) for path, msg in found]
        noun = "problem" if len(problems) == 1 else "problems"
        raise ProgrammeError(f"{source}: invalid programme ({len(problems)} {noun})", problems)
    return programme


def load_programme(path: str | os.PathLike[str]) -> Programme:
    """Read and validate a programme YAML file (see :func:`parse_programme`)."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ProgrammeError(
            f"programme file {file} not found", [Problem(str(file), "file does not exist; check the path")]
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgrammeError(
            f"programme file {file} cannot be read",
            [Problem(str(file), f"cannot be read as UTF-8 text: {exc}")],
        ) from exc
    return parse_programme(text, str(file))


def default_programme_paths() -> list[Path]:
    """The shipped programmes (package data): PHOSP-R-style face-to-face and remote."""
    folder = resources.files("immunorehab") / "data" / "programmes"
    return sorted(Path(str(folder / name)) for name in ("phosp_r_face_to_face.yaml", "phosp_r_remote.yaml"))
