"""Seeded repeats of the seed trial: the analysis' confidence intervals cover the true arm effects.

Ten studies (seeds 1-10), each simulated through the whole pipeline (10,000-event files, the
smallest the cytometry QC accepts without a ``too_few_events`` flag), analysed (ITT, ANCOVA with
MICE as the protocol prespecifies) and compared with the simulator's true effect of every
outcome. A correct pipeline with 95% intervals covers each truth with probability ~0.95, so:

* each outcome of the seed claim (ISWT and the claimed subsets' counts) covers in >= 8 of 10
  repeats (P(<= 7 of 10 | 0.95) = 1.2%);
* over every analysed outcome (24 x 10 intervals) coverage is >= 90% (expected 95%, SD 1.4%).

A biased estimator fails this: e.g. reading the arm effect off the wrong scale, dropping the
baseline adjustment's log transform, or gating misplacing a subset would shift the estimates.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from immunorehab.simulate.chain import coverage_study

pytestmark = pytest.mark.slow  # ten whole studies (two processes): a few minutes on 2 cores

CLAIM = ("iswt_week8", "cd4_naive_count", "cd4_cm_count", "cd8_naive_count", "cd8_cm_count", "cd8_em_count")


def test_intervals_cover_the_true_effects_across_seeded_repeats(tmp_path: Path) -> None:
    repeats = coverage_study(range(1, 11), tmp_path, events_per_file=10_000, populations=("itt",))
    assert sorted(set(repeats["seed"])) == list(range(1, 11))
    per_outcome = repeats.groupby("outcome")["covered"].agg(["sum", "count"])
    assert (per_outcome["count"] == 10).all() and len(per_outcome) == 24
    for outcome in CLAIM:
        assert per_outcome.loc[outcome, "sum"] >= 8, per_outcome.loc[outcome]
    assert repeats["covered"].mean() >= 0.90, per_outcome
    # the estimates centre on the truth: mean log(estimate / truth) of the count ratios near 0
    counts = repeats[repeats["outcome"].str.endswith("_count")]
    bias = float(np.log(counts["estimate"] / counts["true_effect"]).mean())
    assert abs(bias) < 0.03
