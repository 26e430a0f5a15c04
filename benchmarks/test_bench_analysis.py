"""Analysis throughput at cohort scale: MMRM and ANCOVA on 10,000 participants.

Run with `make bench`; figures are recorded in benchmarks/README.md (medians and ratios).

* MMRM: 10,000 participants x 6 post-baseline visits, 15% of visits missing at random (64
  missingness patterns), unstructured covariance, REML, Kenward-Roger df. Yardstick:
  statsmodels ``GEE`` with an unstructured working correlation on the same long data and mean
  model -- the closest estimator statsmodels has (no REML, no small-sample df).
* ANCOVA: 30 markers (log scale) on 10,000 participants; yardstick: statsmodels formula OLS.
* mixed_model on a seed-cohort-sized data set (78 participants x 4 visits, random intercept and
  slope, 4 covariates), a regular and a boundary (singular) fit; yardsticks: the implementation
  before the speed-up and one statsmodels ``MixedLM`` fit.
* ancova_mi (MICE, m = 20, 10 cycles, PMM) on a seed-trial-sized data set (31 participants);
  yardsticks: the implementation before the speed-up and ``statsmodels.imputation.mice``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf
from _analysis_previous import previous_ancova_mi, previous_mixed_model
from statsmodels.imputation import mice as smmice
from statsmodels.regression.mixed_linear_model import MixedLM

from immunorehab.analysis import ancova, ancova_mi, mixed_model, mmrm
from immunorehab.errors import SingularFitWarning

N, T = 10_000, 6


@pytest.fixture(scope="module")
def cohort() -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(0)
    arm = rng.choice(["UC", "EX"], N)
    base = rng.normal(10, 2, N)
    S = 0.5 ** np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    Y = 2 + 0.5 * base[:, None] + (arm == "EX")[:, None] * 0.5 + rng.multivariate_normal(np.zeros(T), S, N)
    miss = rng.random((N, T)) < 0.15
    ids, vis = np.nonzero(~miss)
    long = pd.DataFrame({"id": ids, "visit": vis, "y": Y[ids, vis], "arm": arm[ids], "base": base[ids]})
    markers = {f"m{k}": np.exp(rng.normal(0, 1, N) + 0.1 * (arm == "EX")) for k in range(30)}
    wide = pd.DataFrame({"arm": arm, "base_all": np.exp(rng.normal(0, 1, N)), **markers})
    return long, wide


def test_bench_mmrm_10k(benchmark, cohort) -> None:  # type: ignore[no-untyped-def]
    long, _ = cohort
    r = benchmark.pedantic(
        lambda: mmrm(
            long, outcome="y", subject="id", visit="visit", arm="arm", baseline="base", reference="UC"
        ),
        rounds=3,
        iterations=1,
    )
    assert r.converged and abs(r.table.estimate.mean() - 0.5) < 0.1


def test_bench_gee_unstructured_yardstick(benchmark, cohort) -> None:  # type: ignore[no-untyped-def]
    long, _ = cohort
    model = smf.gee(
        "y ~ C(visit) + C(visit):C(arm) + C(visit):base",
        groups="id",
        data=long,
        time=long["visit"].to_numpy(),
        cov_struct=sm.cov_struct.Unstructured(),
    )
    benchmark.pedantic(model.fit, rounds=3, iterations=1)


def test_bench_ancova_30_markers(benchmark, cohort) -> None:  # type: ignore[no-untyped-def]
    _, wide = cohort

    def run() -> list[float]:
        out = []
        for k in range(30):
            df = wide.assign(base=wide["base_all"])
            out.append(
                float(
                    ancova(
                        df, outcome=f"m{k}", baseline="base", arm="arm", reference="UC", log=True
                    ).table.estimate[0]
                )
            )
        return out

    est = benchmark.pedantic(run, rounds=3, iterations=1)
    assert np.mean(est) == pytest.approx(np.exp(0.1), abs=0.05)


def test_bench_ols_formula_yardstick(benchmark, cohort) -> None:  # type: ignore[no-untyped-def]
    _, wide = cohort
    logs = np.log(wide.drop(columns=["arm"])).assign(arm=wide["arm"])

    def run() -> None:
        for k in range(30):
            smf.ols(f"m{k} ~ C(arm, Treatment('UC')) + base_all", data=logs).fit()

    benchmark.pedantic(run, rounds=3, iterations=1)


# --------------------------------------------------------------------------------------------------
# Study-sized fits: what the protocol analysis of a simulated study runs (benchmarks/README.md,
# "Analysis fits at study size"). Yardsticks side by side: the implementations before the speed-up
# (benchmarks/_analysis_previous.py) and statsmodels' own routines.

MONTHS = (0.0, 6.0, 12.0, 24.0)
MIXED_COVARIATES = ["group[symptomatic]", "group[symptomatic]:time", "age_years", "who_severity"]


def _cohort_long(seed: int, slope_sd: float, n: int = 78) -> pd.DataFrame:
    """seed-cohort-like: 78 participants x 4 visits over 24 months, ~4% missed, log cytokine."""
    rng = np.random.default_rng(seed)
    G = np.array([[0.16, -0.5 * 0.4 * slope_sd], [-0.5 * 0.4 * slope_sd, slope_sd**2]])
    u = rng.multivariate_normal(np.zeros(2), G, n)
    sick = (rng.random(n) < 0.4).astype(float)
    age = rng.integers(30, 80, n).astype(float)
    sev = rng.choice([4.0, 5.0, 6.0, 7.0], n)
    rows = []
    for i in range(n):
        for t in MONTHS:
            if t > 0 and rng.random() < 0.04:
                continue
            mu = 1.0 + 0.9 * sick[i] - (0.02 + 0.02 * sick[i]) * t + 0.005 * (age[i] - 55) + 0.05 * sev[i]
            y = mu + u[i, 0] + u[i, 1] * t + rng.normal(0, 0.55)
            rows.append((f"SGP-{i:04d}", t, sick[i], sick[i] * t, age[i], sev[i], y))
    cols = ["participant_id", "time", *MIXED_COVARIATES, "value"]
    return pd.DataFrame(rows, columns=cols)


#: (seed, random-slope SD): a regular fit and a boundary (singular) one, as the simulated cohort has
COHORT_FITS = {"regular": (4, 0.012), "boundary": (1, 0.0)}


@pytest.fixture(scope="module", params=sorted(COHORT_FITS))
def cohort_fit(request: pytest.FixtureRequest) -> tuple[str, pd.DataFrame]:
    seed, slope_sd = COHORT_FITS[request.param]
    return request.param, _cohort_long(seed, slope_sd)


def _mixed(fn: Any, data: pd.DataFrame) -> Any:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = fn(data, outcome="value", time="time", subject="participant_id", covariates=MIXED_COVARIATES)
    singular = any(issubclass(w.category, SingularFitWarning) for w in caught)
    return r, singular


def test_bench_mixed_model_cohort(benchmark, cohort_fit) -> None:  # type: ignore[no-untyped-def]
    kind, data = cohort_fit
    r, singular = benchmark.pedantic(lambda: _mixed(mixed_model, data), rounds=5, iterations=1)
    assert singular == (kind == "boundary") and r.n_groups == 78


def test_bench_mixed_model_cohort_previous(benchmark, cohort_fit) -> None:  # type: ignore[no-untyped-def]
    kind, data = cohort_fit
    r, _ = benchmark.pedantic(lambda: _mixed(previous_mixed_model, data), rounds=2, iterations=1)
    new, _ = _mixed(mixed_model, data)
    assert new.log_likelihood >= r.log_likelihood - 1e-6  # the same optimum, or a better one


def test_bench_statsmodels_mixedlm_yardstick(benchmark, cohort_fit) -> None:  # type: ignore[no-untyped-def]
    """One statsmodels MixedLM REML fit (lbfgs only, no Satterthwaite df)."""
    _, data = cohort_fit
    X = np.column_stack([np.ones(len(data)), data[["time", *MIXED_COVARIATES]].to_numpy()])
    model = MixedLM(data["value"].to_numpy(), X, groups=data["participant_id"], exog_re=X[:, :2])

    def fit() -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return model.fit(reml=True, method=["lbfgs"])

    benchmark.pedantic(fit, rounds=3, iterations=1)


def _trial_wide(seed: int = 3, n: int = 31) -> pd.DataFrame:
    """seed-trial-like: 31 participants, 2 arms, categorical strata, 4 follow-ups missing."""
    rng = np.random.default_rng(seed)
    arm = rng.permutation(np.resize(["usual_care", "face_to_face"], n))
    base = np.round(rng.normal(420, 110, n), -1)
    follow = np.round(base + 60 * (arm == "face_to_face") + rng.normal(20, 60, n), -1)
    follow[rng.choice(n, 4, replace=False)] = np.nan
    return pd.DataFrame(
        {
            "arm": arm,
            "age_band": rng.choice(["<50", ">=50"], n),
            "acute_severity": rng.choice(["hospitalised", "community"], n),
            "baseline_value": base,
            "followup_value": follow,
        }
    )


MI_ARGS: dict[str, Any] = {
    "outcome": "followup_value",
    "baseline": "baseline_value",
    "arm": "arm",
    "reference": "usual_care",
    "covariates": ("age_band", "acute_severity"),
    "m": 20,
    "n_iter": 10,
}


def test_bench_ancova_mi_trial(benchmark) -> None:  # type: ignore[no-untyped-def]
    data = _trial_wide()
    r = benchmark.pedantic(
        lambda: ancova_mi(data, rng=np.random.default_rng(1), **MI_ARGS), rounds=10, iterations=1
    )
    old = previous_ancova_mi(data, rng=np.random.default_rng(1), **MI_ARGS)
    pd.testing.assert_frame_equal(r.table, old.table, rtol=1e-10)  # same draws, same numbers


def test_bench_ancova_mi_trial_previous(benchmark) -> None:  # type: ignore[no-untyped-def]
    data = _trial_wide()
    benchmark.pedantic(
        lambda: previous_ancova_mi(data, rng=np.random.default_rng(1), **MI_ARGS), rounds=5, iterations=1
    )


def test_bench_statsmodels_mice_yardstick(benchmark) -> None:  # type: ignore[no-untyped-def]
    """statsmodels.imputation.mice: PMM chained equations + OLS per set, m = 20, 10 burn-in cycles."""
    data = _trial_wide()
    numeric = pd.get_dummies(
        data, columns=["arm", "age_band", "acute_severity"], drop_first=True, dtype=float
    )
    numeric.columns = [c.replace("<", "lt").replace(">=", "ge").replace("-", "_") for c in numeric.columns]
    formula = "followup_value ~ " + " + ".join(c for c in numeric.columns if c != "followup_value")

    def run() -> Any:
        np.random.seed(1)  # statsmodels' MICE draws from numpy's global state
        imp = smmice.MICEData(numeric)
        return smmice.MICE(formula, sm.OLS, imp, n_skip=0).fit(n_burnin=10, n_imputations=20)

    benchmark.pedantic(run, rounds=3, iterations=1)
