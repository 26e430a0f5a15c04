"""Invariants of the analysis statistics (hypothesis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from immunorehab.analysis import adjust_pvalues, ancova, kaplan_meier, rubin_pool, wilson_ci

pvals = arrays(np.float64, st.integers(1, 40), elements=st.floats(0.0, 1.0, allow_nan=False))


@given(pvals)
def test_bh_is_monotone_in_p_and_never_below_raw(p: np.ndarray) -> None:
    adj = adjust_pvalues(p, "BH")
    assert np.all(adj >= p - 1e-12) and np.all(adj <= 1.0)
    order = np.argsort(p, kind="stable")
    assert np.all(np.diff(adj[order]) >= -1e-12)


@given(pvals)
def test_holm_dominates_bh_and_bonferroni_dominates_holm(p: np.ndarray) -> None:
    bh, holm, bonf = (adjust_pvalues(p, m) for m in ("BH", "holm", "bonferroni"))
    assert np.all(holm >= bh - 1e-12) and np.all(bonf >= holm - 1e-12)


@given(pvals, st.randoms(use_true_random=False))
def test_adjustment_is_permutation_equivariant(p: np.ndarray, rnd: object) -> None:
    perm = np.arange(len(p))
    rnd.shuffle(perm)  # type: ignore[attr-defined]
    assert np.allclose(adjust_pvalues(p[perm], "BH"), adjust_pvalues(p, "BH")[perm])


@given(
    st.integers(1, 500).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))),
    st.booleans(),
    st.sampled_from([0.8, 0.9, 0.95, 0.99]),
)
def test_wilson_contains_estimate_within_unit_interval(
    xn: tuple[int, int], correct: bool, level: float
) -> None:
    x, n = xn
    lo, hi = wilson_ci(x, n, conf_level=level, correct=correct)
    assert 0.0 <= float(lo) <= x / n + 1e-12 <= float(hi) + 2e-12 <= 1.0 + 2e-12


def _trial(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = rng.normal(50, 10, n)
    arm = np.resize(["UC", "EX", "EX+ED"], n)
    return pd.DataFrame(
        {"arm": arm, "pre": base, "post": 5 + 0.8 * base + 3 * (arm == "EX") + rng.normal(0, 4, n)}
    )


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(12, 60), st.floats(-1e3, 1e3, allow_nan=False))
def test_ancova_estimate_is_equivariant_to_shifting_the_outcome(seed: int, n: int, shift: float) -> None:
    df = _trial(seed, n)
    a = ancova(df, outcome="post", baseline="pre", arm="arm", reference="UC")
    b = ancova(df.assign(post=df.post + shift), outcome="post", baseline="pre", arm="arm", reference="UC")
    assert np.allclose(a.table.estimate, b.table.estimate, atol=1e-8 * (1 + abs(shift)))
    assert np.allclose(a.table.se, b.table.se, rtol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10_000), st.integers(12, 60), st.floats(0.01, 100))
def test_ancova_scales_with_the_unit_and_ignores_row_order(seed: int, n: int, k: float) -> None:
    df = _trial(seed, n)
    a = ancova(df, outcome="post", baseline="pre", arm="arm", reference="UC")
    b = ancova(
        df.assign(post=df.post * k, pre=df.pre * k), outcome="post", baseline="pre", arm="arm", reference="UC"
    )
    assert np.allclose(b.table.estimate, k * a.table.estimate, rtol=1e-6, atol=1e-9)
    assert np.allclose(b.table.p_value, a.table.p_value, rtol=1e-5, atol=1e-12)
    shuffled = df.sample(frac=1.0, random_state=seed)
    c = ancova(shuffled, outcome="post", baseline="pre", arm="arm", reference="UC")
    assert np.allclose(c.table.estimate, a.table.estimate)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 60), st.booleans()), min_size=2, max_size=60),
)
def test_km_survival_is_non_increasing_and_bracketed(obs: list[tuple[int, bool]]) -> None:
    df = pd.DataFrame({"t": [o[0] for o in obs], "e": [int(o[1]) for o in obs]})
    assume(df.e.sum() > 0)
    k = kaplan_meier(df, time="t", event="e")
    s = k.table.survival.to_numpy()
    assert np.all(np.diff(s) <= 1e-12) and np.all((s >= 0) & (s <= 1))
    ok = k.table.dropna(subset=["ci_low"])
    assert np.all(ok.ci_low <= ok.survival + 1e-12) and np.all(ok.survival <= ok.ci_high + 1e-12)
    assert k.table.n_event.sum() == df.e.sum()


@given(
    arrays(np.float64, st.tuples(st.integers(2, 10), st.integers(1, 4)), elements=st.floats(-100, 100)),
    st.floats(5, 500),
)
def test_rubin_pooled_variance_at_least_within(q: np.ndarray, df_com: float) -> None:
    u = np.full_like(q, 1.0)
    t = rubin_pool(q, u, df_complete=df_com)
    assert np.allclose(t.estimate, q.mean(axis=0))
    assert np.all(t.se**2 >= 1.0 - 1e-12)
    assert np.all((t.df > 0) & (t.df <= df_com + 1e-9))
