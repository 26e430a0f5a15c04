"""The seed-trial simulation: built through the platform's services, and the pipeline recovers its truth.

Oracles: the simulator's ground truth (every event's label, every tube's concentration, every
participant's dose and counterfactual week-8 state), the study's own hash-chain verifiers, and
the rehab capability's adherence report. Tolerances are justified where they are used.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from immunorehab.analysis.study import run_study_analysis
from immunorehab.cli.main import run
from immunorehab.cytokines.service import stored_results
from immunorehab.rehab.reports import adherence_report
from immunorehab.simulate.chain import stored_gates
from immunorehab.simulate.plates import DEFAULT_PANEL, DILUTION_STEP, LEVELS
from immunorehab.simulate.recovery import effect_recovery, gating_recovery
from immunorehab.simulate.study import SimulatedStudy, load_truth, simulate_study
from immunorehab.study.allocation import verify_allocations
from immunorehab.study.audit import verify_audit_chain
from immunorehab.study.participants import list_participants
from immunorehab.study.store import Store


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> SimulatedStudy:
    out = tmp_path_factory.mktemp("sim") / "seed-trial"
    return simulate_study("seed-trial", out, seed=2025, events_per_file=10_000, workers=1)


@pytest.fixture
def store(trial: SimulatedStudy):
    opened = Store.open(trial.db_url)
    yield opened
    opened.dispose()


def test_trial_is_built_through_the_platform(trial: SimulatedStudy, store: Store) -> None:
    truth = trial.truth["summary"]
    people = pd.read_csv(trial.out / "truth_participants.csv")
    views = list_participants(store, by="coord")
    assert len(views) == 33 == truth["screened"]  # 31 + 2 screen failures, imported from a CSV file
    assert sum(not v.eligible for v in views) == 2 and (trial.out / "participants_import.csv").exists()
    assert sum(v.arm is not None for v in list_participants(store, by="stats1")) == 31
    assert sorted(truth["arms"].values()) == [15, 16]  # permuted blocks of 2 and 4
    assert verify_allocations(store, by="admin").ok
    with store.read("admin") as session:
        audit = verify_audit_chain(session)
    assert audit.ok and audit.checked > 5000  # every write went through audited services
    # rehabilitation: the adherence report agrees with the simulator's session counts
    rows, _ = adherence_report(store, by="stats1", today=trial.today)
    attended = {r.participant_id: r.attended for r in rows}
    exercise = people[people["arm"] == "face_to_face"].set_index("participant_id")
    assert attended == exercise["sessions_attended"].to_dict()
    completers = {r.participant_id for r in rows if r.attended >= r.completer_threshold}
    assert completers == set(exercise.index[exercise["completer"]])
    assert truth["rehab"]["pese_events"] > 0 and truth["rehab"]["stop_criteria_cleared"] == 1
    assert sorted(p.name for p in (trial.out / "rehab").glob("*.csv"))  # imported from CSV files
    # week-8 visits as the truth says; the withdrawn participant is flagged
    visits = pd.read_csv(trial.out / "truth_visits.csv")
    assert int(visits["recorded"].sum()) == 31 + truth["week8_recorded"]
    withdrawn = {v.participant_id for v in views if v.withdrawn_on is not None}
    assert withdrawn == set(people.loc[people["withdrawn_on"].notna(), "participant_id"])


def test_gated_fractions_are_within_tolerance_of_the_true_fractions(
    trial: SimulatedStudy, store: Store
) -> None:
    """Every stored subset of every file against the true % of parent counted on the same events.

    Tolerance (immunorehab.simulate.recovery): 1.0 point of the parent, the cytometry recovery
    oracle's bound at >= 3,000 parent events, widened as sqrt(3000 / parent events) for smaller
    parents; median error must stay an order of magnitude below it.
    """
    truth = pd.read_csv(trial.out / "truth_fcs.csv")
    gates = tuple(sorted(set(truth["gate"])))
    recovery = gating_recovery(stored_gates(store, by="lab1", gates=gates), truth)
    assert len(recovery) == len(truth) == trial.fcs_files * len(gates)
    assert recovery["within"].all(), recovery.loc[~recovery["within"]].to_string()
    assert recovery["diff"].abs().median() < 0.1
    # the simulator's fractions are those of the participant's immune state (the expected values)
    sampled = truth["true_pct_parent"] - truth["expected_pct_parent"]
    assert sampled.abs().median() < 1.0


def test_cytokine_concentrations_are_recovered(trial: SimulatedStudy, store: Store) -> None:
    """Back-calculated concentrations vs the true concentration in each tube (flag ok only).

    Signals carry 5% CV noise and a plate gain of 6% SD (simulate.plates). Well inside the curve
    (in-well concentration at least 4x the lowest standard) 95% must recover within 80-120%
    (domain.md D3); near the bottom of the curve imprecision grows (the usual imprecision
    profile), so there only the median error is bounded.
    """
    truth = pd.read_csv(trial.out / "truth_cytokines.csv")
    stored = stored_results(store, by="lab1")
    assert len(stored) == trial.fcs_files * 8  # one sample per blood draw, 8 analytes
    merged = stored[stored["flag"] == "ok"].merge(truth, on=["participant", "visit", "analyte"])
    assert len(merged) > 0.8 * len(stored)
    error = np.log(merged["concentration"] / merged["true_concentration"])
    lowest = merged["analyte"].map(
        {a.name: a.top_standard / DILUTION_STEP ** (LEVELS - 1) for a in DEFAULT_PANEL}
    )
    inside = merged["true_concentration"] / 2.0 >= 4 * lowest  # samples are diluted 1:2
    assert inside.sum() > 150 and (error[inside].abs() < math.log(1.2)).mean() >= 0.95
    assert abs(error.median()) < 0.05 and error[~inside].abs().median() < math.log(1.15)


def test_truth_file_holds_effects_latents_and_files(trial: SimulatedStudy) -> None:
    data = json.loads((trial.out / "truth.json").read_text())
    assert data["preset"] == "seed-trial" and data["seed"] == 2025 and data["design"] == "trial"
    assert set(data["tables"]) >= {"truth_participants.csv", "truth_fcs.csv", "truth_effects.csv"}
    effects = pd.read_csv(trial.out / "truth_effects.csv").set_index(["outcome", "population"])
    people = pd.read_csv(trial.out / "truth_participants.csv")
    exercise = people[people["arm"] == "face_to_face"]
    ratio = data["effects"]["count_ratio"]["cd8_naive"]
    # completers get the configured count ratio exactly; ITT is diluted by the mean dose
    assert effects.loc[("cd8_naive_count", "per_protocol"), "true_effect"] == pytest.approx(ratio)
    itt = math.exp(exercise["dose"].mean() * math.log(ratio))
    assert effects.loc[("cd8_naive_count", "itt"), "true_effect"] == pytest.approx(itt, rel=1e-4)
    assert effects.loc[("iswt_week8", "itt"), "true_effect"] == pytest.approx(
        data["effects"]["iswt_m"] * exercise["dose"].mean(), rel=1e-4
    )
    assert effects.loc[("facit_week8", "itt"), "true_effect"] == 0.0
    # % of parent: closure makes TEMRA's share fall although TEMRA counts are unchanged
    assert (
        effects.loc[("cd8_temra", "itt"), "true_effect"]
        < 0.9
        < effects.loc[("cd8_naive", "itt"), "true_effect"]
    )
    assert load_truth(trial.out)["summary"]["randomised"] == 31


def test_analysis_recovers_the_arm_effects(trial: SimulatedStudy, store: Store) -> None:
    analysis = run_study_analysis(store, by="stats1", today=trial.today)
    primary = analysis.primary()
    assert set(primary["outcome"]) == {"iswt_week8"} and set(primary["population"]) == {"itt", "per_protocol"}
    recovery = effect_recovery(analysis.results, pd.read_csv(trial.out / "truth_effects.csv"))
    assert len(recovery) == len(analysis.results)
    # one seed: most intervals cover (the seeded repeats test the coverage rate itself)
    assert recovery["covered"].mean() >= 0.85
    counts = recovery[recovery["family"] == "t_cell_counts"]
    assert (counts["estimate"] > 1.1).all()  # the configured count increases are seen


def test_same_seed_same_study_and_another_seed_another(tmp_path: Path) -> None:
    kwargs = {"events_per_file": 2_000, "participants": 10, "workers": 1}
    first = simulate_study("seed-trial", tmp_path / "a", seed=7, **kwargs)
    again = simulate_study("seed-trial", tmp_path / "b", seed=7, **kwargs)
    other = simulate_study("seed-trial", tmp_path / "c", seed=8, **kwargs)
    for name in ("truth_participants.csv", "truth_fcs.csv", "truth_cytokines.csv", "truth_effects.csv"):
        assert (first.out / name).read_bytes() == (again.out / name).read_bytes(), name
        assert (first.out / name).read_bytes() != (other.out / name).read_bytes(), name
    gates = ("cd8_naive", "t_cells")
    stored = []
    for sim in (first, again):
        opened = Store.open(sim.db_url)
        stored.append(stored_gates(opened, by="lab1", gates=gates))
        opened.dispose()
    columns = ["participant_id", "visit", "gate", "pct_parent", "per_ul"]
    pd.testing.assert_frame_equal(
        *(s[columns].sort_values(columns[:3]).reset_index(drop=True) for s in stored)
    )


def test_cli_builds_a_study_and_refuses_bad_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli"
    args = [
        "simulate",
        "study",
        "--preset",
        "seed-trial",
        "--out",
        str(out),
        "--events",
        "2000",
        "--workers",
        "1",
    ]
    assert run([*args, "--effect", "cd8_naive=1.5", "--effect", "iswt=40"]) == 0
    text = capsys.readouterr().out
    assert "Screened 33, randomised 31" in text and "gated and stored as lab1, 0 failed" in text
    assert f"Truth: {out / 'truth.json'}" in text and "Try: immunorehab analyse --db sqlite:///" in text
    assert load_truth(out)["effects"]["count_ratio"]["cd8_naive"] == 1.5
    assert run(args) == 1  # not empty
    assert "is not empty: pass --overwrite to replace it" in capsys.readouterr().err
    assert run(["simulate", "study", "--preset", "seed-x", "--out", str(tmp_path / "x")]) == 1
    assert "unknown preset 'seed-x': expected one of seed-trial, seed-cohort" in capsys.readouterr().err
    bad = [
        "simulate",
        "study",
        "--preset",
        "seed-trial",
        "--out",
        str(tmp_path / "y"),
        "--effect",
        "cd8_temra=2",
    ]
    assert run(bad) == 1
    assert "unknown effect 'cd8_temra'" in capsys.readouterr().err
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    assert (
        run(["simulate", "study", "--preset", "seed-trial", "--out", str(tmp_path / "taken"), "--overwrite"])
        == 1
    )
    assert "is not a simulated study" in capsys.readouterr().err
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"  # never overwritten
