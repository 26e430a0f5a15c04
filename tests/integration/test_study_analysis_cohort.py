"""The cohort analysis (Fong-like protocol) on a cohort built through the store and the cytokine pipeline.

Cytokine plates are simulated, written, read back, fitted and imported by the cytokine capability;
the analysis' Kaplan-Meier, log-rank, Cox, prevalence and mixed-model numbers must equal the
verified pure functions on the frames the analysis returns, and those frames must match the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from study_analysis_helpers import TODAY, fresh_database, import_cytokines, write_protocol

from factories import person
from immunorehab.analysis import cox, kaplan_meier, log_rank, mixed_model, prevalence_by_visit, wilson_ci
from immunorehab.analysis.study import StudyAnalysis, run_study_analysis
from immunorehab.cytokines.service import stored_results
from immunorehab.errors import OutcomeDataError, SingularFitWarning
from immunorehab.simulate.plates import SampleSpec, simulate_levels
from immunorehab.study.participants import add_participant
from immunorehab.study.store import Store
from immunorehab.study.visits import record_visit
from testpaths import PROTOCOLS

FONG = PROTOCOLS / "fong_cohort.yaml"
ENROLLED = dt.date(2023, 1, 10)
DAYS = {"baseline": 0, "month6": 182, "month12": 365, "month24": 730}
#: Inflammation (fold over healthy) by visit: raised in everyone acutely, persisting in the symptomatic.
FOLD = {
    True: {"baseline": 6.0, "month6": 4.0, "month12": 3.0, "month24": 1.3},
    False: {"baseline": 6.0, "month6": 1.6, "month12": 1.0, "month24": 1.0},
}


@dataclass
class Cohort:
    store: Store
    symptomatic: dict[str, bool]
    analysis: StudyAnalysis


def _build(store: Store, folder: Path, n: int = 30, seed: int = 8) -> dict[str, bool]:
    rng = np.random.default_rng(seed)
    symptomatic: dict[str, bool] = {}
    slope: dict[str, float] = {}
    specs: list[SampleSpec] = []
    for i in range(n):
        values = person(
            site="SGP",
            consent_date=ENROLLED.isoformat(),
            age_years=int(rng.integers(30, 80)),
            who_severity=int(rng.choice([4, 5, 6, 7])),
        )
        pid = add_participant(store, by="coord", values=values, today=TODAY).participant_id
        ill = bool(rng.random() < 0.4)
        symptomatic[pid] = ill
        slope[pid] = float(rng.normal(0.0, 0.04))  # participant-specific trend (log scale, per month)
        for visit, day in DAYS.items():
            if visit == "month6" and i % 9 == 4:
                continue  # a missed visit
            answers: dict[str, Any] = {"blood_drawn": True}
            if visit != "baseline":
                present = ill if visit == "month12" else bool(rng.random() < (0.6 if ill else 0.1))
                answers |= {
                    "symptoms_present": present,
                    "symptom_count": int(present) * int(rng.integers(1, 5)),
                }
            if visit == "month24":
                answers["vaccinated_since_last_visit"] = True
            record_visit(
                store,
                by="coord",
                participant_id=pid,
                visit_id=visit,
                visit_date=ENROLLED + dt.timedelta(days=day),
                values=answers,
                today=TODAY,
            )
            months = day / (365.25 / 12)
            fold = FOLD[ill][visit] * float(np.exp(slope[pid] * months))
            specs += simulate_levels([(pid, visit)], rng=rng, elevated={pid: fold})
    import_cytokines(store, specs, folder)
    return symptomatic


def _two_cytokines(data: dict[str, Any]) -> None:
    """Keep two of the six cytokine trajectories (mixed models take ~1-2 s each) and the rest."""
    plan = data["analysis"]
    plan["outcomes"] = [o for o in plan["outcomes"] if o["id"] in ("il6", "mcp1", "cd8_temra")]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def cohort(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cohort]:
    from immunorehab.study.service import add_user, create_study
    from testpaths import ROLE_USERS

    folder = tmp_path_factory.mktemp("cohort")
    url, drop = fresh_database(request, folder)
    protocol = write_protocol(FONG, folder, _two_cytokines)
    store, _ = create_study(url, protocol, admin="admin", seed=1)
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    symptomatic = _build(store, folder)
    analysis = run_study_analysis(store, by="stats1", skip_unavailable=True, today=TODAY)
    yield Cohort(store, symptomatic, analysis)
    store.dispose()
    if drop is not None:
        drop()


def test_cohort_design_and_group(cohort: Cohort) -> None:
    a = cohort.analysis
    assert a.design == "cohort" and not a.blinded
    groups = a.datasets["il6_normal"].set_index("participant_id")["group"]
    for pid, label in groups.items():
        assert label == ("symptomatic" if cohort.symptomatic[pid] else "asymptomatic")
    assert set(a.results["population"]) == {"cohort"}
    contrasts = set(a.results["contrast"])
    assert contrasts == {"symptomatic vs asymptomatic", "symptomatic vs asymptomatic: change per month"}
    assert a.methods["skipped"][0]["outcome"] == "cd8_temra"  # no cytometry stored in this cohort


def test_mixed_models_equal_the_pure_function(cohort: Cohort) -> None:
    a = cohort.analysis
    frame = a.datasets["il6"]
    singular = any(w.startswith("il6: SingularFitWarning") for w in a.methods["warnings"])
    with pytest.warns(SingularFitWarning) if singular else contextlib.nullcontext():
        fit = mixed_model(
            frame,
            outcome="value",
            time="time",
            subject="participant_id",
            covariates=["group[symptomatic]", "group[symptomatic]:time", "age_years", "who_severity"],
        )
    table = fit.table.set_index("term")
    rows = a.results[a.results["outcome"] == "il6"].set_index("contrast")
    level = rows.loc["symptomatic vs asymptomatic"]
    slope = rows.loc["symptomatic vs asymptomatic: change per month"]
    assert level["estimate"] == pytest.approx(np.exp(table.loc["group[symptomatic]", "estimate"]), rel=1e-10)
    assert slope["estimate"] == pytest.approx(
        np.exp(table.loc["group[symptomatic]:time", "estimate"]), rel=1e-10
    )
    assert slope["p_value"] == pytest.approx(table.loc["group[symptomatic]:time", "p_value"], rel=1e-8)
    assert level["estimate"] > 1.0  # inflammation stays higher in the symptomatic group
    fixed = a.cohort["mixed_fixed"]
    assert set(fixed["outcome"]) == {"il6", "mcp1"}
    stored = stored_results(cohort.store, by="stats1")
    il6 = stored[stored["analyte"] == "IL-6"].set_index(["participant", "visit"])["concentration"]
    for row in frame.head(10).itertuples():
        assert row.value == pytest.approx(np.log(il6[(row.participant_id, row.visit)]))
        assert row.time == pytest.approx(DAYS[row.visit] / (365.25 / 12))


def test_bh_within_the_family_per_contrast(cohort: Cohort) -> None:
    from immunorehab.analysis import adjust_pvalues

    res = cohort.analysis.results
    for _, part in res.groupby("contrast"):
        assert len(part) == 2 and set(part["adjust_method"]) == {"BH"}
        np.testing.assert_allclose(part["p_adjusted"], adjust_pvalues(part["p_value"].to_numpy(), "BH"))


def _normalisation_by_hand(store: Store, threshold: float) -> pd.DataFrame:
    stored = stored_results(store, by="stats1")
    il6 = stored[stored["analyte"] == "IL-6"].pivot(
        index="participant", columns="visit", values="concentration"
    )
    rows = []
    for pid, r in il6.iterrows():
        if np.isnan(r["baseline"]) or r["baseline"] <= threshold:
            continue
        seen = [(v, r[v]) for v in ("month6", "month12", "month24") if v in r and not np.isnan(r[v])]
        hit = next((v for v, x in seen if x <= threshold), None)
        if seen:
            last = hit or seen[-1][0]
            rows.append(
                {"participant_id": pid, "time": DAYS[last] / (365.25 / 12), "event": int(hit is not None)}
            )
    return pd.DataFrame(rows).sort_values("participant_id").reset_index(drop=True)


def test_time_to_normalisation_matches_the_store_and_survival_functions(cohort: Cohort) -> None:
    a = cohort.analysis
    frame = a.datasets["il6_normal"]
    by_hand = _normalisation_by_hand(cohort.store, 3.53)
    got = frame[["participant_id", "time", "event"]].sort_values("participant_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(got, by_hand, check_dtype=False)
    km = kaplan_meier(frame, time="time", event="event", group="group")
    pd.testing.assert_frame_equal(
        a.cohort["km"][a.cohort["km"]["outcome"] == "il6_normal"]
        .drop(columns=["outcome", "label"])
        .reset_index(drop=True),
        km.table,
    )
    lr = log_rank(frame, time="time", event="event", group="group")
    got_lr = a.cohort["log_rank"][a.cohort["log_rank"]["outcome"] == "il6_normal"]
    assert got_lr["p_value"].iloc[0] == pytest.approx(lr.p_value)
    fit = cox(
        frame, time="time", event="event", covariates=["group[symptomatic]", "age_years", "who_severity"]
    )
    got_cox = a.cohort["cox"][a.cohort["cox"]["outcome"] == "il6_normal"].reset_index(drop=True)
    np.testing.assert_allclose(got_cox["hazard_ratio"], fit.table["hazard_ratio"], rtol=1e-10)
    hr = got_cox.set_index("term").loc["group[symptomatic]", "hazard_ratio"]
    assert hr < 1.0  # the symptomatic normalise later
    counts = next(n["counts"] for n in a.methods["normalisation"] if n["id"] == "il6_normal")
    assert counts["at_risk"] == len(by_hand) and counts["events"] == int(by_hand["event"].sum())


def test_prevalence_per_visit_with_wilson_intervals(cohort: Cohort) -> None:
    a = cohort.analysis
    table = a.cohort["prevalence"]
    frame = a.datasets["persistent_symptoms"]
    expected = prevalence_by_visit(frame, visit="visit", indicator="value").table
    month12 = table[table["visit"] == "month12"].iloc[0]
    events = sum(cohort.symptomatic.values())
    assert (month12["n"], month12["events"]) == (30, events)
    lo, hi = wilson_ci(events, 30)
    assert (month12["ci_low"], month12["ci_high"]) == pytest.approx((float(lo), float(hi)))
    assert list(table["visit"]) == ["month6", "month12", "month24"]
    merged = table.merge(expected, on=["visit", "group"], suffixes=("", "_pure"))
    np.testing.assert_allclose(merged["proportion"], merged["proportion_pure"])


def test_cytokine_lloq_handling_is_recorded(cohort: Cohort) -> None:
    stored = stored_results(cohort.store, by="stats1")
    handling = cohort.analysis.methods["data_handling"]
    for outcome, analyte in (("il6", "IL-6"), ("mcp1", "MCP-1"), ("tnfa_normal", "TNF-a")):
        rows = stored[stored["analyte"] == analyte]
        below = int(rows["flag"].str.contains("<LLOQ", regex=False).sum())
        assert handling[outcome]["below_lloq"] == below
        if below:  # the example assay stores LLOQ/2 (long_covid_panel.yaml rules.below_lloq)
            assert handling[outcome]["stored_below_lloq_as"] == "LLOQ/2"
        assert handling[outcome]["below_lloq_analysed_as"] == "stored value"


def test_every_role_gets_the_same_cohort_analysis(cohort: Cohort) -> None:
    lab = run_study_analysis(cohort.store, by="lab1", skip_unavailable=True, today=TODAY)
    assert not lab.blinded
    pd.testing.assert_frame_equal(lab.results, cohort.analysis.results)


def test_an_outcome_without_data_is_an_error_naming_it(cohort: Cohort) -> None:
    with pytest.raises(
        OutcomeDataError, match=r"outcome 'cd8_temra' \(cytometry gate cd8_temra .*has no data at"
    ):
        run_study_analysis(cohort.store, by="stats1", today=TODAY)
