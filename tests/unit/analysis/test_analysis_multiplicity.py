"""p-value adjustment against R's own ?p.adjust example (stats-Ex.Rout.save)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from analysis_helpers import R_REFERENCE, agrees
from analysis_r_rng import RRandom
from scipy import stats

from immunorehab.analysis import adjust_family, adjust_pvalues
from immunorehab.errors import AnalysisDataError


def _r_example_pvalues() -> np.ndarray:
    """set.seed(123); x <- rnorm(50, mean = c(rep(0, 25), rep(3, 25))); p <- 2*pnorm(sort(-abs(x)))"""
    x = RRandom(123).rnorm(50, np.r_[np.zeros(25), np.full(25, 3.0)])
    return 2 * stats.norm.cdf(np.sort(-np.abs(x)))


def test_r_example_data_reproduced() -> None:
    # round(p, 3) as printed in R's example output
    printed = (
        "0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.000 0.001 0.002 0.003 0.004 0.005 "
        "0.007 0.007 0.009 0.009 0.011 0.021 0.049 0.061 0.063 0.074 0.083 0.086 0.119 0.189 0.206 "
        "0.221 0.286 0.305 0.466 0.483 0.492 0.532 0.575 0.578 0.619 0.636 0.645 0.656 0.689 0.719 "
        "0.818 0.827 0.897 0.912 0.944"
    ).split()
    p = _r_example_pvalues()
    assert all(agrees(float(a), b) for a, b in zip(p, printed, strict=True))


@pytest.mark.parametrize("method", ["holm", "hochberg", "hommel", "bonferroni", "BH", "BY", "none"])
def test_p_adjust_matches_r_example_table(method: str) -> None:
    # noquote(apply(p.adj, 2, format.pval, digits = 3)) in R's ?p.adjust example
    truth = pd.read_csv(R_REFERENCE / "p_adjust_stats_ex.csv", dtype=str)
    ours = adjust_pvalues(_r_example_pvalues(), method)  # type: ignore[arg-type]
    bad = [
        (i, o, t) for i, (o, t) in enumerate(zip(ours, truth[method], strict=True)) if not agrees(float(o), t)
    ]
    assert not bad


def test_input_order_is_kept_and_nan_is_skipped() -> None:
    p = np.array([0.04, np.nan, 0.01, 0.03, 0.02])
    adj = adjust_pvalues(p, "BH")
    assert np.isnan(adj[1])
    assert adj[[0, 2, 3, 4]] == pytest.approx(adjust_pvalues([0.04, 0.01, 0.03, 0.02], "BH"))
    assert adjust_pvalues([0.04, 0.01, 0.03, 0.02], "BH") == pytest.approx([0.04, 0.04, 0.04, 0.04])
    assert adjust_pvalues([0.01, 0.04, 0.03, 0.02], "holm") == pytest.approx([0.04, 0.06, 0.06, 0.06])


def test_adjust_family_adjusts_within_each_declared_family() -> None:
    table = pd.DataFrame(
        {
            "outcome": ["naive", "cm", "em", "il6", "tnf"],
            "family": ["cells", "cells", "cells", "cytokines", "cytokines"],
            "p_value": [0.01, 0.02, 0.04, 0.03, 0.5],
        }
    )
    r = adjust_family(table, method="BH", family="family")
    assert r.table.p_adjusted.tolist()[:3] == pytest.approx([0.03, 0.03, 0.04])
    assert r.table.p_adjusted.tolist()[3:] == pytest.approx([0.06, 0.5])
    assert r.table.reject.tolist() == [True, True, True, False, False]
    assert r.family_size == 5 and r.method == "BH"
    whole = adjust_family(table, method="holm")
    assert whole.table.p_adjusted[0] == pytest.approx(0.05)


def test_bad_p_values_rejected() -> None:
    with pytest.raises(AnalysisDataError, match="must lie in \\[0, 1\\]"):
        adjust_pvalues([0.2, 1.5])
    with pytest.raises(AnalysisDataError, match="method must be one of"):
        adjust_pvalues([0.2], "fdr")  # type: ignore[arg-type]
