"""Session-log values: typed, range-checked, every problem named with its field and the value found."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from immunorehab.rehab.doses import CyclingDose, ResistanceDose, WalkingDose
from immunorehab.rehab.sessionlog import FOLLOWUP_FIELDS, all_fields, parse_session_values
from unit.rehab.rehab_factories import REMOTE, programme

GOOD: dict[str, Any] = {
    "session_date": "2026-03-02",
    "session_no": "3",
    "delivery": "supervised",
    "hr_pre_bpm": "74",
    "hr_peak_bpm": "118",
    "spo2_lowest_pct": "94",
    "borg_dyspnoea": "3.5",
    "rpe": "13",
    "symptoms_pre_fatigue": "4",
    "symptoms_24h_fatigue": "5",
    "walking_minutes": "12",
    "walking_speed_kmh": "4.2",
    "walking_borg_dyspnoea": "3",
    "cycling_minutes": "7",
    "cycling_watts": "20",
    "leg_press_sets": "2",
    "leg_press_reps": "8",
    "leg_press_kg": "27",
    "leg_press_rpe": "14",
    "leg_press_prescribed_sets": "2",
    "leg_press_prescribed_reps": "8",
    "leg_press_prescribed_kg": "25",
    "stop_criteria": "",
    "ae_term": "knee pain",
    "ae_serious": "no",
    "ae_severity": "mild",
    "ae_related": "possible",
}


def _parse(**changes: Any) -> tuple[Any, list[str]]:
    values = {**GOOD, **changes}
    values = {k: v for k, v in values.items() if v is not None}
    entry, problems = parse_session_values(values, programme(), where="LEI-0001")
    return entry, [str(p) for p in problems]


def test_a_full_session_is_typed() -> None:
    entry, problems = _parse()
    assert problems == []
    assert entry.session_no == 3 and entry.session_date == dt.date(2026, 3, 2) and entry.supervised
    assert entry.vitals["spo2_lowest_pct"] == 94 and entry.rpe == 13
    assert (
        entry.symptoms_pre.fatigue == 4 and entry.symptoms_24h.fatigue == 5 and entry.symptoms_48h.is_empty()
    )
    by_id = {e.exercise_id: e for e in entry.exercises}
    assert by_id["walking"].done == WalkingDose(12, 4.2, 0.0) and by_id["walking"].borg_dyspnoea == 3
    assert by_id["cycling"].done == CyclingDose(7, 20)
    assert by_id["leg_press"].done == ResistanceDose(27, 2, 8) and by_id["leg_press"].rpe == 14
    assert by_id["leg_press"].prescribed == ResistanceDose(25, 2, 8)
    assert by_id["chest_press"].done is None and by_id["chest_press"].prescribed is None
    assert entry.adverse_events[0].term == "knee pain" and not entry.adverse_events[0].serious


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"spo2_lowest_pct": "120"}, "field spo2_lowest_pct: lowest SpO2 must be 50 to 100 %, got '120'"),
        ({"borg_dyspnoea": "11"}, "field borg_dyspnoea: Borg CR10 dyspnoea must be 0 to 10, got '11'"),
        ({"rpe": "25"}, "field rpe: RPE (Borg 6-20) must be 6 to 20, got '25'"),
        ({"walking_minutes": "-5"}, "field walking_minutes: walking minutes must be 0 to 180 min, got '-5'"),
        ({"leg_press_kg": "-2"}, "field leg_press_kg: leg_press load must be 0 to 500 kg"),
        ({"symptoms_24h_fatigue": "12"}, "symptoms_24h_fatigue: fatigue 24 h after (0-10) must be 0 to 10"),
        ({"rpe": "13.5"}, "field rpe: RPE (Borg 6-20): expected a whole number, got '13.5'"),
        ({"hr_peak_bpm": "fast"}, "field hr_peak_bpm: peak heart rate: expected a number, got 'fast'"),
        ({"session_date": "02/03/2026"}, "field session_date: session date: expected a date as YYYY-MM-DD"),
        ({"session_date": None}, "field session_date: is required"),
        ({"delivery": "hospital"}, "field delivery: delivery: expected one of supervised, remote"),
        ({"stop_criteria": "sneezing"}, "unknown stop criterion sneezing"),
        ({"walking_speed_kmh": None}, "field walking_speed_kmh: is required with walking_minutes"),
        ({"grip_kg": "30"}, "field grip_kg: is not a session-log field of programme 'phosp-r-face-to-face'"),
        (
            {"attended": "no"},
            "field attended: is no, but exercise values are given for walking, cycling, leg_press",
        ),
        (
            {"stopped_during": "rowing", "stop_criteria": "dizziness"},
            "'rowing' is not an exercise of the programme",
        ),
        ({"ae_related": None}, "field ae_related: is required for adverse event 'knee pain'"),
        ({"ae_term": None}, "field ae_term: is required with ae_serious, ae_severity, ae_related"),
    ],
)
def test_impossible_values_are_refused_with_field_value_and_range(
    changes: dict[str, Any], expected: str
) -> None:
    entry, problems = _parse(**changes)
    assert entry is None
    assert any(expected in p for p in problems), problems


def test_every_problem_of_a_session_is_reported() -> None:
    _, problems = _parse(spo2_lowest_pct="120", borg_dyspnoea="11", rpe="25", walking_minutes="-1")
    assert len(problems) == 4
    assert all(p.startswith("LEI-0001, field ") for p in problems)


def test_a_column_of_another_programme_is_ignored_when_empty() -> None:
    values = {
        "session_date": "2026-03-02",
        "cycling_minutes": "",
        "leg_press_sets": "",
        "walking_minutes": "10",
        "walking_speed_kmh": "3.6",
    }
    entry, problems = parse_session_values(values, programme(REMOTE), where="row 2")
    assert problems == [] and entry is not None
    values["cycling_minutes"] = "10"
    _, problems = parse_session_values(values, programme(REMOTE), where="row 2")
    assert "row 2, field cycling_minutes: is not a session-log field of programme 'phosp-r-remote'" in str(
        problems[0]
    )


def test_field_catalogue() -> None:
    fields = all_fields(programme())
    assert fields["leg_press_prescribed_kg"].unit == " kg"
    assert "biceps_curl_rpe" in fields and "walking_borg_fatigue" in fields
    assert "cycling_minutes" not in all_fields(programme(REMOTE))
    assert set(FOLLOWUP_FIELDS) == {
        f"symptoms_{w}_{s}"
        for w in ("24h", "48h")
        for s in ("fatigue", "breathlessness", "pain", "cognition")
    } | {"crash_reported"}
