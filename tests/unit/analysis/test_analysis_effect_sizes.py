"""Cohen's d / Hedges' g against R's effectsize (mtcars example)."""

from __future__ import annotations

import pandas as pd
import pytest
from analysis_helpers import agrees

from immunorehab.analysis import cohens_d, hedges_g, standardised_difference
from immunorehab.errors import AnalysisDataError


def test_mtcars_matches_effectsize(mtcars: pd.DataFrame) -> None:
    # effectsize README: cohens_d(mpg ~ am) -1.48 [-2.27, -0.67]; hedges_g -1.44 [-2.21, -0.65]
    a0, a1 = mtcars.mpg[mtcars.am == 0], mtcars.mpg[mtcars.am == 1]
    d = cohens_d(a0, a1).table.iloc[0]
    assert agrees(d.estimate, "-1.48") and agrees(d.ci_low, "-2.27") and agrees(d.ci_high, "-0.67")
    g = hedges_g(a0, a1).table.iloc[0]
    assert agrees(g.estimate, "-1.44") and agrees(g.ci_low, "-2.21") and agrees(g.ci_high, "-0.65")


def test_normal_interval_and_symmetry(mtcars: pd.DataFrame) -> None:
    a0, a1 = mtcars.mpg[mtcars.am == 0], mtcars.mpg[mtcars.am == 1]
    d = cohens_d(a0, a1, ci_method="normal").table.iloc[0]
    assert d.ci_low < d.estimate < d.ci_high
    rev = cohens_d(a1, a0).table.iloc[0]
    fwd = cohens_d(a0, a1).table.iloc[0]
    assert rev.estimate == pytest.approx(-fwd.estimate) and rev.ci_low == pytest.approx(-fwd.ci_high)


def test_standardised_difference() -> None:
    t = pd.DataFrame(
        {"contrast": ["EX vs UC"], "estimate": [2.0], "se": [0.5], "ci_low": [1.0], "ci_high": [3.0]}
    )
    out = standardised_difference(t, 4.0)
    assert out.estimate[0] == 0.5 and out.ci_high[0] == 0.75 and t.estimate[0] == 2.0
    with pytest.raises(AnalysisDataError, match="positive"):
        standardised_difference(t, 0.0)
    with pytest.raises(AnalysisDataError, match="at least 2"):
        cohens_d([1.0], [2.0, 3.0])
