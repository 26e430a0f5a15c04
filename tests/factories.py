"""Valid participant records for tests (override fields per test)."""

from __future__ import annotations

import datetime as dt
from typing import Any


def person(**overrides: Any) -> dict[str, Any]:
    """A participant eligible under both example protocols."""
    base: dict[str, Any] = {
        "site": "LEI",
        "consent_date": "2026-01-10",
        "age_years": 55,
        "sex": "female",
        "who_severity": 5,
        "hospitalised": "yes",
        "icu_admitted": "no",
        "invasive_ventilation": "no",
        "vaccination_doses": 3,
        "cmv_serostatus": "positive",
        "days_since_infection": 120,
    }
    base.update(overrides)
    return base


TODAY = dt.date(2026, 11, 22)
