"""The baseline assessment a prescription is built from, read from the baseline visit's values.

The values are ordinary visit measures of the protocol (so they are entered, audited,
exported and blinded like any visit data). Measure ids:

===============================  ===========================================================
``iswt_distance_m``              ISWT distance, m (best of two)
``iswt_levels``                  ``"12"`` (standard) or ``"15"`` (modified, PHOSP-COVID CRF)
``iswt_last_level``              last completed ISWT level (0 if level 1 was not completed)
``eswt_time_s``                  ESWT endurance time, s
``mwt6_distance_m``              6-minute walk distance, m
``sts_1min_reps``                1-minute sit-to-stand repetitions
``sts_5rep_time_s``              5-repetition sit-to-stand time, s
``hr_rest_bpm``, ``spo2_rest_pct``  resting heart rate and SpO2
``rm_<exercise>_load_kg``        1RM test load, kg, for each resistance exercise
``rm_<exercise>_reps``           repetitions lifted with that load (1 when measured directly)
``rm_<exercise>_method``         ``measured``, ``brzycki`` or ``epley``
``dsq_pem_<i>_frequency``        DSQ-PEM item i (1-5) frequency, 0-4
``dsq_pem_<i>_severity``         DSQ-PEM item i (1-5) severity, 0-4
``dsq_pem_present``              the screen result as a yes/no (checked against the items)
===============================  ===========================================================

Age comes from the participant record (``age_years``).
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from immunorehab.errors import AssessmentError, Problem, RehabError, RehabWarning
from immunorehab.rehab.programme import Programme
from immunorehab.rehab.rules import (
    DSQ_PEM_ITEMS,
    PemScreen,
    dsq_pem_screen,
    estimate_1rm,
    iswt_completed_level,
    iswt_cumulative_distance,
)

__all__ = ["Assessment", "OneRm", "OneRmSource", "assessment_from_values", "one_rm_measure_ids"]

OneRmSource = Literal["measured", "brzycki", "epley"]
Value = float | int | str | bool | None


@dataclass(frozen=True, slots=True)
class OneRm:
    """A resistance exercise's 1RM: the test load and reps, the method, and the 1RM in kg."""

    exercise_id: str
    load_kg: float
    reps: int
    method: OneRmSource
    one_rm_kg: float

    def describe(self) -> str:
        if self.method == "measured":
            return f"1RM {self.one_rm_kg:g} kg (measured)"
        name = self.method.capitalize()
        return f"1RM {self.one_rm_kg:.1f} kg ({name} from {self.load_kg:g} kg x {self.reps})"


@dataclass(frozen=True, slots=True)
class Assessment:
    """A participant's baseline assessment (units in the names)."""

    participant_id: str
    assessed_on: dt.date | None
    age_years: int
    iswt_distance_m: float
    iswt_levels: int
    iswt_last_level: int | None
    eswt_time_s: float | None
    mwt6_distance_m: float | None
    sts_1min_reps: float | None
    sts_5rep_time_s: float | None
    hr_rest_bpm: float | None
    spo2_rest_pct: float | None
    one_rm: tuple[OneRm, ...]
    pem: PemScreen

    def one_rm_of(self, exercise_id: str) -> OneRm:
        for item in self.one_rm:
            if item.exercise_id == exercise_id:
                return item
        raise RehabError(f"no 1RM for exercise {exercise_id!r}")


def one_rm_measure_ids(exercise_id: str) -> tuple[str, str, str]:
    """The baseline measure ids holding an exercise's 1RM test: load, reps, method."""
    return (f"rm_{exercise_id}_load_kg", f"rm_{exercise_id}_reps", f"rm_{exercise_id}_method")


def _num(values: Mapping[str, Value], key: str) -> float | None:
    value = values.get(key)
    if value is None or isinstance(value, bool) or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _where(key: str) -> str:
    return f"baseline visit, measure {key}"


def _iswt(
    values: Mapping[str, Value], programme: Programme, problems: list[Problem]
) -> tuple[float, int, int | None]:
    distance = _num(values, "iswt_distance_m")
    version = values.get("iswt_levels")
    levels = int(str(version)) if version not in (None, "") else programme.assessment.iswt_levels
    if levels not in (12, 15):
        problems.append(Problem(_where("iswt_levels"), f"expected 12 or 15, got {version!r}"))
        levels = programme.assessment.iswt_levels
    last = _num(values, "iswt_last_level")
    if distance is None:
        problems.append(
            Problem(_where("iswt_distance_m"), "is required to prescribe walking (ISWT distance, m)")
        )
        return 0.0, levels, None
    top = iswt_cumulative_distance(levels, levels=levels)
    if distance > top:
        problems.append(
            Problem(
                _where("iswt_distance_m"),
                f"{distance:g} m exceeds the {levels}-level ISWT maximum of {top} m",
            )
        )
        return distance, levels, None
    if last is not None:
        expected = iswt_completed_level(distance, levels=levels)
        if int(last) != expected:
            low = iswt_cumulative_distance(int(last), levels=levels) if 0 <= last <= levels else None
            band = f" (level {int(last)} ends at {low} m)" if low is not None else ""
            problems.append(
                Problem(
                    _where("iswt_last_level"),
                    f"last completed level {int(last)} does not match the distance {distance:g} m, which "
                    f"completes level {expected} of the {levels}-level test{band}; check both values",
                )
            )
    return distance, levels, None if last is None else int(last)


