"""Wilson intervals against R's prop.test output."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_helpers import agrees

from immunorehab.analysis import prevalence_by_visit, wilson_ci
from immunorehab.errors import AnalysisDataError


@pytest.mark.parametrize(
    ("x", "n", "level", "correct", "low", "high"),
    [
        (319, 715, 0.95, False, "0.4101018", "0.4827814"),  # Gustavus Adolphus R guide
        (6, 52, 0.95, False, "0.05396969", "0.22971664"),  # R PR#2794 (prop.test, correct=FALSE)
        (6, 52, 0.95, True, "0.04778925", "0.24129372"),  # same, R's default continuity correction
        (319, 1100, 0.99, False, "0.2561", "0.3264"),  # stats.stackexchange q. 183225
    ],
)
def test_wilson_matches_prop_test(x: int, n: int, level: float, correct: bool, low: str, high: str) -> None:
    lo, hi = wilson_ci(x, n, conf_level=level, correct=correct)
    assert agrees(float(lo), low) and agrees(float(hi), high)


def test_edges() -> None:
    lo, hi = wilson_ci(0, 10)
    assert float(lo) == 0.0 and 0 < float(hi) < 1
    lo, hi = wilson_ci(10, 10)
    assert float(hi) == 1.0 and 0 < float(lo) < 1
    with pytest.raises(AnalysisDataError, match="0 <= x <= n"):
        wilson_ci(11, 10)


def test_prevalence_by_visit_counts_and_intervals() -> None:
    df = pd.DataFrame(
        {
            "visit": [12, 12, 12, 12, 24, 24, 24, 24, 24],
            "symptomatic": [1, 0, 1, None, 0, 0, 1, 0, 0],
            "severity": ["mild", "severe", "severe", "mild", "mild", "severe", "severe", "mild", "mild"],
        }
    )
    r = prevalence_by_visit(df, visit="visit", indicator="symptomatic")
    t = r.table
    assert t.visit.tolist() == [12, 24] and t.n.tolist() == [3, 5] and t.events.tolist() == [2, 1]
    lo, hi = wilson_ci(2, 3)
    assert t.ci_low[0] == pytest.approx(float(lo)) and t.ci_high[0] == pytest.approx(float(hi))
    g = prevalence_by_visit(df, visit="visit", indicator="symptomatic", group="severity").table
    assert len(g) == 4 and g.n.sum() == 8
    with pytest.raises(AnalysisDataError, match="must be 0/1"):
        prevalence_by_visit(df.assign(symptomatic=2), visit="visit", indicator="symptomatic")
