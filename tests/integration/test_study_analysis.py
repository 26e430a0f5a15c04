"""The protocol-driven study analysis on studies built through the real store APIs (SQLite and PostgreSQL).

Every number is checked against the verified pure functions (each agrees with R) called directly
on the frame the analysis says it analysed, and that frame is checked against the store.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from study_analysis_helpers import (
    TODAY,
    Trial,
    build_trial,
    fresh_database,
    gate_values,
    prescribe_and_log,
    store_gates,
    write_protocol,
)

from immunorehab.analysis import adjust_pvalues, ancova, ancova_mi, completers_ancova, mixed_model, mmrm
from immunorehab.analysis.study import RESULT_COLUMNS, StudyAnalysis, mice_seed, run_study_analysis
from immunorehab.cytometry.service import results_frame
from immunorehab.errors import AnalysisPlanError, PermissionDenied, SingularFitWarning
from immunorehab.rehab.reports import adherence_report
from immunorehab.study.service import add_user, create_study
from immunorehab.study.store import Store
from testpaths import ROLE_USERS, TWO_ARM


def _small_mice(data: dict[str, Any]) -> None:
    data["analysis"]["imputation"]["m"] = 5
    data["analysis"]["imputation"]["iterations"] = 5
    facit = next(o for o in data["analysis"]["outcomes"] if o["id"] == "facit_week8")
    facit["impute"] = False  # complete-case ITT for this one
    data["analysis"]["outcomes"] += [
        {**facit, "id": "facit_mmrm", "model": "mmrm", "population": "itt"},
        {**facit, "id": "facit_slope", "model": "mixed", "population": "itt"},
    ]


@dataclass
class Built:
    store: Store
    trial: Trial
    analysis: StudyAnalysis


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def built(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """A two-arm trial with visits, gated subsets and rehabilitation, analysed by the statistician."""
    folder = tmp_path_factory.mktemp("trial")
    url, drop = fresh_database(request, folder)
    protocol = write_protocol(TWO_ARM, folder, _small_mice)
    store, _ = create_study(url, protocol, admin="admin", seed=2024)
    for name, role in ROLE_USERS.items():
        add_user(store, by="admin", username=name, role=role)
    trial = build_trial(store, n=30, rehab=True)
    store_gates(store, gate_values(trial, np.random.default_rng(2)))
    prescribe_and_log(store, trial, folder)
    analysis = run_study_analysis(store, by="stats1", today=TODAY)
    yield Built(store, trial, analysis)
    store.dispose()
    if drop is not None:
        drop()


# -- the output contract -------------------------------------------------------------------------


def test_results_have_exactly_the_contract_columns(built: Built) -> None:
    res = built.analysis.results
    assert list(res.columns) == RESULT_COLUMNS
    assert list(built.analysis.descriptives.columns) == [
        "outcome", "visit", "arm", "n", "mean", "sd", "median", "q1", "q3", "geo_mean",
    ]  # fmt: skip
    assert set(res["scale"]) == {"ratio", "difference"}
    assert set(res["population"]) == {"itt", "per_protocol"}
    assert set(res["contrast"]) == {
        "face_to_face vs usual_care",
        "face_to_face vs usual_care: change per month",  # the mixed-model outcome
    }
    assert not built.analysis.blinded and built.analysis.design == "trial"
    primary = built.analysis.primary()
    assert sorted(primary["outcome"].unique()) == ["cd4_cm", "cd4_naive", "cd8_cm", "cd8_em", "cd8_naive"]


# -- numbers equal the pure functions on the analysed frame ----------------------------------------


def _common(outcome: str, log: bool) -> dict[str, Any]:
    return {
        "outcome": "followup_value",
        "baseline": "baseline_value",
        "arm": "arm",
        "reference": "usual_care",
        "covariates": ("age_band", "acute_severity", "cmv_serostatus"),
        "log": log,
    }


def _row(res: pd.DataFrame, outcome: str, population: str) -> pd.Series:
    rows = res[(res["outcome"] == outcome) & (res["population"] == population)]
    assert len(rows) == 1
    return rows.iloc[0]


@pytest.mark.parametrize(
    ("outcome", "log"), [("cd8_naive", True), ("iswt_week8", False), ("cd8_temra", True)]
)
def test_itt_with_missing_values_is_ancova_mi_with_the_recorded_seed(
    built: Built, outcome: str, log: bool
) -> None:
    frame = built.analysis.datasets[outcome]
    assert frame["followup_value"].isna().sum() == 3  # three week-8 visits were never recorded
    pooled = ancova_mi(
        frame,
        rng=np.random.default_rng(list(mice_seed(20250930, outcome))),
        m=5,
        n_iter=5,
        **_common(outcome, log),
    )
    row = _row(built.analysis.results, outcome, "itt")
    expected = pooled.contrasts.iloc[0]
    for col in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        assert row[col] == pytest.approx(expected[col], rel=1e-12)
    assert (row["n"], row["n_missing"]) == (30, 3)
    assert built.analysis.provenance["seeds"]["mice"][outcome] == list(mice_seed(20250930, outcome))


def test_per_protocol_is_completers_ancova_with_the_rehab_completer_flag(built: Built) -> None:
    frame = built.analysis.datasets["cd8_naive"]
    rows, _ = adherence_report(built.store, by="stats1", today=TODAY)
    status = {r.participant_id: r.status == "completer" for r in rows}
    expected_flag = [
        status.get(pid, False) if built.trial.arms[pid] == "face_to_face" else True
        for pid in frame["participant_id"]
    ]
    assert frame["completer"].tolist() == expected_flag
    assert 0 < sum(not f for f in expected_flag) < 15  # some exercise participants did not complete
    result = completers_ancova(frame, completer="completer", **_common("cd8_naive", True))
    row = _row(built.analysis.results, "cd8_naive", "per_protocol")
    for col in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        assert row[col] == pytest.approx(result.table.iloc[0][col], rel=1e-12)
    assert row["n"] == result.n


def test_outcome_without_imputation_is_complete_case_ancova(built: Built) -> None:
    frame = built.analysis.datasets["facit_week8"]
    result = ancova(frame, **_common("facit_week8", False))
    row = _row(built.analysis.results, "facit_week8", "itt")
    for col in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        assert row[col] == pytest.approx(result.table.iloc[0][col], rel=1e-12)
    assert (row["n"], row["n_missing"], result.n) == (27, 3, 27)
    record = next(o for o in built.analysis.methods["outcomes"] if o["id"] == "facit_week8")
    assert record["fits"]["itt"]["method"] == "complete_case"


def test_p_values_are_adjusted_within_each_family_and_population(built: Built) -> None:
    res = built.analysis.results
    for (family, _population), part in res.groupby(["family", "population"]):
        method = {"memory_subsets": "holm", "other_subsets": "BH", "function": "holm"}[family]
        assert set(part["adjust_method"]) == {method}
        for _, same in part.groupby("contrast"):  # across_contrasts: false
            expected = adjust_pvalues(same["p_value"].to_numpy(), method)
            np.testing.assert_allclose(same["p_adjusted"].to_numpy(), expected, rtol=1e-12)
    primary_itt = res[(res["family"] == "memory_subsets") & (res["population"] == "itt")]
    assert len(primary_itt) == 5


def test_datasets_hold_the_stored_values(built: Built) -> None:
    stored = results_frame(built.store, by="stats1")
    gate = stored[stored["gate"] == "cd8_naive"].set_index(["participant_id", "visit_id"])["pct_parent"]
    frame = built.analysis.datasets["cd8_naive"].set_index("participant_id")
    for pid, row in frame.iterrows():
        assert row["baseline_value"] == gate[(pid, "baseline")]
        if built.trial.week8[pid]:
            assert row["followup_value"] == gate[(pid, "week8")]
        assert row["arm"] == built.trial.arms[pid]
    counts = built.analysis.datasets["cd8_naive_count"]
    assert counts["baseline_value"].tolist() == pytest.approx((frame["baseline_value"] * 3.0).tolist())


def test_descriptives_equal_pandas_on_the_dataset(built: Built) -> None:
    frame = built.analysis.datasets["cd8_naive"]
    desc = built.analysis.descriptives
    for arm in ("face_to_face", "usual_care", "all"):
        part = frame if arm == "all" else frame[frame["arm"] == arm]
        values = part["followup_value"].dropna()
        row = desc[(desc["outcome"] == "cd8_naive") & (desc["visit"] == "week8") & (desc["arm"] == arm)].iloc[
            0
        ]
        assert row["n"] == len(values)
        assert row["mean"] == pytest.approx(values.mean())
        assert row["sd"] == pytest.approx(values.std(ddof=1))
        assert (row["q1"], row["median"], row["q3"]) == pytest.approx(
            tuple(np.quantile(values, [0.25, 0.5, 0.75]))
        )
        assert row["geo_mean"] == pytest.approx(float(np.exp(np.log(values).mean())))


def test_the_arm_effect_is_recovered(built: Built) -> None:
    """The simulated exercise arm raised naive CD8 by 25%: the ITT ratio's CI covers it."""
    row = _row(built.analysis.results, "cd8_naive", "itt")
    assert row["ci_low"] < 1.25 < row["ci_high"]
    assert row["p_adjusted"] < 0.05


