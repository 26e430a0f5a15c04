"""The seed-cohort simulation (Fong 2023-like, 78 participants to 24 months) and what its analysis finds.

Oracles: the simulator's truth (symptom status per visit, true concentrations, the inflamed
cluster) and the published figures it is calibrated to (domain.md 0, F): symptoms in ~37% at
12 months and ~39% at 24; inflammation raised in the symptomatic and back to healthy levels by
24 months, more slowly in older patients.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from immunorehab.analysis.study import StudyAnalysis, run_study_analysis
from immunorehab.cytokines.service import stored_curves
from immunorehab.simulate.chain import stored_gates
from immunorehab.simulate.recovery import cohort_recovery, gating_recovery
from immunorehab.simulate.study import SimulatedStudy, simulate_study
from immunorehab.study.participants import list_participants
from immunorehab.study.store import Store

pytestmark = pytest.mark.slow  # 307 FCS files, 9 plates and six mixed models: a few minutes


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> SimulatedStudy:
    out = tmp_path_factory.mktemp("sim") / "seed-cohort"
    # 10,000 events: the smallest file the cytometry QC accepts without a too_few_events flag
    return simulate_study("seed-cohort", out, seed=2025, events_per_file=10_000, workers=2)


@pytest.fixture(scope="module")
def analysis(cohort: SimulatedStudy) -> StudyAnalysis:
    store = Store.open(cohort.db_url)
    try:
        return run_study_analysis(store, by="stats1", today=cohort.today)
    finally:
        store.dispose()


def test_cohort_is_followed_through_the_platform(cohort: SimulatedStudy) -> None:
    store = Store.open(cohort.db_url)
    try:
        views = list_participants(store, by="coord")
        curves = stored_curves(store, by="lab1")
        truth_fcs = pd.read_csv(cohort.out / "truth_fcs.csv")
        gates = tuple(sorted(set(truth_fcs["gate"])))
        recovery = gating_recovery(stored_gates(store, by="lab1", gates=gates), truth_fcs)
    finally:
        store.dispose()
    assert len(views) == 78 and all(v.eligible and v.arm is None for v in views)  # no allocation
    visits = pd.read_csv(cohort.out / "truth_visits.csv")
    assert int(visits["recorded"].sum()) == cohort.fcs_files  # one blood draw per recorded visit
    assert cohort.fcs_files > 0.95 * 78 * 4
    assert math.ceil(cohort.fcs_files / 37) <= cohort.plates <= math.ceil(cohort.fcs_files / 34)
    assert len(curves) == 8 * cohort.plates
    assert recovery["within"].all() and len(recovery) == len(truth_fcs)


def test_symptom_prevalence_is_recovered(cohort: SimulatedStudy, analysis: StudyAnalysis) -> None:
    """The analysis' prevalence equals the recorded truth; its Wilson interval covers Fong's figures."""
    summary = cohort.truth["summary"]
    prevalence = analysis.cohort["prevalence"].set_index("visit")
    for visit, published in (("month12", 0.37), ("month24", 0.39)):
        row = prevalence.loc[visit]
        assert row["proportion"] == pytest.approx(summary["prevalence_recorded"][visit], abs=1e-4)
        assert row["ci_low"] <= published <= row["ci_high"]
        assert row["n"] == summary["visits_recorded"][visit]


def test_inflammation_is_raised_in_the_symptomatic_and_normalises_by_24_months(
    cohort: SimulatedStudy, analysis: StudyAnalysis
) -> None:
    found = cohort_recovery(
        analysis.descriptives,
        analysis.cohort["prevalence"],
        analysis.cohort.get("km_summary"),
        cohort.truth,
        cox=analysis.cohort.get("cox"),
    )
    for visit in ("month6", "month12"):
        sym, asym, ratio = found["inflammation"][visit]
        true_ratio = found["true_inflammation"][visit][2]
        assert ratio > 1.5 and abs(math.log(ratio / true_ratio)) < math.log(1.35), visit
    sym24, asym24, ratio24 = found["inflammation"]["month24"]
    assert ratio24 < 1.25 and sym24 < 3.53  # below the CoLaus upper quartile used as "normal"
    # IL-6 mixed model: symptomatic higher, the difference shrinking over time
    fixed = analysis.cohort["mixed_fixed"]
    il6 = fixed[fixed["outcome"] == "il6"].set_index("term")
    assert il6.loc["group[symptomatic]", "estimate"] > 0.3
    assert il6.loc["group[symptomatic]:time", "estimate"] < 0
    # time to normalisation: slower in the symptomatic and in older patients
    medians = found["median_months"]
    assert medians["symptomatic"] > medians["asymptomatic"]
    cox = found["cox"]
    assert cox["group[symptomatic]"][0] < 1 and cox["age_years"][0] < 1
    assert found["normalised_24m"]["IL-6"] > 0.85


def test_temra_cells_are_higher_in_the_inflamed_cluster(cohort: SimulatedStudy) -> None:
    """Fong 2023: the persistently inflamed cluster had more terminally differentiated T cells.

    Read from the gated, stored results; the cluster is the simulator's truth.
    """
    store = Store.open(cohort.db_url)
    try:
        stored = stored_gates(store, by="stats1", gates=("cd8_temra",))
    finally:
        store.dispose()
    people = pd.read_csv(cohort.out / "truth_participants.csv").set_index("participant_id")
    temra = stored[stored["visit"] == "month12"].copy()
    temra["cluster"] = temra["participant_id"].map(people["inflamed_cluster"])
    means = temra.groupby("cluster")["pct_parent"].apply(lambda s: float(np.exp(np.log(s).mean())))
    assert means[True] > 1.2 * means[False]
