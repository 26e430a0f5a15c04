"""Pure rules of the rehabilitation programme: ISWT, predicted VO2peak, walking speed, 1RM, HR, DSQ-PEM.

Every function takes plain numbers and returns new values (no store, no I/O). Sources
are in ``/work/shared/docs/domain.md``:

* A2 -- incremental shuttle walk test (ISWT, Singh 1992; ERS/ATS technical standard,
  Holland 2014): 10 m course, 1-minute levels, speed of level *n* is
  ``v = 0.50 + 0.17 (n - 1)`` m/s and level *n* has ``n + 2`` shuttles, so the
  cumulative distance at the end of levels 1..12 is 30, 70, ..., 1020 m. The PHOSP-COVID
  case report form uses a modified 15-level test (levels 13-15 at 2.54, 2.71 and
  2.88 m/s, 1500 m in all; derived by extending the same rule).
* A3 -- predicted ``VO2peak = 4.19 + 0.025 D`` ml/kg/min (Singh et al., Eur Respir J 1994)
  and the walking-speed algorithm: target ``f * VO2peak``, the ISWT distance ``D_t`` at
  which the equation predicts that VO2, and the ISWT level whose cumulative-distance band
  contains ``D_t``. Alternative: a fraction of the peak ISWT speed (Hill et al. 2012).
  Heart rate: ``HRmax = 220 - age``; Karvonen ``HRrest + p (HRmax - HRrest)``.
* A5 -- one-repetition maximum from a submaximal set: Brzycki ``w * 36 / (37 - r)``,
  Epley ``w * (1 + r / 30)``; they coincide at r = 10 and are valid for roughly r <= 10.
* A7 -- stop when HR exceeds 85% of the age-predicted maximum.
* A8 -- DSQ-PEM step 1 (Cotler et al. 2018): PEM is present when any of the five items
  has frequency >= 2 and severity >= 2 (each rated 0-4).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from immunorehab.errors import RehabError, RehabWarning

__all__ = [
    "DSQ_PEM_ITEMS",
    "ISWT_COURSE_M",
    "ISWT_FIRST_SPEED_M_S",
    "ISWT_SPEED_INCREMENT_M_S",
    "SINGH_INTERCEPT",
    "SINGH_SLOPE",
    "HeartRateBand",
    "HrMethod",
    "IswtLevels",
    "OneRmMethod",
    "PemScreen",
    "WalkingMethod",
    "WalkingSpeed",
    "age_predicted_hr_max",
    "dsq_pem_screen",
    "estimate_1rm",
    "floor_to_increment",
    "heart_rate_band",
    "hr_stop_limit",
    "iswt_completed_level",
    "iswt_cumulative_distance",
    "iswt_distance_for_vo2",
    "iswt_level_at_distance",
    "iswt_level_speed",
    "iswt_shuttles",
    "karvonen_hr",
    "kmh",
    "predicted_vo2peak",
    "walking_speed_from_iswt",
]

ISWT_FIRST_SPEED_M_S = 0.50
ISWT_SPEED_INCREMENT_M_S = 0.17
ISWT_COURSE_M = 10
SINGH_INTERCEPT = 4.19
SINGH_SLOPE = 0.025
#: The five DSQ-PEM items (Cotler et al., Diagnostics 2018; domain.md A8), paraphrased.
DSQ_PEM_ITEMS: tuple[str, ...] = (
    "dead, heavy feeling after starting to exercise",
    "next-day soreness or fatigue after non-strenuous, everyday activities",
    "mentally tired after the slightest effort",
    "minimum exercise makes you physically tired",
    "physically drained or sick after mild activity",
)

IswtLevels = Literal[12, 15]
OneRmMethod = Literal["brzycki", "epley"]
HrMethod = Literal["karvonen", "percent_hr_max"]
WalkingMethod = Literal["singh_vo2peak_fraction", "iswt_peak_speed_fraction"]
_LEVELS = (12, 15)


def _finite(value: float, name: str, *, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RehabError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise RehabError(f"{name} must be >= {minimum:g}, got {value!r}")
    return float(value)


def _check_levels(levels: int) -> None:
    if levels not in _LEVELS:
        raise RehabError(f"the ISWT has 12 levels (standard) or 15 (modified), got levels={levels!r}")


def _check_level(level: int, levels: int, *, allow_zero: bool = False) -> None:
    _check_levels(levels)
    low = 0 if allow_zero else 1
    if isinstance(level, bool) or not isinstance(level, int) or not low <= level <= levels:
        raise RehabError(f"ISWT level must be a whole number from {low} to {levels}, got {level!r}")


def iswt_level_speed(level: int, *, levels: int = 12) -> float:
    """Walking speed of an ISWT level.

    Parameters
    ----------
    level
        Level number, 1..``levels``.
    levels
        12 (standard test) or 15 (modified test of the PHOSP-COVID CRF).

    Returns
    -------
    float
        Speed in m/s, ``0.50 + 0.17 (level - 1)`` rounded to 0.01 m/s.

    Examples
    --------
    >>> iswt_level_speed(5)
    1.18
    >>> iswt_level_speed(15, levels=15)
    2.88
    """
    _check_level(level, levels)
    return round(ISWT_FIRST_SPEED_M_S + ISWT_SPEED_INCREMENT_M_S * (level - 1), 2)


def iswt_shuttles(level: int, *, levels: int = 12) -> int:
    """Number of 10 m shuttles in an ISWT level (``level + 2``)."""
    _check_level(level, levels)
    return level + 2


def iswt_cumulative_distance(level: int, *, levels: int = 12) -> int:
    """Distance walked in metres at the end of ``level`` (0 before level 1).

    Examples
    --------
    >>> [iswt_cumulative_distance(n) for n in (1, 5, 12)]
    [30, 250, 1020]
    """
    _check_level(level, levels, allow_zero=True)
    return ISWT_COURSE_M * (level * (level + 1) // 2 + 2 * level)


def iswt_level_at_distance(distance_m: float, *, levels: int = 12) -> int:
    """The level whose cumulative-distance band ``(end of level n-1, end of level n]`` holds ``distance_m``.

    A distance of 0 m falls into level 1 (the walk starts there).

    Raises
    ------
    RehabError
        Negative distance, or more than the test's maximum (1020 m or 1500 m).
    """
    distance = _finite(distance_m, "ISWT distance (m)", minimum=0.0)
    _check_levels(levels)
    top = iswt_cumulative_distance(levels, levels=levels)
    if distance > top:
        raise RehabError(f"ISWT distance {distance:g} m exceeds the {levels}-level test maximum of {top} m")
    level = 1
    while iswt_cumulative_distance(level, levels=levels) < distance:
        level += 1
    return level


def iswt_completed_level(distance_m: float, *, levels: int = 12) -> int:
    """The last level fully completed when the walk ended at ``distance_m`` (0 if none)."""
    distance = _finite(distance_m, "ISWT distance (m)", minimum=0.0)
    _check_levels(levels)
    level = 0
    while level < levels and iswt_cumulative_distance(level + 1, levels=levels) <= distance:
        level += 1
    return level


def predicted_vo2peak(
    iswt_distance_m: float, *, intercept: float = SINGH_INTERCEPT, slope: float = SINGH_SLOPE
) -> float:
    """Peak oxygen uptake predicted from the ISWT distance (Singh et al. 1994).

    ``VO2peak = 4.19 + 0.025 * D`` ml/kg/min (domain.md A3); in COPD the equation
    under-estimates measured VO2peak by about 4.4 ml/kg/min (Hill et al. 2012).

    Parameters
    ----------
    iswt_distance_m
        ISWT distance D in metres (>= 0).
    intercept, slope
        The equation's constants (a programme file may cite others).

    Returns
    -------
    float
        Predicted VO2peak in ml/kg/min.

    Examples
    --------
    >>> round(predicted_vo2peak(300), 2)
    11.69
    """
    distance = _finite(iswt_distance_m, "ISWT distance (m)", minimum=0.0)
    return intercept + slope * distance


def iswt_distance_for_vo2(
    vo2_ml_kg_min: float, *, intercept: float = SINGH_INTERCEPT, slope: float = SINGH_SLOPE
) -> float:
    """The ISWT distance (m) at which the Singh equation predicts ``vo2_ml_kg_min`` (may be < 0)."""
    vo2 = _finite(vo2_ml_kg_min, "VO2 (ml/kg/min)")
    return (vo2 - intercept) / slope


def kmh(speed_m_s: float) -> float:
    """Metres per second to kilometres per hour."""
    return speed_m_s * 3.6


@dataclass(frozen=True, slots=True)
class WalkingSpeed:
    """A walking speed derived from the ISWT, with every intermediate value (for the record).

    ``level`` is the ISWT level whose speed is prescribed (Singh method) or the level at
    which the test ended (peak-speed method). VO2 values are in ml/kg/min, distances in m.
    """

    method: WalkingMethod
    fraction: float
    iswt_distance_m: float
    iswt_levels: int
    predicted_vo2peak: float | None
    target_vo2: float | None
    target_distance_m: float | None
    level: int
    speed_m_s: float

    @property
    def speed_kmh(self) -> float:
        return kmh(self.speed_m_s)

    def describe(self) -> str:
        """The derivation in one line, e.g. for a prescription card."""
        if self.method == "singh_vo2peak_fraction":
            return (
                f"ISWT {self.iswt_distance_m:g} m -> predicted VO2peak {self.predicted_vo2peak:.2f} "
                f"ml/kg/min (Singh 1994) -> {self.fraction:.0%} = {self.target_vo2:.2f} -> equivalent "
                f"ISWT distance {self.target_distance_m:.0f} m -> level {self.level} of {self.iswt_levels} "
                f"-> {self.speed_m_s:.2f} m/s ({self.speed_kmh:.2f} km/h)"
            )
        return (
            f"ISWT {self.iswt_distance_m:g} m ended in level {self.level} of {self.iswt_levels} "
            f"({iswt_level_speed(self.level, levels=self.iswt_levels):.2f} m/s) -> {self.fraction:.0%} "
            f"of peak speed = {self.speed_m_s:.2f} m/s ({self.speed_kmh:.2f} km/h)"
        )


def walking_speed_from_iswt(
    distance_m: float,
    fraction: float,
    *,
    levels: int = 12,
    method: WalkingMethod = "singh_vo2peak_fraction",
    intercept: float = SINGH_INTERCEPT,
    slope: float = SINGH_SLOPE,
) -> WalkingSpeed:
    """Training walking speed from the ISWT distance (domain.md A3).

    ``singh_vo2peak_fraction``: ``vo2pk = a + b D``; ``target = f vo2pk``;
    ``D_t = (target - a) / b``; speed = the ISWT level speed whose cumulative-distance band
    contains ``D_t`` (level 1 when ``D_t <= 0``). ``iswt_peak_speed_fraction``: ``f`` times the
    speed of the level in which the test ended (Hill et al. 2012 use f = 0.85).

    Examples
    --------
    >>> w = walking_speed_from_iswt(300, 0.85)
    >>> (w.level, w.speed_m_s, round(w.speed_kmh, 2))
    (5, 1.18, 4.25)
    """
    distance = _finite(distance_m, "ISWT distance (m)", minimum=0.0)
    f = _finite(fraction, "target fraction")
    if not 0.0 < f <= 1.0:
        raise RehabError(f"target fraction must be in (0, 1], got {fraction!r}")
    peak_level = iswt_level_at_distance(distance, levels=levels)
    if method == "iswt_peak_speed_fraction":
        speed = round(f * iswt_level_speed(peak_level, levels=levels), 3)
        return WalkingSpeed(method, f, distance, levels, None, None, None, peak_level, speed)
    vo2pk = predicted_vo2peak(distance, intercept=intercept, slope=slope)
    target = f * vo2pk
    target_distance = iswt_distance_for_vo2(target, intercept=intercept, slope=slope)
    level = iswt_level_at_distance(max(target_distance, 0.0), levels=levels)
    speed = iswt_level_speed(level, levels=levels)
    return WalkingSpeed(method, f, distance, levels, vo2pk, target, target_distance, level, speed)


# -- resistance ---------------------------------------------------------------------------


def estimate_1rm(load_kg: float, reps: int, *, method: OneRmMethod) -> float:
    """One-repetition maximum estimated from ``reps`` repetitions lifted with ``load_kg``.

    Brzycki ``1RM = w * 36 / (37 - r)`` (undefined for r >= 37); Epley
    ``1RM = w * (1 + r / 30)``. A single repetition is itself the 1RM, so ``reps = 1``
    returns ``load_kg`` for both (Epley's formula would give 1.033 w). Estimates from more
    than 10 repetitions are returned with a :class:`~immunorehab.errors.RehabWarning`
    (the equations are validated for roughly r <= 10; domain.md A5).

    Parameters
    ----------
    load_kg
        Load lifted, kg (> 0).
    reps
        Repetitions completed with good form (>= 1).
    method
        ``"brzycki"`` or ``"epley"``.

    Returns
    -------
    float
        Estimated 1RM in kg.

    Examples
    --------
    >>> estimate_1rm(100, 5, method="brzycki")
    112.5
    >>> round(estimate_1rm(100, 5, method="epley"), 2)
    116.67
    """
    load = _finite(load_kg, "load (kg)")
    if load <= 0:
        raise RehabError(f"load must be > 0 kg, got {load_kg!r}")
    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise RehabError(f"repetitions must be a whole number >= 1, got {reps!r}")
    if method not in ("brzycki", "epley"):
        raise RehabError(f"1RM method must be 'brzycki' or 'epley', got {method!r}")
    if method == "brzycki" and reps >= 37:
        raise RehabError(f"the Brzycki equation is undefined for 37 or more repetitions, got {reps}")
    if reps > 10:
        warnings.warn(
            f"1RM estimated from {reps} repetitions: the {method} equation is validated for about "
            "10 or fewer; test with a heavier load",
            RehabWarning,
            stacklevel=2,
        )
    if reps == 1:
        return load
    if method == "brzycki":
        return load * 36.0 / (37.0 - reps)
    return load * (1.0 + reps / 30.0)


def floor_to_increment(value: float, increment: float) -> float:
    """``value`` rounded DOWN to a multiple of ``increment`` (a load never rounds up past a cap)."""
    if increment <= 0:
        raise RehabError(f"increment must be > 0, got {increment!r}")
    steps = math.floor(value / increment + 1e-9)
    return round(max(steps, 0) * increment, 6)


# -- heart rate ---------------------------------------------------------------------------


def age_predicted_hr_max(age_years: float) -> float:
    """``220 - age`` beats per minute (domain.md A3)."""
    age = _finite(age_years, "age (years)")
    if not 0 < age <= 120:
        raise RehabError(f"age must be 1-120 years, got {age_years!r}")
    return 220.0 - age


def karvonen_hr(hr_rest_bpm: float, hr_max_bpm: float, fraction: float) -> float:
    """Karvonen target heart rate ``HRrest + fraction (HRmax - HRrest)`` in bpm."""
    rest = _finite(hr_rest_bpm, "resting HR (bpm)")
    top = _finite(hr_max_bpm, "maximal HR (bpm)")
    if rest >= top:
        raise RehabError(f"resting HR {rest:g} bpm must be below the maximal HR {top:g} bpm")
    return rest + fraction * (top - rest)


def hr_stop_limit(age_years: float, fraction: float = 0.85) -> float:
    """HR above which exercise stops: ``fraction`` of the age-predicted maximum (ACSM; domain.md A7)."""
    return fraction * age_predicted_hr_max(age_years)


@dataclass(frozen=True, slots=True)
class HeartRateBand:
    """A target heart-rate band in bpm and how it was derived."""

    method: HrMethod
    low_fraction: float
    high_fraction: float
    hr_max_bpm: float
    hr_rest_bpm: float | None
    low_bpm: float
    high_bpm: float

    def describe(self) -> str:
        if self.method == "karvonen":
            return (
                f"Karvonen {self.low_fraction:.0%}-{self.high_fraction:.0%} of HR reserve "
                f"(rest {self.hr_rest_bpm:g}, max 220-age = {self.hr_max_bpm:g}): "
                f"{self.low_bpm:.0f}-{self.high_bpm:.0f} bpm"
            )
        return (
            f"{self.low_fraction:.0%}-{self.high_fraction:.0%} of age-predicted HRmax "
            f"{self.hr_max_bpm:g}: {self.low_bpm:.0f}-{self.high_bpm:.0f} bpm"
        )


def heart_rate_band(
    age_years: float,
    low_fraction: float,
    high_fraction: float,
    *,
    method: HrMethod,
    hr_rest_bpm: float | None = None,
) -> HeartRateBand:
    """Target HR band from age (and resting HR for Karvonen).

    Raises
    ------
    RehabError
        Fractions not ``0 < low <= high <= 1``, or Karvonen without a resting HR.
    """
    if not 0 < low_fraction <= high_fraction <= 1:
        raise RehabError(
            f"HR band fractions must satisfy 0 < low <= high <= 1, got {low_fraction}, {high_fraction}"
        )
    hr_max = age_predicted_hr_max(age_years)
    if method == "karvonen":
        if hr_rest_bpm is None:
            raise RehabError("the Karvonen method needs the resting heart rate")
        low = karvonen_hr(hr_rest_bpm, hr_max, low_fraction)
        high = karvonen_hr(hr_rest_bpm, hr_max, high_fraction)
        return HeartRateBand(method, low_fraction, high_fraction, hr_max, float(hr_rest_bpm), low, high)
    return HeartRateBand(
        method,
        low_fraction,
        high_fraction,
        hr_max,
        hr_rest_bpm,
        low_fraction * hr_max,
        high_fraction * hr_max,
    )


# -- post-exertional malaise ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PemScreen:
    """Result of the DSQ-PEM step-1 screen.

    ``items`` are the 1-based items meeting the rule; ``source`` says whether the five
    item ratings or only a recorded yes/no flag were available.
    """

    positive: bool
    items: tuple[int, ...]
    frequency: tuple[int, ...] | None
    severity: tuple[int, ...] | None
    source: Literal["items", "flag"]

    def describe(self) -> str:
        if self.source == "flag":
            result = "positive" if self.positive else "negative"
            return f"DSQ-PEM screen recorded as {result} (items not recorded)"
        if not self.positive:
            return "DSQ-PEM negative: no item with frequency >= 2 and severity >= 2"
        listed = ", ".join(
            f"item {i} (frequency {self.frequency[i - 1]}, severity {self.severity[i - 1]})"  # type: ignore[index]
            for i in self.items
        )
        return f"DSQ-PEM positive: {listed}"


def dsq_pem_screen(
    frequency: Sequence[int], severity: Sequence[int], *, min_frequency: int = 2, min_severity: int = 2
) -> PemScreen:
    """DSQ-PEM step 1: PEM present when any item has frequency >= 2 AND severity >= 2.

    Parameters
    ----------
    frequency, severity
        The five items' ratings, each 0-4 (0 none of the time / no symptom .. 4 all of the
        time / very severe), in questionnaire order.

    Examples
    --------
    >>> dsq_pem_screen([2, 0, 0, 0, 0], [2, 0, 0, 0, 0]).positive
    True
    >>> dsq_pem_screen([4, 1, 0, 0, 0], [1, 4, 0, 0, 0]).positive
    False
    """
    n = len(DSQ_PEM_ITEMS)
    if len(frequency) != n or len(severity) != n:
        raise RehabError(
            f"DSQ-PEM needs {n} frequency and {n} severity ratings, got {len(frequency)} and {len(severity)}"
        )
    for name, ratings in (("frequency", frequency), ("severity", severity)):
        for i, value in enumerate(ratings, start=1):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
                raise RehabError(f"DSQ-PEM item {i} {name} must be a whole number 0-4, got {value!r}")
    items = tuple(
        i
        for i, (f, s) in enumerate(zip(frequency, severity, strict=True), start=1)
        if f >= min_frequency and s >= min_severity
    )
    return PemScreen(bool(items), items, tuple(frequency), tuple(severity), "items")