def test_methods_and_provenance_records(built: Built) -> None:
    methods, prov = built.analysis.methods, built.analysis.provenance
    assert methods["covariates"] == ["age_band", "acute_severity", "cmv_serostatus"]
    assert methods["imputation"]["m"] == 5
    itt = methods["analysed"]["itt"]
    assert set(itt) == {"face_to_face", "usual_care"} and sum(itt.values()) == 30  # MICE: everyone
    assert itt == {arm: list(built.trial.arms.values()).count(arm) for arm in itt}
    families = {f["id"]: f for f in methods["multiplicity"]["families"]}
    assert families["other_subsets"]["method"] == "BH"
    assert len(prov["protocol_sha256"]) == 64
    assert prov["rows"]["cytometry_gate_results"] == 8 * (30 + 27)
    assert prov["software"]["statsmodels"]
    assert methods["skipped"] == [] and methods["warnings"] == []


# -- blinding ----------------------------------------------------------------------------------------


def _text(analysis: StudyAnalysis) -> str:
    frames = [
        analysis.results,
        analysis.descriptives,
        analysis.by_visit,
        *analysis.cohort.values(),
        *analysis.datasets.values(),
    ]
    return "\n".join(f.to_csv(index=False) for f in frames)


@pytest.mark.parametrize("user", ["admin", "stats1"])
def test_statistician_and_admin_get_the_unblinded_analysis(built: Built, user: str) -> None:
    analysis = run_study_analysis(built.store, by=user, today=TODAY, populations=["itt"])
    assert not analysis.blinded
    assert "face_to_face" in set(analysis.descriptives["arm"])


