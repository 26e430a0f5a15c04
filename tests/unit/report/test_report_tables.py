"""Report tables: baseline characteristics, adherence and safety summaries, number formats."""

from __future__ import annotations

import pandas as pd
import pytest

from immunorehab.report.tables import (
    Group,
    adherence_table,
    baseline_table,
    fmt_mean_sd,
    fmt_median_iqr,
    fmt_n_pct,
    safety_table,
)


def _people() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "participant_id": ["A", "B", "C", "D", "E"],
            "age_years": [50, 60, 70, 41, 43],
            "sex": ["female", "male", "male", "female", None],
            "site": ["LEI", "LEI", "HAR", "HAR", "LEI"],
            "who_severity": [4, 5, 5, 7, 4],
            "hospitalised": [True, True, True, True, True],
            "icu_admitted": [False, True, False, True, None],
            "invasive_ventilation": [False, False, False, True, False],
            "vaccination_doses": [1, 2, 3, 4, 3],
            "cmv_serostatus": ["positive", "negative", "unknown", "positive", "positive"],
            "days_since_infection": [100, 200, 300, 400, 150],
        }
    )


def _row(table, label: str, start: int = 0):  # type: ignore[no-untyped-def]
    for r in table.rows[start:]:
        if r.label == label:
            return r
    raise AssertionError(f"no row {label!r} in {[r.label for r in table.rows]}")


def test_quartiles_are_r_type_7() -> None:
    # R: quantile(c(1, 2, 3, 4)) -> 25% 1.75, 50% 2.5, 75% 3.25 (type 7, the default)
    assert fmt_median_iqr([1, 2, 3, 4], 2) == "2.50 (1.75–3.25)"
    # R: sd(c(50, 60, 70)) = 10
    assert fmt_mean_sd([50, 60, 70], 1) == "60.0 (10.0)"
    assert fmt_mean_sd([]) == "–"
    assert fmt_n_pct(1, 3) == "1 (33.3%)"
    assert fmt_n_pct(0, 0) == "0"


def test_baseline_table_by_group_and_total() -> None:
    people = _people()
    groups = [
        Group("a", "Arm A", frozenset("ABC")),
        Group("b", "Arm B", frozenset("DE")),
        Group("all", "All", frozenset("ABCDE")),
    ]
    table = baseline_table(people, groups)
    assert table.columns == ("Arm A (n=3)", "Arm B (n=2)", "All (n=5)")
    assert _row(table, "Age, years, mean (SD)").cells == ("60.0 (10.0)", "42.0 (1.4)", "52.8 (12.2)")
    sex = table.rows.index(_row(table, "Sex, n (%)"))
    assert _row(table, "Female", sex).cells == ("1 (33.3%)", "1 (100.0%)", "2 (50.0%)")
    assert _row(table, "Male", sex).cells == ("2 (66.7%)", "0 (0.0%)", "2 (50.0%)")
    # E has no sex recorded: percentages are of those with a value, and the missing are counted
    assert _row(table, "Missing", sex).cells == ("0", "1", "1")
    # ICU: D yes (of D, E -> E missing); A-C: B yes
    assert _row(table, "Admitted to intensive care, n (%)").cells == ("1 (33.3%)", "1 (100.0%)", "2 (50.0%)")
    assert _row(table, "Invasive mechanical ventilation, n (%)").cells == (
        "0 (0.0%)",
        "1 (50.0%)",
        "1 (20.0%)",
    )
    # R: quantile(c(100, 200, 300)) -> 150, 200, 250; c(400, 150) -> 212.5, 275, 337.5
    assert _row(table, "Days from acute infection to consent, median (IQR)").cells == (
        "200 (150–250)",
        "275 (212–338)",
        "200 (150–300)",
    )
    who = table.rows.index(_row(table, "Worst acute WHO clinical progression scale, n (%)"))
    assert [r.label for r in table.rows[who + 1 : who + 4]] == ["4", "5", "7"]