def _one_rm(values: Mapping[str, Value], programme: Programme, problems: list[Problem]) -> tuple[OneRm, ...]:
    found: list[OneRm] = []
    max_reps = programme.assessment.one_rm_max_reps
    for exercise in programme.resistance.exercises:
        load_key, reps_key, method_key = one_rm_measure_ids(exercise.id)
        load, reps = _num(values, load_key), _num(values, reps_key)
        method = str(values.get(method_key) or "").strip().lower() or (
            "measured" if reps in (None, 1) else ""
        )
        if load is None or load <= 0:
            problems.append(
                Problem(
                    _where(load_key),
                    f"is required for {exercise.label} (1RM test load in kg > 0), got {load!r}",
                )
            )
            continue
        if method not in ("measured", "brzycki", "epley"):
            problems.append(
                Problem(_where(method_key), f"expected measured, brzycki or epley, got {method or None!r}")
            )
            continue
        n = 1 if reps is None else int(reps)
        if method == "measured" and n != 1:
            problems.append(
                Problem(
                    _where(reps_key),
                    f"a measured 1RM is one repetition, got {n}; or record the estimation method",
                )
            )
            continue
        if method != "measured" and not 1 <= n <= max_reps:
            problems.append(
                Problem(
                    _where(reps_key),
                    f"{method} 1RM estimates are used from 1 to {max_reps} repetitions (programme), got {n}",
                )
            )
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RehabWarning)  # reps are within the programme's limit
            one_rm = load if method == "measured" else estimate_1rm(load, n, method=method)  # type: ignore[arg-type]
        found.append(OneRm(exercise.id, load, n, method, one_rm))  # type: ignore[arg-type]
    return tuple(found)


def _pem(values: Mapping[str, Value], programme: Programme, problems: list[Problem]) -> PemScreen:
    n = len(DSQ_PEM_ITEMS)
    flat = [
        (key, _num(values, key))
        for i in range(1, n + 1)
        for key in (f"dsq_pem_{i}_frequency", f"dsq_pem_{i}_severity")
    ]
    missing = [key for key, value in flat if value is None]
    flag = values.get("dsq_pem_present")
    flag_bool = None if flag in (None, "") else str(flag).lower() in ("true", "1", "yes")
    if missing and len(missing) < len(flat):
        problems.append(
            Problem(_where(missing[0]), f"DSQ-PEM items are partly recorded: missing {', '.join(missing)}")
        )
        return PemScreen(bool(flag_bool), (), None, None, "flag")
    if not missing:
        ratings = [int(value or 0) for _, value in flat]
        screen = dsq_pem_screen(
            ratings[0::2],
            ratings[1::2],
            min_frequency=programme.pem.dsq_min_frequency,
            min_severity=programme.pem.dsq_min_severity,
        )
        if flag_bool is not None and flag_bool != screen.positive:
            problems.append(
                Problem(
                    _where("dsq_pem_present"),
                    f"recorded as {'yes' if flag_bool else 'no'} but the five items give "
                    f"{'positive' if screen.positive else 'negative'} ({screen.describe()}); correct one "
                    "of them",
                )
            )
        return screen
    if flag_bool is None:
        problems.append(
            Problem(_where("dsq_pem_present"), "the DSQ-PEM screen is required (items or yes/no)")
        )
        return PemScreen(False, (), None, None, "flag")
    return PemScreen(flag_bool, (), None, None, "flag")


def assessment_from_values(
    values: Mapping[str, Value],
    *,
    participant_id: str,
    age_years: int | None,
    programme: Programme,
    assessed_on: dt.date | None = None,
) -> Assessment:
    """Build the :class:`Assessment` from baseline visit values, or report every problem.

    Raises
    ------
    AssessmentError
        Something needed is missing or inconsistent (ISWT distance vs. last level, DSQ-PEM
        items vs. the yes/no flag, 1RM reps beyond the programme's limit, age, resting HR
        for a Karvonen band); ``problems`` lists each one.
    """
    problems: list[Problem] = []
    if age_years is None:
        problems.append(Problem("participant, field age_years", "is required for heart-rate limits"))
    distance, levels, last = _iswt(values, programme, problems)
    one_rm = _one_rm(values, programme, problems)
    pem = _pem(values, programme, problems)
    hr_rest = _num(values, "hr_rest_bpm")
    if programme.heart_rate is not None and programme.heart_rate.method == "karvonen" and hr_rest is None:
        problems.append(
            Problem(_where("hr_rest_bpm"), "is required for the Karvonen heart-rate band of this programme")
        )
    if problems:
        raise AssessmentError(
            f"{participant_id}: baseline assessment incomplete; nothing prescribed", problems
        )
    return Assessment(
        participant_id=participant_id,
        assessed_on=assessed_on,
        age_years=int(age_years or 0),
        iswt_distance_m=distance,
        iswt_levels=levels,
        iswt_last_level=last,
        eswt_time_s=_num(values, "eswt_time_s"),
        mwt6_distance_m=_num(values, "mwt6_distance_m"),
        sts_1min_reps=_num(values, "sts_1min_reps"),
        sts_5rep_time_s=_num(values, "sts_5rep_time_s"),
        hr_rest_bpm=hr_rest,
        spo2_rest_pct=_num(values, "spo2_rest_pct"),
        one_rm=one_rm,
        pem=pem,
    )