@pytest.mark.parametrize("user", ["coord", "physio1", "lab1", "assessor1"])
def test_other_roles_get_the_blinded_pooled_analysis(built: Built, user: str) -> None:
    analysis = run_study_analysis(built.store, by=user, today=TODAY)
    _assert_blinded(analysis)
    with pytest.raises(
        PermissionDenied, match="may not run the unblinded analysis; allowed roles: admin, statistician"
    ):
        run_study_analysis(built.store, by=user, blinded=False, today=TODAY)


def test_statistician_can_ask_for_the_blinded_analysis(built: Built) -> None:
    _assert_blinded(run_study_analysis(built.store, by="stats1", blinded=True, today=TODAY))


def _assert_blinded(analysis: StudyAnalysis) -> None:
    assert analysis.blinded
    assert analysis.results.empty and list(analysis.results.columns) == RESULT_COLUMNS
    assert analysis.by_visit.empty
    assert set(analysis.descriptives["arm"]) == {"all"}
    text = _text(analysis)
    for arm in ("face_to_face", "usual_care"):
        assert arm not in text
    for frame in analysis.datasets.values():
        assert not {"arm", "completer"} & set(frame.columns)
        assert frame["participant_id"].is_monotonic_increasing
    assert "attendance" not in analysis.datasets  # rehabilitation adherence reveals the arm
    assert analysis.provenance["populations"] == ["itt"]
    assert analysis.methods["analysed"] == {"itt": {"all": 27}}