def _adherence() -> pd.DataFrame:
    base = {
        "programme_id": "p",
        "sessions_due": 16,
        "aerobic_minutes_prescribed": 100.0,
        "aerobic_minutes_done": 90.0,
        "resistance_volume_prescribed_kg": 1000.0,
        "resistance_volume_done_kg": 900.0,
        "adverse_events": 0,
        "serious_adverse_events": 0,
        "completer_threshold": 12,
        "sessions_offered": 16,
    }
    rows = [
        dict(
            base,
            participant_id="A",
            arm="x",
            attended=16,
            attended_supervised=16,
            attended_remote=0,
            attendance_pct=100.0,
            aerobic_pct=90.0,
            resistance_pct=80.0,
            pese_events=0,
            stop_events=1,
            status="completer",
        ),
        dict(
            base,
            participant_id="B",
            arm="x",
            attended=8,
            attended_supervised=8,
            attended_remote=0,
            attendance_pct=50.0,
            aerobic_pct=70.0,
            resistance_pct=None,
            pese_events=2,
            stop_events=0,
            status="non_completer",
        ),
        dict(
            base,
            participant_id="C",
            arm="y",
            attended=12,
            attended_supervised=0,
            attended_remote=12,
            attendance_pct=75.0,
            aerobic_pct=100.0,
            resistance_pct=100.0,
            pese_events=1,
            stop_events=0,
            status="completer",
        ),
    ]
    return pd.DataFrame(rows)


def test_adherence_table_sums_and_completers() -> None:
    frame = _adherence()
    groups = [
        Group("x", "X", frozenset("AB")),
        Group("y", "Y", frozenset("C")),
        Group("all", "All", frozenset("ABC")),
    ]
    table = adherence_table(frame, groups, show_mode=True)
    assert _row(table, "Sessions attended / offered").cells == (
        "24 / 32 (75.0%)",
        "12 / 16 (75.0%)",
        "36 / 48 (75.0%)",
    )
    assert _row(table, "Completers (programme definition), n (%)").cells == (
        "1 (50.0%)",
        "1 (100.0%)",
        "2 (66.7%)",
    )
    assert _row(table, "Remote sessions attended").cells == ("0", "12", "12")
    # resistance % missing for B: the mean is over those with a prescription
    assert _row(table, "Resistance volume achieved, % of prescribed, mean (SD)").cells[0] == "80.0 (–)"
    assert _row(table, "PESE (post-exertional) events: total; participants with any, n (%)").cells == (
        "2; 1 (50.0%)",
        "1; 1 (100.0%)",
        "3; 2 (66.7%)",
    )
    assert "12" in table.note
    blinded = adherence_table(frame.drop(columns=["arm"]), groups[-1:], show_mode=False)
    assert all("Remote" not in r.label and "Supervised" not in r.label for r in blinded.rows)


def test_safety_table_counts_events_and_participants() -> None:
    aes = pd.DataFrame(
        {
            "participant_id": ["A", "A", "C"],
            "session_no": [2, 5, 1],
            "term": ["knee pain", "dizziness", "knee pain"],
            "serious": [False, True, False],
            "severity": ["mild", "severe", "moderate"],
            "relatedness": ["possible", "unlikely", "probable"],
        }
    )
    groups = [Group("x", "X", frozenset("AB")), Group("y", "Y", frozenset("C"))]
    table = safety_table(aes, _adherence(), groups)
    assert table.columns == ("X (n=2)", "Y (n=1)")
    assert _row(table, "Any adverse event").cells == ("2; 1 (50.0%)", "1; 1 (100.0%)")
    assert _row(table, "Serious adverse events").cells == ("1; 1 (50.0%)", "0; 0 (0.0%)")
    assert _row(table, "Severe").cells == ("1; 1 (50.0%)", "0; 0 (0.0%)")
    assert _row(table, "knee pain").cells == ("1 (0)", "1 (0)")
    assert _row(table, "dizziness").cells == ("1 (1)", "0 (0)")


@pytest.mark.parametrize(
    ("values", "expected"),
    [([0.1234, 0.2], "0.16 (0.05)"), ([1234.0, 1300.0], "1,267 (47)")],
)
def test_mean_sd_digits_follow_magnitude(values: list[float], expected: str) -> None:
    assert fmt_mean_sd(values) == expected
