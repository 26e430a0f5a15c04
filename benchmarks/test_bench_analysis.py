"""Analysis throughput at cohort scale: MMRM and ANCOVA on 10,000 participants.

Run with `make bench`; figures are recorded in benchmarks/README.md (medians and ratios).

* MMRM: 10,000 participants x 6 post-baseline visits, 15% of visits missing at random (64
  missingness patterns), unstructured covariance, REML, Kenward-Roger df. Yardstick:
  statsmodels ``GEE`` with an unstructured working correlation on the same long data and mean
  model -- the closest estimator statsmodels has (no REML, no small-sample df).
* ANCOVA: 30 markers (log scale) on 10,000 participants; yardstick: statsmodels formula OLS.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

from immunorehab.analysis import ancova, mmrm

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
