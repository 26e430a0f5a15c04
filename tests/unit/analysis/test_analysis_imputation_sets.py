"""MICE imputes the m data sets together; these tests pin that this is the sequential algorithm
(van Buuren's algorithm 3.1, one set after the other from one Generator), draw for draw, and
that ancova_mi's prebuilt designs give statsmodels' OLS fits pooled by Rubin's rules."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from immunorehab.analysis import ancova_mi, mice_impute, rubin_pool
from immunorehab.analysis.ancova import build_ancova_design


def _data(seed: int, n: int = 80) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    arm = np.repeat(["UC", "EX"], n // 2)
    base = rng.normal(10, 2, n)
    aux = base + rng.normal(0, 1, n)
    y = 2 + 0.6 * base + (arm == "EX") + rng.normal(0, 1.5, n)
    return pd.DataFrame(
        {
            "arm": arm,
            "site": rng.choice(["a", "b", "c"], n),
            "base": np.where(rng.random(n) < 0.15, np.nan, base),
            "aux": aux,
            "y": np.where(rng.random(n) < 0.3, np.nan, y),
        }
    )


def _sequential(
    df: pd.DataFrame, rng: np.random.Generator, m: int, n_iter: int, method: str
) -> list[np.ndarray]:
    """Reference: each set imputed on its own, variable by variable, as R's mice describes it."""
    values = df[["y", "base", "aux"]].to_numpy(float)
    fixed = pd.get_dummies(df[["arm", "site"]], drop_first=True, dtype=float).to_numpy()
    miss = np.isnan(values)
    out = []
    for _ in range(m):
        cur = values.copy()
        for j in (0, 1):
            cur[miss[:, j], j] = rng.choice(values[~miss[:, j], j], size=miss[:, j].sum())
        for _ in range(n_iter):
            for j in (0, 1):
                X = np.column_stack([np.ones(len(cur)), np.delete(cur, j, axis=1), fixed])
                obs = ~miss[:, j]
                Xo, yo = X[obs], cur[obs, j]
                xtx = Xo.T @ Xo
                inv = np.linalg.inv(xtx + 1e-5 * np.diag(np.maximum(np.diag(xtx), 1e-8)))
                beta = inv @ Xo.T @ yo
                sigma = np.sqrt(np.sum((yo - Xo @ beta) ** 2) / rng.chisquare(max(len(yo) - X.shape[1], 1)))
                star = beta + sigma * np.linalg.cholesky((inv + inv.T) / 2) @ rng.standard_normal(X.shape[1])
                pred = X[miss[:, j]] @ star
                if method == "norm":
                    cur[miss[:, j], j] = pred + sigma * rng.standard_normal(miss[:, j].sum())
                else:
                    near = np.argpartition(np.abs((Xo @ beta)[None, :] - pred[:, None]), 4, axis=1)[:, :5]
                    pick = near[np.arange(len(pred)), rng.integers(0, 5, size=len(pred))]
                    cur[miss[:, j], j] = yo[pick]
        out.append(cur)
    return out


@pytest.mark.parametrize("method", ["pmm", "norm"])
def test_sets_imputed_together_equal_sets_imputed_one_by_one(method: str) -> None:
    df = _data(1)
    cols = ["y", "base", "aux", "arm", "site"]
    together = mice_impute(df, columns=cols, rng=np.random.default_rng(9), m=4, n_iter=3, method=method)  # type: ignore[arg-type]
    alone = _sequential(df, np.random.default_rng(9), m=4, n_iter=3, method=method)
    for s, ref in zip(together, alone, strict=True):
        np.testing.assert_allclose(s[["y", "base", "aux"]].to_numpy(), ref, rtol=1e-12, atol=1e-12)


def test_first_sets_do_not_depend_on_m() -> None:
    df = _data(2)
    two = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(3), m=2, n_iter=4)
    five = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(3), m=5, n_iter=4)
    for a, b in zip(two, five[:2], strict=True):
        pd.testing.assert_frame_equal(a, b)


def test_ancova_mi_pools_statsmodels_ols_of_each_set() -> None:
    df = _data(4)
    kw = {"outcome": "y", "baseline": "base", "arm": "arm", "reference": "UC", "covariates": ["site"]}
    pooled = ancova_mi(df, rng=np.random.default_rng(5), m=6, n_iter=3, auxiliary=["aux"], **kw)  # type: ignore[arg-type]
    sets = mice_impute(
        df, columns=["y", "base", "arm", "site", "aux"], rng=np.random.default_rng(5), m=6, n_iter=3
    )
    est, var = [], []
    for s in sets:
        y, X, _, _ = build_ancova_design(s, **kw)  # type: ignore[arg-type]
        fit = sm.OLS(y, X.to_numpy()).fit()
        est.append(fit.params)
        var.append(fit.bse**2)
    ref = rubin_pool(np.array(est), np.array(var), df_complete=len(df) - 5)
    for col in ("estimate", "se", "df", "p_value"):
        np.testing.assert_allclose(pooled.table[col], ref[col], rtol=1e-10)
    assert list(pooled.table.term) == ["Intercept", "arm[EX]", "base", "site[b]", "site[c]"]


def test_donor_search_in_chunks_gives_the_same_sets(monkeypatch: pytest.MonkeyPatch) -> None:
    from immunorehab.analysis import imputation

    df = _data(6)
    whole = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(2), m=4, n_iter=2)
    monkeypatch.setattr(imputation, "_DIST_BUDGET", 1)  # one set at a time
    chunked = mice_impute(df, columns=["y", "base", "arm"], rng=np.random.default_rng(2), m=4, n_iter=2)
    for a, b in zip(whole, chunked, strict=True):
        pd.testing.assert_frame_equal(a, b)
