"""Cross-field checks of a rehabilitation programme (see :mod:`immunorehab.rehab.programme`).

Each function takes one validated section and returns ``(key path, message)`` pairs
relative to that section, so that problems of every valid section are reported together
with the field errors of the invalid ones.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from immunorehab.study._protocol_checks import Found

MODES: tuple[Literal["standard", "pacing"], ...] = ("standard", "pacing")

if TYPE_CHECKING:
    from immunorehab.rehab.programme import (
        Aerobic,
        Band,
        EducationTopic,
        HeartRateSpec,
        Programme,
        ProgressionRules,
        ResistanceSpec,
        SafetyLimits,
        SessionBlock,
        TrainingType,
    )


def _band(path: str, band: Band, low: float, high: float, *, whole: bool = False) -> Found:
    found: Found = []
    if band.low > band.high:
        found.append((f"{path}.low", f"must be <= high ({band.high:g}), got {band.low:g}"))
    for key, value in (("low", band.low), ("high", band.high)):
        if not low <= value <= high:
            found.append((f"{path}.{key}", f"must be from {low:g} to {high:g}, got {value:g}"))
        elif whole and not float(value).is_integer():
            found.append((f"{path}.{key}", f"must be a whole number, got {value:g}"))
    return found


def _at_most(found: Found, path: str, value: float, limit: float, limit_name: str) -> None:
    if value > limit + 1e-9:
        found.append((path, f"must be <= {limit_name} ({limit:g}), got {value:g}"))


def session_problems(blocks: list[SessionBlock]) -> Found:
    """Each block at most once; an aerobic and a resistance block are required."""
    found: Found = []
    names = [b.block for b in blocks]
    for i, name in enumerate(names):
        if name in names[:i]:
            found.append((f"[{i}].block", f"duplicate block {name!r}: each block appears once"))
    for needed in ("aerobic", "resistance"):
        if needed not in names:
            found.append(("", f"must include a {needed!r} block (the programme prescribes it)"))
    return found


def aerobic_problems(aerobic: Aerobic) -> Found:
    """Bands, floors <= starts <= targets <= caps, and pacing never more demanding than standard."""
    w = aerobic.walking
    found = _band("walking.borg_dyspnoea_target", w.borg_dyspnoea_target, 0, 10)
    _at_most(found, "walking.min_speed_kmh", w.min_speed_kmh, w.max_speed_kmh, "max_speed_kmh")
    _at_most(found, "walking.target_minutes", w.target_minutes, w.max_minutes, "max_minutes")
    for mode in MODES:
        spec = w.mode(mode)
        path = f"walking.{mode}"
        _at_most(found, f"{path}.start_minutes", spec.start_minutes, w.target_minutes, "target_minutes")
        if spec.start_minutes < w.min_minutes:
            found.append(
                (
                    f"{path}.start_minutes",
                    f"must be >= min_minutes ({w.min_minutes:g}), got {spec.start_minutes:g}",
                )
            )
        if spec.incline_step_pct > 0 and w.max_incline_pct == 0:
            found.append((f"{path}.incline_step_pct", "must be 0 when max_incline_pct is 0 (no incline)"))
    found += _pacing(
        "walking", w.standard, w.pacing, ("start_fraction", "start_minutes", "minutes_step", "speed_step_kmh")
    )
    c = aerobic.cycling
    if c is not None:
        found += _band("cycling.borg_dyspnoea_target", c.borg_dyspnoea_target, 0, 10)
        _at_most(found, "cycling.min_watts", c.min_watts, c.max_watts, "max_watts")
        _at_most(found, "cycling.target_minutes", c.target_minutes, c.max_minutes, "max_minutes")
        for mode in MODES:
            cm = c.mode(mode)
            path = f"cycling.{mode}"
            _at_most(found, f"{path}.start_watts", cm.start_watts, c.max_watts, "max_watts")
            _at_most(found, f"{path}.start_minutes", cm.start_minutes, c.target_minutes, "target_minutes")
            if cm.start_watts < c.min_watts:
                found.append(
                    (f"{path}.start_watts", f"must be >= min_watts ({c.min_watts:g}), got {cm.start_watts:g}")
                )
            if cm.start_minutes < c.min_minutes:
                found.append(
                    (
                        f"{path}.start_minutes",
                        f"must be >= min_minutes ({c.min_minutes:g}), got {cm.start_minutes:g}",
                    )
                )
        found += _pacing(
            "cycling", c.standard, c.pacing, ("start_watts", "start_minutes", "minutes_step", "watts_step")
        )
    return found


def _pacing(prefix: str, standard: object, pacing: object, keys: tuple[str, ...]) -> Found:
    """The pacing mode starts lower and progresses no faster than the standard mode."""
    found: Found = []
    for key in keys:
        lo, hi = getattr(pacing, key), getattr(standard, key)
        if lo > hi:
            found.append(
                (
                    f"{prefix}.pacing.{key}",
                    f"must be <= the standard mode's {key} ({hi:g}), got {lo:g}: symptom-titrated pacing "
                    "starts lower and progresses more slowly",
                )
            )
    return found


def _training(path: str, t: TrainingType, max_fraction: float) -> Found:
    found = _band(f"{path}.sets", t.sets, 1, 10, whole=True)
    found += _band(f"{path}.reps", t.reps, 1, 50, whole=True)
    found += _band(f"{path}.rpe_target", t.rpe_target, 6, 20)
    _at_most(found, f"{path}.start_fraction_1rm", t.start_fraction_1rm, max_fraction, "max_fraction_1rm")
    return found


def resistance_problems(spec: ResistanceSpec) -> Found:
    """Unique exercise ids (not walking/cycling), valid strength/endurance bands."""
    found = _training("strength", spec.strength, spec.max_fraction_1rm)
    found += _training("endurance", spec.endurance, spec.max_fraction_1rm)
    ids = [e.id for e in spec.exercises]
    for i, ex_id in enumerate(ids):
        if ex_id in ids[:i]:
            found.append((f"exercises[{i}].id", f"duplicate exercise id {ex_id!r}"))
        if ex_id in ("walking", "cycling"):
            found.append((f"exercises[{i}].id", f"{ex_id!r} is reserved for the aerobic block"))
    return found


def progression_problems(rules: ProgressionRules) -> Found:
    """Pacing advances no faster and rests no shorter than the standard mode."""
    found: Found = []
    for key in ("advance_after_sessions", "min_days_between_sessions"):
        lo, hi = getattr(rules.pacing, key), getattr(rules.standard, key)
        if lo < hi:
            found.append(
                (f"pacing.{key}", f"must be >= the standard mode's {key} ({hi}), got {lo}: pacing is slower")
            )
    return found


def safety_problems(safety: SafetyLimits) -> Found:
    found: Found = []
    for i, name in enumerate(safety.stop_on):
        if name in safety.stop_on[:i]:
            found.append((f"stop_on[{i}]", f"duplicate stop criterion {name!r}"))
    return found


def heart_rate_problems(spec: HeartRateSpec) -> Found:
    found = _band("band", spec.band, 0, 1)
    if spec.band.low <= 0:
        found.append(("band.low", f"must be > 0, got {spec.band.low:g}"))
    return found


def education_problems(education: list[EducationTopic], weeks: int) -> Found:
    """Every topic falls within the programme's weeks."""
    return [
        (f"[{i}].week", f"must be within the {weeks}-week programme, got {topic.week}")
        for i, topic in enumerate(education)
        if topic.week > weeks
    ]