def test_blinded_descriptives_are_the_pooled_unblinded_ones(built: Built) -> None:
    blind = run_study_analysis(built.store, by="lab1", today=TODAY).descriptives
    pooled = built.analysis.descriptives
    pooled = pooled[(pooled["arm"] == "all") & (pooled["outcome"] != "attendance")].reset_index(drop=True)
    pd.testing.assert_frame_equal(blind.reset_index(drop=True), pooled)


# -- errors ------------------------------------------------------------------------------------------


def test_unknown_population_is_refused(built: Built) -> None:
    with pytest.raises(AnalysisPlanError, match="unknown population"):
        run_study_analysis(built.store, by="stats1", populations=["completers"], today=TODAY)


# -- repeated measures ---------------------------------------------------------------------------------


def test_mmrm_outcome_equals_mmrm_on_its_frame(built: Built) -> None:
    frame = built.analysis.datasets["facit_mmrm"]
    result = mmrm(
        frame,
        outcome="value",
        subject="participant_id",
        visit="visit",
        arm="arm",
        baseline="baseline_value",
        reference="usual_care",
        visits=["week8"],
        covariates=["age_band", "acute_severity", "cmv_serostatus"],
    )
    row = _row(built.analysis.results, "facit_mmrm", "itt")
    expected = result.table.iloc[0]
    for col in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        assert row[col] == pytest.approx(expected[col], rel=1e-10)
    # with one post-baseline visit the MMRM estimate is the complete-case ANCOVA estimate
    cc = _row(built.analysis.results, "facit_week8", "itt")
    assert row["estimate"] == pytest.approx(cc["estimate"], rel=1e-6)
    by_visit = built.analysis.by_visit
    assert by_visit[by_visit["outcome"] == "facit_mmrm"][["visit", "contrast"]].values.tolist() == [
        ["week8", "face_to_face vs usual_care"]
    ]


def test_mixed_outcome_in_a_trial_reports_the_slope_difference(built: Built) -> None:
    frame = built.analysis.datasets["facit_slope"]
    warned = any(w.startswith("facit_slope: ") for w in built.analysis.methods["warnings"])
    with pytest.warns(SingularFitWarning) if warned else contextlib.nullcontext():
        fit = mixed_model(
            frame,
            outcome="value",
            time="time",
            subject="participant_id",
            covariates=[
                "arm[face_to_face]",
                "arm[face_to_face]:time",
                "age_band",
                "acute_severity",
                "cmv_serostatus",
            ],
        )
    row = _row(built.analysis.results, "facit_slope", "itt")
    assert row["contrast"] == "face_to_face vs usual_care: change per month"
    expected = fit.table.set_index("term").loc["arm[face_to_face]:time"]
    assert row["estimate"] == pytest.approx(expected["estimate"], rel=1e-10)
    assert row["p_value"] == pytest.approx(expected["p_value"], rel=1e-8)
    assert set(frame["visit"]) == {"baseline", "week8"}
    assert frame["time"].max() == pytest.approx(56 / (365.25 / 12))
