"""Rehabilitation: programme files, individual prescription, session log, PEM-safe progression, adherence.

Pure rules (no database) are public API::

    >>> from immunorehab.rehab import iswt_level_speed, predicted_vo2peak, estimate_1rm
    >>> iswt_level_speed(5)
    1.18
    >>> round(predicted_vo2peak(300), 2)
    11.69
    >>> estimate_1rm(100, 5, method="brzycki")
    112.5

Store-facing functions live in :mod:`immunorehab.rehab.service`,
:mod:`immunorehab.rehab.logbook` and :mod:`immunorehab.rehab.reports`.
"""

from __future__ import annotations

from immunorehab.rehab.rules import (
    DSQ_PEM_ITEMS,
    HeartRateBand,
    PemScreen,
    WalkingSpeed,
    age_predicted_hr_max,
    dsq_pem_screen,
    estimate_1rm,
    heart_rate_band,
    hr_stop_limit,
    iswt_completed_level,
    iswt_cumulative_distance,
    iswt_distance_for_vo2,
    iswt_level_at_distance,
    iswt_level_speed,
    iswt_shuttles,
    karvonen_hr,
    predicted_vo2peak,
    walking_speed_from_iswt,
)

__all__ = [
    "DSQ_PEM_ITEMS",
    "HeartRateBand",
    "PemScreen",
    "WalkingSpeed",
    "age_predicted_hr_max",
    "dsq_pem_screen",
    "estimate_1rm",
    "heart_rate_band",
    "hr_stop_limit",
    "iswt_completed_level",
    "iswt_cumulative_distance",
    "iswt_distance_for_vo2",
    "iswt_level_at_distance",
    "iswt_level_speed",
    "iswt_shuttles",
    "karvonen_hr",
    "predicted_vo2peak",
    "walking_speed_from_iswt",
]