def programme_problems(p: Programme) -> Found:
    """Checks across sections: arms, reachability of the walking target, blocks vs. content."""
    found: Found = []
    for i, arm in enumerate(p.programme.arms):
        if arm in p.programme.arms[:i]:
            found.append((f"programme.arms[{i}]", f"duplicate arm {arm!r}"))
    w = p.aerobic.walking
    advance_every = p.progression.standard.advance_after_sessions
    steps = (p.sessions_total - 1) // advance_every
    reach = w.standard.start_minutes + steps * w.standard.minutes_step
    if reach < w.target_minutes:
        needed = math.ceil((w.target_minutes - w.standard.start_minutes) / w.standard.minutes_step)
        found.append(
            (
                "aerobic.walking.standard.minutes_step",
                f"walking cannot build from {w.standard.start_minutes:g} to {w.target_minutes:g} min within "
                f"{p.sessions_total} sessions ({steps} advances of {w.standard.minutes_step:g} min reach "
                f"{reach:g} min; {needed} are needed)",
            )
        )
    blocks = [b.block for b in p.session]
    if p.aerobic.cycling is None and any(
        "cycl" in b.description.lower() for b in p.session if b.block == "aerobic"
    ):
        found.append(
            ("aerobic.cycling", "the session's aerobic block mentions cycling but no cycling is defined")
        )
    if p.education and "education" not in blocks:
        found.append(("session", "an education curriculum is given but the session has no 'education' block"))
    return found
